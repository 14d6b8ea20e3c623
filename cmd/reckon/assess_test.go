package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert/notify"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

func TestPolicyCheckCLI(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"policy", "check", "../../configs/policies/baseline.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("baseline refused (%d): %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok, 46 checks") && !strings.Contains(out.String(), "ok,") {
		t.Fatalf("policy check output: %s", out.String())
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("checks:\n  - id: ACC-TYPE-001\n    title: t\n    severity: low\n    rationale: r\n    applies: \"true\"\n    expect: \"1 + 'a' == 2\"\n  - id: ACC-FACT-002\n    title: t\n    severity: low\n    rationale: r\n    expect: \"ssh.exists(s, s.kexes.size() > 0)\"\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"policy", "check", bad}, &out, &errb); code != 1 {
		t.Fatalf("a policy with a type error: exit %d", code)
	}
	for _, want := range []string{"bad.yaml", "ACC-TYPE-001", "ACC-FACT-002", "kexes"} {
		if !strings.Contains(errb.String(), want) {
			t.Fatalf("error output lacks %q: %s", want, errb.String())
		}
	}
	if code := run(ctx, []string{"policy"}, &out, &errb); code != 2 {
		t.Fatalf("policy without check: exit %d", code)
	}
}

// openssl serves TLS on a free loopback port with the given protocol flags.
func openssl(t *testing.T, cert, key string, flags ...string) string {
	t.Helper()
	addr := freePort(t)
	args := append([]string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-www", "-quiet"}, flags...)
	cmd := exec.Command("openssl", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 50 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("openssl s_server on %s did not come up", addr)
	return ""
}

// reckon assess with real nmap and probes: a TLS 1.0-only service fails TLS
// checks that a TLS 1.3-only one passes; jsonl has the documented fields.
func TestAssessCLI(t *testing.T) {
	for _, p := range []string{"nmap", "openssl"} {
		if _, err := exec.LookPath(p); err != nil {
			storetest.RequireIntegration(t, "%s is not installed", p)
		}
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "200", "-subj", "/CN=localhost").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v %s", err, out)
	}
	weak := openssl(t, cert, key, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
	strong := openssl(t, cert, key, "-tls1_3")
	type result struct {
		Target   string `json:"target"`
		CheckID  string `json:"check_id"`
		Title    string `json:"title"`
		Severity string `json:"severity"`
		Status   string `json:"status"`
		Evidence any    `json:"evidence"`
	}
	assess := func(addr string) map[string]result {
		_, port, _ := net.SplitHostPort(addr)
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"assess", "--target", "127.0.0.1", "--ports", port, "--no-scripts", "--format", "jsonl"}, &out, &errb); code != 0 {
			t.Fatalf("assess %s: exit %d: %s", addr, code, errb.String())
		}
		got := map[string]result{}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var r result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("jsonl line %q: %v", sc.Text(), err)
			}
			if r.Target != "127.0.0.1" || r.CheckID == "" || r.Title == "" || r.Severity == "" || r.Status == "" {
				t.Fatalf("incomplete result: %+v", r)
			}
			got[r.CheckID] = r
		}
		return got
	}
	w, s := assess(weak), assess(strong)
	if len(w) < 30 {
		t.Fatalf("%d results", len(w))
	}
	for _, id := range []string{"TLS-001", "TLS-003"} {
		if w[id].Status != "fail" || s[id].Status != "pass" {
			t.Fatalf("%s: weak %s, strong %s", id, w[id].Status, s[id].Status)
		}
	}
	if w["TLS-001"].Evidence == nil {
		t.Fatal("a failed check without evidence")
	}
	if w["SSH-001"].Status != "not_applicable" {
		t.Fatalf("an SSH check on a host without SSH: %s", w["SSH-001"].Status)
	}

	// With a configuration, a target outside its scopes is refused before
	// anything is sent.
	cfg := filepath.Join(dir, "reckon.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nscopes:\n  - name: lab\n    allow: [10.99.0.0/16]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"assess", "--config", cfg, "--target", "127.0.0.1", "--ports", "22"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "outside the allowed scopes") {
		t.Fatalf("out-of-scope target: exit %d, %s", code, errb.String())
	}
}

