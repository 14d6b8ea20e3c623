package alert_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// t0 is an hour ago: signals are stamped t0 + n minutes, all in the past.
var t0 = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func drift(asset, key string, min int, firing bool, detail map[string]any) alert.Signal {
	return alert.Signal{Kind: alert.KindDrift, Severity: alert.SeverityHigh, AssetID: asset, Key: key,
		Title: "drift " + key, Detail: detail, At: at(min), Firing: firing}
}

func observe(t *testing.T, s *alert.Store, sigs ...alert.Signal) []alert.Change {
	t.Helper()
	ch, err := s.Observe(context.Background(), sigs)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return ch
}

// open fires one drift signal and returns its new alert.
func open(t *testing.T, s *alert.Store, asset, key string) alert.Alert {
	t.Helper()
	ch := observe(t, s, drift(asset, key, 0, true, map[string]any{"after": "telnet"}))
	if len(ch) != 1 || ch[0].Type != alert.ChangeOpened {
		t.Fatalf("opening %s %s: changes %+v", asset, key, ch)
	}
	return ch[0].Alert
}

func move(t *testing.T, s *alert.Store, id string, req alert.TransitionRequest, by string) alert.Alert {
	t.Helper()
	a, err := s.Transition(context.Background(), id, req, by)
	if err != nil {
		t.Fatalf("Transition to %s (%s): %v", req.To, req.Resolution, err)
	}
	return a
}

func get(t *testing.T, s *alert.Store, id string) alert.Alert {
	t.Helper()
	a, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return a
}

// refused checks that err is a refusal whose reason contains want.
func refused(t *testing.T, err error, want string) {
	t.Helper()
	var te *alert.TransitionError
	if !errors.Is(err, alert.ErrTransition) || !errors.As(err, &te) {
		t.Fatalf("got %v, want a refusal saying %q", err, want)
	}
	if !strings.Contains(te.Reason, want) {
		t.Fatalf("refused for %q, want a reason containing %q", te.Reason, want)
	}
}

func newStore(st *store.Store) *alert.Store { return alert.New(alert.Options{Store: st}) }

func TestFingerprint(t *testing.T) {
	a := alert.Signal{Kind: alert.KindDrift, AssetID: "a1", Key: "Port_Opened tcp/23"}
	b := alert.Signal{Kind: alert.KindDrift, AssetID: "a1", Key: "  port_opened TCP/23 ", Detail: map[string]any{"x": 1}, Firing: true}
	if alert.Fingerprint(a) != alert.Fingerprint(b) {
		t.Error("keys differing in case and spaces gave different fingerprints")
	}
	for _, c := range []alert.Signal{
		{Kind: alert.KindDrift, AssetID: "a2", Key: a.Key},
		{Kind: alert.KindCheckFailed, AssetID: "a1", Key: a.Key},
		{Kind: alert.KindDrift, AssetID: "a1", CheckID: "ssh.root", Key: a.Key},
		{Kind: alert.KindDrift, AssetID: "a1", Key: "port_opened tcp/24"},
	} {
		if alert.Fingerprint(c) == alert.Fingerprint(a) {
			t.Errorf("%+v has the fingerprint of %+v", c, a)
		}
	}
	// The check id slot holds the kind when there is no check: a check
	// named like the kind is the same condition.
	if alert.Fingerprint(alert.Signal{Kind: alert.KindHealth, CheckID: "health", Key: "sensor"}) !=
		alert.Fingerprint(alert.Signal{Kind: alert.KindHealth, Key: "sensor"}) {
		t.Error("an empty check id is not the kind")
	}
	if len(alert.Fingerprint(a)) != 64 {
		t.Errorf("fingerprint %q is not sha256 hex", alert.Fingerprint(a))
	}
}

