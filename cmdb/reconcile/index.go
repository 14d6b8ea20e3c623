package reconcile

import (
	"hash/maphash"
	"math/bits"
	"net/netip"
)

// index maps a key's 64-bit hash to the CIs holding the key, as indexes
// into the CI slice. It is an open-addressing table probed linearly: a
// lookup costs one cache miss, and no key string is dereferenced. A hash
// held by one CI (nearly all of them) costs one slot; a hash held by
// several points, negated, into multi. Hashes can collide, so a caller
// checks that each CI it gets does hold the key.
type index struct {
	keys  []uint64 // 0: empty slot
	vals  []int32
	mask  uint64
	n     int
	multi [][]int32
}

func newIndex(n int) index {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return index{keys: make([]uint64, size), vals: make([]int32, size), mask: uint64(size - 1)}
}

var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return fix(maphash.String(seed, s)) }

func hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	if a.Is4() {
		hi ^= 0x9e3779b97f4a7c15 // keep 10.0.0.1 apart from ::10.0.0.1
	}
	h1, l1 := bits.Mul64(hi^0xa0761d6478bd642f, lo^0xe7037ed1a0b428db)
	h2, l2 := bits.Mul64(h1^l1, 0x8ebc6af09c88c6e3)
	return fix(h2 ^ l2)
}

func fix(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// slot finds h's slot, or the empty slot where it would go.
func (x *index) slot(h uint64) uint64 {
	i := (h ^ h>>29) & x.mask
	for {
		if k := x.keys[i]; k == h || k == 0 {
			return i
		}
		i = (i + 1) & x.mask
	}
}

// add records that CI ci holds the key hashed h. CIs are added in order,
// so a CI adding the same key twice is caught by looking at the last one.
func (x *index) add(h uint64, ci int32) {
	if 2*(x.n+1) > len(x.keys) {
		x.grow()
	}
	i := x.slot(h)
	if x.keys[i] == 0 {
		x.keys[i], x.vals[i] = h, ci
		x.n++
		return
	}
	switch v := x.vals[i]; {
	case v >= 0:
		if v != ci {
			x.multi = append(x.multi, []int32{v, ci})
			x.vals[i] = -int32(len(x.multi))
		}
	default:
		if l := x.multi[-v-1]; l[len(l)-1] != ci {
			x.multi[-v-1] = append(l, ci)
		}
	}
}

func (x *index) grow() {
	old := *x
	*x = newIndex(len(old.keys))
	x.multi, x.n = old.multi, old.n
	for i, k := range old.keys {
		if k != 0 {
			j := x.slot(k)
			x.keys[j], x.vals[j] = k, old.vals[i]
		}
	}
}

// lookup returns the CIs that may hold the key hashed h: one in single
// (when ok and list is nil), or several in list.
func (x *index) lookup(h uint64) (single int32, list []int32, ok bool) {
	i := x.slot(h)
	if x.keys[i] == 0 {
		return 0, nil, false
	}
	v := x.vals[i]
	if v >= 0 {
		return v, nil, true
	}
	return 0, x.multi[-v-1], true
}

func appendUniq(dst []int32, c int32) []int32 {
	for _, d := range dst {
		if d == c {
			return dst
		}
	}
	return append(dst, c)
}
