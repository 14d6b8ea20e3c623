package policy

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// How the facts reach CEL at run time.
//
// ext.NativeTypes declares the facts structs, so expressions are checked
// against their fields. Its values, though, read a field by building a new
// CEL value on every access: a comprehension over 23 cipher suites in 40
// checks boxes the same strings a thousand times. The provider below keeps
// NativeTypes' declarations and swaps in field getters over objects that
// convert each field once per host, on first access, and hand out the same
// value after that. Values NativeTypes built itself (an assess.Port{...}
// literal in an expression) still read through NativeTypes' getters.

// objType is one facts struct as CEL sees it.
type objType struct {
	ts     *objTypes
	name   string // assess.Cipher
	cel    *types.Type
	goType reflect.Type
	index  map[string]int // JSON name -> field index
	names  []string       // field index -> JSON name ("" if hidden)
}

// object is one facts struct of the host being evaluated.
type object struct {
	t    *objType
	v    reflect.Value // the struct, addressable
	vals []ref.Val     // per field index, filled on first access
}

// objTypes are the facts structs by reflect type and by CEL name; filled
// once by factsProvider.
type objTypes struct {
	byGo   map[reflect.Type]*objType
	byName map[string]*objType
}

func newObjTypes() *objTypes {
	ts := &objTypes{byGo: map[reflect.Type]*objType{}, byName: map[string]*objType{}}
	for _, rt := range factTypes {
		t := &objType{
			ts:     ts,
			name:   "assess." + rt.Name(),
			goType: rt,
			index:  map[string]int{},
			names:  make([]string, rt.NumField()),
		}
		t.cel = types.NewObjectType(t.name)
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			t.index[name] = i
			t.names[i] = name
		}
		ts.byGo[rt] = t
		ts.byName[t.name] = t
	}
	return ts
}

var objs = sync.OnceValue(newObjTypes)

// newObject wraps v, an addressable facts struct.
func (ts *objTypes) newObject(v reflect.Value) *object {
	t := ts.byGo[v.Type()]
	return &object{t: t, v: v, vals: make([]ref.Val, len(t.names))}
}

// list converts a slice of facts structs or strings to a CEL list of
// objects or strings, each element converted once.
func (ts *objTypes) list(v reflect.Value) ref.Val {
	elems := make([]ref.Val, v.Len())
	switch {
	case v.Type().Elem().Kind() == reflect.String:
		for i := range elems {
			elems[i] = types.String(v.Index(i).String())
		}
	case ts.byGo[v.Type().Elem()] != nil:
		for i := range elems {
			elems[i] = ts.newObject(v.Index(i))
		}
	default:
		panic(fmt.Sprintf("policy: no CEL conversion for %s", v.Type()))
	}
	return types.NewRefValList(types.DefaultTypeAdapter, elems)
}

var timeType = reflect.TypeFor[time.Time]()

// field converts field i of o, once.
func (ts *objTypes) field(o *object, i int) ref.Val {
	if v := o.vals[i]; v != nil {
		return v
	}
	f := o.v.Field(i)
	var v ref.Val
	switch {
	case f.Type() == timeType:
		v = timestamp(f.Interface().(time.Time))
	case f.Kind() == reflect.String:
		v = types.String(f.String())
	case f.Kind() == reflect.Int:
		v = types.Int(f.Int())
	case f.Kind() == reflect.Bool:
		v = types.Bool(f.Bool())
	case f.Kind() == reflect.Slice:
		v = ts.list(f)
	case f.Kind() == reflect.Map:
		v = types.NewStringStringMap(types.DefaultTypeAdapter, f.Interface().(map[string]string))
	case f.Kind() == reflect.Struct && ts.byGo[f.Type()] != nil:
		v = ts.newObject(f)
	default:
		panic(fmt.Sprintf("policy: no CEL conversion for %s.%s (%s)", o.t.name, o.t.names[i], f.Type()))
	}
	o.vals[i] = v
	return v
}

