package policy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/reckon-dev/reckon/assess"
)

// BuildCheckPrefix starts the id of a build check: BUILD-web-server. A
// host with no role gets the id BuildCheckPrefix without a role.
const BuildCheckPrefix = "BUILD"

// Evaluate checks one host against the policy: one result per check in file
// order, then, when the policy has builds, one for the host's standard
// build. It normalises f (nil lists become empty), so it must not run on the
// same facts concurrently with another writer.
func (p *Policy) Evaluate(f *assess.Facts, now time.Time) []assess.Result {
	return p.EvaluateContext(context.Background(), f, now)
}

// EvaluateContext is Evaluate that stops a running expression when ctx is
// done; the checks not yet run then read as errors.
func (p *Policy) EvaluateContext(ctx context.Context, f *assess.Facts, now time.Time) []assess.Result {
	f.Normalize()
	a := newActivation(f, now)
	a.fast = envelope.fits(f)
	role := p.role(ctx, a, f)
	a.role = types.String(role)
	a.fe.role = role
	a.fast = a.fast && len(role) <= envelope.short
	out := make([]assess.Result, 0, len(p.checks)+1)
	for _, c := range p.checks {
		out = append(out, p.evalCheck(ctx, c, a, f))
	}
	if len(p.builds) > 0 {
		out = append(out, p.evalBuild(string(a.role.(types.String)), f))
	}
	return out
}

// Role is the host's role: f.Role when the CMDB gave one, else the role of
// the first role rule that matches, else "".
func (p *Policy) Role(f *assess.Facts) string {
	f.Normalize()
	a := newActivation(f, time.Now())
	a.fast = envelope.fits(f)
	return p.role(context.Background(), a, f)
}

func (p *Policy) role(ctx context.Context, a *activation, f *assess.Facts) string {
	if f.Role != "" {
		return f.Role
	}
	for _, r := range p.roles {
		// A rule that fails to run does not match: the host is then
		// judged without that role rather than not at all.
		if ok, err := p.runBool(ctx, r.when, a); err == nil && ok {
			return r.Role
		}
	}
	return ""
}

func (p *Policy) evalCheck(ctx context.Context, c *check, a *activation, f *assess.Facts) assess.Result {
	r := assess.Result{CheckID: c.ID, Title: c.Title, Severity: c.Severity}
	if err := ctx.Err(); err != nil {
		return p.errorResult(r, "applies", err)
	}
	if c.applies != nil {
		ok, err := p.runBool(ctx, c.applies, a)
		if err != nil {
			return p.errorResult(r, "applies", err)
		}
		if !ok {
			r.Status = assess.NotApplicable
			return r
		}
	}
	ok, err := p.runBool(ctx, c.expect, a)
	if err != nil {
		return p.errorResult(r, "expect", err)
	}
	if ok {
		r.Status = assess.Pass
		return r
	}
	r.Status = assess.Fail
	if c.evidence == nil {
		r.Evidence = factsRead(c.expect.vars, f)
		return r
	}
	ev, err := p.runAny(ctx, c.evidence, a)
	if err != nil {
		// The check failed all the same; say why the evidence is missing.
		r.Error = "evidence: " + p.message(err)
		return r
	}
	r.Evidence = ev
	return r
}

func (p *Policy) errorResult(r assess.Result, field string, err error) assess.Result {
	r.Status = assess.Error
	r.Error = field + ": " + p.message(err)
	return r
}

func (p *Policy) message(err error) string {
	if ce, ok := errors.AsType[interpreter.EvalCancelledError](err); ok && ce.Cause == interpreter.CostLimitExceeded {
		return fmt.Sprintf("cost limit %d exceeded", p.opts.CostLimit)
	}
	return err.Error()
}

// runBool runs a bool expression: on the fast path when it may, in cel-go
// otherwise and whenever the fast path meets an error.
func (p *Policy) runBool(ctx context.Context, c *compiled, a *activation) (bool, error) {
	if a.fast && c.fn != nil {
		if ok, err := c.fn.evalBool(&a.fe); err == nil {
			return ok, nil
		}
	}
	v, err := p.run(ctx, c, a)
	if err != nil {
		return false, err
	}
	return v == types.True, nil
}

// runAny runs an evidence expression to plain Go, as runBool does.
func (p *Policy) runAny(ctx context.Context, c *compiled, a *activation) (any, error) {
	if a.fast && c.fn != nil {
		if v, err := c.fn.evalAny(&a.fe); err == nil {
			return v, nil
		}
	}
	v, err := p.run(ctx, c, a)
	if err != nil {
		return nil, err
	}
	return native(v), nil
}

func (p *Policy) run(ctx context.Context, c *compiled, a *activation) (ref.Val, error) {
	prg := c.prg
	if a.fast && c.fast != nil {
		prg = c.fast
	}
	if ctx.Done() == nil {
		v, _, err := prg.Eval(a)
		return v, err
	}
	v, _, err := prg.ContextEval(ctx, a)
	return v, err
}

// evalBuild is the build check: every open port is allowed by its
// proto/port or its service.
func (p *Policy) evalBuild(role string, f *assess.Facts) assess.Result {
	b := p.builds[role]
	if b == nil {
		id := BuildCheckPrefix
		if role != "" {
			id += "-" + role
		}
		return assess.Result{CheckID: id, Title: "The host matches its role's standard build",
			Severity: DefaultBuildSeverity, Status: assess.NotApplicable}
	}
	r := assess.Result{CheckID: BuildCheckPrefix + "-" + role, Title: b.Title, Severity: b.Severity, Status: assess.Pass}
	var extra []string
	for _, pt := range f.Ports {
		key := pt.Protocol + "/" + strconv.Itoa(pt.Port)
		if b.ports[key] || (pt.Service != "" && b.services[pt.Service]) {
			continue
		}
		if pt.Service != "" {
			key += " (" + pt.Service + ")"
		}
		extra = append(extra, key)
	}
	if len(extra) > 0 {
		r.Status = assess.Fail
		r.Evidence = extra
	}
	return r
}

