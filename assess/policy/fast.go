package policy

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/reckon-dev/reckon/assess"
)

// The fast path: Go closures compiled from the checked AST of an
// expression, for the part of CEL the policies use (comprehensions over the
// facts, field selection, comparisons, string functions, timestamps, list
// and map literals). cel-go's interpreter spends most of a policy's time
// adapting values and walking its own plan; closures over the facts structs
// run the same expression some ten times faster.
//
// The fast path only ever stands in for cel-go, never decides alone:
//   - an expression with anything outside the subset has no fast program
//     and runs in cel-go;
//   - it runs only where the cost-limited program would have been allowed
//     to run untracked (its estimated worst cost on facts of this size is
//     within the limit), so the cost limit means the same;
//   - when it meets an error of any kind it hands the expression to cel-go,
//     so an error result carries cel-go's message.
// The tests run every expression of the baseline both ways on a set of
// hosts and require the same results.

// errUnsupported marks an expression outside the fast path's subset.
var errUnsupported = errors.New("not in the fast path's subset")

// errFast is any evaluation error on the fast path; its message is never
// shown (cel-go reruns the expression).
var errFast = errors.New("fast path: evaluation error")

type kind int

const (
	kBool kind = iota
	kInt
	kString
	kTime
	kDuration // constants only
	kObj      // a facts struct
	kObjList  // a list of facts structs
	kStrList
	kIntList
	kStrMap
	kOptStr // an optional string (m[?k])
	kDyn    // anything, as plain Go: evidence
)

// objSlice is a []T of a facts struct T, as a pointer and a length.
type objSlice struct {
	p unsafe.Pointer
	n int
}

// fenv is the state of one evaluation on the fast path.
type fenv struct {
	f    *assess.Facts
	now  time.Time
	role string
	ptrs [maxSlots]unsafe.Pointer // comprehension variables bound to structs
	strs [maxSlots]string         // and to strings
}

const maxSlots = 8

// node is one compiled expression: its kind and the closure of that kind.
type node struct {
	k   kind
	typ *objType // kObj, kObjList
	b   func(*fenv) (bool, error)
	i   func(*fenv) (int64, error)
	s   func(*fenv) (string, error)
	t   func(*fenv) (time.Time, error)
	dur time.Duration
	o   func(*fenv) (unsafe.Pointer, error)
	ol  func(*fenv) (objSlice, error)
	sl  func(*fenv) ([]string, error)
	il  func(*fenv) ([]int64, error)
	m   func(*fenv) (map[string]string, error)
	opt func(*fenv) (string, bool, error)
	d   func(*fenv) (any, error)
	// constant, for string literals (patterns, duration strings)
	lit   string
	isLit bool
}

// fastProg is a compiled expression.
type fastProg struct {
	n node
}

// scope binds comprehension variables to slots.
type scope struct {
	parent *scope
	name   string
	slot   int
	k      kind
	typ    *objType
}

func (s *scope) lookup(name string) *scope {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (s *scope) depth() int {
	n := 0
	for ; s != nil; s = s.parent {
		n++
	}
	return n
}

type fastCompiler struct {
	ast *celast.AST
	ts  *objTypes
}

// compileFast compiles a checked expression, or says errUnsupported.
func compileFast(ast *cel.Ast, ts *objTypes) (*fastProg, error) {
	c := &fastCompiler{ast: ast.NativeRep(), ts: ts}
	n, err := c.expr(c.ast.Expr(), nil)
	if err != nil {
		return nil, err
	}
	if n.k == kOptStr || n.k == kDuration {
		return nil, errUnsupported
	}
	if n.d == nil {
		n.d = c.dyn(n)
	}
	return &fastProg{n: n}, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUnsupported}, args...)...)
}

func (c *fastCompiler) expr(e celast.Expr, sc *scope) (node, error) {
	switch e.Kind() {
	case celast.LiteralKind:
		return c.literal(e)
	case celast.IdentKind:
		return c.ident(e.AsIdent(), sc)
	case celast.SelectKind:
		return c.selectExpr(e.AsSelect(), sc)
	case celast.ListKind:
		return c.list(e, sc)
	case celast.MapKind:
		return c.mapLit(e.AsMap(), sc)
	case celast.CallKind:
		return c.call(e, sc)
	case celast.ComprehensionKind:
		return c.comprehension(e.AsComprehension(), sc)
	}
	return node{}, unsupported("expression kind %v", e.Kind())
}

func (c *fastCompiler) literal(e celast.Expr) (node, error) {
	switch v := e.AsLiteral().(type) {
	case types.Bool:
		b := bool(v)
		return node{k: kBool, b: func(*fenv) (bool, error) { return b, nil }}, nil
	case types.Int:
		i := int64(v)
		return node{k: kInt, i: func(*fenv) (int64, error) { return i, nil }}, nil
	case types.String:
		s := string(v)
		return node{k: kString, s: func(*fenv) (string, error) { return s, nil }, lit: s, isLit: true}, nil
	}
	return node{}, unsupported("literal %T", e.AsLiteral())
}