func TestObserveRefusesBadSignals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		for _, sig := range []alert.Signal{
			{Kind: "weird", Severity: alert.SeverityLow, Firing: true},
			{Kind: alert.KindDrift, Severity: "urgent", Firing: true},
			{Kind: alert.KindDrift, Firing: true},
		} {
			ok := drift("a1", "k", 0, true, nil)
			if _, err := s.Observe(ctx, []alert.Signal{ok, sig}); err == nil {
				t.Errorf("Observe accepted %+v", sig)
			}
		}
		// The whole batch was refused: nothing stored.
		if list, _, err := s.List(ctx, alert.Filter{}); err != nil || len(list) != 0 {
			t.Fatalf("after refused batches: %d alerts, %v", len(list), err)
		}
		// A cleared signal may come without a severity.
		if ch := observe(t, s, alert.Signal{Kind: alert.KindHealth, Key: "sensor eth1"}); len(ch) != 0 {
			t.Fatalf("a cleared signal for no alert changed %+v", ch)
		}
	})
}

func TestDedup(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ch := observe(t, s, drift("a1", "port_opened tcp/23", 0, true, map[string]any{"after": "telnet", "assessment_id": "as1"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeOpened {
			t.Fatalf("first signal: %+v", ch)
		}
		first := ch[0].Alert
		if first.Workflow != alert.StateNew || first.Condition != alert.Firing || first.FireCount != 1 || first.Kind != alert.KindDrift {
			t.Fatalf("new alert %+v", first)
		}
		ch = observe(t, s, drift("a1", " PORT_OPENED tcp/23", 5, true, map[string]any{"after": "telnetd", "assessment_id": "as2"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeUpdated || ch[0].Refired || ch[0].Alert.ID != first.ID {
			t.Fatalf("same condition again: %+v", ch)
		}
		a := get(t, s, first.ID)
		if a.FireCount != 2 || !a.LastFiredAt.Equal(at(5)) || !a.FirstFiredAt.Equal(at(0)) || a.Detail["after"] != "telnetd" {
			t.Fatalf("after the second firing: count %d first %v last %v detail %v", a.FireCount, a.FirstFiredAt, a.LastFiredAt, a.Detail)
		}
		if len(a.Occurrences) != 2 || a.Occurrences[0].Detail["assessment_id"] != "as1" || a.Occurrences[1].Detail["assessment_id"] != "as2" {
			t.Fatalf("occurrences %+v", a.Occurrences)
		}
		if list, _, err := s.List(context.Background(), alert.Filter{}); err != nil || len(list) != 1 {
			t.Fatalf("List: %d alerts, %v; want 1", len(list), err)
		}
		// The same condition twice in one batch, and another condition.
		ch = observe(t, s,
			drift("a1", "port_opened tcp/23", 6, true, nil),
			drift("a1", "port_opened tcp/2323", 6, true, nil),
			drift("a1", "port_opened tcp/23", 7, true, nil))
		if len(ch) != 3 {
			t.Fatalf("batch changes %+v", ch)
		}
		if a := get(t, s, first.ID); a.FireCount != 4 || !a.LastFiredAt.Equal(at(7)) {
			t.Fatalf("after the batch: count %d last %v", a.FireCount, a.LastFiredAt)
		}
		if list, _, _ := s.List(context.Background(), alert.Filter{}); len(list) != 2 {
			t.Fatalf("%d alerts, want 2", len(list))
		}
	})
}

func TestClearAndFireAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		a := open(t, s, "a1", "cert_changed tcp/443")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		ch := observe(t, s, drift("a1", "cert_changed tcp/443", 10, false, map[string]any{"assessment_id": "as3"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeCleared {
			t.Fatalf("clearing: %+v", ch)
		}
		got := get(t, s, a.ID)
		if got.Condition != alert.Cleared || got.ClearedAt == nil || !got.ClearedAt.Equal(at(10)) || got.Workflow != alert.StateTriage {
			t.Fatalf("cleared alert: condition %s cleared_at %v workflow %s", got.Condition, got.ClearedAt, got.Workflow)
		}
		if got.Detail["after"] != "telnet" {
			t.Errorf("a cleared signal replaced the firing detail: %v", got.Detail)
		}
		// Cleared again, or a clearing older than the clear: nothing changes.
		if ch := observe(t, s, drift("a1", "cert_changed tcp/443", 11, false, nil)); len(ch) != 0 {
			t.Fatalf("clearing twice: %+v", ch)
		}
		// A firing older than the clear is old news.
		if ch := observe(t, s, drift("a1", "cert_changed tcp/443", 9, true, nil)); len(ch) != 0 {
			t.Fatalf("a late firing: %+v", ch)
		}
		ch = observe(t, s, drift("a1", "cert_changed tcp/443", 20, true, map[string]any{"after": "other"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeUpdated || !ch[0].Refired {
			t.Fatalf("firing again: %+v", ch)
		}
		got = get(t, s, a.ID)
		if got.Condition != alert.Firing || got.ClearedAt != nil || got.FireCount != 2 || got.Workflow != alert.StateTriage {
			t.Fatalf("fired again: %+v", got)
		}
		// A clearing older than the latest firing is ignored.
		if ch := observe(t, s, drift("a1", "cert_changed tcp/443", 15, false, nil)); len(ch) != 0 {
			t.Fatalf("a late clearing: %+v", ch)
		}
		var conds []alert.Condition
		for _, o := range get(t, s, a.ID).Occurrences {
			conds = append(conds, o.Condition)
		}
		if want := []alert.Condition{alert.Firing, alert.Cleared, alert.Firing}; !slices.Equal(conds, want) {
			t.Fatalf("occurrences %v, want %v", conds, want)
		}
	})
}

func TestAllowedTransitions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		a := open(t, s, "a1", "port_opened tcp/23")

		got := move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage, Note: "looking"}, "alice")
		if got.Workflow != alert.StateTriage || got.AckedAt == nil || got.Assignee != "alice" {
			t.Fatalf("new -> triage: %+v", got)
		}
		acked := *got.AckedAt
		got = move(t, s, a.ID, alert.TransitionRequest{To: alert.StateEscalated, Note: "needs the network team"}, "alice")
		if got.Workflow != alert.StateEscalated || got.EscalatedAt == nil {
			t.Fatalf("triage -> escalated: %+v", got)
		}
		got = move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage, Note: "back to us"}, "bob")
		if got.Workflow != alert.StateTriage || !got.AckedAt.Equal(acked) || got.Assignee != "alice" {
			t.Fatalf("escalated -> triage: %+v", got)
		}
		got = move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive, Note: "telnet removed by hand"}, "bob")
		if got.Workflow != alert.StateClosed || got.Resolution != alert.TruePositive || got.ClosedAt == nil {
			t.Fatalf("triage -> closed: %+v", got)
		}
		want := []struct {
			from, to alert.State
			by, note string
		}{
			{alert.StateNew, alert.StateTriage, "alice", "looking"},
			{alert.StateTriage, alert.StateEscalated, "alice", "needs the network team"},
			{alert.StateEscalated, alert.StateTriage, "bob", "back to us"},
			{alert.StateTriage, alert.StateClosed, "bob", "telnet removed by hand"},
		}
		if len(got.Transitions) != len(want) {
			t.Fatalf("transitions %+v", got.Transitions)
		}
		for i, w := range want {
			tr := got.Transitions[i]
			if tr.From != w.from || tr.To != w.to || tr.By != w.by || tr.Note != w.note || tr.At.IsZero() || time.Since(tr.At) > time.Minute {
				t.Errorf("transition %d: %+v, want %+v", i, tr, w)
			}
		}
		if got.Transitions[3].Resolution != alert.TruePositive {
			t.Errorf("closing transition has resolution %q", got.Transitions[3].Resolution)
		}

		// escalated -> closed, as an authorized change taken as the new baseline.
		b := open(t, s, "a2", "port_opened tcp/8080")
		move(t, s, b.ID, alert.TransitionRequest{To: alert.StateTriage}, "carol")
		move(t, s, b.ID, alert.TransitionRequest{To: alert.StateEscalated}, "carol")
		got = move(t, s, b.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.AuthorizedChange, ChangeRef: "CHG0042",
			AcceptBaseline: true, Note: "new app server"}, "dave")
		last := got.Transitions[len(got.Transitions)-1]
		if got.Resolution != alert.AuthorizedChange || got.ChangeRef != "CHG0042" || !last.AcceptBaseline || last.ChangeRef != "CHG0042" || last.From != alert.StateEscalated {
			t.Fatalf("escalated -> closed as authorized change: %+v, last %+v", got, last)
		}

		// Every other resolution closes from triage.
		for i, req := range []alert.TransitionRequest{
			{To: alert.StateClosed, Resolution: alert.FalsePositive},
			{To: alert.StateClosed, Resolution: alert.Duplicate, Note: "same as the other one"},
			{To: alert.StateClosed, Resolution: alert.AcceptedRisk, ExpiresAt: new(time.Now().Add(30 * 24 * time.Hour))},
		} {
			c := open(t, s, "a3", fmt.Sprint("k", i))
			move(t, s, c.ID, alert.TransitionRequest{To: alert.StateTriage}, "erin")
			got := move(t, s, c.ID, req, "erin")
			if got.Resolution != req.Resolution || got.Workflow != alert.StateClosed {
				t.Errorf("closing as %s: %+v", req.Resolution, got)
			}
			if req.Resolution == alert.AcceptedRisk && (got.RiskExpiresAt == nil || got.Transitions[1].ExpiresAt == nil) {
				t.Errorf("accepted risk without its expiry: %+v", got)
			}
		}
	})
}

