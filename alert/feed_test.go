package alert_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// facts is a collector whose answer the test sets.
type facts struct {
	mu sync.Mutex
	f  assess.Facts
}

func (c *facts) set(f assess.Facts) { c.mu.Lock(); c.f = f; c.mu.Unlock() }

func (c *facts) Collect(context.Context, runner.Target) (assess.Facts, []assess.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f, nil, nil
}

// telnetPolicy fails TEST-TELNET when port 23 is open.
type telnetPolicy struct{}

func (telnetPolicy) Evaluate(f *assess.Facts, _ time.Time) []assess.Result {
	r := assess.Result{CheckID: "TEST-TELNET", Title: "no telnet", Severity: "high", Status: assess.Pass}
	for _, p := range f.Ports {
		if p.Port == 23 {
			r.Status, r.Evidence = assess.Fail, []int{23}
		}
	}
	return []assess.Result{r}
}
func (telnetPolicy) Role(*assess.Facts) string { return "" }
func (telnetPolicy) Version() string           { return "t" }
func (telnetPolicy) Digest() string            { return "t" }

func ports(ps ...int) assess.Facts {
	var f assess.Facts
	for _, p := range ps {
		f.Ports = append(f.Ports, assess.Port{Port: p, Protocol: "tcp", Service: "svc"})
	}
	f.Normalize()
	return f
}

// Assessments and reconciliation verdicts become alerts through the asset
// timeline: a failed check and a port opened fire; closing the drift alert
// as fixed is refused until a reassessment shows the port closed again; an
// unmanaged verdict fires and clears.
func TestFeederFromAssessments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Identity: inventory.DefaultOptions()})
		if err != nil {
			t.Fatal(err)
		}
		inv.Start(ctx)
		t.Cleanup(func() { _ = inv.Stop(context.Background()) })
		if _, err := inv.Ingest(ctx, "b1", "test", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: "00:16:3e:00:00:09", IP: "127.0.0.9"}}, true); err != nil {
			t.Fatal(err)
		}
		var id string
		inv.EachAsset(func(a *inventory.Asset) { id = a.ID.String() })
		sc, _ := active.ParseScope("lo", []string{"127.0.0.0/8"}, nil)
		coll := &facts{f: ports(22)}
		svc := runner.New(runner.Options{Store: st, Inventory: inv, Collector: coll, Policy: telnetPolicy{}, Scopes: []active.Scope{sc}})
		alerts := alert.New(alert.Options{Store: st})
		var got []alert.Change
		feeder := alert.NewFeeder(alert.FeederOptions{Store: st, Alerts: alerts, OnChanges: func(c []alert.Change) { got = append(got, c...) }})
		feed := func() {
			t.Helper()
			for {
				n, err := feeder.Once(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					return
				}
			}
		}
		assessNow := func() {
			t.Helper()
			if _, err := svc.Assess(ctx, id, runner.TriggerManual, 0, 1); err != nil {
				t.Fatal(err)
			}
			feed()
		}

		assessNow() // baseline: ssh only, nothing fails
		if len(got) != 0 {
			t.Fatalf("alerts from a clean first assessment: %+v", got)
		}
		coll.set(ports(22, 23)) // telnet opens
		assessNow()
		list, _, err := alerts.List(ctx, alert.Filter{AssetID: id})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[alert.Kind]alert.Alert{}
		for _, a := range list {
			kinds[a.Kind] = a
		}
		if len(list) != 2 || kinds[alert.KindDrift].ID == "" || kinds[alert.KindCheckFailed].CheckID != "TEST-TELNET" {
			t.Fatalf("alerts after telnet opened: %+v", list)
		}
		dr := kinds[alert.KindDrift]
		if dr.Condition != alert.Firing || dr.Severity != alert.SeverityMedium || dr.Detail["drift"] != "port_opened" {
			t.Fatalf("drift alert: %+v", dr)
		}
		if _, err := alerts.Transition(ctx, dr.ID, alert.TransitionRequest{To: alert.StateTriage}, "ana"); err != nil {
			t.Fatal(err)
		}
		_, err = alerts.Transition(ctx, dr.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed}, "ana")
		var te *alert.TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("closing as fixed while telnet is open: %v", err)
		}

		coll.set(ports(22)) // telnet closed again: the reassessment clears both
		assessNow()
		for _, a := range []alert.Alert{dr, kinds[alert.KindCheckFailed]} {
			cur, err := alerts.Get(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur.Condition != alert.Cleared {
				t.Fatalf("%s alert after the fix: %s", cur.Kind, cur.Condition)
			}
		}
		if _, err := alerts.Transition(ctx, dr.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed, Note: "telnet off"}, "ana"); err != nil {
			t.Fatalf("closing as fixed once cleared: %v", err)
		}
		if n, _, _ := alerts.List(ctx, alert.Filter{AssetID: id}); len(n) != 2 {
			t.Fatalf("the fix opened more alerts: %+v", n)
		}

		// The CMDB verdicts.
		if _, err := inv.SetVerdicts(ctx, []inventory.Verdict{{AssetID: id, Status: "unmanaged", Link: inventory.CMDBLink{Reason: "no CI"}}}); err != nil {
			t.Fatal(err)
		}
		waitFeed := func(kind alert.Kind, cond alert.Condition) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				feed()
				l, _, _ := alerts.List(ctx, alert.Filter{AssetID: id, Kinds: []alert.Kind{kind}})
				if len(l) == 1 && l[0].Condition == cond {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s alert not %s: %+v", kind, cond, l)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		waitFeed(alert.KindUnmanaged, alert.Firing)
		if _, err := inv.SetVerdicts(ctx, []inventory.Verdict{{AssetID: id, Status: "managed", Link: inventory.CMDBLink{CIID: "7", Reason: "serial"}}}); err != nil {
			t.Fatal(err)
		}
		waitFeed(alert.KindUnmanaged, alert.Cleared)

		// A new feeder (a restart) resumes after what was read.
		again := alert.NewFeeder(alert.FeederOptions{Store: st, Alerts: alerts})
		if n, err := again.Once(ctx); err != nil || n != 0 {
			t.Fatalf("a restarted feeder read %d events again (%v)", n, err)
		}
	})
}

