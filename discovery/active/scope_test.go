package active

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestParseTarget(t *testing.T) {
	good := []struct{ raw, kind string }{
		{"127.0.0.1", KindIP},
		{"::1", KindIP},
		{"fd00::10", KindIP},
		{"10.0.0.0/8", KindCIDR},
		{"10.0.0.5/24", KindCIDR}, // host bits: nmap scans the /24, so do we
		{"fd00::/64", KindCIDR},
		{"10.0.0.1-10.0.0.20", KindRange},
		{"10.0.0.1-20", KindRange},
		{"10.0.0.7-7", KindRange},
		{"localhost", KindHostname},
		{"host-1.example.com", KindHostname},
		{"my_host.corp", KindHostname},
		{"db01.example.com.", KindHostname},
		{"a", KindHostname},
	}
	for _, c := range good {
		got, err := ParseTarget(c.raw)
		if err != nil || got.Kind != c.kind || got.Raw != c.raw {
			t.Errorf("ParseTarget(%q) = %+v, %v; want kind %s", c.raw, got, err, c.kind)
		}
	}
	bad := []struct{ raw, want string }{
		{"", `target "": empty`},
		{"-oN/tmp/x", `target "-oN/tmp/x": looks like an option, not a target`},
		{"--script=broadcast", `target "--script=broadcast": looks like an option, not a target`},
		{"-", "looks like an option"},
		{"127.0.0.1 -oN /tmp/x", `target "127.0.0.1 -oN /tmp/x": contains whitespace`},
		{"127.0.0.1\n-oN", "contains whitespace"},
		{"10.0.0.1\t", "contains whitespace"},
		{"$(reboot)", `target "$(reboot)": character '$' is not allowed`},
		{";ls", `target ";ls": character ';' is not allowed`},
		{"`id`", "character '`' is not allowed"},
		{"a|b", "character '|' is not allowed"},
		{"host=x", "character '=' is not allowed"},
		{"10.0.0.*", "character '*' is not allowed"},
		{"fe80::1%eth0", "character '%' is not allowed"},
		{"a..b", `target "a..b": not an IP, CIDR, range or hostname: empty label`},
		{".", "not an IPv4 address or range"},
		{"-.", "looks like an option"},
		{"..", "not an IPv4 address or range"},
		{"a..", "empty label"},
		{"host-.example", "starts or ends with '-'"},
		{"1.2.3.4/33", `target "1.2.3.4/33": bad CIDR`},
		{"::1/129", "bad CIDR"},
		{"10.0.0.0/", "bad CIDR"},
		{"/8", "bad CIDR"},
		{"::ffff:1.2.3.4", "IPv4-mapped"},
		{"10.0.0.20-10.0.0.1", "ends (10.0.0.1) before it starts (10.0.0.20)"},
		{"10.0.0.9-3", "before it starts"},
		{"10.0.0.1-300", "not an address or a last octet"},
		{"10.0.0.1-", "not an address or a last octet"},
		{"10.0.0.1-10.0.1", "not an IPv4 address"},
		{"10.0.0-5.1", "not an IPv4 address"},
		{"1.2.3", "not an IPv4 address or range"},
		{"256.1.1.1", "not an IPv4 address or range"},
		{"::1-::5", "not an IPv6 address"},
		{"host.123", "last label is numeric"},
		{strings.Repeat("a", 64) + ".example", "longer than 63"},
		{strings.Repeat("a.", 127), "longer than 253"},
		{"ä.example", "is not allowed"},
	}
	for _, c := range bad {
		got, err := ParseTarget(c.raw)
		if err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", c.raw, got)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadTarget) {
			t.Errorf("ParseTarget(%q) error %q, want it to contain %q and match ErrBadTarget", c.raw, err, c.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.1-20", "fd00::/64", "host.example", "-oN/tmp/x", "a b", "$(reboot)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := ParseTarget(raw)
		if err != nil {
			if !errors.Is(err, ErrBadTarget) {
				t.Fatalf("error %v does not match ErrBadTarget", err)
			}
			return
		}
		if tg.Raw != raw || raw == "" || raw[0] == '-' || len(raw) > maxTargetLen {
			t.Fatalf("accepted %q as %+v", raw, tg)
		}
		for _, c := range raw {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/-_", c) {
				t.Fatalf("accepted %q with %q", raw, c)
			}
		}
		// Whatever is accepted resolves without a panic in a scope that
		// allows everything (hostnames aside: no resolver here).
		if tg.Kind != KindHostname {
			all := Scope{Name: "all", Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
			ps, err := all.Resolve(context.Background(), []Target{tg}, nil)
			if err == nil && len(ps) == 0 {
				t.Fatalf("%q resolved to nothing without an error", raw)
			}
		}
	})
}

