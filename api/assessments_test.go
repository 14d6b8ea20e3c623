package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/assess/collect"
	"github.com/reckon-dev/reckon/assess/policy"
	assessrunner "github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type assessmentResp struct {
	ID      string         `json:"id"`
	State   string         `json:"state"`
	Trigger string         `json:"trigger"`
	Target  string         `json:"target"`
	Counts  map[string]int `json:"counts"`
	Error   string         `json:"error"`
	Facts   *struct {
		Ports []struct {
			Port int `json:"port"`
		} `json:"ports"`
		HTTP []struct {
			Port    int               `json:"port"`
			TLS     bool              `json:"tls"`
			Headers map[string]string `json:"headers"`
		} `json:"http"`
	} `json:"facts"`
	Results []struct {
		CheckID string `json:"check_id"`
		Status  string `json:"status"`
	} `json:"results"`
	Evidence []struct {
		Kind string `json:"kind"`
		Body string `json:"body"`
	} `json:"evidence"`
}

// Assessment through the API with the real collector (nmap -sV and the
// native probes) against an HTTPS server on loopback, and the baseline
// policy: a new asset is assessed on its own, a manual run queues, the
// stored assessment carries facts, results and the nmap XML.
func TestAssessmentsAPI(t *testing.T) {
	if _, err := exec.LookPath("nmap"); err != nil {
		storetest.RequireIntegration(t, "nmap is not installed")
	}
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "demo/1.2.3")
		fmt.Fprintln(w, "hello")
	}))
	defer web.Close()
	addr := strings.TrimPrefix(web.URL, "https://")
	webPort := addr[strings.LastIndex(addr, ":")+1:]

	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		ctx := context.Background()
		pol, err := policy.Load("../configs/policies/baseline.yaml")
		if err != nil {
			t.Fatal(err)
		}
		lo, err := active.ParseScope("lo", []string{"127.0.0.0/8"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		light := 0 // nmap cannot name Go's TLS server: every probe would wait out its timeout
		coll := collect.New(collect.Options{Scopes: []active.Scope{lo}, Ports: webPort, WorkDir: t.TempDir(), NoScripts: true, VersionIntensity: &light})
		svc := assessrunner.New(assessrunner.Options{Store: s, Inventory: b.inv, Collector: coll, Policy: pol, PolicyName: "baseline.yaml",
			Scopes: []active.Scope{lo}, Ports: webPort, AutoQueue: true, JobTimeout: 2 * time.Minute})
		q, err := queue.New(queue.Options{Store: s, Workers: 2, Queues: map[string]int{assessrunner.Queue: 2}, PollInterval: 20 * time.Millisecond,
			JobTimeout: 2 * time.Minute, Register: func(ws *river.Workers) { svc.RegisterJobs(ws) }})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetClient(q.Client)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			svc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = q.Stop(ctx)
		})
		b.srv.RegisterAssessments(svc, pol, "baseline.yaml", 0)
		b.client = apitest.New(t, b.srv.Handler())
		c := b.client.WithToken(b.admin)
		viewer := c.WithToken(b.token(t, "v", api.RoleViewer))

		obs := []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: "00:16:3e:aa:00:01", IP: "127.0.0.1"}}
		if _, err := b.inv.Ingest(ctx, "b1", "test", obs, true); err != nil {
			t.Fatal(err)
		}
		var list struct {
			Items []assessmentResp `json:"items"`
		}
		r := c.Do("GET", "/api/v1/assets?limit=10", nil)
		var assets struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		r.JSON(t, &assets)
		if len(assets.Items) != 1 {
			t.Fatalf("assets: %s", r.Body)
		}
		id := assets.Items[0].ID
		deadline := time.Now().Add(90 * time.Second)
		for {
			r = viewer.Do("GET", "/api/v1/assets/"+id+"/assessments", nil)
			if r.Status != 200 {
				t.Fatalf("list: %d %s", r.Status, r.Body)
			}
			r.JSON(t, &list)
			if len(list.Items) > 0 && list.Items[0].State != "running" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the new asset was not assessed: %s", r.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		first := list.Items[0]
		if first.State != "succeeded" || first.Trigger != "new" || first.Target != "127.0.0.1" {
			t.Fatalf("first assessment: %+v", first)
		}
		var full assessmentResp
		r = viewer.Do("GET", "/api/v1/assessments/"+first.ID, nil)
		r.JSON(t, &full)
		if full.Facts == nil || len(full.Facts.Ports) != 1 || len(full.Facts.HTTP) != 1 || !full.Facts.HTTP[0].TLS {
			t.Fatalf("facts: %s", r.Body)
		}
		if full.Facts.HTTP[0].Headers["server"] != "demo/1.2.3" {
			t.Fatalf("probe headers: %+v", full.Facts.HTTP[0].Headers)
		}
		status := map[string]string{}
		for _, res := range full.Results {
			status[res.CheckID] = res.Status
		}
		// HSTS is missing and the Server header gives a version.
		if status["HTTP-001"] != "fail" || len(full.Results) < 30 {
			t.Fatalf("results: %v", status)
		}
		kinds := map[string]bool{}
		for _, e := range full.Evidence {
			kinds[e.Kind] = true
			if e.Kind == "nmap-xml" && !strings.Contains(e.Body, "<nmaprun") {
				t.Fatalf("nmap evidence: %.200s", e.Body)
			}
		}
		if !kinds["nmap-xml"] || !kinds["probe"] {
			t.Fatalf("evidence kinds %v", kinds)
		}
		if r := viewer.Do("GET", "/api/v1/assessments/nope", nil); r.Status != 404 {
			t.Fatalf("missing assessment: %d", r.Status)
		}

		// Manual run: viewers may not, operators may.
		if r := viewer.Do("POST", "/api/v1/assets/"+id+"/assessments", nil); r.Status != 403 {
			t.Fatalf("viewer run: %d %s", r.Status, r.Body)
		}
		r = c.Do("POST", "/api/v1/assets/"+id+"/assessments", nil)
		if r.Status != 202 {
			t.Fatalf("run: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/v1/assets/nope/assessments", nil); r.Status != 404 {
			t.Fatalf("run on a missing asset: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/v1/assessment-jobs/999999/cancel", nil); r.Status != 404 {
			t.Fatalf("cancel a missing job: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/v1/assessment-jobs/x/cancel", nil); r.Status != 400 {
			t.Fatalf("cancel a bad job id: %d %s", r.Status, r.Body)
		}

		// Policies.
		var pols struct {
			Items []struct {
				Name   string `json:"name"`
				Active bool   `json:"active"`
				Checks []struct {
					ID string `json:"id"`
				} `json:"checks"`
			} `json:"items"`
		}
		viewer.Do("GET", "/api/v1/policies", nil).JSON(t, &pols)
		if len(pols.Items) != 1 || !pols.Items[0].Active || len(pols.Items[0].Checks) < 30 {
			t.Fatalf("policies: %+v", pols)
		}
		var v struct {
			Valid  bool     `json:"valid"`
			Errors []string `json:"errors"`
		}
		bad := "checks:\n  - id: BAD-1\n    title: t\n    severity: low\n    rationale: r\n    applies: \"true\"\n    expect: \"tls.exists(t, t.verzions.size() > 0)\"\n"
		viewer.Do("POST", "/api/v1/policies/validate", map[string]string{"name": "mine.yaml", "policy": bad}).JSON(t, &v)
		if v.Valid || len(v.Errors) != 1 || !strings.Contains(v.Errors[0], "BAD-1") || !strings.Contains(v.Errors[0], "mine.yaml") {
			t.Fatalf("validate a bad policy: %+v", v)
		}
		good := strings.Replace(bad, "t.verzions", "t.versions", 1)
		viewer.Do("POST", "/api/v1/policies/validate", map[string]string{"policy": good}).JSON(t, &v)
		if !v.Valid || len(v.Errors) != 0 {
			t.Fatalf("validate a good policy: %+v", v)
		}
		if r := viewer.Do("POST", "/api/v1/policies/validate", map[string]string{}); r.Status != 400 {
			t.Fatalf("validate nothing: %d", r.Status)
		}
	})
}