func TestRefusedTransitions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		fresh := open(t, s, "a1", "new one")
		triaged := open(t, s, "a1", "triaged one")
		move(t, s, triaged.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		closed := open(t, s, "a1", "closed one")
		move(t, s, closed.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		move(t, s, closed.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive}, "alice")
		past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)

		for _, c := range []struct {
			name string
			id   string
			req  alert.TransitionRequest
			want string
		}{
			{"unknown state", triaged.ID, alert.TransitionRequest{To: "done"}, `unknown state "done"`},
			{"back to new", triaged.ID, alert.TransitionRequest{To: alert.StateNew}, "goes back to new only by itself"},
			{"same state", triaged.ID, alert.TransitionRequest{To: alert.StateTriage}, "already in triage"},
			{"new -> closed", fresh.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Duplicate}, "taken to triage before it is closed"},
			{"new -> escalated", fresh.ID, alert.TransitionRequest{To: alert.StateEscalated}, "taken to triage before it is escalated"},
			{"closed -> triage", closed.ID, alert.TransitionRequest{To: alert.StateTriage}, "a closed alert is not moved by hand"},
			{"no resolution", triaged.ID, alert.TransitionRequest{To: alert.StateClosed}, "closing needs a resolution"},
			{"unknown resolution", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: "meh"}, `unknown resolution "meh"`},
			{"resolution when escalating", triaged.ID, alert.TransitionRequest{To: alert.StateEscalated, Resolution: alert.Fixed}, "resolution is given only when closing"},
			{"fields when escalating", triaged.ID, alert.TransitionRequest{To: alert.StateEscalated, ChangeRef: "CHG1", AcceptBaseline: true}, "change_ref, accept_baseline are given only when closing"},
			{"authorized change without ref", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.AuthorizedChange, ChangeRef: "  "}, "authorized_change needs change_ref"},
			{"baseline without authorized change", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive, AcceptBaseline: true}, "accept_baseline goes with authorized_change only"},
			{"accepted risk without expiry", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.AcceptedRisk}, "accepted_risk needs expires_at"},
			{"accepted risk expired", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.AcceptedRisk, ExpiresAt: &past}, "needs an expires_at in the future"},
			{"expiry on another resolution", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive, ExpiresAt: &future}, "expires_at goes with accepted_risk only"},
			{"fixed while firing", triaged.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed}, "fixed is accepted once a later assessment shows the condition cleared; it still fires (last at " + at(0).Format(time.RFC3339) + ")"},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := get(t, s, c.id)
				_, err := s.Transition(ctx, c.id, c.req, "mallory")
				refused(t, err, c.want)
				after := get(t, s, c.id)
				if after.Workflow != before.Workflow || len(after.Transitions) != len(before.Transitions) {
					t.Fatalf("a refused move changed the alert: %s -> %s, %d -> %d transitions",
						before.Workflow, after.Workflow, len(before.Transitions), len(after.Transitions))
				}
			})
		}
		if _, err := s.Transition(ctx, "no-such-alert", alert.TransitionRequest{To: alert.StateTriage}, "alice"); !errors.Is(err, alert.ErrNotFound) {
			t.Errorf("moving a missing alert: %v", err)
		}
		if _, err := s.Transition(ctx, fresh.ID, alert.TransitionRequest{To: alert.StateTriage}, " "); err == nil || errors.Is(err, alert.ErrTransition) {
			t.Errorf("a move by no one: %v", err)
		}
	})
}