// ident is a comprehension variable or a fact.
func (c *fastCompiler) ident(name string, sc *scope) (node, error) {
	if v := sc.lookup(name); v != nil {
		slot := v.slot
		switch v.k {
		case kObj:
			return node{k: kObj, typ: v.typ, o: func(e *fenv) (unsafe.Pointer, error) { return e.ptrs[slot], nil }}, nil
		case kString:
			return node{k: kString, s: func(e *fenv) (string, error) { return e.strs[slot], nil }}, nil
		}
		return node{}, unsupported("variable %s", name)
	}
	objList := func(get func(*assess.Facts) objSlice, t reflect.Type) node {
		return node{k: kObjList, typ: c.ts.byGo[t], ol: func(e *fenv) (objSlice, error) { return get(e.f), nil }}
	}
	switch name {
	case varTarget:
		return node{k: kString, s: func(e *fenv) (string, error) { return e.f.Target, nil }}, nil
	case varAssetID:
		return node{k: kString, s: func(e *fenv) (string, error) { return e.f.AssetID, nil }}, nil
	case varRole:
		return node{k: kString, s: func(e *fenv) (string, error) { return e.role, nil }}, nil
	case varManaged:
		return node{k: kBool, b: func(e *fenv) (bool, error) { return e.f.Managed, nil }}, nil
	case varHostnames:
		return node{k: kStrList, sl: func(e *fenv) ([]string, error) { return e.f.Hostnames, nil }}, nil
	case varErrors:
		return node{k: kStrList, sl: func(e *fenv) ([]string, error) { return e.f.Errors, nil }}, nil
	case varCollected:
		return node{k: kTime, t: func(e *fenv) (time.Time, error) { return timestamp(e.f.Collected).Time, nil }}, nil
	case varNow:
		return node{k: kTime, t: func(e *fenv) (time.Time, error) { return e.now, nil }}, nil
	case varPorts:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.Ports) }, reflect.TypeFor[assess.Port]()), nil
	case varTLS:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.TLS) }, reflect.TypeFor[assess.TLS]()), nil
	case varSSH:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.SSH) }, reflect.TypeFor[assess.SSH]()), nil
	case varHTTP:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.HTTP) }, reflect.TypeFor[assess.HTTP]()), nil
	case varFTP:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.FTP) }, reflect.TypeFor[assess.FTP]()), nil
	case varSNMP:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.SNMP) }, reflect.TypeFor[assess.SNMP]()), nil
	case varSMB:
		return objList(func(f *assess.Facts) objSlice { return sliceOf(f.SMB) }, reflect.TypeFor[assess.SMB]()), nil
	}
	return node{}, unsupported("identifier %s", name)
}

func sliceOf[T any](s []T) objSlice {
	return objSlice{p: unsafe.Pointer(unsafe.SliceData(s)), n: len(s)}
}

// selectExpr reads a field of a facts struct.
func (c *fastCompiler) selectExpr(s celast.SelectExpr, sc *scope) (node, error) {
	if s.IsTestOnly() {
		return node{}, unsupported("has()")
	}
	op, err := c.expr(s.Operand(), sc)
	if err != nil {
		return node{}, err
	}
	if op.k != kObj {
		return node{}, unsupported("field %s of a non-struct", s.FieldName())
	}
	t := op.typ
	i, ok := t.index[s.FieldName()]
	if !ok {
		return node{}, unsupported("field %s of %s", s.FieldName(), t.name)
	}
	f := t.goType.Field(i)
	off := f.Offset
	get := op.o
	switch {
	case f.Type == timeType:
		return node{k: kTime, t: func(e *fenv) (time.Time, error) {
			p, err := get(e)
			if err != nil {
				return time.Time{}, err
			}
			return timestamp(*(*time.Time)(unsafe.Add(p, off))).Time, nil
		}}, nil
	case f.Type.Kind() == reflect.String:
		return node{k: kString, s: func(e *fenv) (string, error) {
			p, err := get(e)
			if err != nil {
				return "", err
			}
			return *(*string)(unsafe.Add(p, off)), nil
		}}, nil
	case f.Type.Kind() == reflect.Int:
		return node{k: kInt, i: func(e *fenv) (int64, error) {
			p, err := get(e)
			if err != nil {
				return 0, err
			}
			return int64(*(*int)(unsafe.Add(p, off))), nil
		}}, nil
	case f.Type.Kind() == reflect.Bool:
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			p, err := get(e)
			if err != nil {
				return false, err
			}
			return *(*bool)(unsafe.Add(p, off)), nil
		}}, nil
	case f.Type == reflect.TypeFor[[]string]():
		return node{k: kStrList, sl: func(e *fenv) ([]string, error) {
			p, err := get(e)
			if err != nil {
				return nil, err
			}
			return *(*[]string)(unsafe.Add(p, off)), nil
		}}, nil
	case f.Type == reflect.TypeFor[map[string]string]():
		return node{k: kStrMap, m: func(e *fenv) (map[string]string, error) {
			p, err := get(e)
			if err != nil {
				return nil, err
			}
			return *(*map[string]string)(unsafe.Add(p, off)), nil
		}}, nil
	case f.Type.Kind() == reflect.Struct && c.ts.byGo[f.Type] != nil:
		return node{k: kObj, typ: c.ts.byGo[f.Type], o: func(e *fenv) (unsafe.Pointer, error) {
			p, err := get(e)
			if err != nil {
				return nil, err
			}
			return unsafe.Add(p, off), nil
		}}, nil
	case f.Type.Kind() == reflect.Slice && c.ts.byGo[f.Type.Elem()] != nil:
		return node{k: kObjList, typ: c.ts.byGo[f.Type.Elem()], ol: func(e *fenv) (objSlice, error) {
			p, err := get(e)
			if err != nil {
				return objSlice{}, err
			}
			h := (*struct {
				p      unsafe.Pointer
				n, cap int
			})(unsafe.Add(p, off))
			return objSlice{p: h.p, n: h.n}, nil
		}}, nil
	}
	return node{}, unsupported("field %s.%s of type %s", t.name, s.FieldName(), f.Type)
}

