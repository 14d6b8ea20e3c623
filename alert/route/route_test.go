package route_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/alert/notify"
	"github.com/reckon-dev/reckon/alert/route"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

func tree() route.Route {
	return route.Route{
		Team: "secops", Receiver: []string{"soc"}, GroupBy: []string{"kind"},
		Routes: []route.Route{
			{Match: route.Match{Severity: []string{"critical", "high"}, Family: []string{"tls", "ssh"}}, Team: "netops", Receiver: []string{"netops"}, Continue: true},
			{Match: route.Match{Site: []string{"HQ"}}, Team: "hq-it",
				Routes: []route.Route{{Match: route.Match{Network: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}, Team: "hq-lab"}}},
			{Match: route.Match{Kind: []string{"unmanaged"}}, Team: "asset-mgmt"},
		},
	}
}

func TestResolve(t *testing.T) {
	tr := tree()
	teams := func(a route.Attrs) []string {
		var out []string
		for _, t := range tr.Resolve(a) {
			out = append(out, t.Team)
		}
		return out
	}
	cases := []struct {
		a    route.Attrs
		want []string
	}{
		{route.Attrs{Severity: "high", Kind: "check_failed", Family: "tls", Site: "HQ"}, []string{"netops", "hq-it"}}, // continue
		{route.Attrs{Severity: "low", Kind: "check_failed", Family: "tls", Site: "HQ", IPs: []netip.Addr{netip.MustParseAddr("10.9.1.1")}}, []string{"hq-lab"}},
		{route.Attrs{Severity: "HIGH", Kind: "unmanaged"}, []string{"asset-mgmt"}},
		{route.Attrs{Severity: "low", Kind: "drift", Site: "Branch"}, []string{"secops"}},
	}
	for _, c := range cases {
		if got := teams(c.a); !slices.Equal(got, c.want) {
			t.Errorf("%+v: teams %v, want %v", c.a, got, c.want)
		}
	}
	got := tr.Resolve(route.Attrs{Severity: "low", Kind: "drift", Site: "HQ"})
	if len(got) != 1 || !slices.Equal(got[0].Receivers, []string{"soc"}) || got[0].GroupWait != route.DefaultGroupWait {
		t.Fatalf("inherited receivers and intervals: %+v", got)
	}
	if err := tr.Validate([]string{"soc"}); err == nil {
		t.Fatal("a route naming an unknown receiver passed validation")
	}
	if err := tr.Validate([]string{"soc", "netops"}); err != nil {
		t.Fatal(err)
	}
}

type sent struct {
	mu sync.Mutex
	by map[string][]notify.Notification
}

func (s *sent) send(_ context.Context, recv string, n []notify.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.by[recv] = append(s.by[recv], n...)
	return nil
}

func TestRouterSilencesAndInhibition(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alerts := alert.New(alert.Options{Store: st})
		sil := route.NewSilences(st)
		now := time.Now()
		clock := func() time.Time { return now }
		devices := map[string]route.Device{
			"hq-1":   {Site: "HQ"},
			"gone-1": {Site: "Branch", Down: true},
		}
		out := &sent{by: map[string][]notify.Notification{}}
		r := route.NewRouter(route.RouterOptions{Tree: tree(), Alerts: alerts, Silences: sil, Send: out.send, Now: clock,
			Device: func(id string) (route.Device, bool) { d, ok := devices[id]; return d, ok }})

		if _, err := sil.Create(ctx, route.Silence{}); !errors.Is(err, route.ErrSilence) {
			t.Fatalf("a silence without matchers: %v", err)
		}
		s1, err := sil.Create(ctx, route.Silence{Matchers: route.Match{Kind: []string{"conflict"}}, EndsAt: now.Add(time.Hour), CreatedBy: "ana", Comment: "CMDB clean-up this week"})
		if err != nil || !s1.Active {
			t.Fatalf("silence: %+v %v", s1, err)
		}
		ch, err := alerts.Observe(ctx, []alert.Signal{
			{Kind: alert.KindCheckFailed, Severity: alert.SeverityHigh, AssetID: "hq-1", CheckID: "TLS-001", Title: "tls", Firing: true},
			{Kind: alert.KindCheckFailed, Severity: alert.SeverityHigh, AssetID: "gone-1", CheckID: "TLS-001", Title: "tls", Firing: true},
			{Kind: alert.KindConflict, Severity: alert.SeverityMedium, AssetID: "hq-1", Title: "conflict", Firing: true},
			{Kind: alert.KindUnmanaged, Severity: alert.SeverityHigh, AssetID: "new-1", Title: "unknown", Firing: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		r.Handle(ctx, ch)
		r.Flush(ctx) // group_wait not over: nothing yet
		if len(out.by) != 0 {
			t.Fatalf("sent before group_wait: %v", out.by)
		}
		now = now.Add(route.DefaultGroupWait)
		r.Flush(ctx)
		ids := func(recv string) []string {
			var s []string
			for _, n := range out.by[recv] {
				s = append(s, n.AssetID+"/"+n.Kind+"/"+n.Team)
			}
			slices.Sort(s)
			return s
		}
		// hq-1's TLS alert goes to netops (continue) and soc (HQ route,
		// receivers inherited); the down host's is inhibited; the conflict
		// is silenced; the unmanaged device goes to soc.
		if got := ids("netops"); !slices.Equal(got, []string{"hq-1/check_failed/netops"}) {
			t.Fatalf("netops got %v", got)
		}
		if got := ids("soc"); !slices.Equal(got, []string{"hq-1/check_failed/netops", "new-1/unmanaged/asset-mgmt"}) {
			t.Fatalf("soc got %v", got)
		}
		list, _, _ := alerts.List(ctx, alert.Filter{})
		for _, a := range list {
			if a.Team == "" {
				t.Fatalf("alert without a team: %+v", a)
			}
		}
		// Expired silence: the conflict fires again and is notified.
		if _, err := sil.Expire(ctx, s1.ID); err != nil {
			t.Fatal(err)
		}
		if active, _ := sil.List(ctx, false); len(active) != 0 {
			t.Fatalf("active silences after expiry: %+v", active)
		}
		now = now.Add(route.DefaultRepeatInterval + time.Minute)
		if err := r.Repeat(ctx); err != nil {
			t.Fatal(err)
		}
		r.Flush(ctx)
		now = now.Add(route.DefaultGroupInterval)
		r.Flush(ctx)
		var repeats []string
		for _, n := range out.by["soc"] {
			if n.Event == "repeat" {
				repeats = append(repeats, n.AssetID+"/"+n.Kind)
			}
		}
		slices.Sort(repeats)
		if !slices.Equal(repeats, []string{"hq-1/check_failed", "hq-1/conflict", "new-1/unmanaged"}) {
			t.Fatalf("repeats %v", repeats)
		}
	})
}
