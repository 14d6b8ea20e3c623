package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type summary struct {
	ID        string   `json:"id"`
	Status    string   `json:"status"`
	MACs      []string `json:"macs"`
	IPs       []string `json:"ips"`
	Hostnames []string `json:"hostnames"`
}

type page struct {
	Items      []summary `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

func TestObservationsAndAssets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		op := b.client.WithToken(b.token(t, "sensor", api.RoleOperator))
		viewer := b.client.WithToken(b.token(t, "dash", api.RoleViewer))
		batch := map[string]any{"batch_id": "b1", "observations": []map[string]any{
			{"source": "passive:dhcp", "time": "2026-11-20T10:00:00Z", "mac": "00:16:3E:00:00:01", "ip": "10.20.0.10", "hostnames": []any{"alpha", map[string]string{"name": "alpha.corp", "how": "dhcp-option-81"}}},
			{"source": "active:nmap", "time": "2026-11-20T10:05:00Z", "ip": "10.20.0.99",
				"services": []map[string]any{{"port": 22, "proto": "tcp", "name": "ssh", "product": "OpenSSH", "version": "9.2p1"}}},
			{"source": "passive:arp", "time": "2026-11-20T10:06:00Z", "mac": "00:16:3e:00:00:02", "ip": "10.20.0.11"},
		}}
		wantProblem(t, viewer.Do("POST", "/api/v1/observations", batch), 403, "needs operator")
		r := op.Do("POST", "/api/v1/observations?wait=true", batch)
		if r.Status != 200 {
			t.Fatalf("ingest: %d %s", r.Status, r.Body)
		}
		var res struct {
			Accepted  int  `json:"accepted"`
			Duplicate bool `json:"duplicate"`
		}
		r.JSON(t, &res)
		if res.Accepted != 3 || res.Duplicate {
			t.Fatalf("ingest result %+v", res)
		}
		r = op.Do("POST", "/api/v1/observations?wait=true", batch)
		r.JSON(t, &res)
		if r.Status != 200 || !res.Duplicate || res.Accepted != 0 {
			t.Fatalf("second ingest: %d %+v", r.Status, res)
		}

		// Pages of one, newest first, through the cursor.
		var all []summary
		next := ""
		for i := 0; i < 10; i++ {
			var p page
			viewer.Do("GET", "/api/v1/assets?limit=1"+next, nil).JSON(t, &p)
			all = append(all, p.Items...)
			if p.NextCursor == "" {
				break
			}
			next = "&cursor=" + url.QueryEscape(p.NextCursor)
		}
		if len(all) != 3 || !slices3(all) {
			t.Fatalf("assets %+v", all)
		}
		var p page
		viewer.Do("GET", "/api/v1/assets?q=ALPHA.corp&status=new&subnet=10.20.0.0/24&source=passive:dhcp&seen_since=2026-11-01T00:00:00Z", nil).JSON(t, &p)
		if len(p.Items) != 1 || p.Items[0].MACs[0] != "00:16:3e:00:00:01" {
			t.Fatalf("filtered: %+v", p.Items)
		}
		r = viewer.Do("GET", "/api/v1/assets/"+p.Items[0].ID, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"timeline"`) || !strings.Contains(string(r.Body), "dhcp-option-81") {
			t.Fatalf("detail: %d %s", r.Status, r.Body)
		}
		for q, field := range map[string]string{"status=bogus": "status", "limit=0": "limit", "subnet=10.0.0.0/33": "subnet",
			"seen_since=yesterday": "seen_since", "cursor=zzz": "cursor"} {
			pr := wantProblem(t, viewer.Do("GET", "/api/v1/assets?"+q, nil), 400, field)
			if pr.Errors[0].Field != field {
				t.Errorf("%s: errors %+v", q, pr.Errors)
			}
		}
		wantProblem(t, viewer.Do("GET", "/api/v1/assets/nope", nil), 404, "nope")

		// Merge over the API, then the old id leads to the survivor.
		var x, y string
		for _, a := range all {
			switch {
			case len(a.MACs) > 0 && a.MACs[0] == "00:16:3e:00:00:01":
				x = a.ID
			case len(a.MACs) > 0 && a.MACs[0] == "00:16:3e:00:00:02":
				y = a.ID
			}
		}
		wantProblem(t, viewer.Do("POST", "/api/v1/assets/"+x+"/merge", map[string]string{"other": y}), 403, "operator")
		if r := op.Do("POST", "/api/v1/assets/"+x+"/merge", map[string]string{"other": y}); r.Status != 200 {
			t.Fatalf("merge: %d %s", r.Status, r.Body)
		}
		r = viewer.Do("GET", "/api/v1/assets/"+y, nil)
		if r.Status != 301 || r.Header.Get("Location") != "/api/v1/assets/"+x {
			t.Fatalf("merged asset: %d %v", r.Status, r.Header)
		}
		wantProblem(t, op.Do("POST", "/api/v1/assets/"+x+"/merge", map[string]string{"other": x}), 422, "itself")
		wantProblem(t, op.Do("POST", "/api/v1/assets/"+x+"/merge", map[string]string{}), 400, "other")
		r = op.Do("POST", "/api/v1/assets/"+x+"/split", map[string]any{"macs": []string{"00:16:3e:00:00:02"}, "ips": []string{"10.20.0.11"}})
		if r.Status != 200 || !strings.Contains(string(r.Body), `"new_asset"`) {
			t.Fatalf("split: %d %s", r.Status, r.Body)
		}
		wantProblem(t, op.Do("POST", "/api/v1/assets/"+x+"/split", map[string]any{"macs": []string{"00:16:3e:00:00:77"}}), 422, "none of")
		wantProblem(t, op.Do("POST", "/api/v1/assets/"+x+"/split", map[string]any{}), 400, "macs")
	})
}