func TestParseScope(t *testing.T) {
	s, err := ParseScope("lab", []string{"127.0.0.0/8", " ::1 "}, []string{"127.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	want := Scope{Name: "lab", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Exclude: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}}
	if !slices.Equal(s.Allow, want.Allow) || !slices.Equal(s.Exclude, want.Exclude) || s.Name != want.Name {
		t.Errorf("ParseScope = %+v, want %+v", s, want)
	}
	for _, c := range []struct {
		name           string
		allow, exclude []string
		want           string
	}{
		{"lab", []string{"10.0.0.0/33"}, nil, `scope "lab": allow "10.0.0.0/33": not a CIDR`},
		{"lab", []string{"10.0.0.5/24"}, nil, `scope "lab": allow "10.0.0.5/24": has host bits set (did you mean 10.0.0.0/24?)`},
		{"lab", []string{"10.0.0.0/8"}, []string{"banana"}, `scope "lab": exclude "banana": not a CIDR or an address`},
		{"lab", []string{"::ffff:10.0.0.0/104"}, nil, "IPv4-mapped"},
		{"lab", nil, []string{"10.0.0.0/8"}, `scope "lab": allows nothing`},
		{" ", []string{"10.0.0.0/8"}, nil, "a name is required"},
	} {
		if _, err := ParseScope(c.name, c.allow, c.exclude); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseScope(%q, %q, %q) error %v, want %q", c.name, c.allow, c.exclude, err, c.want)
		}
	}
}

func targets(t *testing.T, raws ...string) []Target {
	t.Helper()
	var ts []Target
	for _, r := range raws {
		tg, err := ParseTarget(r)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return ts
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestResolve(t *testing.T) {
	lab, err := ParseScope("lab", []string{"127.0.0.0/8"}, []string{"127.0.0.9/32"})
	if err != nil {
		t.Fatal(err)
	}
	dns := newTestDNS(t, map[string][]string{
		"good.test.":  {"127.0.0.5"},
		"evil.test.":  {"127.0.0.6", "10.9.9.9"},
		"fence.test.": {"127.0.0.9"},
		"two.test.":   {"127.0.0.9", "127.0.0.10"},
	})
	ctx := context.Background()
	for _, c := range []struct {
		targets []string
		want    []netip.Prefix
		err     string
		is      error
	}{
		{targets: []string{"127.0.0.1"}, want: prefixes("127.0.0.1/32")},
		{targets: []string{"127.0.0.8/30"}, want: prefixes("127.0.0.8/32", "127.0.0.10/31")}, // .9 cut out
		{targets: []string{"127.0.0.0/24"}, want: prefixes("127.0.0.0/29", "127.0.0.8/32", "127.0.0.10/31", "127.0.0.12/30", "127.0.0.16/28", "127.0.0.32/27", "127.0.0.64/26", "127.0.0.128/25")},
		{targets: []string{"127.0.0.1-127.0.0.6"}, want: prefixes("127.0.0.1/32", "127.0.0.2/31", "127.0.0.4/31", "127.0.0.6/32")},
		{targets: []string{"127.0.0.1-6", "127.0.0.0/30", "127.0.0.7"}, want: prefixes("127.0.0.0/29")}, // merged, minimal
		{targets: []string{"127.1.0.0/16", "127.0.0.0/16"}, want: prefixes("127.0.0.0/29", "127.0.0.8/32", "127.0.0.10/31", "127.0.0.12/30", "127.0.0.16/28", "127.0.0.32/27", "127.0.0.64/26", "127.0.0.128/25", "127.0.1.0/24", "127.0.2.0/23", "127.0.4.0/22", "127.0.8.0/21", "127.0.16.0/20", "127.0.32.0/19", "127.0.64.0/18", "127.0.128.0/17", "127.1.0.0/16")},
		{targets: []string{"good.test"}, want: prefixes("127.0.0.5/32")},
		{targets: []string{"two.test"}, want: prefixes("127.0.0.10/32")}, // one address excluded, the other kept
		{targets: []string{"10.0.0.0/8"}, err: `target "10.0.0.0/8" is outside scope "lab" (allow 127.0.0.0/8)`, is: ErrOutOfScope},
		{targets: []string{"10.9.9.9"}, err: `target "10.9.9.9" is outside scope "lab" (allow 127.0.0.0/8)`, is: ErrOutOfScope},
		{targets: []string{"127.0.0.1", "128.0.0.1"}, err: `target "128.0.0.1" is outside scope "lab"`, is: ErrOutOfScope},
		{targets: []string{"126.0.0.0/7"}, err: `target "126.0.0.0/7" (126.0.0.0/8 not allowed) is outside scope "lab" (allow 127.0.0.0/8)`, is: ErrOutOfScope},
		{targets: []string{"127.255.255.255-128.0.0.0"}, err: `(128.0.0.0/32 not allowed) is outside scope`, is: ErrOutOfScope},
		{targets: []string{"::1"}, err: `target "::1" is outside scope "lab"`, is: ErrOutOfScope},
		{targets: []string{"127.0.0.9"}, err: `target "127.0.0.9" is excluded by scope "lab" (exclude 127.0.0.9/32)`, is: ErrExcluded},
		{targets: []string{"127.0.0.9/32"}, err: `target "127.0.0.9/32" is excluded by scope "lab" (exclude 127.0.0.9/32)`, is: ErrExcluded},
		{targets: []string{"evil.test"}, err: `target "evil.test" (10.9.9.9) is outside scope "lab" (allow 127.0.0.0/8)`, is: ErrOutOfScope},
		{targets: []string{"fence.test"}, err: `target "fence.test" is excluded by scope "lab" (exclude 127.0.0.9/32)`, is: ErrExcluded},
		{targets: []string{"nothere.test"}, err: `target "nothere.test": resolve:`},
	} {
		got, err := lab.Resolve(ctx, targets(t, c.targets...), dns)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("Resolve(%q) = %v, %v; want error %q (%v)", c.targets, got, err, c.err, c.is)
			}
		case err != nil:
			t.Errorf("Resolve(%q): %v", c.targets, err)
		case !slices.Equal(got, c.want):
			t.Errorf("Resolve(%q) = %v, want %v", c.targets, got, c.want)
		}
	}

	// Kind is not trusted: Resolve parses Raw again.
	if _, err := lab.Resolve(ctx, []Target{{Raw: "-oN/tmp/x", Kind: KindIP}}, dns); !errors.Is(err, ErrBadTarget) {
		t.Errorf("Resolve of a hand-built hostile target: %v, want ErrBadTarget", err)
	}
	if _, err := lab.Resolve(ctx, nil, dns); err == nil {
		t.Error("Resolve of no targets: no error")
	}
	big := Scope{Name: "big", Allow: prefixes("10.0.0.0/7")}
	if _, err := big.Resolve(ctx, targets(t, "10.0.0.0/7"), dns); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Resolve of a /7: %v, want ErrTooLarge", err)
	}
	if got, err := big.Resolve(ctx, targets(t, "10.0.0.0/8"), dns); err != nil || Count(got) != MaxAddresses {
		t.Errorf("Resolve of a /8: %v (%d addresses), %v", got, Count(got), err)
	}
}

