package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/reckon-dev/reckon/assess"
)

// DefaultCostLimit is the cost limit of a program when Options leave it 0:
// about a million CEL operations, some milliseconds of one core. The whole
// baseline costs a few thousand on a typical host.
const DefaultCostLimit = 1_000_000

// DefaultInterruptCheckFrequency is how many comprehension iterations pass
// between two looks at the context's Done channel in EvaluateContext.
const DefaultInterruptCheckFrequency = 100

// DefaultBuildSeverity is the severity of a build check whose build does not
// give one.
const DefaultBuildSeverity = "medium"

// Options tune how a policy is compiled. The zero value is the defaults.
type Options struct {
	// CostLimit is the most one expression may cost on one host; a check
	// over it is an error. 0 means DefaultCostLimit.
	CostLimit uint64
	// InterruptCheckFrequency: see DefaultInterruptCheckFrequency.
	InterruptCheckFrequency uint
	// AlwaysTrackCost runs every expression under the cost tracker. By
	// default an expression whose estimated worst cost is within the limit
	// runs without it on hosts whose facts fit the sizes the estimate
	// assumed (a few times faster); the limit holds either way.
	AlwaysTrackCost bool
	// NoFastPath runs every expression in cel-go's interpreter. By default
	// an expression that may run untracked and uses only what fast.go
	// compiles runs as Go closures instead, with the same results.
	NoFastPath bool
}

func (o Options) withDefaults() Options {
	if o.CostLimit == 0 {
		o.CostLimit = DefaultCostLimit
	}
	if o.InterruptCheckFrequency == 0 {
		o.InterruptCheckFrequency = DefaultInterruptCheckFrequency
	}
	return o
}

// Check is one check of a policy as written in the file.
type Check struct {
	ID        string
	Title     string
	Severity  string // one of assess.Severities
	Family    string // tls, cert, ssh ...; the ID's prefix, lower case, when the file gives none
	Rationale string
	Applies   string // "" means the check applies to every host
	Expect    string
	Evidence  string // "" when the check has no evidence expression
	// MaxCost is the estimated worst cost of the check's applies and
	// expect on a host of up to 1024 open ports, 16 services of a kind,
	// 256 cipher suites a service, 8 hostnames, 64 entries in other lists, protocol
	// names of 64 bytes, other names of 256 and free text of 4096. Within
	// the cost limit, the check runs without cost tracking on such hosts.
	MaxCost uint64
}

// Build is a standard build: what a host of a role may expose.
type Build struct {
	Role     string
	Title    string
	Severity string
	// Allow holds "proto/port" (tcp/443) and service names (http, ssh) as
	// nmap names them.
	Allow []string
}

// RoleRule gives a host a role when its CMDB role is empty.
type RoleRule struct {
	Role string
	When string
}

// Policy is a loaded, compiled policy. It is safe for concurrent use.
type Policy struct {
	name    string
	version string
	digest  string
	opts    Options
	checks  []*check
	builds  map[string]*build
	order   []string // build roles in file order
	roles   []*roleRule
}

type check struct {
	Check
	applies  *compiled // nil: always applies
	expect   *compiled
	evidence *compiled // nil: show the facts expect reads
}

type build struct {
	Build
	ports    map[string]bool // "tcp/443"
	services map[string]bool
}

type roleRule struct {
	RoleRule
	when *compiled
}

// The file as written. Field names are the YAML keys; unknown keys are
// errors.
type file struct {
	Version string      `yaml:"version"`
	Checks  []fileCheck `yaml:"checks"`
	Builds  []fileBuild `yaml:"builds"`
	Roles   []fileRole  `yaml:"roles"`
}

type fileCheck struct {
	ID        string `yaml:"id"`
	Title     string `yaml:"title"`
	Severity  string `yaml:"severity"`
	Rationale string `yaml:"rationale"`
	Family    string `yaml:"family"`
	Applies   string `yaml:"applies"`
	Expect    string `yaml:"expect"`
	Evidence  string `yaml:"evidence"`
}