// reckon serve assesses a new host on its own, and `reckon assess --asset
// --wait` has it assessed again and prints the results.
func TestServeAssessesNewHost(t *testing.T) {
	for _, p := range []string{"nmap", "openssl"} {
		if _, err := exec.LookPath(p); err != nil {
			storetest.RequireIntegration(t, "%s is not installed", p)
		}
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "200", "-subj", "/CN=localhost").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v %s", err, out)
	}
	weak := openssl(t, cert, key, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
	_, port, _ := net.SplitHostPort(weak)
	// A webhook receiver that checks reckon's signature.
	type hooked struct {
		Notifications []struct {
			AlertID string         `json:"alert_id"`
			Kind    string         `json:"kind"`
			Team    string         `json:"team"`
			Event   string         `json:"event"`
			Detail  map[string]any `json:"detail"`
			AssetID string         `json:"asset_id"`
		} `json:"notifications"`
	}
	got := make(chan hooked, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify("s3cret", r.Header.Get(notify.HeaderTimestamp), string(body), r.Header.Get(notify.HeaderSignature), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var h hooked
		json.Unmarshal(body, &h)
		got <- h
	}))
	defer hook.Close()
	os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("s3cret\n"), 0o600)
	cfg := filepath.Join(dir, "reckon.yaml")
	os.WriteFile(cfg, []byte("scopes:\n  - name: lo\n    allow: [127.0.0.0/8]\nassess:\n  ports: \""+port+"\"\n  no_scripts: true\n  version_intensity: 2\n"+
		"alerts:\n  route:\n    team: secops\n    receivers: [hook]\n    group_wait: 1s\n    routes:\n      - match: {family: [tls]}\n        team: tls-team\n"+
		"  receivers:\n    - name: hook\n      webhook: {url: \""+hook.URL+"\", secret_file: hook.secret}\n"), 0o600)
	s := serve(t, cleanEnv(), "--config", cfg)
	tok := s.adminToken()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte(tok), 0o600)

	body := `{"batch_id":"b1","observations":[{"source":"passive:arp","time":"` + time.Now().UTC().Format(time.RFC3339) + `","mac":"02:00:00:00:00:01","ip":"127.0.0.1"}]}`
	req, _ := http.NewRequest("POST", s.url+"/api/v1/observations?wait=true", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest: %v %v", err, resp)
	}
	resp.Body.Close()
	_, list := s.get("/api/v1/assets", tok)
	var assets struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	json.Unmarshal([]byte(list), &assets)
	if len(assets.Items) != 1 {
		t.Fatalf("assets: %s", list)
	}
	id := assets.Items[0].ID
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, body := s.get("/api/v1/assets/"+id+"/assessments", tok)
		if strings.Contains(body, `"state":"succeeded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new host was not assessed: %s\n%s", body, s.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"assess", "--asset", id, "--wait", "--format", "jsonl", "--server", s.url, "--token-file", tokFile}, &out, &errb)
	if code != 0 {
		t.Fatalf("assess --asset: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "queued as job") {
		t.Fatalf("stderr: %s", errb.String())
	}
	failed := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r struct {
			CheckID string `json:"check_id"`
			Status  string `json:"status"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		failed[r.CheckID] = r.Status == "fail"
	}
	if !failed["TLS-001"] {
		t.Fatalf("TLS-001 does not fail on a TLS 1.0 service: %s", out.String())
	}
	_, body = s.get("/api/v1/assets/"+id+"/assessments", tok)
	if n := strings.Count(body, `"state":"succeeded"`); n != 2 {
		t.Fatalf("%d succeeded assessments, want 2: %s", n, body)
	}

	// The failing checks became alerts; work one through the CLI.
	client := []string{"--server", s.url, "--token-file", tokFile}
	alertsCmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(append(args[:2:2], client...), args[2:]...), &out, &errb)
		return code, out.String(), errb.String()
	}
	var tlsAlert string
	deadline = time.Now().Add(30 * time.Second)
	for tlsAlert == "" {
		code, out, errs := alertsCmd("alerts", "list", "--kind", "check_failed", "--format", "jsonl")
		if code != 0 {
			t.Fatalf("alerts list: %d %s", code, errs)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var a struct {
				ID, CheckID, AssetID, Workflow string
			}
			var raw map[string]any
			if json.Unmarshal([]byte(line), &raw) != nil {
				continue
			}
			a.ID, _ = raw["id"].(string)
			a.CheckID, _ = raw["check_id"].(string)
			a.AssetID, _ = raw["asset_id"].(string)
			if a.CheckID == "TLS-001" && a.AssetID == id {
				tlsAlert = a.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS-001 alert: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out, errs := alertsCmd("alerts", "ack", "--note", "on it", tlsAlert); code != 0 || !strings.Contains(out, "triage") {
		t.Fatalf("ack: %d %s %s", code, out, errs)
	}
	if code, _, errs := alertsCmd("alerts", "close", "--resolution", "fixed", tlsAlert); code != 1 || !strings.Contains(errs, "cleared") {
		t.Fatalf("close as fixed while firing: %d %s", code, errs)
	}
	if code, out, errs := alertsCmd("alerts", "close", "--resolution", "true_positive", "--note", "legacy box", tlsAlert); code != 0 || !strings.Contains(out, "closed (true_positive)") {
		t.Fatalf("close: %d %s %s", code, out, errs)
	}
	if code, out, errs := alertsCmd("alerts", "show", tlsAlert); code != 0 || !strings.Contains(out, "legacy box") || !strings.Contains(out, "on it") {
		t.Fatalf("show: %d %s %s", code, out, errs)
	}

	// The webhook got the TLS alert, routed to the TLS team, signed.
	timeout := time.After(30 * time.Second)
	for found := false; !found; {
		select {
		case h := <-got:
			for _, n := range h.Notifications {
				if n.AlertID == tlsAlert {
					if n.Team != "tls-team" || n.Kind != "check_failed" || n.Event != "opened" || n.AssetID != id {
						t.Fatalf("notification: %+v", n)
					}
					found = true
				}
			}
		case <-timeout:
			t.Fatalf("the webhook never got alert %s", tlsAlert)
		}
	}
}
