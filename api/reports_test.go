package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// Reports through the API: an acknowledged alert is counted, CSV on
// request, unknown names and bad parameters refused.
func TestReportsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		ctx := context.Background()
		alerts := alert.New(alert.Options{Store: s})
		ch, err := alerts.Observe(ctx, []alert.Signal{{Kind: alert.KindUnmanaged, Severity: alert.SeverityHigh, AssetID: "a1", Title: "unknown", Firing: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alerts.Transition(ctx, ch[0].Alert.ID, alert.TransitionRequest{To: alert.StateTriage}, "ana"); err != nil {
			t.Fatal(err)
		}
		b.srv.RegisterReports(s)
		b.client = apitest.New(t, b.srv.Handler())
		c := b.client.WithToken(b.admin)
		var rep struct {
			Name string           `json:"name"`
			Unit string           `json:"unit"`
			Rows []map[string]any `json:"rows"`
		}
		c.Do("GET", "/api/v1/reports/time_to_acknowledge?group_by=kind", nil).JSON(t, &rep)
		if rep.Name != "time_to_acknowledge" || rep.Unit != "seconds" || len(rep.Rows) != 1 || rep.Rows[0]["group"] != "unmanaged" || rep.Rows[0]["count"] != float64(1) {
			t.Fatalf("report: %+v", rep)
		}
		r := c.Do("GET", "/api/v1/reports/time_to_acknowledge?format=csv", nil)
		if r.Status != 200 || !strings.HasPrefix(string(r.Body), "group,count,") {
			t.Fatalf("csv: %d %s", r.Status, r.Body)
		}
		if r := c.Do("GET", "/api/v1/reports/nope", nil); r.Status != 404 || !strings.Contains(string(r.Body), "time_to_detect") {
			t.Fatalf("unknown report: %d %s", r.Status, r.Body)
		}
		if r := c.Do("GET", "/api/v1/reports/time_to_resolve?group_by=colour", nil); r.Status != 400 {
			t.Fatalf("bad group_by: %d", r.Status)
		}
	})
}
