//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// serve in the lab's scanner host runs a configured sweep of the lab as
// soon as it is defined, in chunks on two workers with the real nmap; the
// run succeeds with every chunk done, and the lab's hosts are assets with
// their MACs and open ports.
func TestServeSweepsLab(t *testing.T) {
	l := lab.NewStandard(t)
	lab.Require(t, "nmap")
	truth, err := lab.ReadGroundTruth(l.TruthFile())
	if err != nil {
		t.Fatal(err)
	}
	scanner := l.Host("scanner")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "reckon.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
listen: 127.0.0.1:18080
queue: {poll_interval: 50ms}
scopes:
  - name: lab
    allow: [%s]
sweeps:
  - name: lab
    scope: lab
    targets: [%s]
    ports: "22,80,443"
    no_dns: true
    timing: 4
    chunk_size: 64
    schedule: "@every 1h"
    initial_run: true
active: {workers: 2}
`, filepath.Join(dir, "data"), truth.Subnet, truth.Subnet)), 0o600)
	srv := exec.Command("ip", "netns", "exec", scanner.Netns, binary, "serve", "--config", cfg)
	srv.Env = cleanEnv()
	logf, _ := os.Create(filepath.Join(dir, "serve.log"))
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	logs := func() string { b, _ := os.ReadFile(filepath.Join(dir, "serve.log")); return string(b) }

	client := &http.Client{Transport: &http.Transport{DialContext: scanner.DialContext}, Timeout: 10 * time.Second}
	token := ""
	get := func(path string, v any) int {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:18080"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if v != nil {
			_ = json.Unmarshal(body, v)
		}
		return resp.StatusCode
	}
	type run struct {
		ID          string  `json:"id"`
		State       string  `json:"state"`
		Percent     float64 `json:"percent"`
		HostsUp     int     `json:"hosts_up"`
		ChunksTotal int     `json:"chunks_total"`
		ChunksDone  int     `json:"chunks_done"`
		Failure     string  `json:"failure"`
		Trigger     string  `json:"trigger"`
	}
	var runs struct{ Items []run }
	deadline := time.Now().Add(90 * time.Second)
	for {
		if token == "" {
			if b, err := os.ReadFile(filepath.Join(dir, "data", "admin.token")); err == nil {
				token = strings.TrimSpace(string(b))
			}
		}
		if token != "" && get("/api/v1/sweeps/lab/runs", &runs) == 200 && len(runs.Items) > 0 &&
			(runs.Items[0].State == "succeeded" || runs.Items[0].State == "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lab sweep did not finish: %+v\n%s", runs, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := runs.Items[0]
	if r.State != "succeeded" || r.Trigger != "schedule" || r.ChunksTotal != 4 || r.ChunksDone != 4 || r.Percent != 100 || r.HostsUp != len(truth.Hosts) {
		t.Fatalf("run %+v (want %d hosts up)\n%s", r, len(truth.Hosts), logs())
	}
	var assets struct {
		Items []struct {
			MACs     []string `json:"macs"`
			IPs      []string `json:"ips"`
			Services []struct {
				Port int `json:"port"`
			} `json:"services"`
		} `json:"items"`
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		get("/api/v1/assets?source=active:nmap&limit=100", &assets)
		if len(assets.Items) >= len(truth.Hosts)-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	web, _ := truth.Host("web")
	for _, a := range assets.Items {
		if len(a.IPs) == 1 && a.IPs[0] == web.IPv4.String() {
			ports := []int{}
			for _, s := range a.Services {
				ports = append(ports, s.Port)
			}
			if len(a.MACs) != 1 || a.MACs[0] != strings.ToLower(web.MAC) || fmt.Sprint(ports) != "[22 80 443]" {
				t.Fatalf("web asset %+v", a)
			}
			return
		}
	}
	t.Fatalf("no asset for web (%s) among %+v", web.IPv4, assets.Items)
}