func TestFixedNeedsTheConditionCleared(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		a := open(t, s, "a1", "ssh_weakened tcp/22")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		_, err := s.Transition(context.Background(), a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed}, "alice")
		refused(t, err, "it still fires")
		observe(t, s, drift("a1", "ssh_weakened tcp/22", 30, false, map[string]any{"assessment_id": "as9"}))
		got := move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed, Note: "weak kex disabled"}, "alice")
		if got.Workflow != alert.StateClosed || got.Resolution != alert.Fixed {
			t.Fatalf("closing as fixed once cleared: %+v", got)
		}
	})
}

func TestRegressionReopens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		a := open(t, s, "a1", "port_opened tcp/23")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		observe(t, s, drift("a1", "port_opened tcp/23", 10, false, nil))
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed}, "alice")

		ch := observe(t, s, drift("a1", "port_opened tcp/23", 20, true, map[string]any{"after": "telnet"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeReopened || ch[0].ClosedAs != alert.Fixed {
			t.Fatalf("firing after a close: %+v", ch)
		}
		got := get(t, s, a.ID)
		if got.Workflow != alert.StateNew || !got.Regression || got.ReopenedCount != 1 || got.Resolution != "" ||
			got.ClosedAt != nil || got.AckedAt != nil || got.Assignee != "" || got.Condition != alert.Firing || got.FireCount != 2 {
			t.Fatalf("reopened alert: %+v", got)
		}
		last := got.Transitions[len(got.Transitions)-1]
		if last.By != alert.SystemActor || last.From != alert.StateClosed || last.To != alert.StateNew ||
			last.Note != "fired again after being closed as fixed" {
			t.Fatalf("automatic transition %+v", last)
		}
		// The regression is worked like any alert.
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "bob")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive}, "bob")
		observe(t, s, drift("a1", "port_opened tcp/23", 30, true, nil))
		if got := get(t, s, a.ID); got.ReopenedCount != 2 || got.Workflow != alert.StateNew {
			t.Fatalf("second regression: %+v", got)
		}
		// A clearing does not reopen.
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "bob")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive}, "bob")
		if ch := observe(t, s, drift("a1", "port_opened tcp/23", 40, false, nil)); len(ch) != 1 || ch[0].Alert.Workflow != alert.StateClosed {
			t.Fatalf("clearing a closed alert: %+v", ch)
		}
	})
}

