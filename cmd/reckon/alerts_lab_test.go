//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert/notify"
	"github.com/reckon-dev/reckon/internal/lab"
)

// labNote is what the test's webhook receiver keeps of a notification.
type labNote struct {
	AlertID   string         `json:"alert_id"`
	Event     string         `json:"event"`
	Kind      string         `json:"kind"`
	Team      string         `json:"team"`
	AssetID   string         `json:"asset_id"`
	Condition string         `json:"condition"`
	Workflow  string         `json:"workflow"`
	Detail    map[string]any `json:"detail"`
}

// labHook is a webhook receiver that checks reckon's signature on every
// request and keeps what it was sent.
type labHook struct {
	secret string
	mu     sync.Mutex
	notes  []labNote
	bad    []string // requests whose signature or body did not hold
}

func (h *labHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(h.secret, r.Header.Get(notify.HeaderTimestamp), string(body), r.Header.Get(notify.HeaderSignature), time.Minute); err != nil {
		h.mu.Lock()
		h.bad = append(h.bad, err.Error())
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var doc struct {
		Notifications []labNote `json:"notifications"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		h.mu.Lock()
		h.bad = append(h.bad, fmt.Sprintf("%v: %s", err, body))
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.notes = append(h.notes, doc.Notifications...)
	h.mu.Unlock()
}

// find returns the first notification that ok accepts.
func (h *labHook) find(ok func(labNote) bool) (labNote, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.notes {
		if ok(n) {
			return n, true
		}
	}
	return labNote{}, false
}

func (h *labHook) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, n := range h.notes {
		fmt.Fprintf(&b, "  %s %s alert=%s asset=%s team=%s condition=%s workflow=%s detail=%v\n",
			n.Event, n.Kind, n.AlertID, n.AssetID, n.Team, n.Condition, n.Workflow, n.Detail)
	}
	for _, s := range h.bad {
		fmt.Fprintf(&b, "  refused: %s\n", s)
	}
	return b.String()
}

// labAPI calls reckon's API inside the lab, from the scanner host.
type labAPI struct {
	t      *testing.T
	client *http.Client
	base   string
	token  string
}

// call sends body (when not nil) as JSON and decodes the answer into v
// (when not nil); it returns the status and the raw answer, status 0 when
// the request failed.
func (a *labAPI) call(method, path string, body, v any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, v); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

// labAlert is the part of an alert the test reads.
type labAlert struct {
	ID         string         `json:"id"`
	Kind       string         `json:"kind"`
	AssetID    string         `json:"asset_id"`
	CheckID    string         `json:"check_id"`
	Key        string         `json:"key"`
	Condition  string         `json:"condition"`
	Workflow   string         `json:"workflow"`
	Resolution string         `json:"resolution"`
	Team       string         `json:"team"`
	Detail     map[string]any `json:"detail"`
}

// labWait polls ok every 200ms until it holds, and fails the test with
// what describe says when it has not within d.
func labWait(t *testing.T, d time.Duration, what string, ok func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s\n%s", d, what, describe())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// End to end on the test network: a new host appears, is found by a
// sweep, reconciled as unmanaged, assessed, and alerts arrive at a webhook
// receiver in the test with the right team; a port opened later raises a
// drift alert; closing it as fixed is refused until a reassessment shows
// it cleared.
func TestAlertsEndToEndLab(t *testing.T) {
	lab.Require(t, "nmap", "nginx")
	start := time.Now()
	stage := start
	logStage := func(what string) {
		t.Logf("%-58s %6.1fs (at %6.1fs)", what, time.Since(stage).Seconds(), time.Since(start).Seconds())
		stage = time.Now()
	}

	// web has a universal MAC: a locally administered one (the lab's
	// default) with no hostname (no_dns) identifies nothing, and the
	// reconciliation would call it unknown rather than unmanaged.
	webMAC, _ := net.ParseMAC("00:1b:21:3a:10:77")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "scanner"}, {Name: "web", MAC: webMAC}}})
	scanner, web := l.Host("scanner"), l.Host("web")
	web.TLSServer(8443, true) // TLS 1.0 only: fails TLS-001
	logStage("lab built, TLS 1.0 nginx on web:8443")

	// The webhook receiver listens inside the scanner's namespace, where
	// reckon runs: a socket stays in the namespace it was made in.
	dir := t.TempDir()
	hook := &labHook{secret: "lab-s3cret"}
	var ln net.Listener
	if err := lab.Do(scanner.Netns, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(scanner.IP.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hookSrv := &http.Server{Handler: hook, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hookSrv.Serve(ln) }()
	t.Cleanup(func() { _ = hookSrv.Close() })
	secretFile := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secretFile, []byte(hook.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The CMDB knows one device, not web.
	cmdbFile := filepath.Join(dir, "cmdb.csv")
	if err := os.WriteFile(cmdbFile, []byte("id,class,name,serial,macs,static_ips,site,business_unit,owner,role,status,last_updated\n"+
		"lab:1,device,printer-9f,CNB8K4Q2ZX,00:1b:a9:44:10:9f,,hq,facilities,helpdesk@example.com,printer,active,2026-03-02T09:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	apiAddr := net.JoinHostPort(scanner.IP.String(), "18080") // inside the scanner's namespace: free
	dataDir := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "reckon.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %[1]s
listen: %[2]s
scopes:
  - name: lab
    allow: [%[3]s]
sweeps:
  - name: lab
    scope: lab
    targets: [%[3]s]
    ports: "T:80,8443"
    service_detection: false
    no_dns: true
    timing: 4
    schedule: "@every 1h"
    initial_run: true
cmdb:
  kind: file
  path: %[4]s
  every: 10s
  incremental_every: 5s
  stale_after: 24h
assess:
  ports: "T:80,8443"
  no_scripts: true
  version_intensity: 0
alerts:
  route:
    team: secops
    receivers: [hook]
    group_wait: 1s
    group_interval: 1s
    routes:
      - match: {kind: [unmanaged]}
        team: asset-mgmt
  receivers:
    - name: hook
      webhook: {url: "http://%[5]s/", secret_file: %[6]s}
`, dataDir, apiAddr, l.Subnet, cmdbFile, ln.Addr(), secretFile)), 0o600); err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", scanner.Netns, binary, "serve", "--config", cfg)
	srv.Env = cleanEnv("RECKON_QUEUE_POLL_INTERVAL=50ms")
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); logf.Close(); close(exited) }()
	logs := func() string {
		b, _ := os.ReadFile(logFile)
		if len(b) > 20000 {
			b = append([]byte("..."), b[len(b)-20000:]...)
		}
		return string(b)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("reckon serve log:\n%s\nwebhook got:\n%s", logs(), hook)
		}
	})

	api := &labAPI{t: t, client: &http.Client{Transport: &http.Transport{DialContext: scanner.DialContext}, Timeout: 10 * time.Second},
		base: "http://" + apiAddr}
	labWait(t, 30*time.Second, "reckon serve to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("reckon serve exited:\n%s", logs())
		default:
		}
		code, _ := api.call("GET", "/readyz", nil, nil)
		return code == 200
	}, logs)
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	api.token = strings.TrimSpace(string(tok))
	logStage("reckon serve ready in the scanner's namespace")

	// Found: the sweep makes web an asset.
	var assetID string
	labWait(t, 2*time.Minute, "the sweep to find web ("+web.IP.String()+")", func() bool {
		var list struct {
			Items []struct {
				ID  string   `json:"id"`
				IPs []string `json:"ips"`
			} `json:"items"`
		}
		if code, _ := api.call("GET", "/api/v1/assets?limit=100", nil, &list); code != 200 {
			return false
		}
		for _, a := range list.Items {
			if slices.Contains(a.IPs, web.IP.String()) {
				assetID = a.ID
				return true
			}
		}
		return false
	}, func() string {
		_, body := api.call("GET", "/api/v1/sweeps/lab/runs", nil, nil)
		return "sweep runs: " + body
	})
	logStage("the sweep found web: asset " + assetID)

	// Reconciled as unmanaged: the webhook gets the alert, for asset
	// management.
	labWait(t, 2*time.Minute, "an unmanaged alert for web at the webhook", func() bool {
		_, ok := hook.find(func(n labNote) bool { return n.Kind == "unmanaged" && n.AssetID == assetID && n.Event == "opened" })
		return ok
	}, func() string { return "webhook got:\n" + hook.String() })
	if n, _ := hook.find(func(n labNote) bool { return n.Kind == "unmanaged" && n.AssetID == assetID }); n.Team != "asset-mgmt" || n.Condition != "firing" {
		t.Fatalf("unmanaged notification %+v, want team asset-mgmt, firing", n)
	}
	logStage("unmanaged alert at the webhook (team asset-mgmt)")

	// Assessed: TLS-001 fails, and the webhook gets it for secops.
	alerts := func(query string) []labAlert {
		var list struct {
			Items []labAlert `json:"items"`
		}
		if code, body := api.call("GET", "/api/v1/alerts?"+query, nil, &list); code != 200 {
			t.Fatalf("GET /api/v1/alerts?%s: %d %s", query, code, body)
		}
		return list.Items
	}
	var tls labAlert
	labWait(t, 3*time.Minute, "a TLS-001 check_failed alert for web, at the webhook", func() bool {
		for _, a := range alerts("kind=check_failed&asset=" + assetID) {
			if a.CheckID == "TLS-001" {
				tls = a
			}
		}
		if tls.ID == "" {
			return false
		}
		_, ok := hook.find(func(n labNote) bool { return n.AlertID == tls.ID })
		return ok
	}, func() string {
		_, body := api.call("GET", "/api/v1/assets/"+assetID+"/assessments", nil, nil)
		return fmt.Sprintf("TLS alert %+v\nassessments: %s\nwebhook got:\n%s", tls, body, hook)
	})
	if n, _ := hook.find(func(n labNote) bool { return n.AlertID == tls.ID }); n.Team != "secops" || n.Kind != "check_failed" || n.AssetID != assetID || n.Event != "opened" {
		t.Fatalf("TLS-001 notification %+v, want an opened check_failed for secops", n)
	}
	if tls.Team != "secops" || tls.Condition != "firing" {
		t.Fatalf("TLS-001 alert %+v, want team secops, firing", tls)
	}
	logStage("TLS-001 check_failed alert at the webhook (team secops)")

	// reassess has web assessed once more, from a request made now, and
	// waits for that assessment to succeed. A job already pending or
	// running takes the request in (one per host) and may have started
	// before the change the caller wants seen, so the caller checks the
	// outcome and asks again when it is not there yet.
	reassessments := 0
	reassess := func() {
		t.Helper()
		reassessments++
		var q struct {
			JobID     int64  `json:"job_id"`
			Duplicate bool   `json:"duplicate"`
			State     string `json:"state"`
		}
		if code, body := api.call("POST", "/api/v1/assets/"+assetID+"/assessments", struct{}{}, &q); code != 202 {
			t.Fatalf("POST assessments: %d %s", code, body)
		}
		var last string
		labWait(t, 2*time.Minute, fmt.Sprintf("assessment job %d to finish", q.JobID), func() bool {
			var list struct {
				Items []struct {
					JobID int64  `json:"job_id"`
					State string `json:"state"`
					Error string `json:"error"`
				} `json:"items"`
				Pending *struct {
					JobID int64 `json:"job_id"`
				} `json:"pending"`
			}
			code, body := api.call("GET", "/api/v1/assets/"+assetID+"/assessments", nil, &list)
			last = body
			if code != 200 || (list.Pending != nil && list.Pending.JobID == q.JobID) {
				return false
			}
			for _, a := range list.Items {
				if a.JobID == q.JobID && a.State == "succeeded" {
					return true
				}
			}
			t.Fatalf("assessment job %d is no longer pending and did not succeed: %s", q.JobID, body)
			return false
		}, func() string { return "assessments: " + last })
	}

	// A port opened later raises a drift alert.
	nginx := web.HTTPServer("hello")
	logStage("nginx on web:80")
	var drift labAlert
	findDrift := func() bool {
		for _, a := range alerts("kind=drift&asset=" + assetID) {
			if strings.Contains(a.Key, "80") && a.Detail["drift"] == "port_opened" {
				drift = a
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(3 * time.Minute)
	for reassess(); !findDrift(); reassess() {
		if time.Now().After(deadline) {
			t.Fatalf("no port_opened drift alert for tcp/80: %+v", alerts("asset="+assetID))
		}
	}
	if drift.Condition != "firing" || drift.Workflow != "new" || drift.Team != "secops" {
		t.Fatalf("drift alert %+v, want firing, new, team secops", drift)
	}
	logStage(fmt.Sprintf("port_opened drift alert (key %q) after %d reassessment(s)", drift.Key, reassessments))
	labWait(t, 30*time.Second, "the drift alert at the webhook", func() bool {
		_, ok := hook.find(func(n labNote) bool { return n.AlertID == drift.ID && n.Event == "opened" })
		return ok
	}, func() string { return "webhook got:\n" + hook.String() })
	if n, _ := hook.find(func(n labNote) bool { return n.AlertID == drift.ID && n.Event == "opened" }); n.Kind != "drift" || n.Team != "secops" || n.AssetID != assetID {
		t.Fatalf("drift notification %+v, want a drift for secops on %s", n, assetID)
	}
	logStage("drift alert at the webhook (team secops)")

	// Taken, then refused as fixed while the port is still open.
	transition := func(body map[string]string) (int, string, labAlert) {
		var a labAlert
		code, raw := api.call("POST", "/api/v1/alerts/"+drift.ID+"/transitions", body, &a)
		return code, raw, a
	}
	if code, raw, a := transition(map[string]string{"to": "triage", "note": "looking"}); code != 200 || a.Workflow != "triage" {
		t.Fatalf("to triage: %d %s", code, raw)
	}
	code, raw, _ := transition(map[string]string{"to": "closed", "resolution": "fixed"})
	var problem struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal([]byte(raw), &problem)
	if code != http.StatusConflict || !strings.Contains(problem.Detail, "cleared") {
		t.Fatalf("closing as fixed while the port is open: %d %s, want 409 saying it has not cleared", code, raw)
	}
	logStage("triage 200; closed/fixed refused (409) while firing")

	// The port closed and a reassessment seeing it clears the alert; then
	// fixed is accepted.
	nginx.Stop()
	logStage("nginx on web:80 stopped")
	cleared := func() bool {
		var a labAlert
		if code, body := api.call("GET", "/api/v1/alerts/"+drift.ID, nil, &a); code != 200 {
			t.Fatalf("GET alert: %d %s", code, body)
		}
		drift = a
		return a.Condition == "cleared"
	}
	reassessments = 0
	deadline = time.Now().Add(3 * time.Minute)
	for reassess(); !cleared(); reassess() {
		if time.Now().After(deadline) {
			t.Fatalf("the drift alert did not clear after port 80 closed: %+v", drift)
		}
	}
	logStage(fmt.Sprintf("the drift alert cleared after %d reassessment(s)", reassessments))
	code, raw, closed := transition(map[string]string{"to": "closed", "resolution": "fixed", "note": "port 80 closed again"})
	if code != 200 || closed.Workflow != "closed" || closed.Resolution != "fixed" || closed.Condition != "cleared" {
		t.Fatalf("closing as fixed once cleared: %d %s", code, raw)
	}
	logStage("closed as fixed (200)")

	hook.mu.Lock()
	bad := slices.Clone(hook.bad)
	hook.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("the webhook refused requests: %v", bad)
	}
	if _, ok := hook.find(func(n labNote) bool { return n.AlertID == drift.ID && n.Event == "cleared" }); ok {
		t.Logf("the webhook also got the drift alert's clearing")
	}
	t.Logf("end to end in %s", time.Since(start).Round(time.Millisecond))
}
