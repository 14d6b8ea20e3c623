package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// BenchmarkListAssets serves pages of 100 assets through the whole handler
// stack (auth, routing, metrics, the list): per-request CPU and allocations.
func BenchmarkListAssets(b *testing.B) {
	for _, k := range storetest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			s := storetest.Open(b, k)
			inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s})
			if err != nil {
				b.Fatal(err)
			}
			var obs []discovery.Observation
			for i := range 2000 {
				o := discovery.Observation{Source: "passive:dhcp", Time: time.Now().Add(-time.Duration(i) * time.Second),
					MAC: fmt.Sprintf("00:16:3e:00:%02x:%02x", i>>8, i&0xff), IP: fmt.Sprintf("10.0.%d.%d", i>>8, i&0xff),
					Hostnames: []discovery.Hostname{{Name: fmt.Sprintf("host-%d", i)}}}
				o.Normalize()
				obs = append(obs, o)
			}
			if _, err := inv.Ingest(context.Background(), "b", "bench", obs, true); err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			srv, err := api.New(api.Options{Store: s, Registerer: reg, Gatherer: reg})
			if err != nil {
				b.Fatal(err)
			}
			srv.RegisterInventory(inv, api.InventoryOptions{})
			tok, _, err := api.NewTokens(s).Create(context.Background(), "bench", api.RoleViewer, "bench")
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				req := httptest.NewRequest("GET", "/api/v1/assets?status=new&limit=100", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