// factsProvider is the environment's type provider: NativeTypes' with the
// object getters in front.
type factsProvider struct {
	types.Provider
	ts     *objTypes
	fields map[string]map[string]*types.FieldType
}

// FindStructFieldType implements types.Provider.
func (p *factsProvider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	if fs, ok := p.fields[structType]; ok {
		if ft, ok := fs[fieldName]; ok {
			return ft, true
		}
	}
	return p.Provider.FindStructFieldType(structType, fieldName)
}

// factsValues installs the object getters; it must follow ext.NativeTypes.
func factsValues(ts *objTypes) cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		base := e.CELTypeProvider()
		p := &factsProvider{Provider: base, ts: ts, fields: map[string]map[string]*types.FieldType{}}
		for name, t := range ts.byName {
			fs := map[string]*types.FieldType{}
			for fname, i := range t.index {
				native, ok := base.FindStructFieldType(name, fname)
				if !ok {
					return nil, fmt.Errorf("policy: %s.%s is not declared", name, fname)
				}
				fs[fname] = &types.FieldType{
					Type:        native.Type,
					IsJSONField: native.IsJSONField,
					IsSet: func(obj any) bool {
						if o, ok := obj.(*object); ok {
							return !o.v.Field(i).IsZero()
						}
						return native.IsSet(obj)
					},
					GetFrom: func(obj any) (any, error) {
						if o, ok := obj.(*object); ok {
							return ts.field(o, i), nil
						}
						return native.GetFrom(obj)
					},
				}
			}
			p.fields[name] = fs
		}
		return cel.CustomTypeProvider(p)(e)
	}
}

// ConvertToNative implements ref.Val: the struct or a pointer to it.
func (o *object) ConvertToNative(typeDesc reflect.Type) (any, error) {
	switch typeDesc {
	case o.t.goType:
		return o.v.Interface(), nil
	case reflect.PointerTo(o.t.goType):
		return o.v.Addr().Interface(), nil
	}
	return nil, fmt.Errorf("type conversion error from %s to %v", o.t.name, typeDesc)
}

// ConvertToType implements ref.Val.
func (o *object) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.TypeType:
		return o.t.cel
	}
	if typeVal.TypeName() == o.t.name {
		return o
	}
	return types.NewErr("type conversion error from '%s' to '%s'", o.t.name, typeVal)
}

// Equal implements ref.Val: the same type and equal fields.
func (o *object) Equal(other ref.Val) ref.Val {
	if oo, ok := other.(*object); ok {
		return types.Bool(oo == o || (oo.t == o.t && reflect.DeepEqual(o.v.Interface(), oo.v.Interface())))
	}
	if other.Type().TypeName() == o.t.name {
		if v, err := other.ConvertToNative(o.t.goType); err == nil {
			return types.Bool(reflect.DeepEqual(o.v.Interface(), v))
		}
	}
	return types.False
}

// Type implements ref.Val.
func (o *object) Type() ref.Type { return o.t.cel }

// Value implements ref.Val. It is the object itself, which the field
// getters read; ConvertToNative gives the struct.
func (o *object) Value() any { return o }

// Get implements traits.Indexer, for fields selected on a dyn value.
func (o *object) Get(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.ValOrErr(field, "no such overload")
	}
	i, ok := o.t.index[string(name)]
	if !ok {
		return types.NewErr("no such field '%s'", name)
	}
	return o.t.ts.field(o, i)
}

// IsSet implements traits.FieldTester.
func (o *object) IsSet(field ref.Val) ref.Val {
	name, ok := field.(types.String)
	if !ok {
		return types.ValOrErr(field, "no such overload")
	}
	i, ok := o.t.index[string(name)]
	if !ok {
		return types.NewErr("no such field '%s'", name)
	}
	return types.Bool(!o.v.Field(i).IsZero())
}

var (
	_ traits.Indexer     = (*object)(nil)
	_ traits.FieldTester = (*object)(nil)
)
