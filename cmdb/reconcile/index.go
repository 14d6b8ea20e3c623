package reconcile

// index maps a key to the CIs holding it, as indexes into the CI slice. A
// key held by one CI (nearly all of them) costs one map entry; a key held
// by several points, negated, into multi.
type index[K comparable] struct {
	m     map[K]int32
	multi [][]int32
}

func newIndex[K comparable](n int) index[K] {
	return index[K]{m: make(map[K]int32, n)}
}

// add records that CI ci holds k. CIs are added in order, so a CI adding
// the same key twice is caught by looking at the last one.
func (x *index[K]) add(k K, ci int32) {
	v, ok := x.m[k]
	switch {
	case !ok:
		x.m[k] = ci
	case v >= 0:
		if v != ci {
			x.multi = append(x.multi, []int32{v, ci})
			x.m[k] = -int32(len(x.multi))
		}
	default:
		if l := x.multi[-v-1]; l[len(l)-1] != ci {
			x.multi[-v-1] = append(l, ci)
		}
	}
}

// appendTo appends the CIs holding k to dst, skipping those already there.
func (x *index[K]) appendTo(dst []int32, k K) []int32 {
	v, ok := x.m[k]
	if !ok {
		return dst
	}
	if v >= 0 {
		return appendUniq(dst, v)
	}
	for _, c := range x.multi[-v-1] {
		dst = appendUniq(dst, c)
	}
	return dst
}

func appendUniq(dst []int32, c int32) []int32 {
	for _, d := range dst {
		if d == c {
			return dst
		}
	}
	return append(dst, c)
}
