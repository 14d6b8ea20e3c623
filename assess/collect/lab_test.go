//go:build linux

package collect_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/collect"
	"github.com/reckon-dev/reckon/assess/policy"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/internal/lab"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// The lab's hosts live in network namespaces the test process cannot reach:
// the collector's native probes dial from goroutines of their own, which
// lab.Do cannot move, and collect.Options has no dialer. So the test binary
// runs itself (TestLabCollectorChild) inside the lab's scanner host, where
// the real collector, nmap and the probes all see the lab as a scanner on
// the segment would, and hands back the facts as JSON.

// labChildEnv carries a labRequest to the test binary run as a collector.
const labChildEnv = "RECKON_COLLECT_LAB_REQUEST"

// labPorts are the ports the lab's services use.
const labPorts = "T:21,22,80,443,445,8443,U:161"

type labRequest struct {
	Target       runner.Target `json:"target"`
	Scope        netip.Prefix  `json:"scope"`
	Ports        string        `json:"ports"`
	NoScripts    bool          `json:"no_scripts"`
	PhaseTimeout time.Duration `json:"phase_timeout"`
	// Reply is the file the child writes its labReply to.
	Reply string `json:"reply"`
}

type labReply struct {
	Facts    assess.Facts      `json:"facts"`
	Evidence []assess.Evidence `json:"evidence"`
	Error    string            `json:"error,omitempty"`
}

