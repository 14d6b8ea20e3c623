package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/reckon-dev/reckon/assess"
)

// TestFastPathAgreesWithCEL runs every expression of the baseline (and a
// few that stress the edges of the subset) both on the fast path and in
// cel-go, on the test hosts and on randomly made ones, and requires the
// same value, or an error from both.
func TestFastPathAgreesWithCEL(t *testing.T) {
	p := loadBaseline(t)
	var exprs []*compiled
	names := map[*compiled]string{}
	for _, c := range p.checks {
		for field, x := range map[string]*compiled{"applies": c.applies, "expect": c.expect, "evidence": c.evidence} {
			if x != nil {
				exprs = append(exprs, x)
				names[x] = c.ID + " " + field
			}
		}
	}
	e, err := env()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		"http.all(h, h.headers['x-frame-options'] == 'DENY')",                // error on a missing key
		"http.exists(h, h.headers['x-frame-options'] == 'DENY') || true",     // absorbed by ||
		"tls.all(t, t.versions[0] == 'TLSv1.0') && false",                    // outside the subset
		"hostnames.exists(h, h.substring(h.indexOf('.')) == '.example.net')", // -1 on a name without a dot
		"hostnames.map(h, h.substring(1, 3))",
		"ports.map(p, p.service.lowerAscii().trim() + ':' + string(p.port))",
		"tls.map(t, [t.port, t.cert.not_after, t.cert.not_before + duration('1h')])",
		"ssh.map(s, s.host_keys)",
		"tls.map(t, t.cert)",
		"http.map(h, h.headers.filter(k, k.startsWith('x-')))",
		"ports.exists_one(p, p.port == 22)",
		"int(collected) > 0 && collected < now && role == '' && target.size() >= 0 && !managed",
		"errors.all(e, e.size() < 100) ? 'ok' : 'long'",
		"[1, 2] + [3]",
		"asset_id.matches('^a-[0-9]+$')",
		"target.size() == 7 || hostnames.exists(h, h.size() == 7)", // runes, not bytes: Ünïcode
	} {
		c, err := compile(e, src, nil, Options{}.withDefaults())
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		exprs = append(exprs, c)
		names[c] = src
	}
	fastCount := 0
	for _, c := range exprs {
		if c.fn != nil {
			fastCount++
		}
	}
	if fastCount < len(exprs)*3/4 {
		t.Errorf("only %d of %d expressions compile to the fast path", fastCount, len(exprs))
	}

	hosts := []*assess.Facts{weakHost(), hardenedHost(), typicalHost(), {}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1500 {
		hosts = append(hosts, randomHost(rng))
	}
	compared := 0
	for hi, f := range hosts {
		f.Normalize()
		a := newActivation(f, now)
		a.role = types.String("web")
		a.fe.role = "web"
		if !envelope.fits(f) {
			t.Fatalf("host %d does not fit the envelope", hi)
		}
		for _, c := range exprs {
			if c.fn == nil {
				continue
			}
			want, wantErr := p.run(context.Background(), c, a)
			var got any
			var gotErr error
			if c.fn.n.k == kBool {
				got, gotErr = c.fn.evalBool(&a.fe)
			} else {
				got, gotErr = c.fn.evalAny(&a.fe)
			}
			compared++
			switch {
			case wantErr != nil && gotErr == nil:
				t.Errorf("host %d, %s: cel-go: %v; fast path: %v", hi, names[c], wantErr, got)
			case wantErr == nil && gotErr != nil:
				// Allowed only where cel-go's own result is an error
				// absorbed later, which cannot be: the fast path gives
				// errors only where cel-go does.
				t.Errorf("host %d, %s: cel-go: %v; fast path: error %v", hi, names[c], native(want), gotErr)
			case wantErr == nil:
				w := native(want)
				if !sameValue(w, got) {
					t.Errorf("host %d, %s:\ncel-go:    %#v\nfast path: %#v", hi, names[c], w, got)
				}
			}
		}
	}
	t.Logf("%d expressions, %d on the fast path, %d comparisons", len(exprs), fastCount, compared)
}

// sameValue compares two plain values; lists of strings that differ only
// in order count as the same when they come from a map's keys (CEL leaves
// that order open), which the caller cannot tell apart, so any list of
// strings may be reordered.
func sameValue(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	return reflect.DeepEqual(sortStrings(a), sortStrings(b))
}

func sortStrings(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		allStr := true
		for i, x := range v {
			out[i] = sortStrings(x)
			if _, ok := x.(string); !ok {
				allStr = false
			}
		}
		if allStr {
			slices.SortFunc(out, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = sortStrings(x)
		}
		return out
	}
	return v
}

