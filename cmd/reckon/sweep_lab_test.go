//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// sweptDevice is what reckon sweep prints for a device.
type sweptDevice struct {
	MACs     []string `json:"macs"`
	IPs      []string `json:"ips"`
	Services []struct {
		Port    int    `json:"port"`
		Proto   string `json:"proto"`
		Name    string `json:"name"`
		Product string `json:"product"`
	} `json:"services"`
}

// A sweep of the standard lab from its scanner host finds exactly the lab's
// hosts, each with its MAC, and exactly the services the ground truth lists
// on the ports swept; an excluded host is never probed, which a capture of
// the bridge's traffic during the sweep shows.
func TestSweepLabGroundTruth(t *testing.T) {
	l := lab.NewStandard(t)
	lab.Require(t, "nmap", "tcpdump")
	truth, err := lab.ReadGroundTruth(l.TruthFile())
	if err != nil {
		t.Fatal(err)
	}
	// ws2 is excluded; infra (SNMP on udp/161, FTP) is swept.
	excluded, _ := truth.Host("ws2")
	scanner, _ := truth.Host("scanner")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lab.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("scopes:\n  - name: lab\n    allow: [%s]\n    exclude: [%s/32]\n", truth.Subnet, excluded.IPv4)), 0o600)

	// The capture: every frame crossing the bridge, from before the sweep.
	pcap := filepath.Join(dir, "sweep.pcap")
	dump := exec.Command("ip", "netns", "exec", truth.Sensor.Netns, "tcpdump", "-i", truth.Sensor.Iface, "-U", "-n", "-w", pcap)
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dump.Process.Kill(); _ = dump.Wait() })
	time.Sleep(500 * time.Millisecond)

	const ports = "T:21,22,80,443,U:161"
	sweep := exec.Command("ip", "netns", "exec", scanner.Netns, binary, "sweep", "--config", cfg, "--targets", truth.Subnet.String(),
		"--ports", ports, "--format", "jsonl", "--timing", "4", "--service-detection=false", "--no-dns")
	sweep.Env = cleanEnv()
	var stdout, stderr strings.Builder
	sweep.Stdout, sweep.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := sweep.Run(); err != nil {
		t.Fatalf("sweep: %v\n%s", err, stderr.String())
	}
	t.Logf("the sweep took %s", time.Since(t0).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	_ = dump.Process.Signal(syscall.SIGINT)
	_ = dump.Wait()

	found := map[string]sweptDevice{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var d sweptDevice
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		for _, ip := range d.IPs {
			found[ip] = d
		}
	}
	swept := map[string]bool{"tcp/21": true, "tcp/22": true, "tcp/80": true, "tcp/443": true, "udp/161": true}
	var problems []string
	for _, h := range truth.Hosts {
		d, ok := found[h.IPv4.String()]
		switch {
		case h.Name == excluded.Name:
			if ok {
				problems = append(problems, "the excluded host was reported")
			}
			continue
		case !ok:
			problems = append(problems, fmt.Sprintf("%s (%s) not found", h.Name, h.IPv4))
			continue
		}
		delete(found, h.IPv4.String())
		if h.Name != "scanner" && !slices.Contains(d.MACs, strings.ToLower(h.MAC)) {
			problems = append(problems, fmt.Sprintf("%s: MACs %v, want %s", h.Name, d.MACs, h.MAC))
		}
		var want, got []string
		for _, s := range h.Services {
			if k := fmt.Sprintf("%s/%d", s.Proto, s.Port); swept[k] {
				want = append(want, k)
			}
		}
		for _, s := range d.Services {
			got = append(got, fmt.Sprintf("%s/%d", s.Proto, s.Port))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			problems = append(problems, fmt.Sprintf("%s: services %v, want %v", h.Name, got, want))
		}
	}
	for ip := range found {
		problems = append(problems, "an address not in the lab was reported: "+ip)
	}
	if len(problems) > 0 {
		t.Fatalf("the sweep differs from the lab:\n%s\nstdout:\n%s\nstderr:\n%s", strings.Join(problems, "\n"), stdout.String(), stderr.String())
	}

	// Nothing was sent to the excluded address: no IP packet, no ARP
	// question for it.
	out, err := exec.Command("tcpdump", "-n", "-r", pcap, fmt.Sprintf("dst host %s or (arp and arp[24:4] = 0x%x)", excluded.IPv4, excluded.IPv4.As4())).CombinedOutput()
	if err != nil {
		t.Fatalf("reading the capture: %v: %s", err, out)
	}
	var probes []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "reading from") {
			probes = append(probes, l)
		}
	}
	if len(probes) > 0 {
		t.Fatalf("the excluded %s was probed:\n%s", excluded.IPv4, strings.Join(probes, "\n"))
	}
	all, _ := exec.Command("tcpdump", "-n", "-r", pcap, "src host "+scanner.IPv4.String()).Output()
	if strings.Count(string(all), "\n") < 20 {
		t.Fatalf("the capture holds too little of the sweep to prove anything:\n%s", all)
	}
}