// TestResolveLocalhost uses the system's resolver on a real name: every
// address localhost has must be allowed.
func TestResolveLocalhost(t *testing.T) {
	ctx := context.Background()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", "localhost")
	if err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	has6 := slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Unmap().Is6() })
	v4 := Scope{Name: "v4", Allow: prefixes("127.0.0.0/8")}
	got, err := v4.Resolve(ctx, targets(t, "localhost"), nil)
	if has6 {
		if !errors.Is(err, ErrOutOfScope) || !strings.Contains(err.Error(), `target "localhost" (::1) is outside scope "v4"`) {
			t.Errorf("localhost (with ::1) in an IPv4 scope: %v, %v", got, err)
		}
	} else if err != nil || !slices.Contains(got, netip.MustParsePrefix("127.0.0.1/32")) {
		t.Errorf("localhost in an IPv4 scope: %v, %v", got, err)
	}
	both := Scope{Name: "both", Allow: prefixes("127.0.0.0/8", "::1/128")}
	got, err = both.Resolve(ctx, targets(t, "localhost"), nil)
	if err != nil || !slices.Contains(got, netip.MustParsePrefix("127.0.0.1/32")) {
		t.Errorf("localhost in a loopback scope: %v, %v", got, err)
	}
}

// newTestDNS serves A and AAAA answers from names on 127.0.0.1 and returns
// a resolver that asks it and nothing else.
func newTestDNS(t *testing.T, names map[string][]string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			addrs, known := names[strings.ToLower(q.Name.String())]
			rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
			if !known {
				rh.RCode = dnsmessage.RCodeNameError
			}
			b := dnsmessage.NewBuilder(nil, rh)
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			for _, s := range addrs {
				a := netip.MustParseAddr(s)
				rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
				switch {
				case a.Is4() && q.Type == dnsmessage.TypeA:
					_ = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
				case a.Is6() && q.Type == dnsmessage.TypeAAAA:
					_ = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
				}
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		return d.DialContext(ctx, "udp", addr)
	}}
}