// The policy gives the same results with and without the fast path.
func TestFastPathSameResults(t *testing.T) {
	fast := loadBaseline(t)
	slow, err := LoadOptions(baselinePath, Options{NoFastPath: true})
	if err != nil {
		t.Fatal(err)
	}
	tracked, err := LoadOptions(baselinePath, Options{AlwaysTrackCost: true})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	hosts := []*assess.Facts{weakHost(), hardenedHost(), typicalHost()}
	for range 200 {
		hosts = append(hosts, randomHost(rng))
	}
	for i, f := range hosts {
		want := fast.Evaluate(f, now)
		for name, q := range map[string]*Policy{"no fast path": slow, "always tracked": tracked} {
			got := q.Evaluate(f, now)
			for j := range want {
				if !sameValue(toPlain(want[j]), toPlain(got[j])) {
					t.Errorf("host %d, %s: %+v\n%s: %+v", i, want[j].CheckID, want[j], name, got[j])
				}
			}
		}
	}
}

// toPlain makes a result comparable across paths: evidence that is Go
// structs on one path is maps on the other only for facts-read evidence,
// which the baseline does not use.
func toPlain(r assess.Result) any {
	return map[string]any{"id": r.CheckID, "status": string(r.Status), "evidence": r.Evidence, "error": r.Error}
}