func TestEventSignals(t *testing.T) {
	now := time.Now().UTC()
	sig := func(kind string, d map[string]string) []alert.Signal {
		return alert.EventSignals(alert.Event{AssetID: "a1", At: now, Kind: kind, Detail: d})
	}
	if s := sig("cmdb_verdict", map[string]string{"from": "new", "to": "unmanaged"}); len(s) != 1 || s[0].Kind != alert.KindUnmanaged || !s[0].Firing {
		t.Fatalf("unmanaged: %+v", s)
	}
	if s := sig("cmdb_verdict", map[string]string{"from": "conflict", "to": "unmanaged"}); len(s) != 2 || s[1].Kind != alert.KindConflict || s[1].Firing {
		t.Fatalf("conflict to unmanaged: %+v", s)
	}
	if s := sig("cmdb_verdict", map[string]string{"from": "new", "to": "managed"}); len(s) != 0 {
		t.Fatalf("managed: %+v", s)
	}
	opened := sig("config_drift", map[string]string{"drift": "port_opened", "port": "23", "protocol": "tcp", "weaker": "true"})
	closed := sig("config_drift", map[string]string{"drift": "port_closed", "port": "23", "protocol": "tcp", "weaker": "false"})
	if len(opened) != 1 || len(closed) != 1 || !opened[0].Firing || closed[0].Firing || alert.Fingerprint(opened[0]) != alert.Fingerprint(closed[0]) {
		t.Fatalf("a port closed again must clear the port-opened alert: %+v %+v", opened, closed)
	}
	cert := sig("config_drift", map[string]string{"drift": "cert_changed", "port": "443", "protocol": "tcp", "field": "cert", "weaker": "false"})
	if len(cert) != 1 || !cert[0].Firing || cert[0].Severity != alert.SeverityLow {
		t.Fatalf("cert change: %+v", cert)
	}
	if s := sig("check_failed", map[string]string{"check": "TLS-001", "severity": "high", "evidence": `[{"port":443}]`}); len(s) != 1 || s[0].Severity != alert.SeverityHigh || s[0].CheckID != "TLS-001" {
		t.Fatalf("check failed: %+v", s)
	}
	if s := sig("asset_created", nil); len(s) != 0 {
		t.Fatalf("asset_created: %+v", s)
	}
}