// TestLabCollectorChild is no test of its own: labCollector runs the test
// binary as it, inside a lab host's namespace, to collect one target.
func TestLabCollectorChild(t *testing.T) {
	raw := os.Getenv(labChildEnv)
	if raw == "" {
		t.Skip("the lab tests' collector, run by them inside a lab host")
	}
	var req labRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		t.Fatal(err)
	}
	sc, err := active.ParseScope("lab", []string{req.Scope.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := collect.New(collect.Options{Scopes: []active.Scope{sc}, Ports: req.Ports, WorkDir: t.TempDir(),
		PhaseTimeout: req.PhaseTimeout, NoScripts: req.NoScripts, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	facts, ev, err := c.Collect(context.Background(), req.Target)
	reply := labReply{Facts: facts, Evidence: ev}
	if err != nil {
		reply.Error = err.Error()
	}
	b, err := json.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(req.Reply, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// labCollector is a runner.Collector that runs the real collector from
// inside a lab host (see TestLabCollectorChild).
type labCollector struct {
	from         *lab.Host
	scope        netip.Prefix
	dir          string
	noScripts    bool
	phaseTimeout time.Duration
}

func (c *labCollector) Collect(ctx context.Context, t runner.Target) (assess.Facts, []assess.Evidence, error) {
	reply, err := os.CreateTemp(c.dir, "reply-*.json")
	if err != nil {
		return assess.Facts{}, nil, err
	}
	reply.Close()
	defer os.Remove(reply.Name())
	req, err := json.Marshal(labRequest{Target: t, Scope: c.scope, Ports: labPorts, NoScripts: c.noScripts,
		PhaseTimeout: c.phaseTimeout, Reply: reply.Name()})
	if err != nil {
		return assess.Facts{}, nil, err
	}
	cmd := c.from.Command(ctx, os.Args[0], "-test.run=^TestLabCollectorChild$", "-test.count=1", "-test.timeout=20m")
	cmd.Env = append(os.Environ(), labChildEnv+"="+string(req))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return assess.Facts{}, nil, fmt.Errorf("collector in %s: %w:\n%s", c.from.Name, err, out)
	}
	var r labReply
	b, err := os.ReadFile(reply.Name())
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return assess.Facts{}, nil, fmt.Errorf("collector in %s: reply: %w:\n%s", c.from.Name, err, out)
	}
	if r.Error != "" {
		return r.Facts, r.Evidence, fmt.Errorf("collector in %s: %s", c.from.Name, r.Error)
	}
	return r.Facts, r.Evidence, nil
}

func newLab(t *testing.T, hosts ...string) *lab.Lab {
	t.Helper()
	lab.Require(t, "nmap", "nginx", "ssh-keygen", "vsftpd", "snmpd")
	specs := []lab.HostSpec{{Name: "scanner"}}
	for _, h := range hosts {
		specs = append(specs, lab.HostSpec{Name: h})
	}
	return lab.New(t, lab.Options{Hosts: specs})
}

func loadBaseline(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../../configs/policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomCommunity is a community no dictionary holds.
func randomCommunity(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "rk-" + hex.EncodeToString(b)
}

// A weak host and a hardened one, each with TLS, SSH, HTTP, FTP, SNMP and SMB,
// are told apart by the baseline policy: for every family, some check
// fails on the weak host and passes on the hardened one.
func TestAssessWeakAndHardened(t *testing.T) {
	l := newLab(t, "weak", "hardened")
	weak, hard := l.Host("weak"), l.Host("hardened")

	weak.TLSServer(8443, true)
	weak.SSHServerWith(22, true)
	weak.HTTPServer("reckon lab: weak")
	weak.FTPServer(true)
	weak.SNMPServer("public")
	weak.SMBServer(true)

	hard.TLSServer(8443, false)
	hard.SSHServerWith(22, false)
	hard.HardenedWebServer("reckon lab: hardened")
	hard.FTPServer(false)
	hard.SNMPServer(randomCommunity(t))
	hard.SMBServer(false)

	pol := loadBaseline(t)
	coll := &labCollector{from: l.Host("scanner"), scope: l.Subnet, dir: t.TempDir(), phaseTimeout: 3 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	hosts := []*lab.Host{weak, hard}
	facts := make([]assess.Facts, len(hosts))
	errs := make([]error, len(hosts))
	took := make([]time.Duration, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			t0 := time.Now()
			facts[i], _, errs[i] = coll.Collect(ctx, runner.Target{Addr: h.IP})
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()

	results := make([]map[string]assess.Result, len(hosts))
	now := time.Now()
	for i, h := range hosts {
		if errs[i] != nil {
			t.Fatalf("%s: %v", h.Name, errs[i])
		}
		f := &facts[i]
		t.Logf("%s (%s): collected in %s; ports %s; errors %q", h.Name, h.IP, took[i].Round(time.Second), portList(f.Ports), f.Errors)
		results[i] = map[string]assess.Result{}
		counts := map[assess.Status]int{}
		for _, r := range pol.Evaluate(f, now) {
			results[i][r.CheckID] = r
			counts[r.Status]++
		}
		t.Logf("%s: %d pass, %d fail, %d error, %d not_applicable", h.Name,
			counts[assess.Pass], counts[assess.Fail], counts[assess.Error], counts[assess.NotApplicable])
	}

	ids := make([]string, 0, len(results[0]))
	for id := range results[0] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	distinguished := map[string][]string{}
	var both []string
	for _, id := range ids {
		w, h := results[0][id], results[1][id]
		t.Logf("%-9s weak %-14s hardened %-14s %s", id, w.Status, h.Status, w.Title)
		if h.Status == assess.Fail {
			t.Logf("          fails on the hardened host too: %v", h.Evidence)
		}
		if w.Status == assess.Fail && h.Status == assess.Pass {
			fam := id[:strings.IndexByte(id, '-')]
			distinguished[fam] = append(distinguished[fam], id)
		}
		if w.Status == assess.NotApplicable && h.Status == assess.NotApplicable {
			both = append(both, id)
		}
	}
	t.Logf("not applicable on both hosts: %s", strings.Join(both, " "))
	for _, fam := range []string{"TLS", "CERT", "SSH", "HTTP", "FTP", "SNMP", "SMB"} {
		if len(distinguished[fam]) == 0 {
			var detail []string
			for _, id := range ids {
				if strings.HasPrefix(id, fam+"-") {
					detail = append(detail, fmt.Sprintf("%s weak=%s hardened=%s (weak evidence %v; hardened evidence %v)",
						id, results[0][id].Status, results[1][id].Status, results[0][id].Evidence, results[1][id].Evidence))
				}
			}
			t.Errorf("no %s check fails on the weak host and passes on the hardened one:\n%s", fam, strings.Join(detail, "\n"))
			continue
		}
		t.Logf("%s told apart by %s", fam, strings.Join(distinguished[fam], " "))
	}
	if t.Failed() {
		for i, h := range hosts {
			b, _ := json.MarshalIndent(facts[i], "", "  ")
			t.Logf("%s facts:\n%s", h.Name, b)
		}
	}
}

// A host assessed twice through the runner, with a port opened and its TLS
// certificate replaced in between, shows exactly those two changes as
// drift.
func TestAssessDriftOnLab(t *testing.T) {
	l := newLab(t, "srv")
	srv := l.Host("srv")
	tlsProc := srv.TLSServer(8443, false)
	srv.SSHServerWith(22, false)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := storetest.Open(t, store.SQLite)
	inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Identity: inventory.DefaultOptions(), FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(ctx)
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	sc, err := active.ParseScope("lab", []string{l.Subnet.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The certificate's fingerprint comes from the native TLS probe, so the
	// NSE phase (a minute of ssl-enum-ciphers) is left out.
	coll := &labCollector{from: l.Host("scanner"), scope: l.Subnet, dir: t.TempDir(), noScripts: true, phaseTimeout: 3 * time.Minute}
	svc := runner.New(runner.Options{Store: st, Inventory: inv, Collector: coll, Policy: loadBaseline(t), PolicyName: "baseline",
		Scopes: []active.Scope{sc}})

	if _, err := inv.Ingest(ctx, "b-lab", "test", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(),
		MAC: srv.MAC.String(), IP: srv.IP.String()}}, true); err != nil {
		t.Fatal(err)
	}
	list, _, err := inv.List(ctx, inventory.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, s := range list {
		if slices.Contains(s.IPs, srv.IP.String()) {
			id = s.ID
		}
	}
	if id == "" {
		t.Fatalf("no asset with %s in %+v", srv.IP, list)
	}

	t0 := time.Now()
	first, err := svc.Assess(ctx, id, runner.TriggerManual, 0, 1)
	if err != nil {
		t.Fatalf("first assessment: %v", err)
	}
	t.Logf("first assessment in %s: ports %s, counts %v, errors %q", time.Since(t0).Round(time.Millisecond),
		portList(first.Facts.Ports), first.Counts, first.Facts.Errors)
	if len(first.Drift) != 0 {
		t.Fatalf("the first assessment has drift: %v", first.Drift)
	}
	before := certOn(first.Facts, 8443)
	if before == "" {
		t.Fatalf("no certificate fingerprint for 8443 in the first assessment: %+v", first.Facts.TLS)
	}

	// A new port, and the TLS server restarted with a new certificate.
	srv.HTTPServer("reckon lab: new port")
	tlsProc.Stop()
	srv.TLSServer(8443, false)

	t0 = time.Now()
	second, err := svc.Assess(ctx, id, runner.TriggerManual, 0, 1)
	if err != nil {
		t.Fatalf("second assessment: %v", err)
	}
	t.Logf("second assessment in %s: ports %s, counts %v, errors %q", time.Since(t0).Round(time.Millisecond),
		portList(second.Facts.Ports), second.Counts, second.Facts.Errors)
	if after := certOn(second.Facts, 8443); after == "" || after == before {
		t.Fatalf("certificate on 8443: %q, then %q", before, after)
	}
	if second.PreviousID != first.ID {
		t.Fatalf("the second assessment's previous is %q, want %q", second.PreviousID, first.ID)
	}
	var got []string
	for _, d := range second.Drift {
		got = append(got, fmt.Sprintf("%s %s/%d", d.Kind, d.Protocol, d.Port))
	}
	want := []string{"port_opened tcp/80", "cert_changed tcp/8443"}
	if !slices.Equal(got, want) {
		var detail []string
		for _, d := range second.Drift {
			detail = append(detail, d.String())
		}
		t.Fatalf("drift %v, want %v:\n%s", got, want, strings.Join(detail, "\n"))
	}
}

func certOn(f *assess.Facts, port int) string {
	if f == nil {
		return ""
	}
	for _, t := range f.TLS {
		if t.Port == port {
			return t.Cert.SHA256
		}
	}
	return ""
}

func portList(ps []assess.Port) string {
	var s []string
	for _, p := range ps {
		label := p.Service
		if p.Tunnel != "" {
			label = p.Tunnel + "/" + label
		}
		s = append(s, fmt.Sprintf("%s/%d=%s", p.Protocol, p.Port, label))
	}
	return strings.Join(s, " ")
}