// factsRead is the evidence of a failed check that has no evidence
// expression: the facts its expect reads, by variable name.
func factsRead(vars []string, f *assess.Facts) map[string]any {
	out := make(map[string]any, len(vars))
	for _, v := range vars {
		switch v {
		case varTarget:
			out[v] = f.Target
		case varAssetID:
			out[v] = f.AssetID
		case varRole:
			out[v] = f.Role
		case varManaged:
			out[v] = f.Managed
		case varHostnames:
			out[v] = f.Hostnames
		case varCollected:
			out[v] = f.Collected
		case varPorts:
			out[v] = f.Ports
		case varTLS:
			out[v] = f.TLS
		case varSSH:
			out[v] = f.SSH
		case varHTTP:
			out[v] = f.HTTP
		case varFTP:
			out[v] = f.FTP
		case varSNMP:
			out[v] = f.SNMP
		case varSMB:
			out[v] = f.SMB
		case varErrors:
			out[v] = f.Errors
		}
	}
	return out
}

// activation hands the facts to CEL: each variable is converted on first
// use and kept for the host's other expressions, and resolved without a map.
type activation struct {
	// fast: the facts fit the envelope, so programs proven to stay
	// within the cost limit there may run untracked.
	fast bool
	fe   fenv // the fast path's view of the same facts
	f    *assess.Facts

	role, now ref.Val
	vars      [len(varNames)]ref.Val
}

// varNames are the fact variables, in the order of activation.vars.
var varNames = [...]string{varTarget, varAssetID, varManaged, varHostnames, varCollected,
	varPorts, varTLS, varSSH, varHTTP, varFTP, varSNMP, varSMB, varErrors}

func newActivation(f *assess.Facts, now time.Time) *activation {
	return &activation{
		fe:   fenv{f: f, now: now, role: f.Role},
		f:    f,
		role: types.String(f.Role),
		now:  types.Timestamp{Time: now},
	}
}

// timestamp is t in CEL, the zero time as the epoch, as cel-go reads the
// time.Time fields of the facts (cert.not_after ...).
func timestamp(t time.Time) types.Timestamp {
	if t.IsZero() {
		return types.Timestamp{Time: time.Unix(0, 0).UTC()}
	}
	return types.Timestamp{Time: t}
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varRole:
		return a.role, true
	case varNow:
		return a.now, true
	}
	i := slices.Index(varNames[:], name)
	if i < 0 {
		return nil, false
	}
	if a.vars[i] == nil {
		a.vars[i] = a.convert(name)
	}
	return a.vars[i], true
}

func (a *activation) convert(name string) ref.Val {
	ts, f := objs(), a.f
	list := func(v any) ref.Val { return ts.list(reflect.ValueOf(v)) }
	switch name {
	case varTarget:
		return types.String(f.Target)
	case varAssetID:
		return types.String(f.AssetID)
	case varManaged:
		return types.Bool(f.Managed)
	case varHostnames:
		return list(f.Hostnames)
	case varCollected:
		return timestamp(f.Collected)
	case varPorts:
		return list(f.Ports)
	case varTLS:
		return list(f.TLS)
	case varSSH:
		return list(f.SSH)
	case varHTTP:
		return list(f.HTTP)
	case varFTP:
		return list(f.FTP)
	case varSNMP:
		return list(f.SNMP)
	case varSMB:
		return list(f.SMB)
	case varErrors:
		return list(f.Errors)
	}
	return types.NewErr("no such variable %s", name)
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// native converts a CEL value to plain Go that encodes to JSON as a reader
// expects: lists become []any, maps map[string]any, timestamps RFC 3339
// strings, durations Go duration strings, facts structs (assess.Cipher ...)
// stay themselves, optionals their value or nil.
func native(v ref.Val) any {
	switch v := v.(type) {
	case nil, types.Null:
		return nil
	case *object:
		return plain(v.v)
	case types.Bool:
		return bool(v)
	case types.Int:
		return int64(v)
	case types.Uint:
		return uint64(v)
	case types.Double:
		return float64(v)
	case types.String:
		return string(v)
	case types.Bytes:
		return []byte(v)
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano)
	case types.Duration:
		return v.Duration.String()
	case *types.Optional:
		if !v.HasValue() {
			return nil
		}
		return native(v.GetValue())
	case *types.Err:
		return v.Error()
	case traits.Mapper:
		out := map[string]any{}
		for it := v.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			key, ok := k.(types.String)
			if !ok {
				out[fmt.Sprint(native(k))] = native(v.Get(k))
				continue
			}
			out[string(key)] = native(v.Get(k))
		}
		return out
	case traits.Lister:
		n, _ := v.Size().(types.Int)
		out := make([]any, 0, int(n))
		for it := v.Iterator(); it.HasNext() == types.True; {
			out = append(out, native(it.Next()))
		}
		return out
	case ref.Type:
		return v.TypeName()
	}
	return plain(reflect.ValueOf(v.Value()))
}

// plain converts a Go value of the facts (an assess.Cipher a CEL expression
// returned, say) to maps keyed by JSON name, []any and scalars, as native
// does for CEL values.
func plain(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == timeType {
		return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return plain(v.Elem())
	case reflect.Struct:
		out := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = plain(v.Field(i))
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = plain(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = plain(it.Value())
		}
		return out
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Bool:
		return v.Bool()
	case reflect.String:
		return v.String()
	}
	return v.Interface()
}
