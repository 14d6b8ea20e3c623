package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/discovery"
)

// reckon reconcile prints one jsonl object per asset and per stale CI, and
// records verdicts unless --dry-run.
func TestReconcileCLI(t *testing.T) {
	dir := t.TempDir()
	csvPath, err := filepath.Abs("../../configs/demo/cmdb.csv")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "reckon.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+filepath.Join(dir, "data")+"\ncmdb:\n  kind: file\n  path: "+csvPath+"\n  stale_after: 24h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, cfg, logger, true)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := openInventory(ctx, cfg, st, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	obs := []discovery.Observation{
		{Source: "passive:dhcp", Time: now, MAC: "3c:22:fb:5d:41:07", IP: "10.77.147.182", Hostnames: []discovery.Hostname{{Name: "fin-laptop-07", How: "dhcp"}}},
		{Source: "passive:dhcp", Time: now, MAC: "00:14:22:8e:91:3c", IP: "10.77.147.115", Hostnames: []discovery.Hostname{{Name: "hr-desk-12", How: "dhcp"}}},
		{Source: "passive:arp", Time: now, MAC: "00:1b:21:3a:10:01", IP: "10.77.147.10"},
	}
	if _, err := inv.Ingest(ctx, "b1", "test", obs, true); err != nil {
		t.Fatal(err)
	}
	st.Close()

	type line struct {
		AssetID   string   `json:"asset_id"`
		Verdict   string   `json:"verdict"`
		Reason    string   `json:"reason"`
		Disagree  []string `json:"disagree"`
		MACs      []string `json:"macs"`
		Hostnames []string `json:"hostnames"`
		CI        *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"ci"`
	}
	parse := func(out string) map[string]line {
		got := map[string]line{}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%v: %s", err, sc.Text())
			}
			var key string
			switch {
			case l.Verdict == "stale" && l.CI != nil:
				key = l.CI.Name
			case len(l.MACs) > 0:
				key = l.MACs[0]
			default:
				t.Fatalf("a line with neither a stale CI nor MACs: %s", sc.Text())
			}
			got[key] = l
		}
		return got
	}
	for _, dry := range []bool{true, false} {
		args := []string{"reconcile", "--config", cfgPath, "--format", "jsonl"}
		if dry {
			args = append(args, "--dry-run")
		}
		r := reckon(t, cleanEnv(), args...)
		if r.code != 0 {
			t.Fatalf("reconcile: %d %s", r.code, r.stderr)
		}
		got := parse(r.stdout)
		if l := got["3c:22:fb:5d:41:07"]; l.Verdict != "conflict" || l.CI == nil || l.CI.ID != "demo:3" || strings.Join(l.Disagree, ",") != "hostname" {
			t.Fatalf("renamed laptop: %+v", l)
		}
		if l := got["00:14:22:8e:91:3c"]; l.Verdict != "unmanaged" || l.CI != nil || l.AssetID == "" || l.Hostnames[0] != "hr-desk-12" {
			t.Fatalf("unknown desktop: %+v", l)
		}
		if l := got["00:1b:21:3a:10:01"]; l.Verdict != "managed" || l.CI.Name != "core-gw" {
			t.Fatalf("gateway: %+v", l)
		}
		if l, ok := got["printer-3f"]; !ok || l.AssetID != "" {
			t.Fatalf("stale printer missing: %v", got)
		}
		if _, ok := got["intranet-web"]; !ok {
			t.Fatalf("intranet-web, not on the network here, is not stale: %v", got)
		}
		if !strings.Contains(r.stderr, "1 managed, 1 unmanaged, 0 unknown, 1 conflict, 2 stale") {
			t.Fatalf("summary: %s", r.stderr)
		}
	}
	r := reckon(t, cleanEnv(), "reconcile", "--config", cfgPath, "--format", "csv")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "asset_id,verdict,reason,ci_id,ci_name,macs,ips,hostnames\n") || strings.Count(r.stdout, "\n") != 6 {
		t.Fatalf("csv: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := reckon(t, cleanEnv(), "reconcile", "--format", "xml", "--config", cfgPath); r.code != 2 {
		t.Fatalf("bad format: %d", r.code)
	}
	noCMDB := filepath.Join(dir, "none.yaml")
	_ = os.WriteFile(noCMDB, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600)
	if r := reckon(t, cleanEnv(), "reconcile", "--config", noCMDB); r.code != 2 || !strings.Contains(r.stderr, "cmdb.kind") {
		t.Fatalf("no cmdb: %d %s", r.code, r.stderr)
	}
}