// list is a list literal: constants, or (in evidence) anything.
func (c *fastCompiler) list(e celast.Expr, sc *scope) (node, error) {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return node{}, unsupported("optional list elements")
	}
	var strs []string
	var ints []int64
	var elems []node
	allStr, allInt := true, true
	for _, el := range l.Elements() {
		n, err := c.expr(el, sc)
		if err != nil {
			return node{}, err
		}
		elems = append(elems, n)
		if el.Kind() == celast.LiteralKind {
			switch v := el.AsLiteral().(type) {
			case types.String:
				strs = append(strs, string(v))
				allInt = false
				continue
			case types.Int:
				ints = append(ints, int64(v))
				allStr = false
				continue
			}
		}
		allStr, allInt = false, false
	}
	switch {
	case len(elems) > 0 && allStr:
		return node{k: kStrList, sl: func(*fenv) ([]string, error) { return strs, nil }}, nil
	case len(elems) > 0 && allInt:
		return node{k: kIntList, il: func(*fenv) ([]int64, error) { return ints, nil }}, nil
	}
	ds := make([]func(*fenv) (any, error), len(elems))
	for i, n := range elems {
		ds[i] = c.dyn(n)
	}
	return node{k: kDyn, d: func(e *fenv) (any, error) {
		out := make([]any, len(ds))
		for i, d := range ds {
			v, err := d(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}}, nil
}

// mapLit is a map literal with string keys, for evidence.
func (c *fastCompiler) mapLit(m celast.MapExpr, sc *scope) (node, error) {
	keys := make([]string, 0, m.Size())
	vals := make([]func(*fenv) (any, error), 0, m.Size())
	for _, en := range m.Entries() {
		me := en.AsMapEntry()
		if me.IsOptional() || me.Key().Kind() != celast.LiteralKind {
			return node{}, unsupported("map entry")
		}
		k, ok := me.Key().AsLiteral().(types.String)
		if !ok || slices.Contains(keys, string(k)) {
			return node{}, unsupported("map key")
		}
		v, err := c.expr(me.Value(), sc)
		if err != nil {
			return node{}, err
		}
		if v.k == kOptStr || v.k == kDuration {
			return node{}, unsupported("map value")
		}
		keys = append(keys, string(k))
		vals = append(vals, c.dyn(v))
	}
	return node{k: kDyn, d: func(e *fenv) (any, error) {
		out := make(map[string]any, len(keys))
		for i, k := range keys {
			v, err := vals[i](e)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}}, nil
}

// dyn is n as plain Go, as native gives a CEL value.
func (c *fastCompiler) dyn(n node) func(*fenv) (any, error) {
	switch n.k {
	case kBool:
		return func(e *fenv) (any, error) { return wrapErr(n.b(e)) }
	case kInt:
		return func(e *fenv) (any, error) { return wrapErr(n.i(e)) }
	case kString:
		return func(e *fenv) (any, error) { return wrapErr(n.s(e)) }
	case kTime:
		return func(e *fenv) (any, error) {
			t, err := n.t(e)
			if err != nil {
				return nil, err
			}
			return t.UTC().Format(time.RFC3339Nano), nil
		}
	case kObj:
		gt := n.typ.goType
		return func(e *fenv) (any, error) {
			p, err := n.o(e)
			if err != nil {
				return nil, err
			}
			return plain(reflect.NewAt(gt, p).Elem()), nil
		}
	case kObjList:
		gt := n.typ.goType
		return func(e *fenv) (any, error) {
			l, err := n.ol(e)
			if err != nil {
				return nil, err
			}
			out := make([]any, l.n)
			for i := range out {
				out[i] = plain(reflect.NewAt(gt, unsafe.Add(l.p, uintptr(i)*gt.Size())).Elem())
			}
			return out, nil
		}
	case kStrList:
		return func(e *fenv) (any, error) {
			l, err := n.sl(e)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(l))
			for i, s := range l {
				out[i] = s
			}
			return out, nil
		}
	case kIntList:
		return func(e *fenv) (any, error) {
			l, err := n.il(e)
			if err != nil {
				return nil, err
			}
			out := make([]any, len(l))
			for i, v := range l {
				out[i] = v
			}
			return out, nil
		}
	case kStrMap:
		return func(e *fenv) (any, error) {
			m, err := n.m(e)
			if err != nil {
				return nil, err
			}
			out := make(map[string]any, len(m))
			for k, v := range m {
				out[k] = v
			}
			return out, nil
		}
	case kDyn:
		return n.d
	}
	return func(*fenv) (any, error) { return nil, errFast }
}

func wrapErr[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (c *fastCompiler) call(e celast.Expr, sc *scope) (node, error) {
	call := e.AsCall()
	var args []celast.Expr
	if call.IsMemberFunction() {
		args = append(args, call.Target())
	}
	args = append(args, call.Args()...)
	ns := make([]node, len(args))
	for i, a := range args {
		n, err := c.expr(a, sc)
		if err != nil {
			return node{}, err
		}
		ns[i] = n
	}
	fn := call.FunctionName()
	kinds := func(ks ...kind) bool {
		if len(ks) != len(ns) {
			return false
		}
		for i, k := range ks {
			if ns[i].k != k {
				return false
			}
		}
		return true
	}
	switch fn {
	case "_&&_", "_||_":
		for _, n := range ns {
			if n.k != kBool {
				return node{}, unsupported("%s of non-bool", fn)
			}
		}
		return logical(fn == "_&&_", ns), nil
	case "!_":
		if kinds(kBool) {
			a := ns[0].b
			return node{k: kBool, b: func(e *fenv) (bool, error) {
				v, err := a(e)
				return !v, err
			}}, nil
		}
	case "_?_:_":
		if len(ns) == 3 && ns[0].k == kBool && ns[1].k == ns[2].k {
			return conditional(ns[0].b, ns[1], ns[2], c)
		}
	case "_==_", "_!=_":
		if len(ns) == 2 && ns[0].k == ns[1].k {
			eq, ok := equality(ns[0], ns[1])
			if ok {
				if fn == "_!=_" {
					return node{k: kBool, b: func(e *fenv) (bool, error) {
						v, err := eq(e)
						return !v, err
					}}, nil
				}
				return node{k: kBool, b: eq}, nil
			}
		}
	case "_<_", "_<=_", "_>_", "_>=_":
		if len(ns) == 2 && ns[0].k == ns[1].k {
			if cmp, ok := compare(ns[0], ns[1]); ok {
				test := map[string]func(int) bool{
					"_<_": func(c int) bool { return c < 0 }, "_<=_": func(c int) bool { return c <= 0 },
					"_>_": func(c int) bool { return c > 0 }, "_>=_": func(c int) bool { return c >= 0 },
				}[fn]
				return node{k: kBool, b: func(e *fenv) (bool, error) {
					c, err := cmp(e)
					return err == nil && test(c), err
				}}, nil
			}
		}
	case "@in":
		return inList(ns)
	case "_+_":
		return plus(ns, c)
	case "_-_":
		if kinds(kInt, kInt) {
			a, b := ns[0].i, ns[1].i
			return node{k: kInt, i: func(e *fenv) (int64, error) {
				x, err := a(e)
				if err != nil {
					return 0, err
				}
				y, err := b(e)
				if err != nil {
					return 0, err
				}
				r := x - y
				if (y > 0 && r > x) || (y < 0 && r < x) {
					return 0, errFast
				}
				return r, nil
			}}, nil
		}
	case "size":
		if len(ns) == 1 {
			return size(ns[0])
		}
	case "contains", "startsWith", "endsWith":
		if kinds(kString, kString) {
			f := map[string]func(string, string) bool{
				"contains": strings.Contains, "startsWith": strings.HasPrefix, "endsWith": strings.HasSuffix,
			}[fn]
			return strBool(ns[0].s, ns[1].s, f), nil
		}
	case "matches":
		if kinds(kString, kString) && ns[1].isLit {
			re, err := regexp.Compile(ns[1].lit)
			if err != nil {
				return node{}, unsupported("pattern %q", ns[1].lit)
			}
			a := ns[0].s
			return node{k: kBool, b: func(e *fenv) (bool, error) {
				s, err := a(e)
				return err == nil && re.MatchString(s), err
			}}, nil
		}
	case "lowerAscii", "trim":
		if kinds(kString) {
			a := ns[0].s
			f := lowerASCII
			if fn == "trim" {
				f = strings.TrimSpace
			}
			return node{k: kString, s: func(e *fenv) (string, error) {
				s, err := a(e)
				if err != nil {
					return "", err
				}
				return f(s), nil
			}}, nil
		}
	case "indexOf":
		if kinds(kString, kString) {
			a, b := ns[0].s, ns[1].s
			return node{k: kInt, i: func(e *fenv) (int64, error) {
				x, err := a(e)
				if err != nil {
					return 0, err
				}
				y, err := b(e)
				if err != nil {
					return 0, err
				}
				i := strings.Index(x, y)
				if i < 0 {
					return -1, nil
				}
				return int64(utf8.RuneCountInString(x[:i])), nil
			}}, nil
		}
	case "substring":
		if kinds(kString, kInt) || kinds(kString, kInt, kInt) {
			a, from := ns[0].s, ns[1].i
			var to func(*fenv) (int64, error)
			if len(ns) == 3 {
				to = ns[2].i
			}
			return node{k: kString, s: func(e *fenv) (string, error) {
				x, err := a(e)
				if err != nil {
					return "", err
				}
				i, err := from(e)
				if err != nil {
					return "", err
				}
				n := int64(utf8.RuneCountInString(x))
				j := n
				if to != nil {
					if j, err = to(e); err != nil {
						return "", err
					}
				}
				if i < 0 || i > n || j < i || j > n {
					return "", errFast
				}
				if n == int64(len(x)) {
					return x[i:j], nil
				}
				return string([]rune(x)[i:j]), nil
			}}, nil
		}
	case "int":
		if kinds(kTime) {
			a := ns[0].t
			return node{k: kInt, i: func(e *fenv) (int64, error) {
				t, err := a(e)
				return t.Unix(), err
			}}, nil
		}
		if kinds(kInt) {
			return ns[0], nil
		}
	case "string":
		if kinds(kInt) {
			a := ns[0].i
			return node{k: kString, s: func(e *fenv) (string, error) {
				i, err := a(e)
				return strconv.FormatInt(i, 10), err
			}}, nil
		}
		if kinds(kString) {
			return ns[0], nil
		}
	case "duration":
		if kinds(kString) && ns[0].isLit {
			d, err := time.ParseDuration(ns[0].lit)
			if err != nil || strings.ContainsAny(ns[0].lit, "µ") {
				return node{}, unsupported("duration %q", ns[0].lit)
			}
			return node{k: kDuration, dur: d}, nil
		}
	case "_[_]":
		if kinds(kStrMap, kString) {
			m, k := ns[0].m, ns[1].s
			return node{k: kString, s: func(e *fenv) (string, error) {
				mv, err := m(e)
				if err != nil {
					return "", err
				}
				kv, err := k(e)
				if err != nil {
					return "", err
				}
				v, ok := mv[kv]
				if !ok {
					return "", errFast
				}
				return v, nil
			}}, nil
		}
	case "_[?_]":
		if kinds(kStrMap, kString) {
			m, k := ns[0].m, ns[1].s
			return node{k: kOptStr, opt: func(e *fenv) (string, bool, error) {
				mv, err := m(e)
				if err != nil {
					return "", false, err
				}
				kv, err := k(e)
				if err != nil {
					return "", false, err
				}
				v, ok := mv[kv]
				return v, ok, nil
			}}, nil
		}
	case "orValue":
		if kinds(kOptStr, kString) {
			o, d := ns[0].opt, ns[1].s
			return node{k: kString, s: func(e *fenv) (string, error) {
				v, ok, err := o(e)
				if err != nil || ok {
					return v, err
				}
				return d(e)
			}}, nil
		}
	}
	return node{}, unsupported("function %s", fn)
}

// logical is && (and) or || over bools with CEL's error absorption: a
// false (true) operand decides whatever the others, errors included.
func logical(and bool, ns []node) node {
	if len(ns) == 2 {
		a, b := ns[0].b, ns[1].b
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			x, errA := a(e)
			if errA == nil && x != and {
				return x, nil
			}
			y, errB := b(e)
			switch {
			case errB == nil && y != and:
				return y, nil
			case errA != nil:
				return false, errA
			case errB != nil:
				return false, errB
			}
			return and, nil
		}}
	}
	fs := make([]func(*fenv) (bool, error), len(ns))
	for i, n := range ns {
		fs[i] = n.b
	}
	return node{k: kBool, b: func(e *fenv) (bool, error) {
		var firstErr error
		for _, f := range fs {
			v, err := f(e)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if v != and {
				return v, nil
			}
		}
		if firstErr != nil {
			return false, firstErr
		}
		return and, nil
	}}
}