func TestCountChunk(t *testing.T) {
	if n := Count(prefixes("10.0.0.0/16", "10.1.0.0/24", "10.2.0.1/32")); n != 65536+256+1 {
		t.Errorf("Count = %d", n)
	}
	if n := Count(prefixes("::/0")); n != math.MaxUint64 {
		t.Errorf("Count(::/0) = %d, want saturation", n)
	}
	if n := Count(prefixes("::/64", "::/64")); n != math.MaxUint64 {
		t.Errorf("Count(2 x /64) = %d, want saturation", n)
	}
	chunks := Chunk(prefixes("10.0.0.0/16"), 256)
	if len(chunks) != 256 {
		t.Fatalf("a /16 in chunks of 256: %d chunks", len(chunks))
	}
	for i, c := range chunks {
		want := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
		if len(c) != 1 || c[0] != want {
			t.Fatalf("chunk %d = %v, want [%v]", i, c, want)
		}
	}
	// Small prefixes pack; a family change starts a chunk; size < 1 is one
	// chunk per family.
	got := Chunk(prefixes("127.0.0.1/32", "127.0.0.2/31", "127.0.0.4/30", "::1/128", "::2/127"), 4)
	want := [][]netip.Prefix{prefixes("127.0.0.1/32", "127.0.0.2/31"), prefixes("127.0.0.4/30"), prefixes("::1/128", "::2/127")}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Chunk = %v, want %v", got, want)
	}
	if got := Chunk(prefixes("10.0.0.0/8", "::1/128"), 0); len(got) != 2 || len(got[0]) != 1 {
		t.Errorf("Chunk(size 0) = %v", got)
	}
	if got := Chunk(nil, 256); len(got) != 0 {
		t.Errorf("Chunk(nil) = %v", got)
	}

	// Properties over random sets: chunks cover exactly the input in order,
	// each at most size addresses (a power of two not above it for split
	// prefixes), one family each.
	rng := rand.New(rand.NewPCG(1, 2))
	all := Scope{Name: "all", Allow: prefixes("0.0.0.0/0", "::/0")}
	for range 200 {
		var ts []Target
		for range 1 + rng.IntN(6) {
			var raw string
			if rng.IntN(4) == 0 {
				raw = netip.AddrFrom16([16]byte{0xfd, 15: byte(rng.IntN(256))}).String() + "/" + []string{"120", "124", "128"}[rng.IntN(3)]
			} else {
				raw = netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}).String() + "/" + []string{"18", "22", "24", "27", "30", "32"}[rng.IntN(6)]
			}
			ts = append(ts, Target{Raw: raw})
		}
		ps, err := all.Resolve(context.Background(), ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		size := 1 + rng.IntN(1000)
		var flat []netip.Prefix
		for _, c := range Chunk(ps, size) {
			if Count(c) > uint64(size) || len(c) == 0 {
				t.Fatalf("chunk %v of %d addresses, size %d", c, Count(c), size)
			}
			for _, p := range c[1:] {
				if p.Addr().BitLen() != c[0].Addr().BitLen() {
					t.Fatalf("chunk %v mixes families", c)
				}
			}
			flat = append(flat, c...)
		}
		if Count(flat) != Count(ps) {
			t.Fatalf("chunks hold %d addresses, input %d", Count(flat), Count(ps))
		}
		if !slices.IsSortedFunc(flat, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) }) {
			t.Fatalf("chunks out of order: %v", flat)
		}
		var ss []span
		for _, p := range flat {
			ss = append(ss, prefixSpan(p))
		}
		if back := spansToPrefixes(ss); !slices.Equal(back, ps) {
			t.Fatalf("chunks cover %v, input %v", back, ps)
		}
	}
}

func TestSpanPrefixes(t *testing.T) {
	for _, c := range []struct {
		lo, hi string
		want   []netip.Prefix
	}{
		{"0.0.0.0", "255.255.255.255", prefixes("0.0.0.0/0")},
		{"10.0.0.0", "10.0.0.0", prefixes("10.0.0.0/32")},
		{"10.0.0.1", "10.0.0.254", prefixes("10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/29", "10.0.0.16/28", "10.0.0.32/27", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/27", "10.0.0.224/28", "10.0.0.240/29", "10.0.0.248/30", "10.0.0.252/31", "10.0.0.254/32")},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", prefixes("::/0")},
		{"::ff", "::100", prefixes("::ff/128", "::100/128")},
	} {
		got := span{netip.MustParseAddr(c.lo), netip.MustParseAddr(c.hi)}.prefixes()
		if !slices.Equal(got, c.want) {
			t.Errorf("%s-%s = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}
