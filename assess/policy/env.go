package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/ext"

	"github.com/reckon-dev/reckon/assess"
)

// The CEL variables: one per top-level field of assess.Facts, named by its
// JSON tag, and now.
const (
	varTarget    = "target"
	varAssetID   = "asset_id"
	varRole      = "role"
	varManaged   = "managed"
	varHostnames = "hostnames"
	varCollected = "collected"
	varPorts     = "ports"
	varTLS       = "tls"
	varSSH       = "ssh"
	varHTTP      = "http"
	varFTP       = "ftp"
	varSNMP      = "snmp"
	varSMB       = "smb"
	varErrors    = "errors"
	varNow       = "now"
)

// factTypes are the structs reachable from assess.Facts; CEL sees each as
// assess.<Name> with its JSON field names.
var factTypes = []reflect.Type{
	reflect.TypeFor[assess.Port](),
	reflect.TypeFor[assess.TLS](),
	reflect.TypeFor[assess.Cipher](),
	reflect.TypeFor[assess.Cert](),
	reflect.TypeFor[assess.SSH](),
	reflect.TypeFor[assess.HostKey](),
	reflect.TypeFor[assess.HTTP](),
	reflect.TypeFor[assess.FTP](),
	reflect.TypeFor[assess.SNMP](),
	reflect.TypeFor[assess.SMB](),
}

func objectList(name string) *cel.Type { return cel.ListType(cel.ObjectType("assess." + name)) }

// newEnv builds the CEL environment the policies are checked in. It is built
// once per process (see env) and shared: a cel.Env is safe for concurrent use.
func newEnv() (*cel.Env, error) {
	nativeArgs := []any{ext.ParseStructTag("json")}
	for _, t := range factTypes {
		nativeArgs = append(nativeArgs, t)
	}
	return cel.NewEnv(
		ext.NativeTypes(nativeArgs...),
		cel.Variable(varTarget, cel.StringType),
		cel.Variable(varAssetID, cel.StringType),
		cel.Variable(varRole, cel.StringType),
		cel.Variable(varManaged, cel.BoolType),
		cel.Variable(varHostnames, cel.ListType(cel.StringType)),
		cel.Variable(varCollected, cel.TimestampType),
		cel.Variable(varPorts, objectList("Port")),
		cel.Variable(varTLS, objectList("TLS")),
		cel.Variable(varSSH, objectList("SSH")),
		cel.Variable(varHTTP, objectList("HTTP")),
		cel.Variable(varFTP, objectList("FTP")),
		cel.Variable(varSNMP, objectList("SNMP")),
		cel.Variable(varSMB, objectList("SMB")),
		cel.Variable(varErrors, cel.ListType(cel.StringType)),
		cel.Variable(varNow, cel.TimestampType),
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		ext.Bindings(),
		cel.OptionalTypes(),
		// Timestamps without a zone (timestamp('2026-12-05T00:00:00'))
		// and getHours() and friends read as UTC, as the facts are.
		cel.DefaultUTCTimeZone(true),
		// Last: no option may register types after it.
		factsValues(objs()),
	)
}

var env = sync.OnceValues(newEnv)

// compiled is one expression ready to run.
type compiled struct {
	src string
	// prg runs under the cost limit; fast, without the cost tracker, is
	// set when the estimate proves the limit cannot be reached on facts
	// within the envelope.
	prg  cel.Program
	fast cel.Program
	// fn is fast compiled to Go closures (fast.go), nil when the
	// expression is outside their subset; fnErr says why.
	fn    *fastProg
	fnErr error
	cost  cost.Estimate
	// vars are the fact variables the expression reads, in declaration
	// order: what a failed check without an evidence expression shows.
	vars []string
}