func conditional(cond func(*fenv) (bool, error), a, b node, c *fastCompiler) (node, error) {
	pick := func(e *fenv) (bool, error) { return cond(e) }
	switch a.k {
	case kBool:
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			v, err := pick(e)
			if err != nil {
				return false, err
			}
			if v {
				return a.b(e)
			}
			return b.b(e)
		}}, nil
	case kString:
		return node{k: kString, s: func(e *fenv) (string, error) {
			v, err := pick(e)
			if err != nil {
				return "", err
			}
			if v {
				return a.s(e)
			}
			return b.s(e)
		}}, nil
	case kInt:
		return node{k: kInt, i: func(e *fenv) (int64, error) {
			v, err := pick(e)
			if err != nil {
				return 0, err
			}
			if v {
				return a.i(e)
			}
			return b.i(e)
		}}, nil
	case kDyn:
		return node{k: kDyn, d: func(e *fenv) (any, error) {
			v, err := pick(e)
			if err != nil {
				return nil, err
			}
			if v {
				return a.d(e)
			}
			return b.d(e)
		}}, nil
	}
	return node{}, unsupported("conditional of kind %v", a.k)
}

// equality of two values of the same kind.
func equality(a, b node) (func(*fenv) (bool, error), bool) {
	switch a.k {
	case kBool:
		return func(e *fenv) (bool, error) { return eq2(a.b, b.b, e) }, true
	case kInt:
		return func(e *fenv) (bool, error) { return eq2(a.i, b.i, e) }, true
	case kString:
		return func(e *fenv) (bool, error) { return eq2(a.s, b.s, e) }, true
	case kTime:
		return func(e *fenv) (bool, error) {
			x, err := a.t(e)
			if err != nil {
				return false, err
			}
			y, err := b.t(e)
			return err == nil && x.Equal(y), err
		}, true
	case kStrList:
		return func(e *fenv) (bool, error) {
			x, err := a.sl(e)
			if err != nil {
				return false, err
			}
			y, err := b.sl(e)
			return err == nil && slices.Equal(x, y), err
		}, true
	}
	return nil, false
}