func TestAcceptedRiskSuppressesUntilExpiry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		expiry := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
		risk := func(key string) alert.Alert {
			a := open(t, s, "a1", key)
			move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
			return move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.AcceptedRisk, ExpiresAt: &expiry,
				Note: "legacy printer, replaced next quarter"}, "alice")
		}
		a := risk("snmp_community_changed udp/161")
		if a.RiskExpiresAt == nil || !a.RiskExpiresAt.Equal(expiry) {
			t.Fatalf("risk expiry %v, want %v", a.RiskExpiresAt, expiry)
		}
		gone := risk("ftp_anonymous_changed tcp/21")

		ch := observe(t, s, drift("a1", "snmp_community_changed udp/161", 30, true, map[string]any{"after": "public"}))
		if len(ch) != 1 || ch[0].Type != alert.ChangeSuppressed || ch[0].ClosedAs != alert.AcceptedRisk {
			t.Fatalf("firing while the risk is accepted: %+v", ch)
		}
		got := get(t, s, a.ID)
		if got.Workflow != alert.StateClosed || got.FireCount != 2 || len(got.Occurrences) != 2 || got.Regression {
			t.Fatalf("suppressed alert: %+v", got)
		}
		// The other one's condition clears: it stays closed at expiry.
		observe(t, s, drift("a1", "ftp_anonymous_changed tcp/21", 31, false, nil))

		if ch, err := s.ReopenExpired(ctx, time.Now()); err != nil || len(ch) != 0 {
			t.Fatalf("ReopenExpired before expiry: %+v, %v", ch, err)
		}
		ch, err := s.ReopenExpired(ctx, expiry.Add(time.Hour))
		if err != nil || len(ch) != 1 || ch[0].Type != alert.ChangeReopened || ch[0].Alert.ID != a.ID || ch[0].ClosedAs != alert.AcceptedRisk {
			t.Fatalf("ReopenExpired after expiry: %+v, %v", ch, err)
		}
		got = get(t, s, a.ID)
		last := got.Transitions[len(got.Transitions)-1]
		if got.Workflow != alert.StateNew || got.RiskExpiresAt != nil || got.ReopenedCount != 1 || last.By != alert.SystemActor ||
			!strings.Contains(last.Note, "accepted risk expired") {
			t.Fatalf("reopened risk: %+v, last transition %+v", got, last)
		}
		if got := get(t, s, gone.ID); got.Workflow != alert.StateClosed {
			t.Fatalf("an expired risk whose condition cleared was reopened: %+v", got)
		}
		if ch, _ := s.ReopenExpired(ctx, expiry.Add(time.Hour)); len(ch) != 0 {
			t.Fatalf("ReopenExpired twice: %+v", ch)
		}
		// A firing after the expiry reopens it as a regression.
		late := drift("a1", "ftp_anonymous_changed tcp/21", 0, true, nil)
		late.At = expiry.Add(time.Minute)
		ch = observe(t, s, late)
		if len(ch) != 1 || ch[0].Type != alert.ChangeReopened || !ch[0].Alert.Regression ||
			!strings.Contains(get(t, s, gone.ID).Transitions[2].Note, "fired again after being closed as accepted_risk") {
			t.Fatalf("firing after the expiry: %+v", ch)
		}
	})
}