// compile checks src and builds its program. want is the type the
// expression must have, nil for any.
func compile(e *cel.Env, src string, want *cel.Type, opts Options) (*compiled, error) {
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if want != nil && !ast.OutputType().IsExactType(want) {
		return nil, fmt.Errorf("has type %s, want %s", cel.FormatCELType(ast.OutputType()), cel.FormatCELType(want))
	}
	est, err := e.EstimateCost(ast, sizeEstimator{envelope})
	if err != nil {
		return nil, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Min > opts.CostLimit {
		return nil, fmt.Errorf("cost limit %d exceeded: the least estimated cost is %d", opts.CostLimit, est.Min)
	}
	c := &compiled{src: src, cost: est, vars: readVars(ast)}
	c.prg, err = e.Program(ast,
		cel.CostLimit(opts.CostLimit),
		cel.InterruptCheckFrequency(opts.InterruptCheckFrequency),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, err
	}
	if est.Max <= opts.CostLimit && !opts.AlwaysTrackCost {
		c.fast, err = e.Program(ast,
			cel.InterruptCheckFrequency(opts.InterruptCheckFrequency),
			cel.EvalOptions(cel.OptOptimize),
		)
		if err != nil {
			return nil, err
		}
		if !opts.NoFastPath {
			c.fn, c.fnErr = compileFast(ast, objs())
		}
	}
	return c, nil
}

// readVars lists the fact variables an expression refers to.
func readVars(ast *cel.Ast) []string {
	refs := ast.NativeRep().ReferenceMap()
	seen := map[string]bool{}
	for _, r := range refs {
		if r.Name != "" && r.Value == nil {
			seen[r.Name] = true
		}
	}
	var out []string
	for _, v := range []string{varTarget, varAssetID, varRole, varManaged, varHostnames, varCollected,
		varPorts, varTLS, varSSH, varHTTP, varFTP, varSNMP, varSMB, varErrors, varNow} {
		if seen[v] {
			out = append(out, v)
		}
	}
	return out
}

// errNoEnv is returned when the CEL environment cannot be built, which
// means the facts schema and cel-go disagree.
var errNoEnv = errors.New("policy: building the CEL environment")

// bounds are the sizes of the facts the load-time cost estimate assumes.
// An expression whose estimated worst cost under them is within the cost
// limit cannot exceed it on a host whose facts fit them, so on such a host
// it runs without the cost tracker (which costs more than the expressions);
// everywhere else it runs tracked and stops at the limit.
type bounds struct {
	ports    int // open ports
	services int // entries of tls, ssh, http, ftp, snmp, smb
	ciphers  int // TLS cipher suites of one service
	names    int // hostnames
	list     int // every other list (kex, sans, methods ...) and map (headers)
	name     int // bytes of a protocol name: suite, algorithm, version, method, hash, service
	short    int // bytes of a host name, SAN, CPE, id, role, header name ...
	long     int // bytes of free text: banners, titles, subjects, header values, errors
}

var envelope = bounds{ports: 1024, services: 16, ciphers: 256, names: 8, list: 64, name: 64, short: 256, long: 4096}

// The string fields by size class; a string field in neither map is short.
var (
	nameFields = map[string]bool{
		"name": true, "kex": true, "strength": true, "least_strength": true, "source": true,
		"key_type": true, "sig_algo": true, "sig_hash": true, "sha256": true, "sha1": true,
		"protocol": true, "service": true, "tunnel": true, "type": true, "fingerprint": true,
		"signing": true, "common_name": true,
	}
	longFields = map[string]bool{
		"banner": true, "sys_descr": true, "title": true, "location": true, "extra_info": true,
		"subject": true, "issuer": true, "verify_error": true, "server": true, "product": true,
	}
)

// The lists below the top level, by the size class of their strings.
var listItems = map[string]func(b bounds) int{
	"versions": bounds.nameSize, "kex": bounds.nameSize, "host_key_algorithms": bounds.nameSize,
	"ciphers": bounds.nameSize, "macs": bounds.nameSize, "compression": bounds.nameSize,
	"auth_methods": bounds.nameSize, "methods": bounds.nameSize, "dialects": bounds.nameSize,
	"default_communities": bounds.nameSize,
	"cpe":                 bounds.shortSize, "sans": bounds.shortSize, "hostnames": bounds.shortSize,
	"warnings": bounds.longSize, "errors": bounds.longSize,
	"chain": nil, "host_keys": nil, "headers": nil,
}

func (b bounds) nameSize() int  { return b.name }
func (b bounds) shortSize() int { return b.short }
func (b bounds) longSize() int  { return b.long }

// sizeEstimator sizes the facts for the cost estimate from the envelope.
type sizeEstimator struct{ b bounds }

func upTo(n int) *cost.SizeEstimate { return &cost.SizeEstimate{Min: 0, Max: uint64(n)} }

// EstimateSize implements cost.Estimator.
func (e sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	last := path[len(path)-1]
	if len(path) == 1 {
		switch last {
		case varPorts:
			return upTo(e.b.ports)
		case varTLS, varSSH, varHTTP, varFTP, varSNMP, varSMB:
			return upTo(e.b.services)
		case varHostnames:
			return upTo(e.b.names)
		case varErrors:
			return upTo(e.b.list)
		}
		return upTo(e.b.short) // target, asset_id, role
	}
	parent := path[len(path)-2]
	switch {
	case last == "ciphers" && path[0] == varTLS:
		return upTo(e.b.ciphers)
	case last == "@items" && parent == "ciphers" && path[0] == varTLS:
		return nil // a struct
	case last == "@items" && listItems[parent] != nil:
		return upTo(listItems[parent](e.b))
	case last == "@keys" && parent == "headers":
		return upTo(e.b.short)
	case last == "@values" && parent == "headers":
		return upTo(e.b.long)
	case last == "@items":
		return nil // a struct
	}
	if _, ok := listItems[last]; ok {
		return upTo(e.b.list)
	}
	switch {
	case nameFields[last]:
		return upTo(e.b.name)
	case longFields[last]:
		return upTo(e.b.long)
	}
	return upTo(e.b.short)
}

// EstimateCallCost implements cost.Estimator: the standard costs.
func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// fits says whether the facts are within the bounds, field by field as
// EstimateSize sizes them.
func (b bounds) fits(f *assess.Facts) bool {
	within := func(n int, ss ...string) bool {
		for _, s := range ss {
			if len(s) > n {
				return false
			}
		}
		return true
	}
	list := func(ss []string, n int) bool { return len(ss) <= b.list && within(n, ss...) }
	if len(f.Ports) > b.ports || len(f.TLS) > b.services || len(f.SSH) > b.services || len(f.HTTP) > b.services ||
		len(f.FTP) > b.services || len(f.SNMP) > b.services || len(f.SMB) > b.services ||
		!within(b.short, f.Target, f.AssetID, f.Role) || len(f.Hostnames) > b.names || !within(b.short, f.Hostnames...) || !list(f.Errors, b.long) {
		return false
	}
	for i := range f.Ports {
		p := &f.Ports[i]
		if !within(b.name, p.Protocol, p.Service, p.Tunnel) || !within(b.short, p.Version) ||
			!within(b.long, p.Product, p.ExtraInfo) || !list(p.CPE, b.short) {
			return false
		}
	}
	cert := func(c *assess.Cert) bool {
		return within(b.name, c.CommonName, c.KeyType, c.SigAlgo, c.SigHash, c.SHA256, c.SHA1) &&
			within(b.long, c.Subject, c.Issuer, c.VerifyError) && list(c.SANs, b.short)
	}
	for i := range f.TLS {
		t := &f.TLS[i]
		if len(t.Ciphers) > b.ciphers || len(t.Chain) > b.list || !list(t.Versions, b.name) ||
			!list(t.Warnings, b.long) || !within(b.name, t.LeastStrength, t.Source) || !cert(&t.Cert) {
			return false
		}
		for j := range t.Ciphers {
			c := &t.Ciphers[j]
			if !within(b.name, c.Name, c.Kex, c.Strength) || !within(b.short, c.Version) {
				return false
			}
		}
		for j := range t.Chain {
			if !cert(&t.Chain[j]) {
				return false
			}
		}
	}
	for i := range f.SSH {
		s := &f.SSH[i]
		if !within(b.long, s.Banner) || !within(b.name, s.Protocol) || !within(b.short, s.Software) ||
			!list(s.Kex, b.name) || !list(s.HostKeyAlgorithms, b.name) || !list(s.Ciphers, b.name) ||
			!list(s.MACs, b.name) || !list(s.Compression, b.name) || !list(s.AuthMethods, b.name) ||
			len(s.HostKeys) > b.list {
			return false
		}
		for j := range s.HostKeys {
			if !within(b.name, s.HostKeys[j].Type, s.HostKeys[j].Fingerprint) {
				return false
			}
		}
	}
	for i := range f.HTTP {
		h := &f.HTTP[i]
		if !within(b.long, h.Server, h.Location, h.Title) || !list(h.Methods, b.name) || len(h.Headers) > b.list {
			return false
		}
		for k, v := range h.Headers {
			if len(k) > b.short || len(v) > b.long {
				return false
			}
		}
	}
	for i := range f.FTP {
		if !within(b.long, f.FTP[i].Banner) {
			return false
		}
	}
	for i := range f.SNMP {
		if !within(b.long, f.SNMP[i].SysDescr) || !list(f.SNMP[i].DefaultCommunities, b.name) {
			return false
		}
	}
	for i := range f.SMB {
		if !list(f.SMB[i].Dialects, b.name) || !within(b.name, f.SMB[i].Signing) {
			return false
		}
	}
	return true
}
