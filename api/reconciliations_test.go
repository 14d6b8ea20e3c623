package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/cmdb/file"
	"github.com/reckon-dev/reckon/cmdb/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type feedResp struct {
	Items []struct {
		AssetID string   `json:"asset_id"`
		Verdict string   `json:"verdict"`
		MACs    []string `json:"macs"`
		CMDB    *struct {
			CIName       string `json:"ci_name"`
			BusinessUnit string `json:"business_unit"`
		} `json:"cmdb"`
		Changed time.Time `json:"changed"`
	} `json:"items"`
	Until time.Time `json:"until"`
}

// Reconciliation through the API against the demo CMDB export: a run
// records verdicts, the stale printer is listed, the feed carries verdicts
// and the CI's business unit, and since narrows it.
func TestReconciliationsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		ctx := context.Background()
		cl, err := file.New("../configs/demo/cmdb.csv")
		if err != nil {
			t.Fatal(err)
		}
		svc := runner.New(runner.Options{Store: s, Inventory: b.inv, Client: cl, StaleAfter: 24 * time.Hour})
		t.Cleanup(svc.Close)
		b.srv.RegisterReconciliations(svc, b.inv)
		b.client = apitest.New(t, b.srv.Handler())
		c := b.client.WithToken(b.admin)

		r := c.Do("GET", "/api/v1/cmdb/stale", nil)
		if r.Status != 200 {
			t.Fatalf("stale before any run: %d %s", r.Status, r.Body)
		}
		now := time.Now().UTC()
		obs := []discovery.Observation{
			{Source: "passive:arp", Time: now, MAC: "00:50:56:a1:22:10", IP: "10.77.147.11"},
			{Source: "passive:dhcp", Time: now, MAC: "00:11:32:4f:aa:02", IP: "10.77.147.142", Hostnames: []discovery.Hostname{{Name: "nas01", How: "dhcp"}}},
		}
		if _, err := b.inv.Ingest(ctx, "b1", "test", obs, true); err != nil {
			t.Fatal(err)
		}
		if r := c.Do("POST", "/api/v1/reconciliations", map[string]any{"dry_run": "yes"}); r.Status != 400 {
			t.Fatalf("a bad dry_run: %d %s", r.Status, r.Body)
		}
		if r := b.client.Do("POST", "/api/v1/reconciliations", nil); r.Status != 401 {
			t.Fatalf("no token: %d", r.Status)
		}
		r = c.Do("POST", "/api/v1/reconciliations", map[string]any{})
		if r.Status != 202 {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		var run runner.Run
		r.JSON(t, &run)
		svc.Wait()
		r = c.Do("GET", "/api/v1/reconciliations/"+run.ID, nil)
		r.JSON(t, &run)
		if run.State != "succeeded" || run.CIs != 4 || run.Counts.Managed != 1 || run.Counts.Unmanaged != 1 || run.Counts.Stale != 3 {
			t.Fatalf("run %+v", run)
		}
		if r := c.Do("GET", "/api/v1/reconciliations/nope", nil); r.Status != 404 {
			t.Fatalf("unknown run: %d", r.Status)
		}
		var st struct {
			Run   string         `json:"run"`
			Items []runner.CIRef `json:"items"`
		}
		c.Do("GET", "/api/v1/cmdb/stale", nil).JSON(t, &st)
		names := map[string]bool{}
		for _, ci := range st.Items {
			names[ci.Name] = true
		}
		if st.Run != run.ID || !names["printer-3f"] || names["intranet-web"] {
			t.Fatalf("stale %+v", st)
		}
		var um struct {
			Items []struct {
				MACs []string `json:"macs"`
			} `json:"items"`
		}
		c.Do("GET", "/api/v1/assets?status=unmanaged", nil).JSON(t, &um)
		if len(um.Items) != 1 || um.Items[0].MACs[0] != "00:11:32:4f:aa:02" {
			t.Fatalf("unmanaged %+v", um)
		}
		var feed feedResp
		c.Do("GET", "/api/v1/cmdb/feed", nil).JSON(t, &feed)
		if len(feed.Items) != 2 || feed.Until.IsZero() {
			t.Fatalf("feed %+v", feed)
		}
		for _, it := range feed.Items {
			switch it.MACs[0] {
			case "00:50:56:a1:22:10":
				if it.Verdict != "managed" || it.CMDB == nil || it.CMDB.CIName != "intranet-web" || it.CMDB.BusinessUnit != "it-apps" {
					t.Fatalf("managed feed item %+v", it)
				}
			default:
				if it.Verdict != "unmanaged" {
					t.Fatalf("feed item %+v", it)
				}
			}
		}
		c.Do("GET", "/api/v1/cmdb/feed?since="+feed.Until.Add(time.Millisecond).Format(time.RFC3339Nano), nil).JSON(t, &feed)
		if len(feed.Items) != 0 {
			t.Fatalf("feed since the last change: %+v", feed.Items)
		}
		if r := c.Do("GET", "/api/v1/cmdb/feed?since=yesterday", nil); r.Status != 400 {
			t.Fatalf("bad since: %d", r.Status)
		}
	})
}