func eq2[T comparable](a, b func(*fenv) (T, error), e *fenv) (bool, error) {
	x, err := a(e)
	if err != nil {
		return false, err
	}
	y, err := b(e)
	return err == nil && x == y, err
}

func compare(a, b node) (func(*fenv) (int, error), bool) {
	switch a.k {
	case kInt:
		return func(e *fenv) (int, error) {
			x, err := a.i(e)
			if err != nil {
				return 0, err
			}
			y, err := b.i(e)
			if x < y {
				return -1, err
			}
			if x > y {
				return 1, err
			}
			return 0, err
		}, true
	case kString:
		return func(e *fenv) (int, error) {
			x, err := a.s(e)
			if err != nil {
				return 0, err
			}
			y, err := b.s(e)
			return strings.Compare(x, y), err
		}, true
	case kTime:
		return func(e *fenv) (int, error) {
			x, err := a.t(e)
			if err != nil {
				return 0, err
			}
			y, err := b.t(e)
			return x.Compare(y), err
		}, true
	}
	return nil, false
}

func inList(ns []node) (node, error) {
	if len(ns) != 2 {
		return node{}, unsupported("in")
	}
	x, l := ns[0], ns[1]
	switch {
	case x.k == kString && l.k == kStrList:
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			v, err := x.s(e)
			if err != nil {
				return false, err
			}
			list, err := l.sl(e)
			return err == nil && slices.Contains(list, v), err
		}}, nil
	case x.k == kInt && l.k == kIntList:
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			v, err := x.i(e)
			if err != nil {
				return false, err
			}
			list, err := l.il(e)
			return err == nil && slices.Contains(list, v), err
		}}, nil
	case x.k == kString && l.k == kStrMap:
		return node{k: kBool, b: func(e *fenv) (bool, error) {
			v, err := x.s(e)
			if err != nil {
				return false, err
			}
			m, err := l.m(e)
			if err != nil {
				return false, err
			}
			_, ok := m[v]
			return ok, nil
		}}, nil
	}
	return node{}, unsupported("in over kind %v", l.k)
}

