package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSensorReadsCaptures(t *testing.T) {
	pcap := func(name string) string {
		p, err := filepath.Abs(filepath.Join("..", "..", "discovery", "passive", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := reckon(t, cleanEnv(), "sensor", "--read", pcap("tcpdump__LLDP_and_CDP.pcap"), "--format", "jsonl")
	if r.code != 0 {
		t.Fatalf("sensor: %d %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d devices, want 2 switches:\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		var a struct {
			MACs      []string `json:"macs"`
			Hostnames []string `json:"hostnames"`
			Vendor    string   `json:"vendor"`
			Sources   []string `json:"sources"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.MACs) != 1 || len(a.Hostnames) == 0 || !strings.Contains(a.Vendor, "Cisco") || len(a.Sources) != 2 {
			t.Errorf("device %s", l)
		}
	}
	if r := reckon(t, cleanEnv(), "sensor", "--read", pcap("csanders__dhcp_nolease_initialization.pcapng")); r.code != 0 ||
		!strings.Contains(r.stdout, "ubuntu2") || !strings.Contains(r.stdout, "192.168.1.10") {
		t.Fatalf("table: %d %s %s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "notes.pcap")
	os.WriteFile(bad, []byte("not a capture"), 0o600)
	wantOneLineError(t, reckon(t, cleanEnv(), "sensor", "--read", bad), "not a pcap or pcapng")
	if r := reckon(t, cleanEnv(), "sensor"); r.code != 2 {
		t.Fatalf("no --read: exit %d", r.code)
	}
	// A crafted capture is read to its end without a crash.
	if r := reckon(t, cleanEnv(), "sensor", "--read", pcap("tcpdump__arp-too-long-tha.pcap"), "--format", "jsonl"); r.code > 1 ||
		strings.Contains(r.stderr, "panic") {
		t.Fatalf("hostile capture: %d %s", r.code, r.stderr)
	}
}

// serve runs the sensors of its configuration in-process: a capture file
// read once lands its devices in the inventory, and the sensor's counters
// are on /metrics.
func TestServeRunsSensors(t *testing.T) {
	capture, err := filepath.Abs(filepath.Join("..", "..", "discovery", "passive", "testdata", "csanders__dhcp_nolease_initialization.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "reckon.yaml")
	os.WriteFile(cfg, []byte("sensors:\n  - name: lab\n    read: "+capture+"\n"), 0o600)
	s := serve(t, cleanEnv(), "--config", cfg)
	tok := s.adminToken()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := s.get("/api/v1/assets", tok)
		if code == 200 && strings.Contains(body, "00:0c:29:59:fd:21") && strings.Contains(body, "ubuntu2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sensor's device never reached /api/v1/assets: %d %s\n%s", code, body, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, metrics := s.get("/metrics", tok)
	if code != 200 || !strings.Contains(metrics, `reckon_sensor_packets_total{sensor="lab"} 4`) {
		t.Fatalf("metrics %d: %s", code, grepLines(metrics, "reckon_sensor"))
	}
	// A sensor whose settings are wrong stops serve at start with its name.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("sensors:\n  - name: lab\n    read: x.pcap\n    interface: eth0\n"), 0o600)
	wantOneLineError(t, reckon(t, cleanEnv(), "serve", "--config", bad), "sensors[0]", "exactly one of interface or read")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// sensor --server ships what a capture holds to the central server through
// the spool, and reports what it shipped.
func TestSensorShipsToServer(t *testing.T) {
	s := serve(t, cleanEnv())
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(s.adminToken()+"\n"), 0o600)
	capture, _ := filepath.Abs(filepath.Join("..", "..", "discovery", "passive", "testdata", "tcpdump__LLDP_and_CDP.pcap"))
	spool := filepath.Join(t.TempDir(), "spool")
	r := reckon(t, cleanEnv(), "sensor", "--read", capture, "--server", s.url, "--token-file", tokFile, "--spool", spool, "--sensor", "edge1")
	if r.code != 0 || !strings.Contains(r.stderr, "shipped in 1 batches, 0 pending on disk, 0 dropped") {
		t.Fatalf("sensor: %d\n%s", r.code, r.stderr)
	}
	// The server acknowledged the batch; the inventory applies it within
	// its flush interval.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := s.get("/api/v1/assets", s.adminToken())
		if code == 200 && strings.Contains(body, "00:18:ba:98:68:8f") && strings.Contains(body, "00:19:2f:a7:b2:8d") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("assets %d: %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// No token: one clear error naming how to give one.
	wantOneLineError(t, reckon(t, cleanEnv(), "sensor", "--read", capture, "--server", s.url, "--spool", spool), "--token-file")
}
