package runner_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// scripted is a collector whose facts the test sets; it can hold a call
// until released.
type scripted struct {
	mu    sync.Mutex
	facts assess.Facts
	hold  chan struct{} // when set, Collect waits on it (or ctx)
	calls atomic.Int32
	began chan netip.Addr
}

func (c *scripted) set(f assess.Facts) {
	c.mu.Lock()
	c.facts = f
	c.mu.Unlock()
}

func (c *scripted) Collect(ctx context.Context, t runner.Target) (assess.Facts, []assess.Evidence, error) {
	c.calls.Add(1)
	c.mu.Lock()
	f, hold, began := c.facts, c.hold, c.began
	c.mu.Unlock()
	if began != nil {
		began <- t.Addr
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return assess.Facts{}, nil, context.Cause(ctx)
		}
	}
	return f, []assess.Evidence{{Kind: "probe", Name: "scripted " + t.Addr.String(), Body: "ok"}}, nil
}

// tinyPolicy fails TEST-PORTS when anything but 22 and 443 is open, and
// TEST-TLS when a TLS service offers TLS 1.0.
type tinyPolicy struct{}

func (tinyPolicy) Evaluate(f *assess.Facts, _ time.Time) []assess.Result {
	ports := assess.Result{CheckID: "TEST-PORTS", Title: "only ssh and https", Severity: "medium", Status: assess.Pass}
	for _, p := range f.Ports {
		if p.Port != 22 && p.Port != 443 {
			ports.Status, ports.Evidence = assess.Fail, []int{p.Port}
		}
	}
	tls := assess.Result{CheckID: "TEST-TLS", Title: "no TLS 1.0", Severity: "high", Status: assess.NotApplicable}
	for _, t := range f.TLS {
		tls.Status = assess.Pass
		if slices.Contains(t.Versions, "TLSv1.0") {
			tls.Status = assess.Fail
		}
	}
	return []assess.Result{ports, tls}
}
func (tinyPolicy) Role(*assess.Facts) string { return "" }
func (tinyPolicy) Version() string           { return "test-1" }
func (tinyPolicy) Digest() string            { return "0123456789abcdef0123" }

func baseFacts() assess.Facts {
	f := assess.Facts{
		Ports: []assess.Port{{Port: 22, Protocol: "tcp", Service: "ssh"}, {Port: 443, Protocol: "tcp", Service: "http", Tunnel: "ssl"}},
		TLS:   []assess.TLS{{Port: 443, Versions: []string{"TLSv1.2"}, Cert: assess.Cert{SHA256: "aaaa", Subject: "commonName=one"}}},
	}
	f.Normalize()
	return f
}

type rig struct {
	st   *store.Store
	inv  *inventory.Inventory
	svc  *runner.Service
	q    *queue.Queue
	coll *scripted
}

func scope(t testing.TB) []active.Scope {
	sc, err := active.ParseScope("loopback", []string{"127.0.0.0/8"}, []string{"127.0.0.99"})
	if err != nil {
		t.Fatal(err)
	}
	return []active.Scope{sc}
}

func newRig(t testing.TB, st *store.Store, opts runner.Options) *rig {
	t.Helper()
	ctx := context.Background()
	inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Identity: inventory.DefaultOptions(), FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(ctx)
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	coll := &scripted{facts: baseFacts()}
	opts.Store, opts.Inventory, opts.Policy, opts.PolicyName, opts.AutoQueue = st, inv, tinyPolicy{}, "tiny", true
	if opts.Collector == nil {
		opts.Collector = coll
	}
	if opts.Scopes == nil {
		opts.Scopes = scope(t)
	}
	svc := runner.New(opts)
	q, err := queue.New(queue.Options{Store: st, Workers: 2, Queues: map[string]int{runner.Queue: 2}, PollInterval: 50 * time.Millisecond,
		SoftStop: time.Second, JobTimeout: time.Second, RescueAfter: 2 * time.Second, Register: svc.RegisterJobs})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetClient(q.Client)
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return &rig{st: st, inv: inv, svc: svc, q: q, coll: coll}
}