func plus(ns []node, c *fastCompiler) (node, error) {
	if len(ns) != 2 {
		return node{}, unsupported("+")
	}
	a, b := ns[0], ns[1]
	switch {
	case a.k == kString && b.k == kString:
		return node{k: kString, s: func(e *fenv) (string, error) {
			x, err := a.s(e)
			if err != nil {
				return "", err
			}
			y, err := b.s(e)
			return x + y, err
		}}, nil
	case a.k == kInt && b.k == kInt:
		return node{k: kInt, i: func(e *fenv) (int64, error) {
			x, err := a.i(e)
			if err != nil {
				return 0, err
			}
			y, err := b.i(e)
			if err != nil {
				return 0, err
			}
			r := x + y
			if (y > 0 && r < x) || (y < 0 && r > x) {
				return 0, errFast
			}
			return r, nil
		}}, nil
	case a.k == kTime && b.k == kDuration:
		d := b.dur
		return node{k: kTime, t: func(e *fenv) (time.Time, error) {
			t, err := a.t(e)
			if err != nil {
				return time.Time{}, err
			}
			r := t.Add(d)
			if y := r.Year(); y < 1 || y > 9999 {
				return time.Time{}, errFast
			}
			return r, nil
		}}, nil
	case a.k == kDyn && b.k == kDyn:
		// Concatenation of evidence lists.
		return node{k: kDyn, d: func(e *fenv) (any, error) {
			x, err := a.d(e)
			if err != nil {
				return nil, err
			}
			y, err := b.d(e)
			if err != nil {
				return nil, err
			}
			xl, ok1 := x.([]any)
			yl, ok2 := y.([]any)
			if !ok1 || !ok2 {
				return nil, errFast
			}
			return append(slices.Clip(xl), yl...), nil
		}}, nil
	}
	return node{}, unsupported("+ of kinds %v, %v", a.k, b.k)
}