func TestFalsePositiveAndAuthorizedChange(t *testing.T) {
	for _, c := range []struct {
		res alert.Resolution
		ref string
	}{{alert.FalsePositive, ""}, {alert.AuthorizedChange, "CHG7"}} {
		t.Run(string(c.res), func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, st *store.Store) {
				s := newStore(st)
				detail := func(after, assessment string) map[string]any {
					return map[string]any{"before": "OpenSSH 8.9", "after": after, "assessment_id": assessment}
				}
				ch := observe(t, s, drift("a1", "version_changed tcp/22", 0, true, detail("OpenSSH 9.6", "as1")))
				a := ch[0].Alert
				move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
				move(t, s, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: c.res, ChangeRef: c.ref}, "alice")

				// The identical condition, seen by a later assessment.
				ch = observe(t, s, drift("a1", "version_changed tcp/22", 10, true, detail("OpenSSH 9.6", "as2")))
				if len(ch) != 1 || ch[0].Type != alert.ChangeSuppressed || ch[0].Alert.Workflow != alert.StateClosed {
					t.Fatalf("identical firing: %+v", ch)
				}
				// The same after clearing and coming back.
				observe(t, s, drift("a1", "version_changed tcp/22", 11, false, nil))
				if ch := observe(t, s, drift("a1", "version_changed tcp/22", 12, true, detail("OpenSSH 9.6", "as3"))); ch[0].Type != alert.ChangeSuppressed {
					t.Fatalf("identical firing after a clear: %+v", ch)
				}
				// Another detail reopens it.
				ch = observe(t, s, drift("a1", "version_changed tcp/22", 20, true, detail("OpenSSH 7.4", "as4")))
				if len(ch) != 1 || ch[0].Type != alert.ChangeReopened || !ch[0].Alert.Regression || ch[0].Alert.Workflow != alert.StateNew {
					t.Fatalf("different firing: %+v", ch)
				}
				got := get(t, s, a.ID)
				last := got.Transitions[len(got.Transitions)-1]
				if want := "fired again after being closed as " + string(c.res); !strings.HasPrefix(last.Note, want) || got.Detail["after"] != "OpenSSH 7.4" {
					t.Fatalf("reopen note %q (want %q...), detail %v", last.Note, want, got.Detail)
				}
			})
		})
	}
}

