package policy

import (
	"github.com/reckon-dev/reckon/assess"

	"os"
	"testing"
	"time"
)

// FuzzParse: any bytes either load or give an error, never a panic; a
// policy that loads evaluates on a weak and a hardened host without one,
// and gives one result per check (plus the build check when it has
// builds).
func FuzzParse(f *testing.F) {
	baseline, err := os.ReadFile("../../configs/policies/baseline.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(baseline)
	f.Add([]byte("checks:\n  - id: A-1\n    title: t\n    severity: low\n    rationale: r\n    applies: \"true\"\n    expect: \"1 + 'a' == 2\"\n"))
	f.Add([]byte("checks:\n  - id: A-1\n    title: t\n    severity: high\n    rationale: r\n    expect: \"tls.all(t, t.versions.size() < 3)\"\n    evidence: \"tls.map(t, t.port)\"\nbuilds:\n  - role: web\n    allow: [tcp/443, ssh]\nroles:\n  - role: web\n    when: \"ports.exists(p, p.port == 443)\"\n"))
	f.Add([]byte("checks: [}"))
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		for _, h := range []func() *assess.Facts{weakHost, hardenedHost} {
			rs := p.Evaluate(h(), now)
			want := len(p.Checks())
			if len(p.Builds()) > 0 {
				want++
			}
			if len(rs) != want {
				t.Fatalf("%d results for %d checks", len(rs), want)
			}
		}
	})
}