func size(n node) (node, error) {
	var f func(*fenv) (int64, error)
	switch n.k {
	case kString:
		f = func(e *fenv) (int64, error) {
			s, err := n.s(e)
			return int64(utf8.RuneCountInString(s)), err
		}
	case kStrList:
		f = func(e *fenv) (int64, error) {
			l, err := n.sl(e)
			return int64(len(l)), err
		}
	case kIntList:
		f = func(e *fenv) (int64, error) {
			l, err := n.il(e)
			return int64(len(l)), err
		}
	case kObjList:
		f = func(e *fenv) (int64, error) {
			l, err := n.ol(e)
			return int64(l.n), err
		}
	case kStrMap:
		f = func(e *fenv) (int64, error) {
			m, err := n.m(e)
			return int64(len(m)), err
		}
	case kDyn:
		f = func(e *fenv) (int64, error) {
			v, err := n.d(e)
			if err != nil {
				return 0, err
			}
			switch v := v.(type) {
			case []any:
				return int64(len(v)), nil
			case map[string]any:
				return int64(len(v)), nil
			}
			return 0, errFast
		}
	default:
		return node{}, unsupported("size of kind %v", n.k)
	}
	return node{k: kInt, i: f}, nil
}

func strBool(a, b func(*fenv) (string, error), f func(string, string) bool) node {
	return node{k: kBool, b: func(e *fenv) (bool, error) {
		x, err := a(e)
		if err != nil {
			return false, err
		}
		y, err := b(e)
		return err == nil && f(x, y), err
	}}
}

// lowerASCII is ext.Strings' lowerAscii: A-Z change, and the string goes
// through []rune (invalid UTF-8 becomes U+FFFD) as it does there.
func lowerASCII(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return s
	}
	rs := []rune(s)
	for i, r := range rs {
		if 'A' <= r && r <= 'Z' {
			rs[i] = r + 'a' - 'A'
		}
	}
	return string(rs)
}

// comprehension handles the macros all, exists, map (with and without a
// filter) and filter, as the parser expands them.
func (c *fastCompiler) comprehension(comp celast.ComprehensionExpr, sc *scope) (node, error) {
	if comp.HasIterVar2() {
		return node{}, unsupported("two-variable comprehension")
	}
	accu := comp.AccuVar()
	if r := comp.Result(); r.Kind() != celast.IdentKind || r.AsIdent() != accu {
		return node{}, unsupported("comprehension result")
	}
	rng, err := c.expr(comp.IterRange(), sc)
	if err != nil {
		return node{}, err
	}
	if sc.depth() >= maxSlots {
		return node{}, unsupported("comprehensions nested too deep")
	}
	v := &scope{parent: sc, name: comp.IterVar(), slot: sc.depth()}
	// it runs body for each element until body says stop; no closure is
	// made per evaluation.
	var it iterator
	switch rng.k {
	case kObjList:
		v.k, v.typ = kObj, rng.typ
		it = objIter{slot: v.slot, stride: rng.typ.goType.Size(), l: rng.ol}
	case kStrList:
		v.k = kString
		it = strIter{slot: v.slot, l: rng.sl}
	case kStrMap:
		v.k = kString
		it = keyIter{slot: v.slot, m: rng.m}
	default:
		return node{}, unsupported("comprehension over kind %v", rng.k)
	}

	init, step := comp.AccuInit(), comp.LoopStep()
	isAccu := func(x celast.Expr) bool { return x.Kind() == celast.IdentKind && x.AsIdent() == accu }
	// all / exists: init true/false, step accu &&/|| P.
	if init.Kind() == celast.LiteralKind && step.Kind() == celast.CallKind {
		b, isBool := init.AsLiteral().(types.Bool)
		call := step.AsCall()
		want := "_&&_"
		if !bool(b) {
			want = "_||_"
		}
		if isBool && call.FunctionName() == want && len(call.Args()) == 2 && isAccu(call.Args()[0]) {
			p, err := c.expr(call.Args()[1], v)
			if err != nil {
				return node{}, err
			}
			if p.k != kBool {
				return node{}, unsupported("predicate kind")
			}
			all := bool(b)
			pred := p.b
			return node{k: kBool, b: func(e *fenv) (bool, error) {
				found, firstErr, err := it.find(e, pred, !all)
				if err != nil {
					return false, err
				}
				if found {
					return !all, nil
				}
				if firstErr != nil {
					return false, firstErr
				}
				return all, nil
			}}, nil
		}
	}
	// map / filter: init [], step accu + [E] or C ? accu + [E] : accu.
	if init.Kind() == celast.ListKind && init.AsList().Size() == 0 {
		appendOf := func(x celast.Expr) (celast.Expr, bool) {
			if x.Kind() != celast.CallKind {
				return nil, false
			}
			call := x.AsCall()
			if call.FunctionName() != "_+_" || len(call.Args()) != 2 || !isAccu(call.Args()[0]) {
				return nil, false
			}
			l := call.Args()[1]
			if l.Kind() != celast.ListKind || l.AsList().Size() != 1 || len(l.AsList().OptionalIndices()) > 0 {
				return nil, false
			}
			return l.AsList().Elements()[0], true
		}
		var cond, elem celast.Expr
		if el, ok := appendOf(step); ok {
			elem = el
		} else if step.Kind() == celast.CallKind && step.AsCall().FunctionName() == "_?_:_" {
			args := step.AsCall().Args()
			if el, ok := appendOf(args[1]); ok && isAccu(args[2]) {
				cond, elem = args[0], el
			}
		}
		if elem != nil {
			en, err := c.expr(elem, v)
			if err != nil {
				return node{}, err
			}
			if en.k == kOptStr || en.k == kDuration {
				return node{}, unsupported("element kind")
			}
			ed := c.dyn(en)
			var cb func(*fenv) (bool, error)
			if cond != nil {
				cn, err := c.expr(cond, v)
				if err != nil {
					return node{}, err
				}
				if cn.k != kBool {
					return node{}, unsupported("filter kind")
				}
				cb = cn.b
			}
			return node{k: kDyn, d: func(e *fenv) (any, error) {
				return it.collect(e, cb, ed)
			}}, nil
		}
	}
	return node{}, unsupported("comprehension shape")
}