// see ingests a host with one address and returns its asset id.
func (r *rig) see(t testing.TB, mac, ip string) string {
	t.Helper()
	ctx := context.Background()
	res, err := r.inv.Ingest(ctx, "b-"+mac+ip, "test", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: mac, IP: ip}}, true)
	if err != nil {
		t.Fatal(err)
	}
	_ = res
	list, _, err := r.inv.List(ctx, inventory.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if slices.Contains(s.IPs, ip) {
			return s.ID
		}
	}
	t.Fatalf("no asset with %s", ip)
	return ""
}

// jobDone waits until River has finished a job.
func (r *rig) jobDone(t testing.TB, id int64) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, err := r.q.Client.JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if job.FinalizedAt != nil {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s", id, job.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls the asset's assessments until n have ended.
func (r *rig) waitFor(t testing.TB, assetID string, n int) []runner.Assessment {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := r.svc.List(context.Background(), assetID, 100)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, a := range list {
			if a.State != "running" {
				done++
			}
		}
		if done >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("asset %s: %d assessments ended, want %d: %+v", assetID, done, n, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewHostAssessedThenDrift(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		r := newRig(t, st, runner.Options{})
		ctx := context.Background()
		id := r.see(t, "00:16:3e:00:00:01", "127.0.0.2")

		first := r.waitFor(t, id, 1)[0]
		if first.State != "succeeded" || first.Trigger != runner.TriggerNew || first.Target != "127.0.0.2" {
			t.Fatalf("first assessment: %+v", first)
		}
		full, err := r.svc.Get(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Facts == nil || full.Facts.AssetID != id || len(full.Facts.Ports) != 2 || len(full.Results) != 2 || len(full.Evidence) != 1 {
			t.Fatalf("stored assessment: %+v", full)
		}
		if full.Counts["pass"] != 2 || full.Score == nil || *full.Score != 100 || full.PolicyVersion != "test-1" || len(full.Drift) != 0 {
			t.Fatalf("first assessment's outcome: counts %v score %v policy %q drift %v", full.Counts, full.Score, full.PolicyVersion, full.Drift)
		}
		job := r.jobDone(t, full.JobID)
		if job.Priority != runner.PriorityNewUnmanaged {
			t.Fatalf("a new unmanaged host's job has priority %d", job.Priority)
		}

		// The host opens 8080 and swaps its certificate.
		f := baseFacts()
		f.Ports = append(f.Ports, assess.Port{Port: 8080, Protocol: "tcp", Service: "http-proxy"})
		f.TLS[0].Cert.SHA256, f.TLS[0].Cert.Subject = "bbbb", "commonName=two"
		r.coll.set(f)
		q, err := r.svc.RunNow(ctx, id)
		if err != nil || q.Duplicate {
			t.Fatalf("run now: %+v, %v", q, err)
		}
		list := r.waitFor(t, id, 2)
		second, err := r.svc.Get(ctx, list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if second.Trigger != runner.TriggerManual || second.PreviousID != first.ID {
			t.Fatalf("second assessment: %+v", second)
		}
		var kinds []string
		for _, d := range second.Drift {
			kinds = append(kinds, fmt.Sprintf("%s %d", d.Kind, d.Port))
		}
		if !slices.Equal(kinds, []string{"cert_changed 443", "port_opened 8080"}) {
			t.Fatalf("drift %v, want exactly the cert swap and the port opened", kinds)
		}
		if second.Counts["fail"] != 1 || *second.Score >= 100 {
			t.Fatalf("second assessment's outcome: %v %v", second.Counts, *second.Score)
		}
		det, err := r.inv.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, ev := range det.Timeline {
			got[ev.Kind]++
			if ev.Kind == runner.EventCheckFailed && ev.Detail["check"] != "TEST-PORTS" {
				t.Fatalf("check_failed event: %v", ev.Detail)
			}
		}
		if got[runner.EventAssessed] != 2 || got[runner.EventDrift] != 2 || got[runner.EventCheckFailed] != 1 {
			t.Fatalf("timeline event counts %v", got)
		}

		// Back to how it was: the check clears, the drift is the reverse.
		r.coll.set(baseFacts())
		r.jobDone(t, second.JobID)
		if _, err := r.svc.RunNow(ctx, id); err != nil {
			t.Fatal(err)
		}
		third := r.waitFor(t, id, 3)[0]
		if third.Counts["fail"] != 0 || len(third.Drift) != 2 {
			t.Fatalf("third assessment: %+v", third)
		}
	})
}

func TestOnePendingJobPerAssetAndCancel(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		r := newRig(t, st, runner.Options{})
		ctx := context.Background()
		hold := make(chan struct{})
		began := make(chan netip.Addr, 10)
		r.coll.mu.Lock()
		r.coll.hold, r.coll.began = hold, began
		r.coll.mu.Unlock()
		id := r.see(t, "00:16:3e:00:00:02", "127.0.0.3")
		select {
		case <-began:
		case <-time.After(30 * time.Second):
			t.Fatal("the new host's assessment did not start")
		}
		// Running: asking again gives the same job.
		q, err := r.svc.RunNow(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Duplicate {
			t.Fatalf("a second job was queued while one runs: %+v", q)
		}
		p, err := r.svc.PendingFor(ctx, id)
		if err != nil || p == nil || p.JobID != q.JobID || p.State != "running" {
			t.Fatalf("pending: %+v %v (job %d)", p, err, q.JobID)
		}
		state, err := r.svc.Cancel(ctx, q.JobID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cancel answered %s", state)
		list := r.waitFor(t, id, 1)
		if list[0].State != "cancelled" {
			t.Fatalf("cancelled assessment: %+v", list[0])
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			job, err := r.q.Client.JobGet(ctx, q.JobID)
			if err != nil {
				t.Fatal(err)
			}
			if job.State == "cancelled" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job state %s after cancel", job.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := r.svc.Cancel(ctx, 999999); !errors.Is(err, runner.ErrNotFound) {
			t.Fatalf("cancel of a missing job: %v", err)
		}
		close(hold)
	})
}

func TestOutOfScopeNeverProbed(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	r := newRig(t, st, runner.Options{})
	ctx := context.Background()
	id := r.see(t, "00:16:3e:00:00:03", "127.0.0.99") // excluded
	if _, err := r.svc.RunNow(ctx, id); !errors.Is(err, runner.ErrOutOfScope) {
		t.Fatalf("run now on an excluded address: %v", err)
	}
	// No job is queued for it either, now or when it is due.
	other := r.see(t, "00:16:3e:00:00:13", "127.0.0.13")
	r.waitFor(t, other, 1)
	if p, err := r.svc.PendingFor(ctx, id); err != nil || p != nil {
		t.Fatalf("a job for an out-of-scope asset: %+v %v", p, err)
	}
	if list, _ := r.svc.List(ctx, id, 10); len(list) != 0 {
		t.Fatalf("assessments of an out-of-scope asset: %+v", list)
	}
	if n, err := r.svc.QueueDue(ctx); err != nil || n != 0 {
		t.Fatalf("due: %d %v", n, err)
	}
	if n := r.coll.calls.Load(); n != 1 {
		t.Fatalf("collector called %d times, want once (the in-scope host)", n)
	}
}

func TestQueueDue(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	r := newRig(t, st, runner.Options{Every: 24 * time.Hour, EveryByScope: map[string]time.Duration{"loopback": time.Hour}, Now: clock})
	ctx := context.Background()
	id := r.see(t, "00:16:3e:00:00:04", "127.0.0.4")
	r.jobDone(t, r.waitFor(t, id, 1)[0].JobID)
	if n, err := r.svc.QueueDue(ctx); err != nil || n != 0 {
		t.Fatalf("just assessed, queued %d (%v)", n, err)
	}
	now = now.Add(2 * time.Hour) // past the scope's hour, not the day
	if n, err := r.svc.QueueDue(ctx); err != nil || n != 1 {
		t.Fatalf("due after the scope's interval: queued %d (%v)", n, err)
	}
	list := r.waitFor(t, id, 2)
	if list[0].Trigger != runner.TriggerPeriodic {
		t.Fatalf("periodic assessment: %+v", list[0])
	}
}

// TestCrashedWorkerJobTakenUp: a worker process killed mid-assessment
// leaves its job running; another worker rescues it and it finishes once.
func TestCrashedWorkerJobTakenUp(t *testing.T) {
	opts := storetest.Options(t, store.Postgres)
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "began")
	child := exec.Command(os.Args[0], "-test.run", "^TestCrashChild$", "-test.v")
	child.Env = append(os.Environ(), "RECKON_CRASH_CHILD_URL="+opts.URL, "RECKON_CRASH_CHILD_MARKER="+marker)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill() //nolint:errcheck
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child worker never started its assessment")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	// This process takes over: its collector answers at once.
	r := newRig(t, st, runner.Options{JobTimeout: time.Second})
	var id string
	r.inv.EachAsset(func(a *inventory.Asset) { id = a.ID.String() })
	list := r.waitFor(t, id, 2)
	states := map[string]int{}
	for _, a := range list {
		states[a.State]++
	}
	if states["succeeded"] != 1 || states["failed"] != 1 || len(list) != 2 {
		t.Fatalf("assessments after the crash: %+v", list)
	}
	if list[0].State != "succeeded" || list[0].Attempt != 2 || list[1].Attempt != 1 || list[0].JobID != list[1].JobID {
		t.Fatalf("the rescued job: %+v", list)
	}
	// It finishes once: no further attempt comes.
	time.Sleep(3 * time.Second)
	if n := r.coll.calls.Load(); n != 1 {
		t.Fatalf("collector ran %d times after the rescue", n)
	}
	job, err := r.q.Client.JobGet(context.Background(), list[0].JobID)
	if err != nil || job.State != "completed" {
		t.Fatalf("job after rescue: %v %v", job.State, err)
	}
}

// TestCrashChild is the worker TestCrashedWorkerJobTakenUp kills.
func TestCrashChild(t *testing.T) {
	url := os.Getenv("RECKON_CRASH_CHILD_URL")
	if url == "" {
		t.Skip("run by TestCrashedWorkerJobTakenUp only")
	}
	st, err := store.Open(context.Background(), store.Options{Kind: store.Postgres, URL: url, MaxOpenConns: 5})
	if err != nil {
		t.Fatal(err)
	}
	began := make(chan netip.Addr, 1)
	coll := &scripted{facts: baseFacts(), hold: make(chan struct{}), began: began}
	r := newRig(t, st, runner.Options{Collector: coll, JobTimeout: time.Minute})
	r.see(t, "00:16:3e:00:00:05", "127.0.0.5")
	<-began
	if err := os.WriteFile(os.Getenv("RECKON_CRASH_CHILD_MARKER"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {} // killed here
}

// A run asked for while the asset's job runs is not lost: it follows once
// that job ends.
func TestRunDuringRunFollows(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		r := newRig(t, st, runner.Options{})
		ctx := context.Background()
		hold := make(chan struct{})
		began := make(chan netip.Addr, 10)
		r.coll.mu.Lock()
		r.coll.hold, r.coll.began = hold, began
		r.coll.mu.Unlock()
		id := r.see(t, "00:16:3e:00:00:06", "127.0.0.6")
		<-began
		q, err := r.svc.RunNow(ctx, id)
		if err != nil || !q.Duplicate {
			t.Fatalf("run now during a run: %+v %v", q, err)
		}
		r.coll.mu.Lock()
		r.coll.hold = nil
		r.coll.mu.Unlock()
		close(hold)
		list := r.waitFor(t, id, 2)
		if list[0].Trigger != runner.TriggerChanged || list[1].Trigger != runner.TriggerNew || list[0].JobID == list[1].JobID {
			t.Fatalf("assessments: %+v", list)
		}
	})
}