// randomHost makes facts from pools of real and odd values.
func randomHost(r *rand.Rand) *assess.Facts {
	pick := func(pool []string) string { return pool[r.IntN(len(pool))] }
	some := func(pool []string, max int) []string {
		n := r.IntN(max + 1)
		out := make([]string, 0, n)
		for range n {
			out = append(out, pick(pool))
		}
		return out
	}
	strs := []string{"", "x", "A", "Ünïcode", "tcp", "udp", "ssl", "http", "ftp", "telnet", "login", "ssh", "snmp",
		"nginx/1.22.1", "nginx", "Apache", "\xff\xfe", "  nosniff ", "NOSNIFF", "nosniff", "DENY", "max-age=0",
		"max-age=63072000", "frame-ancestors 'none'", "default-src 'self'", "www.example.net", "*.example.net",
		"example.net", "legacy.local", "a.b.example.net", "host", "1.", "2.1.0", "SSH-2.0-SSH-1.99", "ex-x-", "x-"}
	suites := append(append(append(slices.Clone(legacySuites), modernSuites...), nginxSuites...), tls13Suites...)
	suites = append(suites, "TLS_RSA_WITH_RC4_128_MD5 (rsa 2048)", "TLS_RSA_WITH_3DES_EDE_CBC_SHA (rsa 2048)",
		"TLS_RSA_EXPORT_WITH_RC4_40_MD5 (rsa 512)", "TLS_RSA_WITH_NULL_SHA (rsa 2048)", "TLS_AES_128_GCM_SHA256 (ecdh_x25519)",
		"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (dh 4096)", "TLS_RSA_WITH_IDEA_CBC_SHA (rsa 2048)")
	versions := []string{"SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "SSLv2"}
	grades := []string{"", "A", "B", "C", "D", "F"}
	times := []time.Time{{}, now, now.Add(-time.Hour), now.Add(time.Hour), now.AddDate(0, 0, 29), now.AddDate(0, 0, 31),
		now.AddDate(-3, 0, 0), now.AddDate(5, 0, 0), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}
	algos := []string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256",
		"curve25519-sha256", "ssh-rsa", "ssh-dss", "rsa-sha2-512", "ssh-ed25519", "aes128-cbc", "3des-cbc",
		"aes256-gcm@openssh.com", "arcfour", "hmac-md5", "hmac-sha1", "hmac-sha1-etm@openssh.com", "hmac-sha2-256-96",
		"umac-128-etm@openssh.com", "none", "password", "publickey", "keyboard-interactive",
		"gss-group1-sha1-toWM5Slw5Ew8Mqkay+al2g=="}
	headerNames := []string{"strict-transport-security", "a-x-b", "x-content-type-options", "x-frame-options",
		"content-security-policy", "x-powered-by", "server", "x-aspnet-version", "x-custom"}
	methods := []string{"GET", "HEAD", "POST", "OPTIONS", "TRACE", "TRACK", "PUT", "DELETE", "MKCOL", "trace"}
	cert := func() assess.Cert {
		return assess.Cert{
			Subject: "commonName=" + pick(strs), CommonName: pick(strs), SANs: some(strs, 3), Issuer: pick(strs),
			KeyType: pick([]string{"rsa", "ec", "dsa", "ed25519", ""}), KeyBits: []int{0, 192, 256, 1024, 2048, 4096}[r.IntN(6)],
			SigAlgo: pick(strs), SigHash: pick([]string{"", "md5", "sha1", "sha256", "md2"}),
			NotBefore: times[r.IntN(len(times))], NotAfter: times[r.IntN(len(times))],
			SelfSigned: r.IntN(2) == 0, Verified: r.IntN(2) == 0, VerifyError: pick([]string{"", "", "x509: unknown authority"}),
		}
	}
	f := &assess.Facts{
		Target: pick(strs), AssetID: pick([]string{"", "a-1", "a-x"}), Managed: r.IntN(2) == 0,
		Hostnames: some(strs, 3), Collected: times[r.IntN(len(times))], Errors: some(strs, 2),
	}
	for range r.IntN(6) {
		f.Ports = append(f.Ports, assess.Port{Port: []int{21, 22, 23, 80, 443, 512, 513, 514, 990, 3306}[r.IntN(10)],
			Protocol: pick([]string{"tcp", "udp"}), Service: pick(strs), Tunnel: pick([]string{"", "ssl"}), Product: pick(strs)})
	}
	for range r.IntN(3) {
		t := assess.TLS{Port: 443 + r.IntN(3), Versions: some(versions, 3), LeastStrength: pick(grades),
			Warnings: some(strs, 2), Cert: cert()}
		if r.IntN(4) == 0 {
			t.Versions = []string{"TLSv1.3"}
		}
		for _, s := range some(suites, 8) {
			t.Ciphers = append(t.Ciphers, ciphers(pick(versions), pick(grades), s)...)
		}
		f.TLS = append(f.TLS, t)
	}
	for range r.IntN(3) {
		f.SSH = append(f.SSH, assess.SSH{Port: 22, Banner: pick([]string{"SSH-2.0-OpenSSH_9.2", "SSH-1.99-Cisco", "", "SSH-2.0-SSH-1.5"}),
			Protocol: pick([]string{"2.0", "1.99", "1.5", "", "2.1."}), Kex: some(algos, 4), HostKeyAlgorithms: some(algos, 3),
			Ciphers: some(algos, 3), MACs: some(algos, 3), AuthMethods: some(algos, 3),
			HostKeys: []assess.HostKey{{Type: pick([]string{"ssh-rsa", "ssh-dss", "ssh-ed25519"}), Bits: []int{0, 1024, 2048, 3072}[r.IntN(4)]}}})
	}
	for range r.IntN(3) {
		h := assess.HTTP{Port: 80, TLS: r.IntN(2) == 0, Status: []int{0, 200, 301, 302, 404}[r.IntN(5)], Server: pick(strs),
			Headers: map[string]string{}, Methods: some(methods, 4), RedirectsToHTTPS: r.IntN(2) == 0}
		for range r.IntN(5) {
			h.Headers[pick(headerNames)] = pick(strs)
		}
		f.HTTP = append(f.HTTP, h)
	}
	for range r.IntN(2) {
		f.FTP = append(f.FTP, assess.FTP{Port: []int{21, 990}[r.IntN(2)], Banner: pick(strs), Anonymous: r.IntN(2) == 0})
	}
	for range r.IntN(2) {
		f.SNMP = append(f.SNMP, assess.SNMP{Port: 161, DefaultCommunities: some([]string{"public", "private"}, 2)})
	}
	for range r.IntN(2) {
		f.SMB = append(f.SMB, assess.SMB{Port: 445, Dialects: some([]string{"NT LM 0.12", "2.0.2", "3.1.1"}, 3),
			SMBv1: r.IntN(2) == 0, Signing: pick([]string{"", "required", "enabled", "disabled"}), GuestAccess: r.IntN(2) == 0})
	}
	if r.IntN(10) == 0 {
		f.Role = fmt.Sprint("role-", r.IntN(3))
	}
	return f
}

// The untracked programs rest on cel-go's cost estimate being an upper
// bound: check it against the cost the tracker counts, on the test hosts
// and random ones, for every baseline expression that runs untracked.
func TestCostEstimateBoundsActualCost(t *testing.T) {
	p := loadBaseline(t)
	rng := rand.New(rand.NewPCG(5, 6))
	hosts := []*assess.Facts{weakHost(), hardenedHost(), typicalHost()}
	for range 300 {
		hosts = append(hosts, randomHost(rng))
	}
	checked := 0
	for hi, f := range hosts {
		f.Normalize()
		a := newActivation(f, now)
		for _, c := range p.checks {
			for _, x := range []*compiled{c.applies, c.expect, c.evidence} {
				if x == nil || x.fast == nil {
					continue
				}
				_, det, err := x.prg.Eval(a)
				if err != nil || det == nil || det.ActualCost() == nil {
					continue
				}
				checked++
				if got := *det.ActualCost(); got > x.cost.Max {
					t.Errorf("host %d, %s: %q costs %d, estimated at most %d", hi, c.ID, x.src, got, x.cost.Max)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no cost compared")
	}
}
