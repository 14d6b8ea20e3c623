package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/netbox"
	"github.com/reckon-dev/reckon/cmdb/netbox/netboxtest"
	"github.com/reckon-dev/reckon/cmdb/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// dataset: web-01 and db-01 are on the network, old-nas is not; rogue-pi
// is on the network and not in NetBox.
func dataset() netboxtest.Dataset {
	old := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	d := netboxtest.Dataset{Tags: []string{"reckon"}, DeviceTypes: []string{"Generic"}}
	for i, name := range []string{"web-01", "db-01", "old-nas"} {
		id := i + 1
		d.Devices = append(d.Devices, netboxtest.Device{ID: id, Name: name, Serial: "SRV-100" + string(rune('1'+i)),
			Site: "HQ", Tenant: "Payments", Role: "server", CustomFields: map[string]any{"owner": "ops-" + name},
			Created: old, LastUpdated: old})
		d.Interfaces = append(d.Interfaces, netboxtest.Interface{ID: id, DeviceID: id, Name: "eth0", PrimaryMACID: id, LastUpdated: old})
		d.MACs = append(d.MACs, netboxtest.MAC{ID: id, Address: "00:16:3E:10:00:0" + string(rune('1'+i)), InterfaceID: id, LastUpdated: old})
		d.IPs = append(d.IPs, netboxtest.IPAddress{ID: id, Address: "10.30.0." + string(rune('1'+i)) + "/24", InterfaceID: id, LastUpdated: old})
	}
	return d
}

type rig struct {
	nb  *netboxtest.Server
	inv *inventory.Inventory
	svc *runner.Service
}

