package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert"
	alertroute "github.com/reckon-dev/reckon/alert/route"
	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type alertResp struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Severity   string `json:"severity"`
	AssetID    string `json:"asset_id"`
	Condition  string `json:"condition"`
	Workflow   string `json:"workflow"`
	Resolution string `json:"resolution"`
	Team       string `json:"team"`
}

// The alert routes: list with filters, one alert, transitions (viewers may
// not; refused moves are 409 with the reason), and the context call.
func TestAlertsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		ctx := context.Background()
		if _, err := b.inv.Ingest(ctx, "b1", "test", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: "00:16:3e:ab:00:01", IP: "10.1.0.5"}}, true); err != nil {
			t.Fatal(err)
		}
		var assetID string
		b.inv.EachAsset(func(a *inventory.Asset) { assetID = a.ID.String() })
		alerts := alert.New(alert.Options{Store: s})
		ch, err := alerts.Observe(ctx, []alert.Signal{
			{Kind: alert.KindUnmanaged, Severity: alert.SeverityHigh, AssetID: assetID, Title: "unknown device", Firing: true},
			{Kind: alert.KindDrift, Severity: alert.SeverityMedium, AssetID: assetID, Key: "tcp/23 port", Title: "port opened", Firing: true,
				Detail: map[string]any{"drift": "port_opened"}},
		})
		if err != nil || len(ch) != 2 {
			t.Fatalf("observe: %v %+v", err, ch)
		}
		b.srv.RegisterAlerts(alerts, b.inv, nil)
		b.client = apitest.New(t, b.srv.Handler())
		c := b.client.WithToken(b.admin)
		viewer := b.client.WithToken(b.token(t, "v", api.RoleViewer))

		var list struct {
			Items []alertResp `json:"items"`
		}
		viewer.Do("GET", "/api/v1/alerts?severity=high", nil).JSON(t, &list)
		if len(list.Items) != 1 || list.Items[0].Kind != "unmanaged" || list.Items[0].Workflow != "new" || list.Items[0].Condition != "firing" {
			t.Fatalf("high alerts: %+v", list)
		}
		viewer.Do("GET", "/api/v1/alerts?state=new&kind=drift,unmanaged&asset="+assetID, nil).JSON(t, &list)
		if len(list.Items) != 2 {
			t.Fatalf("filtered alerts: %+v", list)
		}
		if r := viewer.Do("GET", "/api/v1/alerts?state=bogus", nil); r.Status != 400 {
			t.Fatalf("a bad state filter: %d", r.Status)
		}
		var drift alertResp
		for _, a := range list.Items {
			if a.Kind == "drift" {
				drift = a
			}
		}
		path := "/api/v1/alerts/" + drift.ID + "/transitions"
		if r := viewer.Do("POST", path, map[string]string{"to": "triage"}); r.Status != 403 {
			t.Fatalf("a viewer moved an alert: %d", r.Status)
		}
		r := c.Do("POST", path, map[string]string{"to": "closed", "resolution": "true_positive"})
		p := wantProblem(t, r, 409, "")
		if !strings.Contains(p.Detail, "new") {
			t.Fatalf("refusal reason: %q", p.Detail)
		}
		var moved alertResp
		c.Do("POST", path, map[string]string{"to": "triage", "note": "looking"}).JSON(t, &moved)
		if moved.Workflow != "triage" {
			t.Fatalf("triage: %+v", moved)
		}
		r = c.Do("POST", path, map[string]string{"to": "closed", "resolution": "fixed"})
		p = wantProblem(t, r, 409, "")
		if !strings.Contains(p.Detail, "cleared") {
			t.Fatalf("fixed while firing: %q", p.Detail)
		}
		if r := c.Do("POST", path, map[string]string{"to": "closed", "resolution": "authorized_change"}); r.Status != 409 {
			t.Fatalf("authorized_change without a change reference: %d %s", r.Status, r.Body)
		}
		c.Do("POST", path, map[string]any{"to": "closed", "resolution": "authorized_change", "change_ref": "CHG0042", "accept_baseline": true}).JSON(t, &moved)
		if moved.Workflow != "closed" || moved.Resolution != "authorized_change" {
			t.Fatalf("closed: %+v", moved)
		}
		if r := c.Do("POST", path, map[string]string{}); r.Status != 400 {
			t.Fatalf("no target: %d", r.Status)
		}
		if r := c.Do("POST", "/api/v1/alerts/nope/transitions", map[string]string{"to": "triage"}); r.Status != 404 {
			t.Fatalf("missing alert: %d", r.Status)
		}

		var cx struct {
			Alert alertResp `json:"alert"`
			Asset *struct {
				ID string `json:"id"`
			} `json:"asset"`
			History []alertResp `json:"history"`
			Notes   []struct {
				By   string `json:"by"`
				Note string `json:"note"`
				To   string `json:"to"`
			} `json:"notes"`
		}
		viewer.Do("GET", "/api/v1/alerts/"+drift.ID+"/context", nil).JSON(t, &cx)
		if cx.Asset == nil || cx.Asset.ID != assetID || len(cx.History) != 1 || cx.History[0].Kind != "unmanaged" {
			t.Fatalf("context: %+v", cx)
		}
		if len(cx.Notes) != 2 || cx.Notes[0].Note != "looking" || !strings.HasPrefix(cx.Notes[0].By, "token:") {
			t.Fatalf("notes: %+v", cx.Notes)
		}
	})
}

