package active

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Errors callers branch on; the concrete errors (*TargetError, *ScopeError)
// carry the target and the rule and match these with errors.Is.
var (
	// ErrBadTarget: a target is not an IP, CIDR, IPv4 range or hostname.
	ErrBadTarget = errors.New("bad target")
	// ErrOutOfScope: a target (or an address a hostname resolves to) is
	// not inside any Allow of the scope.
	ErrOutOfScope = errors.New("target outside scope")
	// ErrExcluded: everything a target names is inside the scope's Excludes.
	ErrExcluded = errors.New("target excluded by scope")
	// ErrTooLarge: the resolved address set is larger than MaxAddresses.
	ErrTooLarge = errors.New("target set too large")
)

// MaxAddresses bounds what Resolve returns: a /8 of IPv4. Anything larger
// is a mistake or a sweep that needs splitting by hand.
const MaxAddresses = 1 << 24

// maxTargetLen is the longest target accepted: a full DNS name.
const maxTargetLen = 253

// Scope is a named set of networks sweeps may probe: every address probed is
// inside some Allow and outside every Exclude.
type Scope struct {
	Name    string
	Allow   []netip.Prefix
	Exclude []netip.Prefix
}

// ParseScope builds a scope from its configuration. Each entry is a CIDR
// without host bits ("10.1.0.0/16") or a single address; the error names the
// scope and the bad entry. A scope must allow something.
func ParseScope(name string, allow, exclude []string) (Scope, error) {
	s := Scope{Name: strings.TrimSpace(name)}
	if s.Name == "" {
		return Scope{}, errors.New("scope: a name is required")
	}
	parse := func(field string, in []string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, raw := range in {
			p, err := parseRule(strings.TrimSpace(raw))
			if err != nil {
				return nil, fmt.Errorf("scope %q: %s %q: %w", s.Name, field, raw, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if s.Allow, err = parse("allow", allow); err != nil {
		return Scope{}, err
	}
	if s.Exclude, err = parse("exclude", exclude); err != nil {
		return Scope{}, err
	}
	if len(s.Allow) == 0 {
		return Scope{}, fmt.Errorf("scope %q: allows nothing: give at least one allow CIDR", s.Name)
	}
	return s, nil
}

func parseRule(raw string) (netip.Prefix, error) {
	if !strings.Contains(raw, "/") {
		a, err := netip.ParseAddr(raw)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errors.New("not a CIDR or an address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("an IPv4-mapped IPv6 prefix: write the IPv4 CIDR")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("has host bits set (did you mean %s?)", p.Masked())
	}
	return p, nil
}

// Target kinds.
const (
	KindIP       = "ip"
	KindCIDR     = "cidr"
	KindRange    = "range"
	KindHostname = "hostname"
)

// Target is one thing a user asked to probe, checked for syntax only.
type Target struct {
	Raw  string
	Kind string // ip, cidr, range, hostname
}

// TargetError says why a target was refused. It matches ErrBadTarget.
type TargetError struct {
	Target string
	Reason string
}

func (e *TargetError) Error() string     { return fmt.Sprintf("target %q: %s", e.Target, e.Reason) }
func (e *TargetError) Is(err error) bool { return err == ErrBadTarget }

// ParseTarget checks a target's syntax: an IP address, a CIDR, an IPv4 range
// ("10.0.0.1-10.0.0.20" or "10.0.0.1-20") or an RFC 1123 hostname. It
// refuses anything else, and in particular anything that nmap could read as
// an option or a shell could read as syntax: a leading '-', whitespace, and
// any character outside letters, digits, '.', ':', '/', '-' and '_'.
// Targets never reach nmap's argv in any case (Run writes resolved prefixes
// to an -iL file); the check keeps mistakes and attacks out of the logs and
// the scope check too.
func ParseTarget(raw string) (Target, error) {
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, &TargetError{Target: raw, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case raw == "":
		return bad("empty")
	case len(raw) > maxTargetLen:
		return bad("longer than %d characters", maxTargetLen)
	case raw[0] == '-':
		return bad("looks like an option, not a target")
	}
	for _, c := range raw {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return bad("contains whitespace: give one target per entry")
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == ':', c == '/', c == '-', c == '_':
		default:
			return bad("character %q is not allowed (letters, digits, '.', ':', '/', '-', '_')", c)
		}
	}
	switch {
	case strings.Contains(raw, "/"):
		if _, err := parseCIDRTarget(raw); err != nil {
			return bad("bad CIDR: %v", err)
		}
		return Target{Raw: raw, Kind: KindCIDR}, nil
	case strings.Contains(raw, ":"):
		a, err := netip.ParseAddr(raw)
		if err != nil {
			return bad("not an IPv6 address (IPv6 ranges are not supported; use a CIDR)")
		}
		if a.Is4In6() {
			return bad("an IPv4-mapped IPv6 address: write the IPv4 address")
		}
		return Target{Raw: raw, Kind: KindIP}, nil
	}
	if a, err := netip.ParseAddr(raw); err == nil && a.Is4() {
		return Target{Raw: raw, Kind: KindIP}, nil
	}
	if looksNumeric(raw) {
		if _, err := parseRange(raw); err != nil {
			return bad("%v", err)
		}
		return Target{Raw: raw, Kind: KindRange}, nil
	}
	if err := checkHostname(raw); err != nil {
		return bad("not an IP, CIDR, range or hostname: %v", err)
	}
	return Target{Raw: raw, Kind: KindHostname}, nil
}

// looksNumeric says whether s is made of digits, dots and dashes only: an
// address or range attempt rather than a hostname.
func looksNumeric(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func parseCIDRTarget(raw string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		return netip.Prefix{}, errors.New("want address/bits, bits at most 32 (IPv4) or 128 (IPv6)")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("an IPv4-mapped IPv6 prefix: write the IPv4 CIDR")
	}
	return p.Masked(), nil
}

// parseRange parses "10.0.0.1-10.0.0.20" or "10.0.0.1-20".
func parseRange(raw string) (span, error) {
	from, to, ok := strings.Cut(raw, "-")
	if !ok {
		return span{}, errors.New("not an IPv4 address or range")
	}
	lo, err := netip.ParseAddr(from)
	if err != nil || !lo.Is4() {
		return span{}, fmt.Errorf("range start %q is not an IPv4 address", from)
	}
	var hi netip.Addr
	if strings.Contains(to, ".") {
		hi, err = netip.ParseAddr(to)
		if err != nil || !hi.Is4() {
			return span{}, fmt.Errorf("range end %q is not an IPv4 address", to)
		}
	} else {
		n, err := strconv.ParseUint(to, 10, 8)
		if err != nil || (len(to) > 1 && to[0] == '0') {
			return span{}, fmt.Errorf("range end %q is not an address or a last octet (0-255)", to)
		}
		b := lo.As4()
		b[3] = byte(n)
		hi = netip.AddrFrom4(b)
	}
	if hi.Less(lo) {
		return span{}, fmt.Errorf("range ends (%s) before it starts (%s)", hi, lo)
	}
	return span{lo, hi}, nil
}

// checkHostname applies RFC 1123 (letters, digits and hyphens, labels of 1
// to 63 characters not starting or ending with a hyphen), with '_' allowed
// as internal DNS often has it, and a top-level label that is not all
// digits so that a mistyped address is not looked up as a name.
func checkHostname(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errors.New("empty name")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return errors.New("empty label")
		case len(l) > 63:
			return errors.New("a label is longer than 63 characters")
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
	}
	if looksNumeric(labels[len(labels)-1]) {
		return errors.New("looks like a mistyped address (the last label is numeric)")
	}
	return nil
}

// ScopeError is a target refused by a scope: outside every Allow (matches
// ErrOutOfScope) or entirely inside its Excludes (matches ErrExcluded).
type ScopeError struct {
	Target   string // as the user typed it
	Addr     string // the offending address or prefix when it differs from Target (a hostname's address, a CIDR's part)
	Scope    string
	Rules    []netip.Prefix // the allow list, or the excludes that cover the target
	Excluded bool
}

func (e *ScopeError) Error() string {
	what := fmt.Sprintf("target %q", e.Target)
	if e.Addr != "" {
		what += " (" + e.Addr + ")"
	}
	var rules []string
	for _, r := range e.Rules {
		rules = append(rules, r.String())
	}
	if e.Excluded {
		return fmt.Sprintf("%s is excluded by scope %q (exclude %s)", what, e.Scope, strings.Join(rules, ", "))
	}
	if len(rules) == 0 {
		rules = []string{"nothing"}
	}
	return fmt.Sprintf("%s is outside scope %q (allow %s)", what, e.Scope, strings.Join(rules, ", "))
}

func (e *ScopeError) Is(err error) bool {
	return (err == ErrExcluded && e.Excluded) || (err == ErrOutOfScope && !e.Excluded)
}

// Resolve turns targets into the address set to probe, checked against the
// scope. Each target's syntax is checked again (Kind is not trusted).
// Hostnames are resolved with r (nil: net.DefaultResolver) and every address
// they resolve to is checked: one address outside every Allow refuses the
// target (so "localhost" needs ::1 allowed as well as 127.0.0.1). A target
// or address outside the Allows is an error; one entirely inside the
// Excludes is an error naming the excludes; a partly excluded target loses
// the excluded part. The result is the fewest sorted, non-overlapping
// prefixes covering what is left, IPv4 before IPv6, and at most
// MaxAddresses addresses.
func (s Scope) Resolve(ctx context.Context, targets []Target, r *net.Resolver) ([]netip.Prefix, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	if len(targets) == 0 {
		return nil, errors.New("no targets")
	}
	var allow, exclude []span
	for _, p := range s.Allow {
		allow = append(allow, prefixSpan(p))
	}
	for _, p := range s.Exclude {
		exclude = append(exclude, prefixSpan(p))
	}
	var keep []span
	for _, t := range targets {
		t, err := ParseTarget(t.Raw)
		if err != nil {
			return nil, err
		}
		type piece struct {
			s    span
			addr string // named in errors when it differs from the target
		}
		var pieces []piece
		switch t.Kind {
		case KindIP:
			a := netip.MustParseAddr(t.Raw)
			pieces = []piece{{span{a, a}, ""}}
		case KindCIDR:
			p, _ := parseCIDRTarget(t.Raw)
			pieces = []piece{{prefixSpan(p), ""}}
		case KindRange:
			sp, _ := parseRange(t.Raw)
			pieces = []piece{{sp, ""}}
		case KindHostname:
			addrs, err := r.LookupNetIP(ctx, "ip", t.Raw)
			if err != nil {
				return nil, fmt.Errorf("target %q: resolve: %w", t.Raw, err)
			}
			if len(addrs) == 0 {
				return nil, fmt.Errorf("target %q: resolves to no address", t.Raw)
			}
			for _, a := range addrs {
				a = a.Unmap().WithZone("")
				pieces = append(pieces, piece{span{a, a}, a.String()})
			}
		}
		var left []span
		for _, pc := range pieces {
			if out := subtractAll([]span{pc.s}, allow); len(out) > 0 {
				addr := pc.addr
				if addr == "" && out[0] != pc.s {
					addr = strings.Join(prefixStrings(spansToPrefixes(out)), ", ") + " not allowed"
				}
				return nil, &ScopeError{Target: t.Raw, Addr: addr, Scope: s.Name, Rules: s.Allow}
			}
			left = append(left, subtractAll([]span{pc.s}, exclude)...)
		}
		if len(left) == 0 {
			var by []netip.Prefix
			for i, e := range exclude {
				for _, pc := range pieces {
					if pc.s.overlaps(e) {
						by = append(by, s.Exclude[i])
						break
					}
				}
			}
			return nil, &ScopeError{Target: t.Raw, Scope: s.Name, Rules: by, Excluded: true}
		}
		keep = append(keep, left...)
	}
	out := spansToPrefixes(keep)
	if n := Count(out); n > MaxAddresses {
		return nil, fmt.Errorf("%w: %d addresses, more than %d: split the sweep", ErrTooLarge, n, MaxAddresses)
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// Contains reports whether addr is inside the scope: within an Allow and
// clear of every Exclude.
func (s Scope) Contains(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	return s.contains([]netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}) == nil
}