type fileBuild struct {
	Role     string   `yaml:"role"`
	Title    string   `yaml:"title"`
	Severity string   `yaml:"severity"`
	Allow    []string `yaml:"allow"`
}

type fileRole struct {
	Role string `yaml:"role"`
	When string `yaml:"when"`
}

// Load reads and compiles the policy file at path with the default options.
func Load(path string) (*Policy, error) {
	return LoadOptions(path, Options{})
}

// LoadOptions is Load with options.
func LoadOptions(path string, opts Options) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParseOptions(path, data, opts)
}

// Parse compiles the policy in data with the default options; name (the
// file's name) prefixes every error.
func Parse(name string, data []byte) (*Policy, error) {
	return ParseOptions(name, data, Options{})
}

// ParseOptions is Parse with options. Every problem found is reported, joined
// with errors.Join, each as "name: check ID: field: problem".
func ParseOptions(name string, data []byte, opts Options) (*Policy, error) {
	opts = opts.withDefaults()
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoEnv, err)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := findItemLines(data)
	sum := sha256.Sum256(data)
	p := &Policy{
		name:    name,
		version: f.Version,
		digest:  hex.EncodeToString(sum[:]),
		opts:    opts,
		builds:  map[string]*build{},
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if len(f.Checks) == 0 && len(f.Builds) == 0 {
		fail("empty policy: no checks and no builds")
	}

	seen := map[string]int{}
	for i, fc := range f.Checks {
		label := "check " + fc.ID
		if fc.ID == "" {
			label = fmt.Sprintf("check #%d%s", i+1, lines.at("checks", i))
			fail("%s: missing id", label)
		} else if j, dup := seen[fc.ID]; dup {
			fail("%s: duplicate id (check #%d has it too)", label, j+1)
		} else {
			seen[fc.ID] = i
		}
		c := &check{Check: Check{
			ID: fc.ID, Title: fc.Title, Severity: fc.Severity, Family: fc.Family,
			Rationale: fc.Rationale, Applies: fc.Applies, Expect: fc.Expect, Evidence: fc.Evidence,
		}}
		if c.Family == "" {
			c.Family = defaultFamily(c.ID)
		}
		if strings.TrimSpace(fc.Title) == "" {
			fail("%s: missing title", label)
		}
		if !slices.Contains(assess.Severities, fc.Severity) {
			fail("%s: severity %q is not one of %s", label, fc.Severity, strings.Join(assess.Severities, ", "))
		}
		if strings.TrimSpace(fc.Applies) != "" {
			if c.applies, err = compile(e, fc.Applies, cel.BoolType, opts); err != nil {
				fail("%s: applies: %w", label, err)
			}
		}
		if strings.TrimSpace(fc.Expect) == "" {
			fail("%s: missing expect", label)
		} else if c.expect, err = compile(e, fc.Expect, cel.BoolType, opts); err != nil {
			fail("%s: expect: %w", label, err)
		}
		if strings.TrimSpace(fc.Evidence) != "" {
			if c.evidence, err = compile(e, fc.Evidence, nil, opts); err != nil {
				fail("%s: evidence: %w", label, err)
			}
		}
		if c.expect != nil {
			c.MaxCost = c.expect.cost.Max
			if c.applies != nil {
				c.MaxCost = satAdd(c.MaxCost, c.applies.cost.Max)
			}
		}
		p.checks = append(p.checks, c)
	}

	for i, fb := range f.Builds {
		label := "build " + fb.Role
		if fb.Role == "" {
			label = fmt.Sprintf("build #%d%s", i+1, lines.at("builds", i))
			fail("%s: missing role", label)
		} else if _, dup := p.builds[fb.Role]; dup {
			fail("%s: duplicate role", label)
		}
		b := &build{
			Build:    Build(fb),
			ports:    map[string]bool{},
			services: map[string]bool{},
		}
		if b.Severity == "" {
			b.Severity = DefaultBuildSeverity
		} else if !slices.Contains(assess.Severities, b.Severity) {
			fail("%s: severity %q is not one of %s", label, b.Severity, strings.Join(assess.Severities, ", "))
		}
		if b.Title == "" {
			b.Title = "Only the ports and services of the " + fb.Role + " build are open"
		}
		for _, a := range fb.Allow {
			port, service, err := parseAllow(a)
			switch {
			case err != nil:
				fail("%s: allow %q: %w", label, a, err)
			case port != "":
				b.ports[port] = true
			default:
				b.services[service] = true
			}
		}
		if fb.Role != "" && p.builds[fb.Role] == nil {
			p.builds[fb.Role] = b
			p.order = append(p.order, fb.Role)
		}
	}

	for i, fr := range f.Roles {
		label := fmt.Sprintf("role rule #%d (%s)", i+1, fr.Role)
		if fr.Role == "" {
			label = fmt.Sprintf("role rule #%d%s", i+1, lines.at("roles", i))
			fail("%s: missing role", label)
		}
		r := &roleRule{RoleRule: RoleRule(fr)}
		if strings.TrimSpace(fr.When) == "" {
			fail("%s: missing when", label)
		} else if r.when, err = compile(e, fr.When, cel.BoolType, opts); err != nil {
			fail("%s: when: %w", label, err)
		}
		p.roles = append(p.roles, r)
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Name is the file name the policy was loaded from.
func (p *Policy) Name() string { return p.name }

// Version is the file's version, "" if it gives none.
func (p *Policy) Version() string { return p.version }

// Digest is the SHA-256 of the file's bytes, lower-case hex: which policy,
// exactly, a result was reached under.
func (p *Policy) Digest() string { return p.digest }

// Checks lists the checks in file order.
func (p *Policy) Checks() []Check {
	out := make([]Check, len(p.checks))
	for i, c := range p.checks {
		out[i] = c.Check
	}
	return out
}

// Builds lists the standard builds in file order.
func (p *Policy) Builds() []Build {
	out := make([]Build, 0, len(p.order))
	for _, r := range p.order {
		b := p.builds[r].Build
		b.Allow = slices.Clone(b.Allow)
		out = append(out, b)
	}
	return out
}

// RoleRules lists the role rules in file order.
func (p *Policy) RoleRules() []RoleRule {
	out := make([]RoleRule, len(p.roles))
	for i, r := range p.roles {
		out[i] = r.RoleRule
	}
	return out
}

// defaultFamily is the id's prefix before its first '-', lower case:
// TLS-001 is family tls.
func defaultFamily(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	return strings.ToLower(prefix)
}

var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)

// parseAllow reads one allow entry: "tcp/443" (returned as port, in that
// canonical form) or a service name such as "http".
func parseAllow(a string) (port, service string, err error) {
	if proto, num, ok := strings.Cut(a, "/"); ok {
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return "", "", fmt.Errorf("protocol %q is not tcp, udp or sctp", proto)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", num)
		}
		return proto + "/" + strconv.Itoa(n), "", nil
	}
	if !serviceName.MatchString(a) {
		return "", "", errors.New(`want "proto/port" (tcp/443) or a lower-case service name (http)`)
	}
	return "", a, nil
}

func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// itemLines remembers the line of each item of the top-level lists, for
// errors about items that have no id to name them by.
type itemLines map[string][]int

func (l itemLines) at(key string, i int) string {
	if i < len(l[key]) {
		return fmt.Sprintf(" (line %d)", l[key][i])
	}
	return ""
}

func findItemLines(data []byte) itemLines {
	out := itemLines{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return out
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i].Value, doc.Content[i+1]
		if val.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range val.Content {
			out[key] = append(out[key], item.Line)
		}
	}
	return out
}