// Silences: made by operators with matchers, an end and a reason; listed
// while active; ended early by DELETE.
func TestSilencesAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		b.srv.RegisterSilences(alertroute.NewSilences(s))
		b.client = apitest.New(t, b.srv.Handler())
		c := b.client.WithToken(b.admin)
		viewer := b.client.WithToken(b.token(t, "v", api.RoleViewer))
		ends := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		body := map[string]any{"matchers": map[string]any{"kind": []string{"drift"}, "network": []string{"10.9.0.0/16"}}, "ends_at": ends, "comment": "maintenance window"}
		if r := viewer.Do("POST", "/api/v1/silences", body); r.Status != 403 {
			t.Fatalf("a viewer silenced: %d", r.Status)
		}
		if r := c.Do("POST", "/api/v1/silences", map[string]any{"matchers": map[string]any{}, "ends_at": ends, "comment": "all"}); r.Status != 422 {
			t.Fatalf("a silence of everything: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/v1/silences", map[string]any{"matchers": map[string]any{"kind": []string{"drift"}}, "comment": "x"}); r.Status != 400 {
			t.Fatalf("no end: %d", r.Status)
		}
		var sl struct {
			ID       string `json:"id"`
			Active   bool   `json:"active"`
			Matchers struct {
				Network []string `json:"network"`
			} `json:"matchers"`
		}
		r := c.Do("POST", "/api/v1/silences", body)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &sl)
		if !sl.Active || len(sl.Matchers.Network) != 1 || sl.Matchers.Network[0] != "10.9.0.0/16" {
			t.Fatalf("silence: %s", r.Body)
		}
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		viewer.Do("GET", "/api/v1/silences", nil).JSON(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("active silences: %+v", list)
		}
		if r := c.Do("DELETE", "/api/v1/silences/"+sl.ID, nil); r.Status != 200 {
			t.Fatalf("expire: %d %s", r.Status, r.Body)
		}
		viewer.Do("GET", "/api/v1/silences", nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("active after expiry: %+v", list)
		}
		viewer.Do("GET", "/api/v1/silences?ended=true", nil).JSON(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("all silences: %+v", list)
		}
		if r := c.Do("DELETE", "/api/v1/silences/nope", nil); r.Status != 404 {
			t.Fatalf("expire a missing silence: %d", r.Status)
		}
	})
}

// The observation route tells which passive sensors shipped a batch (for
// the health alert of a sensor that goes quiet); sweeps are not sensors.
func TestObservationsNameTheirSensors(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	srv, err := api.New(api.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(context.Background())
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	var got []string
	var by string
	srv.RegisterInventory(inv, api.InventoryOptions{SensorsSeen: func(_ context.Context, sensors []string, b string) error {
		got, by = sensors, b
		return nil
	}})
	tok, _, err := api.NewTokens(s).Create(context.Background(), "sensor-east", api.RoleOperator, "test")
	if err != nil {
		t.Fatal(err)
	}
	c := apitest.New(t, srv.Handler()).WithToken(tok)
	now := time.Now().UTC().Format(time.RFC3339)
	r := c.Do("POST", "/api/v1/observations", map[string]any{"batch_id": "b1", "observations": []map[string]any{
		{"source": "passive:arp", "sensor": "span-east", "time": now, "mac": "00:16:3e:00:00:aa", "ip": "10.1.1.1"},
		{"source": "passive:dhcp", "sensor": "span-east", "time": now, "mac": "00:16:3e:00:00:ab", "ip": "10.1.1.2"},
		{"source": "active:nmap", "sensor": "sweep-dmz", "time": now, "ip": "10.1.1.3"},
	}})
	if r.Status != 200 && r.Status != 202 {
		t.Fatalf("ingest: %d %s", r.Status, r.Body)
	}
	if len(got) != 1 || got[0] != "span-east" || by != "token:sensor-east" {
		t.Fatalf("sensors seen %v by %q", got, by)
	}
}