func TestConcurrentTransitions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		for round := range 5 {
			a := open(t, s, "a1", fmt.Sprint("race ", round))
			move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
			reqs := []alert.TransitionRequest{
				{To: alert.StateClosed, Resolution: alert.TruePositive, Note: "by bob"},
				{To: alert.StateClosed, Resolution: alert.Duplicate, Note: "by carol"},
			}
			who := []string{"bob", "carol"}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range reqs {
				wg.Go(func() {
					<-start
					_, errs[i] = s.Transition(ctx, a.ID, reqs[i], who[i])
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner == -1:
					winner = i
				case err == nil:
					t.Fatalf("round %d: both moves won", round)
				case !errors.Is(err, alert.ErrTransition):
					t.Fatalf("round %d: %s's move failed: %v", round, who[i], err)
				}
			}
			if winner == -1 {
				t.Fatalf("round %d: both refused: %v", round, errs)
			}
			got := get(t, s, a.ID)
			last := got.Transitions[len(got.Transitions)-1]
			if len(got.Transitions) != 2 || got.Resolution != reqs[winner].Resolution || last.By != who[winner] || last.Resolution != got.Resolution {
				t.Fatalf("round %d: %s won, but the alert says %s and the transitions %+v", round, who[winner], got.Resolution, got.Transitions)
			}
		}
	})
}

func TestMoveRefusedWhenMovedMeanwhile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		other := newStore(st)
		ctx := context.Background()
		a := open(t, s, "a1", "port_opened tcp/23")
		move(t, s, a.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		// Between alice's read and her update, bob escalates it.
		alert.SetBeforeMove(s, func() {
			alert.SetBeforeMove(s, nil)
			move(t, other, a.ID, alert.TransitionRequest{To: alert.StateEscalated}, "bob")
		})
		_, err := s.Transition(ctx, a.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.TruePositive}, "alice")
		refused(t, err, "the alert moved from triage to escalated meanwhile (by bob at ")
		if got := get(t, s, a.ID); got.Workflow != alert.StateEscalated || len(got.Transitions) != 2 {
			t.Fatalf("after the refused move: %s, %+v", got.Workflow, got.Transitions)
		}

		// fixed, judged on a cleared condition that fires again meanwhile.
		b := open(t, s, "a1", "port_opened tcp/21")
		move(t, s, b.ID, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		observe(t, s, drift("a1", "port_opened tcp/21", 10, false, nil))
		alert.SetBeforeMove(s, func() {
			alert.SetBeforeMove(s, nil)
			observe(t, other, drift("a1", "port_opened tcp/21", 20, true, nil))
		})
		_, err = s.Transition(ctx, b.ID, alert.TransitionRequest{To: alert.StateClosed, Resolution: alert.Fixed}, "alice")
		refused(t, err, "it still fires (last at "+at(20).Format(time.RFC3339))
	})
}

