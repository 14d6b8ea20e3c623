package active

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PortSpec is which ports a sweep probes: nmap's most common Top ports, or an
// explicit List in canonical nmap -p syntax ("22,80,1000-2000", with "T:" and
// "U:" sections when UDP ports are listed). The zero PortSpec is nmap's
// default (its top 1000 TCP ports).
type PortSpec struct {
	Top  int
	List string
}

// ParsePorts reads "top:100" or "top100" (nmap --top-ports 100), or a list
// of ports and ranges ("22,80,443", "1-1024", "T:22,U:53"; a T: or U: prefix
// applies to the items after it, as in nmap). Anything else is refused; the
// error names it.
func ParsePorts(s string) (PortSpec, error) {
	in := strings.TrimSpace(s)
	lower := strings.ToLower(in)
	if rest, ok := strings.CutPrefix(lower, "top"); ok {
		rest = strings.TrimPrefix(rest, ":")
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > 65535 || rest != strconv.Itoa(n) {
			return PortSpec{}, fmt.Errorf("ports %q: want top:N with N from 1 to 65535", s)
		}
		return PortSpec{Top: n}, nil
	}
	tcp, udp, err := parsePortList(in, true)
	if err != nil {
		return PortSpec{}, fmt.Errorf("ports %q: %w", s, err)
	}
	return PortSpec{List: formatPorts(tcp, udp)}, nil
}

// String is the spec as a sweep records it: "top:100", the canonical list,
// or "" for nmap's default.
func (p PortSpec) String() string {
	if p.Top > 0 {
		return "top:" + strconv.Itoa(p.Top)
	}
	return p.List
}

// check re-parses a PortSpec built by hand, so nothing but canonical port
// syntax reaches nmap's -p.
func (p PortSpec) check() error {
	switch {
	case p.Top < 0 || p.Top > 65535:
		return fmt.Errorf("ports: top %d is not between 1 and 65535", p.Top)
	case p.Top > 0 && p.List != "":
		return errors.New("ports: give Top or List, not both")
	case p.List == "":
		return nil
	}
	got, err := ParsePorts(p.List)
	if err != nil {
		return err
	}
	if got.List != p.List {
		return fmt.Errorf("ports %q: not canonical (want %q): build it with ParsePorts", p.List, got.List)
	}
	return nil
}

// split returns the canonical TCP and UDP parts of List.
func (p PortSpec) split() (tcp, udp string) {
	t, u, err := parsePortList(p.List, true)
	if err != nil {
		return "", ""
	}
	return formatRanges(t), formatRanges(u)
}

type portRange struct{ lo, hi int }

// parsePortList parses nmap port syntax; with protocols, "T:" and "U:"
// switch the protocol of the items that follow (TCP by default).
func parsePortList(s string, protocols bool) (tcp, udp []portRange, err error) {
	if s == "" {
		return nil, nil, errors.New("empty")
	}
	if len(s) > 4096 {
		return nil, nil, errors.New("longer than 4096 characters")
	}
	isUDP := false
	for item := range strings.SplitSeq(s, ",") {
		if protocols && len(item) >= 2 && item[1] == ':' {
			switch item[0] {
			case 'T', 't':
				isUDP = false
			case 'U', 'u':
				isUDP = true
			default:
				return nil, nil, fmt.Errorf("%q: only T: and U: sections are supported", item[:2])
			}
			item = item[2:]
		}
		r, err := parsePortRange(item)
		if err != nil {
			if strings.Contains(s, ",") {
				err = fmt.Errorf("%q: %w", item, err)
			}
			return nil, nil, err
		}
		if isUDP {
			udp = append(udp, r)
		} else {
			tcp = append(tcp, r)
		}
	}
	return mergePorts(tcp), mergePorts(udp), nil
}

func parsePortRange(item string) (portRange, error) {
	lo, hi, isRange := strings.Cut(item, "-")
	a, err := parsePort(lo)
	if err != nil {
		return portRange{}, err
	}
	if !isRange {
		return portRange{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return portRange{}, err
	}
	if b < a {
		return portRange{}, errors.New("range ends before it starts")
	}
	return portRange{a, b}, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s != strconv.Itoa(n) || n < 0 || n > 65535 {
		return 0, errors.New("want a port from 0 to 65535 or a range lo-hi")
	}
	return n, nil
}

func mergePorts(rs []portRange) []portRange {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b portRange) int { return a.lo - b.lo })
	out := []portRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.lo <= last.hi+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func formatRanges(rs []portRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.lo))
		if r.hi != r.lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.hi))
		}
	}
	return b.String()
}

func formatPorts(tcp, udp []portRange) string {
	if len(udp) == 0 {
		return formatRanges(tcp)
	}
	var parts []string
	if len(tcp) > 0 {
		parts = append(parts, "T:"+formatRanges(tcp))
	}
	return strings.Join(append(parts, "U:"+formatRanges(udp)), ",")
}

// canonicalTCP rewrites nmap's <scaninfo services> list in canonical form;
// it returns s unchanged if it does not parse.
func canonicalTCP(s string) string {
	tcp, _, err := parsePortList(s, false)
	if err != nil {
		return s
	}
	return formatRanges(tcp)
}