// iterator binds a comprehension variable to each element in turn.
type iterator interface {
	// find runs pred on each element until it gives want: found says
	// whether one did; firstErr is the first error pred gave (the caller
	// decides whether it matters); err is an error of the range itself.
	find(e *fenv, pred func(*fenv) (bool, error), want bool) (found bool, firstErr, err error)
	// collect gives elem of each element for which cond (nil: always) holds.
	collect(e *fenv, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error)
}

type objIter struct {
	slot   int
	stride uintptr
	l      func(*fenv) (objSlice, error)
}

func (it objIter) find(e *fenv, pred func(*fenv) (bool, error), want bool) (bool, error, error) {
	l, err := it.l(e)
	if err != nil {
		return false, nil, err
	}
	var firstErr error
	for i := range l.n {
		e.ptrs[it.slot] = unsafe.Add(l.p, uintptr(i)*it.stride)
		ok, err := pred(e)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok == want {
			return true, nil, nil
		}
	}
	return false, firstErr, nil
}

func (it objIter) collect(e *fenv, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error) {
	l, err := it.l(e)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for i := range l.n {
		e.ptrs[it.slot] = unsafe.Add(l.p, uintptr(i)*it.stride)
		if out, err = collectOne(e, out, cond, elem); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type strIter struct {
	slot int
	l    func(*fenv) ([]string, error)
}

func (it strIter) find(e *fenv, pred func(*fenv) (bool, error), want bool) (bool, error, error) {
	l, err := it.l(e)
	if err != nil {
		return false, nil, err
	}
	return findStrings(e, it.slot, l, pred, want)
}

func (it strIter) collect(e *fenv, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error) {
	l, err := it.l(e)
	if err != nil {
		return nil, err
	}
	return collectStrings(e, it.slot, l, cond, elem)
}

// keyIter iterates over a map's keys, sorted (CEL leaves the order open).
type keyIter struct {
	slot int
	m    func(*fenv) (map[string]string, error)
}

func (it keyIter) keys(e *fenv) ([]string, error) {
	m, err := it.m(e)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

func (it keyIter) find(e *fenv, pred func(*fenv) (bool, error), want bool) (bool, error, error) {
	keys, err := it.keys(e)
	if err != nil {
		return false, nil, err
	}
	return findStrings(e, it.slot, keys, pred, want)
}

func (it keyIter) collect(e *fenv, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error) {
	keys, err := it.keys(e)
	if err != nil {
		return nil, err
	}
	return collectStrings(e, it.slot, keys, cond, elem)
}

func findStrings(e *fenv, slot int, l []string, pred func(*fenv) (bool, error), want bool) (bool, error, error) {
	var firstErr error
	for _, s := range l {
		e.strs[slot] = s
		ok, err := pred(e)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok == want {
			return true, nil, nil
		}
	}
	return false, firstErr, nil
}

func collectStrings(e *fenv, slot int, l []string, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error) {
	out := []any{}
	var err error
	for _, s := range l {
		e.strs[slot] = s
		if out, err = collectOne(e, out, cond, elem); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func collectOne(e *fenv, out []any, cond func(*fenv) (bool, error), elem func(*fenv) (any, error)) ([]any, error) {
	if cond != nil {
		ok, err := cond(e)
		if err != nil || !ok {
			return out, err
		}
	}
	x, err := elem(e)
	if err != nil {
		return nil, err
	}
	return append(out, x), nil
}

// evalBool runs a compiled predicate.
func (p *fastProg) evalBool(e *fenv) (bool, error) {
	if p.n.k != kBool {
		return false, errFast
	}
	return p.n.b(e)
}

// evalAny runs a compiled expression to plain Go.
func (p *fastProg) evalAny(e *fenv) (any, error) {
	return p.n.d(e)
}
