package inventory

import (
	"slices"
	"strings"
)

// keyIndex maps identifier keys to assets. MAC keys ("mac:X", "lmac:X")
// live in a map keyed by the 48-bit address: a million devices' MACs cost
// no strings there.
type keyIndex struct {
	macs  map[uint64]*Asset
	other map[string]*Asset
}

func newKeyIndex() keyIndex {
	return keyIndex{macs: map[uint64]*Asset{}, other: map[string]*Asset{}}
}

func macBits(k string) (uint64, bool) {
	var mac string
	switch {
	case strings.HasPrefix(k, "mac:"):
		mac = k[4:]
	case strings.HasPrefix(k, "lmac:"):
		mac = k[5:]
	default:
		return 0, false
	}
	b, ok := parseMAC(mac)
	if !ok {
		return 0, false
	}
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5]), true
}

func (x keyIndex) get(k string) *Asset {
	if m, ok := macBits(k); ok {
		return x.macs[m]
	}
	return x.other[k]
}

func (x keyIndex) set(k string, a *Asset) {
	if m, ok := macBits(k); ok {
		x.macs[m] = a
		return
	}
	x.other[k] = a
}

// nameIndex maps hostnames to the assets that have them; most names have
// one asset, kept without a slice.
type nameIndex struct {
	one  map[string]*Asset
	more map[string][]*Asset
}

func newNameIndex() nameIndex {
	return nameIndex{one: map[string]*Asset{}, more: map[string][]*Asset{}}
}

func (x nameIndex) get(n string) []*Asset {
	if m, ok := x.more[n]; ok {
		return m
	}
	if a, ok := x.one[n]; ok {
		return []*Asset{a}
	}
	return nil
}

func (x nameIndex) add(n string, a *Asset) {
	if m, ok := x.more[n]; ok {
		if !slices.Contains(m, a) {
			x.more[n] = append(m, a)
		}
		return
	}
	cur, ok := x.one[n]
	switch {
	case !ok:
		x.one[n] = a
	case cur != a:
		delete(x.one, n)
		x.more[n] = []*Asset{cur, a}
	}
}

func (x nameIndex) remove(n string, a *Asset) {
	if m, ok := x.more[n]; ok {
		m = slices.DeleteFunc(m, func(y *Asset) bool { return y == a })
		switch len(m) {
		case 0:
			delete(x.more, n)
		case 1:
			delete(x.more, n)
			x.one[n] = m[0]
		default:
			x.more[n] = m
		}
		return
	}
	if x.one[n] == a {
		delete(x.one, n)
	}
}
