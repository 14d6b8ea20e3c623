package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// post sends a JSON body with the token and returns the status and body.
func (s *server) post(path, token, body string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const threeObservations = `{"batch_id":"t1","observations":[
 {"source":"passive:arp","time":"2026-11-20T10:00:00Z","mac":"00:16:3e:00:00:01","ip":"10.20.0.10","hostnames":["alpha"]},
 {"source":"passive:arp","time":"2026-11-20T10:00:01Z","mac":"00:16:3e:00:00:02","ip":"10.20.0.11","hostnames":["beta"]},
 {"source":"passive:arp","time":"2026-11-20T10:00:02Z","mac":"00:16:3e:00:00:03","ip":"10.20.0.12","hostnames":["gamma"]}]}`

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var items []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("jsonl line %q: %v", line, err)
		}
		items = append(items, m)
	}
	return items
}

func TestAssetsCommands(t *testing.T) {
	s := serve(t, cleanEnv())
	tok := s.adminToken()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := s.post("/api/v1/observations?wait=true", tok, threeObservations); code != 200 && code != 202 {
		t.Fatalf("observations: %d %s", code, body)
	}
	env := cleanEnv()
	client := []string{"--server", s.url, "--token-file", tokenFile}
	list := func(args ...string) result {
		t.Helper()
		return reckon(t, env, append(append([]string{"assets", "list"}, client...), args...)...)
	}

	// The batch may be folded in shortly after the answer (202).
	var items []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := list("--format", "jsonl")
		if r.code != 0 {
			t.Fatalf("assets list: %d %s", r.code, r.stderr)
		}
		if items = jsonLines(t, r.stdout); len(items) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(items) != 3 {
		t.Fatalf("jsonl gave %d assets, want 3", len(items))
	}
	// jsonl keeps what the API said, including fields the CLI does not print.
	for _, it := range items {
		for _, k := range []string{"id", "identity", "services", "first_seen"} {
			if _, ok := it[k]; !ok {
				t.Fatalf("jsonl item lacks %q: %v", k, it)
			}
		}
	}
	var alphaID string
	for _, it := range items {
		if hn, _ := it["hostnames"].([]any); len(hn) == 1 && hn[0] == "alpha" {
			alphaID, _ = it["id"].(string)
		}
	}
	if alphaID == "" {
		t.Fatalf("no asset named alpha in %v", items)
	}

	r := list("--format", "csv")
	if r.code != 0 {
		t.Fatalf("csv: %d %s", r.code, r.stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "ID" || rows[0][7] != "LAST SEEN" {
		t.Fatalf("csv (%v):\n%s", err, r.stdout)
	}

	r = list()
	if r.code != 0 || !strings.Contains(r.stdout, "alpha") || !strings.Contains(r.stdout, "HOSTNAMES") || !strings.Contains(r.stdout, "10.20.0.10") {
		t.Fatalf("table: %d %s\n%s", r.code, r.stderr, r.stdout)
	}

	// Paging: a limit below the total stops there; filters reach the server.
	if r = list("--format", "jsonl", "--limit", "2"); r.code != 0 || len(jsonLines(t, r.stdout)) != 2 {
		t.Fatalf("--limit 2: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	if r = list("--format", "jsonl", "--q", "beta"); r.code != 0 || len(jsonLines(t, r.stdout)) != 1 {
		t.Fatalf("--q beta: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	if r = list("--format", "jsonl", "--subnet", "10.20.0.10/32"); r.code != 0 || len(jsonLines(t, r.stdout)) != 1 {
		t.Fatalf("--subnet: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	if r = list("--status", "managed", "--format", "jsonl"); r.code != 0 || r.stdout != "" {
		t.Fatalf("--status managed: %d %s\n%q", r.code, r.stderr, r.stdout)
	}
	if r = list("--status", "managed"); r.code != 0 || r.stdout != "" {
		t.Fatalf("--status managed table: %d %s\n%q", r.code, r.stderr, r.stdout)
	}
	// A value the server refuses is a wrong command line.
	r = list("--status", "bogus")
	wantOneLineError(t, r, "400", "status", "bogus")
	if r.code != 2 {
		t.Fatalf("--status bogus: exit %d, want 2", r.code)
	}
	if r = list("--format", "xml"); r.code != 2 {
		t.Fatalf("--format xml: exit %d", r.code)
	}

	show := func(args ...string) result {
		t.Helper()
		return reckon(t, env, append(append([]string{"assets", "show"}, client...), args...)...)
	}
	r = show(alphaID)
	if r.code != 0 || !strings.Contains(r.stdout, "00:16:3e:00:00:01") || !strings.Contains(r.stdout, "alpha") ||
		!strings.Contains(r.stdout, "10.20.0.10") || !strings.Contains(r.stdout, "passive:arp") || !strings.Contains(r.stdout, "asset_created") {
		t.Fatalf("show: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	r = show("--format", "json", alphaID)
	var d map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil || d["id"] != alphaID || d["timeline"] == nil {
		t.Fatalf("show json: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	r = show("no-such-asset")
	wantOneLineError(t, r, "404", "Not Found")
	if r.code != 1 {
		t.Fatalf("unknown id: exit %d, want 1", r.code)
	}
	if r = show(); r.code != 2 {
		t.Fatalf("show without id: exit %d", r.code)
	}

	// A merged asset says where it went.
	var betaID string
	for _, it := range items {
		if hn, _ := it["hostnames"].([]any); len(hn) == 1 && hn[0] == "beta" {
			betaID, _ = it["id"].(string)
		}
	}
	if code, body := s.post("/api/v1/assets/"+alphaID+"/merge", tok, `{"other":"`+betaID+`"}`); code != 200 {
		t.Fatalf("merge: %d %s", code, body)
	}
	r = show(betaID)
	wantOneLineError(t, r, "asset "+betaID+" was merged into "+alphaID)
	if r.code != 1 {
		t.Fatalf("merged: exit %d, want 1", r.code)
	}

	// The token from the environment; and none at all.
	r = reckon(t, cleanEnv("RECKON_TOKEN="+tok, "RECKON_SERVER="+s.url), "assets", "list", "--format", "jsonl")
	if r.code != 0 || len(jsonLines(t, r.stdout)) != 2 {
		t.Fatalf("RECKON_TOKEN: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	wantOneLineError(t, reckon(t, env, "assets", "list", "--server", s.url), "no token: pass --token-file or set RECKON_TOKEN")
	wantOneLineError(t, reckon(t, env, "assets", "list", "--server", s.url, "--token-file", filepath.Join(t.TempDir(), "missing")), "missing")
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_TOKEN=rk_wrong"), "assets", "list", "--server", s.url), "401")

	// A server that is not listening.
	down := "http://" + freePort(t)
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_TOKEN="+tok), "assets", "list", "--server", down), down)
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_TOKEN="+tok, "RECKON_SERVER="+down), "assets", "show", alphaID), down)
}