func slices3(items []summary) bool {
	seen := map[string]bool{}
	for _, a := range items {
		seen[a.ID] = true
	}
	return len(seen) == 3
}

func TestBadObservations(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	b := setup(t, s)
	op := b.client.WithToken(b.token(t, "sensor", api.RoleOperator))
	good := `{"source":"passive:arp","time":"2026-11-20T10:00:00Z","mac":"00:16:3e:00:00:01"}`
	for body, field := range map[string]string{
		`{"batch_id":"x","observations":[` + good + `,{"source":"passive:arp","time":"yesterday","mac":"zz"}]}`:                      "observations[1].time",
		`{"batch_id":"x","observations":[{"source":"passive:arp","time":"2026-11-20T10:00:00Z","mac":"zz"}]}`:                        "observations[0].mac",
		`{"batch_id":"x","observations":[{"source":"passive:arp","time":"2026-11-20T10:00:00Z","ip":"10.0.0.300"}]}`:                 "observations[0].ip",
		`{"batch_id":"x","observations":[{"time":"2026-11-20T10:00:00Z","ip":"10.0.0.3"}]}`:                                          "observations[0].source",
		`{"batch_id":"x","observations":[{"source":"a","time":"2026-11-20T10:00:00Z","ip":"10.0.0.3","vlan":"ten"}]}`:                "observations[0].vlan",
		`{"batch_id":"x","observations":[{"source":"a","time":"2026-11-20T10:00:00Z","ip":"10.0.0.3","colour":1}]}`:                  "observations[0].colour",
		`{"batch_id":"x","observations":[{"source":"a","time":"2026-11-20T10:00:00Z","ip":"10.0.0.3","services":[{"port":70000}]}]}`: "observations[0].services[0].port",
		`{"batch_id":"x","observations":[{"source":"a","time":"2026-11-20T10:00:00Z","mac":"ff:ff:ff:ff:ff:ff"}]}`:                   "observations[0].mac",
		`{"batch_id":"x","observations":[{"source":"a","time":"2026-11-20T10:00:00Z"}]}`:                                             "observations[0]",
		`{"observations":[` + good + `]}`: "batch_id",
		`{"batch_id":"x"}`:                "observations",
	} {
		p := wantProblem(t, op.Do("POST", "/api/v1/observations", body), 400, field)
		if len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("%s: errors %+v, want the first naming %s", body, p.Errors, field)
		}
	}
	// Nothing of a rejected batch is kept: the same id is accepted afterwards.
	r := op.Do("POST", "/api/v1/observations?wait=true", `{"batch_id":"x","observations":[`+good+`]}`)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"accepted":1`) {
		t.Fatalf("good batch after bad ones: %d %s", r.Status, r.Body)
	}
	var many []string
	for i := range 6 {
		many = append(many, fmt.Sprintf(`{"source":"a","time":"2026-11-20T10:00:00Z","ip":"10.0.0.%d"}`, i+1))
	}
	wantProblem(t, op.Do("POST", "/api/v1/observations", `{"batch_id":"big","observations":[`+strings.Join(many, ",")+`]}`), 413, "limit is 5")
}
