package active

import (
	"math"
	"net/netip"
	"slices"
)

// span is an inclusive range of addresses of one family. Scope arithmetic
// (allow, exclude, merge) is done on spans and turned back into prefixes at
// the end, so a range target or a partly excluded CIDR comes out as the
// fewest prefixes that cover exactly the same addresses.
type span struct{ lo, hi netip.Addr }

func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	return span{p.Addr(), lastAddr(p)}
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8*(i+1):
		case bits <= 8*i:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> (bits - 8*i)
		}
	}
}

// overlaps says whether two spans of the same family share an address.
func (s span) overlaps(o span) bool {
	return s.lo.BitLen() == o.lo.BitLen() && s.lo.Compare(o.hi) <= 0 && o.lo.Compare(s.hi) <= 0
}

// subtract returns the parts of s not in cut.
func (s span) subtract(cut span) []span {
	if !s.overlaps(cut) {
		return []span{s}
	}
	var out []span
	if s.lo.Less(cut.lo) {
		out = append(out, span{s.lo, cut.lo.Prev()})
	}
	if cut.hi.Less(s.hi) {
		out = append(out, span{cut.hi.Next(), s.hi})
	}
	return out
}

// subtractAll removes every cut from every span.
func subtractAll(ss []span, cuts []span) []span {
	for _, c := range cuts {
		var next []span
		for _, s := range ss {
			next = append(next, s.subtract(c)...)
		}
		ss = next
	}
	return ss
}

// merge sorts spans (IPv4 before IPv6) and joins those that overlap or touch.
func merge(ss []span) []span {
	if len(ss) == 0 {
		return nil
	}
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b span) int { return a.lo.Compare(b.lo) })
	out := []span{ss[0]}
	for _, s := range ss[1:] {
		last := &out[len(out)-1]
		touching := last.hi.BitLen() == s.lo.BitLen() && (s.lo.Compare(last.hi) <= 0 || last.hi.Next() == s.lo)
		if !touching {
			out = append(out, s)
			continue
		}
		if last.hi.Less(s.hi) {
			last.hi = s.hi
		}
	}
	return out
}

// prefixes returns the fewest prefixes covering exactly s, in order.
func (s span) prefixes() []netip.Prefix {
	var out []netip.Prefix
	lo := s.lo
	for {
		bits := lo.BitLen()
		// Widen the prefix while it still starts at lo and ends by hi.
		for bits > 0 {
			p := netip.PrefixFrom(lo, bits-1)
			if p.Masked().Addr() != lo || s.hi.Less(lastAddr(p)) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(lo, bits)
		out = append(out, p)
		end := lastAddr(p)
		if end == s.hi {
			return out
		}
		lo = end.Next()
	}
}

func spansToPrefixes(ss []span) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range merge(ss) {
		out = append(out, s.prefixes()...)
	}
	return out
}

// prefixSize is the number of addresses in p, saturating at MaxUint64.
func prefixSize(p netip.Prefix) uint64 {
	host := p.Addr().BitLen() - p.Bits()
	if host >= 64 {
		return math.MaxUint64
	}
	return 1 << host
}

// Count is the number of addresses in ps (saturating at MaxUint64; prefixes
// are counted as given, so overlapping ones count twice: pass Resolve's
// output).
func Count(ps []netip.Prefix) uint64 {
	var n uint64
	for _, p := range ps {
		s := prefixSize(p)
		if n > math.MaxUint64-s {
			return math.MaxUint64
		}
		n += s
	}
	return n
}

// Chunk splits ps into chunks of at most size addresses each, in order. A
// prefix larger than size is split into sub-prefixes of the largest power of
// two not above size (a /16 with size 256 gives 256 chunks of one /24);
// smaller prefixes are packed together while they fit. A chunk never mixes
// IPv4 and IPv6, since one nmap run cannot scan both. size < 1 means one
// chunk per family. Pass Resolve's output: Chunk does not bound the number
// of chunks it makes.
func Chunk(ps []netip.Prefix, size int) [][]netip.Prefix {
	var (
		chunks [][]netip.Prefix
		cur    []netip.Prefix
		n      uint64
	)
	flush := func() {
		if len(cur) > 0 {
			chunks = append(chunks, cur)
		}
		cur, n = nil, 0
	}
	add := func(p netip.Prefix) {
		s := prefixSize(p)
		if len(cur) > 0 && (cur[0].Addr().BitLen() != p.Addr().BitLen() || (size > 0 && n+s > uint64(size))) {
			flush()
		}
		cur = append(cur, p)
		n += s
	}
	if size < 1 {
		for _, p := range ps {
			add(p.Masked())
		}
		flush()
		return chunks
	}
	piece := 0 // host bits of the largest power of two <= size
	for 1<<(piece+1) <= size && piece < 62 {
		piece++
	}
	for _, p := range ps {
		p = p.Masked()
		host := p.Addr().BitLen() - p.Bits()
		if host <= piece {
			add(p)
			continue
		}
		bits := p.Addr().BitLen() - piece
		for sub := netip.PrefixFrom(p.Addr(), bits); ; {
			add(sub)
			last := lastAddr(sub)
			if last == lastAddr(p) {
				break
			}
			sub = netip.PrefixFrom(last.Next(), bits)
		}
	}
	flush()
	return chunks
}