func TestListFiltersAndCursor(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		var ids []string // in order of creation
		add := func(sig alert.Signal) string {
			ch := observe(t, s, sig)
			ids = append(ids, ch[0].Alert.ID)
			return ch[0].Alert.ID
		}
		for i := range 5 {
			add(drift("a1", fmt.Sprint("port_opened tcp/", 1000+i), i, true, nil))
		}
		crit := add(alert.Signal{Kind: alert.KindCheckFailed, Severity: alert.SeverityCritical, AssetID: "a2", CheckID: "ssh.no-root", At: at(6), Firing: true})
		health := add(alert.Signal{Kind: alert.KindHealth, Severity: alert.SeverityMedium, Key: "sensor eth1", At: at(7), Firing: true})
		unmanaged := add(alert.Signal{Kind: alert.KindUnmanaged, Severity: alert.SeverityLow, AssetID: "a3", At: at(8), Firing: true})
		if err := s.SetTeam(ctx, crit, "unix"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTeam(ctx, health, "platform"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTeam(ctx, "no-such-alert", "x"); !errors.Is(err, alert.ErrNotFound) {
			t.Fatalf("SetTeam on a missing alert: %v", err)
		}
		move(t, s, crit, alert.TransitionRequest{To: alert.StateTriage}, "alice")
		move(t, s, ids[0], alert.TransitionRequest{To: alert.StateTriage}, "alice")
		move(t, s, ids[0], alert.TransitionRequest{To: alert.StateEscalated}, "alice")

		newestFirst := slices.Clone(ids)
		slices.Reverse(newestFirst)
		idsOf := func(list []alert.Alert) []string {
			var out []string
			for _, a := range list {
				out = append(out, a.ID)
			}
			return out
		}
		for _, c := range []struct {
			name string
			f    alert.Filter
			want []string
		}{
			{"all", alert.Filter{}, newestFirst},
			{"states", alert.Filter{States: []alert.State{alert.StateTriage, alert.StateEscalated}}, []string{crit, ids[0]}},
			{"severity", alert.Filter{Severities: []alert.Severity{alert.SeverityCritical, alert.SeverityLow}}, []string{unmanaged, crit}},
			{"kind", alert.Filter{Kinds: []alert.Kind{alert.KindHealth}}, []string{health}},
			{"team", alert.Filter{Teams: []string{"unix", "platform"}}, []string{health, crit}},
			{"no team", alert.Filter{Teams: []string{""}, Kinds: []alert.Kind{alert.KindUnmanaged, alert.KindHealth}}, []string{unmanaged}},
			{"asset", alert.Filter{AssetID: "a1", States: []alert.State{alert.StateNew}}, []string{ids[4], ids[3], ids[2], ids[1]}},
		} {
			list, next, err := s.List(ctx, c.f)
			if err != nil || next != "" || !slices.Equal(idsOf(list), c.want) {
				t.Errorf("%s: %v next %q err %v; want %v", c.name, idsOf(list), next, err, c.want)
			}
		}
		if list, _, _ := s.List(ctx, alert.Filter{Kinds: []alert.Kind{alert.KindCheckFailed}}); len(list) != 1 || list[0].Team != "unix" || list[0].Assignee != "alice" {
			t.Errorf("routed alert %+v", list)
		}

		// Pages of three, newest first, each alert once.
		var paged []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			list, next, err := s.List(ctx, alert.Filter{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, idsOf(list)...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(paged, newestFirst) {
			t.Fatalf("paged %v, want %v", paged, newestFirst)
		}
		// A page that ends exactly at the end has no next cursor.
		if list, next, _ := s.List(ctx, alert.Filter{Limit: len(ids)}); len(list) != len(ids) || next != "" {
			t.Fatalf("a full page: %d alerts, next %q", len(list), next)
		}
		for _, f := range []alert.Filter{
			{Cursor: "not-a-cursor"},
			{States: []alert.State{"open"}},
			{Severities: []alert.Severity{"urgent"}},
			{Kinds: []alert.Kind{"weird"}},
		} {
			if _, _, err := s.List(ctx, f); !errors.Is(err, alert.ErrBadFilter) {
				t.Errorf("List(%+v): %v, want ErrBadFilter", f, err)
			}
		}
		if _, err := s.Get(ctx, "no-such-alert"); !errors.Is(err, alert.ErrNotFound) {
			t.Errorf("Get of a missing alert: %v", err)
		}
	})
}

func TestConcurrentObserve(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		s := newStore(st)
		ctx := context.Background()
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// The same two new conditions, in either order: one alert
				// each, every firing counted, no deadlock.
				a, b := drift("a1", "port_opened tcp/23", i, true, nil), drift("a1", "port_opened tcp/21", i, true, nil)
				if i%2 == 1 {
					a, b = b, a
				}
				_, errs[i] = s.Observe(ctx, []alert.Signal{a, b})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		list, _, err := s.List(ctx, alert.Filter{})
		if err != nil || len(list) != 2 {
			t.Fatalf("%d alerts, %v; want 2", len(list), err)
		}
		for _, a := range list {
			if a.FireCount != n || len(get(t, s, a.ID).Occurrences) != n {
				t.Errorf("%s: fire count %d, want %d", a.Key, a.FireCount, n)
			}
		}
	})
}
