package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/discovery/active/sweep"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// fakeNmap writes a script that plays nmap: it copies a recorded nmap XML
// (../shared/testdata/nmap, copied into discovery/active/testdata) to the
// file given after -oX, after sleeping the seconds in $dir/sleep if any,
// and notes its arguments. Real nmap is tested in discovery/active and in
// the lab; here the server's bookkeeping is what is under test.
func fakeNmap(t *testing.T, fixture string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	xml, err := filepath.Abs(filepath.Join("..", "discovery", "active", "testdata", "nmap", fixture))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(xml); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	script := `#!/bin/sh
echo "$@" >> ` + dir + `/args
out=""
prev=""
for a in "$@"; do
  if [ "$prev" = "-oX" ]; then out="$a"; fi
  prev="$a"
done
if [ -f ` + dir + `/sleep ]; then sleep "$(cat ` + dir + `/sleep)"; fi
cp ` + xml + ` "$out"
`
	path = filepath.Join(dir, "nmap")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

type sweepEnv struct {
	b   *bundle
	svc *sweep.Service
	dir string
}

func setupSweeps(t *testing.T, s *store.Store, fixture string) *sweepEnv {
	t.Helper()
	b := setup(t, s)
	nmap, dir := fakeNmap(t, fixture)
	lo, err := active.ParseScope("lo", []string{"127.0.0.0/8"}, []string{"127.0.0.9/32"})
	if err != nil {
		t.Fatal(err)
	}
	svc := sweep.New(sweep.Options{Store: s, Scopes: []active.Scope{lo}, Nmap: nmap, WorkDir: t.TempDir(), ChunkSize: 1,
		ChunkTimeout: 30 * time.Second, TickEvery: time.Hour,
		Ingest: func(ctx context.Context, id, by string, obs []discovery.Observation) error {
			_, err := b.inv.Ingest(ctx, id, by, obs, true)
			return err
		}})
	q, err := queue.New(queue.Options{Store: s, Workers: 2, Queues: map[string]int{sweep.Queue: 2}, PollInterval: 20 * time.Millisecond,
		Register: func(ws *river.Workers) { svc.RegisterJobs(ws) }})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetClient(q.Client)
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	b.srv.RegisterSweeps(svc)
	b.client = apitest.New(t, b.srv.Handler())
	return &sweepEnv{b: b, svc: svc, dir: dir}
}

func waitRun(t *testing.T, c *apitest.Client, id string, done func(sweep.Run) bool) sweep.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var run sweep.Run
	for time.Now().Before(deadline) {
		r := c.Do("GET", "/api/v1/sweep-runs/"+id, nil)
		if r.Status != 200 {
			t.Fatalf("run: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &run)
		if done(run) {
			return run
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %s never got there: %+v", id, run)
	return run
}

// A sweep through the API: defined, refused when it asks for what its scope
// forbids, run in chunks, its results in the inventory, a second run
// refused while the first runs, cancelled, edited and deleted.
func TestSweepsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		e := setupSweeps(t, s, "discovery-sV.xml")
		op := e.b.client.WithToken(e.b.token(t, "ops", api.RoleOperator))
		viewer := e.b.client.WithToken(e.b.token(t, "dash", api.RoleViewer))

		// Refusals name the field and the rule, before anything runs.
		for body, want := range map[string]string{
			`{"name":"x","scope":"lo","targets":["10.9.9.9"]}`:                 `outside scope "lo"`,
			`{"name":"x","scope":"lo","targets":["127.0.0.9"]}`:                `excluded by scope "lo"`,
			`{"name":"x","scope":"lo","targets":["-oN/tmp/x"]}`:                "targets[0]",
			`{"name":"x","scope":"lo","targets":["127.0.0.1 --script=x"]}`:     "targets[0]",
			`{"name":"x","scope":"nope","targets":["127.0.0.1"]}`:              `"nope" is not a configured scope`,
			`{"name":"x","scope":"lo","targets":["127.0.0.1"],"ports":"-sS"}`:  "ports",
			`{"name":"x","scope":"lo","targets":["127.0.0.1"],"schedule":"x"}`: "schedule",
			`{"name":"x","scope":"lo","targets":["127.0.0.1"],"timing":9}`:     "timing",
			`{"name":"x","scope":"lo","targets":["127.0.0.1"],"bogus":1}`:      "bogus",
		} {
			wantProblem(t, op.Do("POST", "/api/v1/sweeps", body), 400, want)
		}
		wantProblem(t, viewer.Do("POST", "/api/v1/sweeps", map[string]any{"name": "x"}), 403, "needs operator")
		if args, _ := os.ReadFile(filepath.Join(e.dir, "args")); len(args) > 0 {
			t.Fatalf("nmap ran for a refused sweep: %s", args)
		}

		r := op.Do("POST", "/api/v1/sweeps", map[string]any{"name": "loop", "scope": "lo", "targets": []string{"127.0.0.1", "127.0.0.2/31"},
			"ports": "22022,28080", "service_detection": true, "schedule": "@every 1h"})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var sw sweep.Sweep
		r.JSON(t, &sw)
		if sw.Origin != "api" || sw.NextRunAt == nil || !sw.Enabled {
			t.Fatalf("sweep %+v", sw)
		}
		wantProblem(t, op.Do("POST", "/api/v1/sweeps", map[string]any{"name": "loop", "scope": "lo", "targets": []string{"127.0.0.1"}}), 409, "exists")

		// A run: three addresses, a chunk each; the fake answers for
		// 127.0.0.1 every time, and the inventory holds one device.
		os.WriteFile(filepath.Join(e.dir, "sleep"), []byte("1"), 0o600)
		r = op.Do("POST", "/api/v1/sweeps/loop/runs", nil)
		if r.Status != 202 {
			t.Fatalf("run: %d %s", r.Status, r.Body)
		}
		var run sweep.Run
		r.JSON(t, &run)
		wantProblem(t, op.Do("POST", "/api/v1/sweeps/loop/runs", nil), 409, "never runs twice")
		run = waitRun(t, viewer, run.ID, func(r sweep.Run) bool { return sweep.Terminal(r.State) })
		if run.State != sweep.StateSucceeded || run.ChunksTotal != 3 || run.ChunksDone != 3 || run.Percent != 100 || run.Addresses != 3 || run.Observations != 3 {
			t.Fatalf("run %+v", run)
		}
		for _, c := range run.Chunks {
			if len(c.Args) == 0 || !containsArg(c.Args, "-iL") || containsArg(c.Args, "127.0.0.1") {
				t.Fatalf("chunk %d ran nmap with %q: targets belong in an -iL file", c.Index, c.Args)
			}
		}
		a := viewer.Do("GET", "/api/v1/assets?q=127.0.0.1", nil)
		if a.Status != 200 || !strings.Contains(string(a.Body), "OpenSSH") || !strings.Contains(string(a.Body), `"active:nmap"`) {
			t.Fatalf("assets: %d %s", a.Status, a.Body)
		}

		// Cancelled while nmap sleeps: the run ends canceled.
		os.WriteFile(filepath.Join(e.dir, "sleep"), []byte("5"), 0o600)
		r = op.Do("POST", "/api/v1/sweeps/loop/runs", nil)
		r.JSON(t, &run)
		waitRun(t, viewer, run.ID, func(r sweep.Run) bool { return r.State == sweep.StateRunning })
		if r := op.Do("POST", "/api/v1/sweep-runs/"+run.ID+"/cancel", nil); r.Status != 202 {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
		run = waitRun(t, viewer, run.ID, func(r sweep.Run) bool { return sweep.Terminal(r.State) })
		if run.State != sweep.StateCanceled && run.State != sweep.StateFailed {
			t.Fatalf("after cancel: %+v", run)
		}
		wantProblem(t, op.Do("POST", "/api/v1/sweep-runs/"+run.ID+"/cancel", nil), 409, "finished")

		// Edited, listed, deleted.
		r = op.Do("PATCH", "/api/v1/sweeps/loop", map[string]any{"ports": "top:10", "enabled": false})
		if r.Status != 200 {
			t.Fatalf("patch: %d %s", r.Status, r.Body)
		}
		sw = sweep.Sweep{}
		r.JSON(t, &sw)
		if sw.Ports != "top:10" || sw.Enabled || sw.NextRunAt != nil || len(sw.Targets) != 2 {
			t.Fatalf("patched %+v", sw)
		}
		wantProblem(t, op.Do("PATCH", "/api/v1/sweeps/loop", map[string]any{"targets": []string{"8.8.8.8"}}), 400, "outside scope")
		if r := viewer.Do("GET", "/api/v1/sweeps/loop/runs", nil); r.Status != 200 || strings.Count(string(r.Body), `"sweep_name"`) != 2 {
			t.Fatalf("runs: %d %s", r.Status, r.Body)
		}
		if r := op.Do("DELETE", "/api/v1/sweeps/loop", nil); r.Status != 204 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		wantProblem(t, viewer.Do("GET", "/api/v1/sweeps/loop", nil), 404, "no such sweep")
		wantProblem(t, viewer.Do("GET", "/api/v1/sweep-runs/nope", nil), 404, "no such sweep run")
	})
}

// Sweeps from the configuration are kept in step with it and cannot be
// changed through the API; a schedule's tick starts a run once.
func TestConfigSweepsAndSchedule(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	e := setupSweeps(t, s, "discovery-sV.xml")
	op := e.b.client.WithToken(e.b.token(t, "ops", api.RoleOperator))
	ctx := context.Background()
	defs := []sweep.Definition{{Name: "nightly", Scope: "lo", Targets: []string{"127.0.0.1"}, Schedule: "0 3 * * *", InitialRun: true, Enabled: true}}
	if err := e.svc.SyncConfig(ctx, defs); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, op.Do("DELETE", "/api/v1/sweeps/nightly", nil), 409, "configuration")
	wantProblem(t, op.Do("PATCH", "/api/v1/sweeps/nightly", map[string]any{"ports": "22"}), 409, "configuration")
	// initial_run: due now; two ticks start one run.
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	sw, _ := e.svc.Get(ctx, "nightly")
	runs, err := e.svc.ListRuns(ctx, sw.ID, 10)
	if err != nil || len(runs) != 1 || runs[0].Trigger != "schedule" {
		t.Fatalf("runs after two ticks: %+v %v", runs, err)
	}
	if sw.NextRunAt == nil || sw.NextRunAt.Hour() != 3 {
		t.Fatalf("next run %v, want 03:00", sw.NextRunAt)
	}
	// Removed from the configuration: gone.
	if err := e.svc.SyncConfig(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, "nightly"); err == nil {
		t.Fatal("a sweep removed from the configuration stayed")
	}
}

func containsArg(args []string, s string) bool {
	for _, a := range args {
		if a == s || strings.Contains(a, s) {
			return true
		}
	}
	return false
}