func newRig(t *testing.T, st *store.Store) *rig {
	ctx := context.Background()
	nb := netboxtest.New(t, netboxtest.Options{})
	nb.Seed(dataset())
	inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Identity: inventory.DefaultOptions()})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(ctx)
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	now := time.Now().UTC()
	var obs []discovery.Observation
	for i, h := range []string{"web-01", "db-01", "", "rogue-pi"} {
		if h == "" {
			continue
		}
		obs = append(obs, discovery.Observation{Source: "passive:dhcp", Time: now, MAC: "00:16:3e:10:00:0" + string(rune('1'+i)),
			IP: "10.30.0." + string(rune('1'+i)), Hostnames: []discovery.Hostname{{Name: h, How: "dhcp"}}})
	}
	if _, err := inv.Ingest(ctx, "b1", "test", obs, true); err != nil {
		t.Fatal(err)
	}
	cl, err := netbox.New(netbox.Options{URL: nb.URL, Token: netboxtest.DefaultToken, Timeout: 2 * time.Second, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	svc := runner.New(runner.Options{Store: st, Inventory: inv, Client: cl, StaleAfter: 24 * time.Hour})
	t.Cleanup(svc.Close)
	return &rig{nb: nb, inv: inv, svc: svc}
}

func (r *rig) run(t *testing.T, dry bool) runner.Run {
	t.Helper()
	ctx := context.Background()
	run, err := r.svc.Start(ctx, "test", dry)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != runner.StateQueued {
		t.Fatalf("a new run is %s", run.State)
	}
	r.svc.Wait()
	got, err := r.svc.Get(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// statuses maps each asset's first hostname to its status and owner.
func (r *rig) statuses(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	items, _, err := r.inv.List(context.Background(), inventory.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range items {
		v := s.Status
		if s.CMDB != nil && s.CMDB.Owner != "" {
			v += "/" + s.CMDB.Owner
		}
		out[s.Hostnames[0]] = v
	}
	return out
}

func TestRunVerdictsAndFaults(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		r := newRig(t, st)
		ctx := context.Background()

		// A dry run counts but records nothing.
		dry := r.run(t, true)
		if dry.State != runner.StateSucceeded || dry.Counts.Managed != 2 || dry.Counts.Unmanaged != 1 || dry.Counts.Stale != 1 {
			t.Fatalf("dry run: %+v", dry)
		}
		if got := r.statuses(t); got["rogue-pi"] != inventory.StatusNew || got["web-01"] != inventory.StatusNew {
			t.Fatalf("a dry run changed verdicts: %v", got)
		}

		ok := r.run(t, false)
		if ok.State != runner.StateSucceeded || ok.CIs != 3 || ok.Counts.Managed != 2 || ok.Counts.Unmanaged != 1 ||
			ok.Counts.Conflict != 0 || ok.Counts.Stale != 1 || len(ok.Errors) != 0 || ok.FinishedAt == nil {
			t.Fatalf("run: %+v", ok)
		}
		want := map[string]string{"web-01": "managed/ops-web-01", "db-01": "managed/ops-db-01", "rogue-pi": "unmanaged"}
		got := r.statuses(t)
		for h, v := range want {
			if got[h] != v {
				t.Fatalf("%s is %q, want %q (all: %v)", h, got[h], v, got)
			}
		}
		stale, from, err := r.svc.Stale(ctx)
		if err != nil || from.ID != ok.ID || len(stale) != 1 || stale[0].Name != "old-nas" {
			t.Fatalf("stale %+v from %s (%v), want old-nas from %s", stale, from.ID, err, ok.ID)
		}

		// Every kind of CMDB failure fails the run and changes no verdict,
		// and the stale list stays the last good run's.
		faults := map[string]func(){
			"500":       func() { r.nb.Inject(1000, netboxtest.Fault{Status: 500}) },
			"truncated": func() { r.nb.Inject(1000, netboxtest.Fault{Truncate: true}) },
			"timeout":   func() { r.nb.Inject(1000, netboxtest.Fault{Delay: 3 * time.Second}) },
			"revoked":   func() { r.nb.RevokeToken(netboxtest.DefaultToken) },
		}
		for _, name := range []string{"500", "truncated", "timeout", "revoked"} {
			faults[name]()
			bad := r.run(t, false)
			if bad.State != runner.StateFailed || len(bad.Errors) == 0 {
				t.Fatalf("%s: run %+v, want failed with an error", name, bad)
			}
			if got := r.statuses(t); got["rogue-pi"] != "unmanaged" || got["web-01"] != want["web-01"] {
				t.Fatalf("%s: verdicts changed: %v", name, got)
			}
			if _, from, _ := r.svc.Stale(ctx); from.ID != ok.ID {
				t.Fatalf("%s: stale list now from %s, want %s", name, from.ID, ok.ID)
			}
			t.Logf("%s: %s", name, bad.Errors[0])
			r.nb.ClearFaults()
		}
		if _, err := r.svc.Get(ctx, "nope"); err != runner.ErrNotFound {
			t.Fatalf("Get(nope) = %v", err)
		}
	})
}

// An incremental run reads only what changed since the last read and
// reconciles against the earlier CIs updated with it; the schedule starts
// one when the inventory changes, and not when it has not.
func TestIncremental(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	r := newRig(t, st)
	ctx := context.Background()
	if run := r.run(t, false); run.Incremental || run.Counts.Unmanaged != 1 {
		t.Fatalf("first run: %+v", run)
	}
	// rogue-pi is entered in NetBox now.
	d := dataset()
	now := time.Now().UTC()
	d.Devices = append(d.Devices, netboxtest.Device{ID: 9, Name: "rogue-pi", Site: "HQ", Role: "server", Created: now, LastUpdated: now})
	r.nb.Seed(d)
	r.nb.ResetRequests()

	done := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	go func() { r.svc.Schedule(sctx, 0, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	// The schedule's first check sees an inventory it has not seen yet;
	// the next ones see no change and start nothing.
	var runs []struct {
		ID          string `db:"id"`
		Incremental bool   `db:"incremental"`
		State       string `db:"state"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runs = runs[:0]
		if err := st.DB.SelectContext(ctx, &runs, `SELECT id, incremental, state FROM reconciliations WHERE trigger = 'inventory_changed'`); err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].State == runner.StateSucceeded {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(runs) != 1 || !runs[0].Incremental || runs[0].State != runner.StateSucceeded {
		t.Fatalf("inventory_changed runs: %+v", runs)
	}
	time.Sleep(150 * time.Millisecond) // several more checks, no change
	var n int
	if err := st.DB.GetContext(ctx, &n, `SELECT count(*) FROM reconciliations WHERE trigger = 'inventory_changed'`); err != nil || n != 1 {
		t.Fatalf("%d incremental runs without an inventory change (%v)", n, err)
	}
	run, err := r.svc.Get(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.CIs != 4 || run.Counts.Managed != 3 || run.Counts.Unmanaged != 0 {
		t.Fatalf("incremental run: %+v", run)
	}
	if got := r.statuses(t)["rogue-pi"]; got != "managed" {
		t.Fatalf("rogue-pi is %q after NetBox learnt it", got)
	}
	for _, q := range r.nb.Requests() {
		if q.URL.Query().Get("last_updated__gte") == "" && q.URL.Query().Get("id") == "" && q.URL.Query().Get("device_id") == "" && q.URL.Query().Get("virtual_machine_id") == "" {
			t.Fatalf("an incremental run read everything: %s", q.URL)
		}
	}

	// A new observation makes the schedule run again.
	if _, err := r.inv.Ingest(ctx, "b2", "test", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: "00:16:3e:10:00:09", IP: "10.30.0.9"}}, true); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for n < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_ = st.DB.GetContext(ctx, &n, `SELECT count(*) FROM reconciliations WHERE trigger = 'inventory_changed'`)
	}
	if n != 2 {
		t.Fatalf("%d incremental runs after an inventory change, want 2", n)
	}
}

// A run with push configured lists what it would write in a dry run and
// writes nothing; with the dry run off it writes, each write with the
// configured message.
func TestRunPush(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	r := newRig(t, st)
	cl, err := netbox.New(netbox.Options{URL: r.nb.URL, Token: netboxtest.DefaultToken, MaxRetries: -1,
		DeviceRole: "server", DeviceType: "generic", Site: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		svc := runner.New(runner.Options{Store: st, Inventory: r.inv, Client: cl, Pusher: cl, StaleAfter: 24 * time.Hour,
			Push: cmdb.PushOptions{DryRun: dry, Message: "reckon test push"}})
		r.nb.ResetRequests()
		run, err := svc.Start(context.Background(), "test", false)
		if err != nil {
			t.Fatal(err)
		}
		svc.Wait()
		if run, err = svc.Get(context.Background(), run.ID); err != nil {
			t.Fatal(err)
		}
		if run.State != runner.StateSucceeded || len(run.Changes) == 0 {
			t.Fatalf("dry=%v: %+v", dry, run)
		}
		var rogue bool
		for _, c := range run.Changes {
			if c.Message != "reckon test push" {
				t.Fatalf("change without the message: %+v", c)
			}
			if c.Action == "create" && c.Object == "ipam.ipaddress" && c.Fields["address"] != nil &&
				strings.HasPrefix(c.Fields["address"].(string), "10.30.0.4") {
				rogue = true
			}
		}
		if !rogue {
			t.Fatalf("dry=%v: no address created for rogue-pi: %+v", dry, run.Changes)
		}
		writes := 0
		for _, q := range r.nb.Requests() {
			if q.Method != "GET" {
				writes++
			}
		}
		if dry && writes != 0 || !dry && writes == 0 {
			t.Fatalf("dry=%v: %d writes", dry, writes)
		}
	}
}
