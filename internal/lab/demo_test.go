//go:build linux

package lab_test

import (
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

var recordDemo = flag.String("record-demo", "", "record the demo capture from a lab to this pcap file")

// TestRecordDemoCapture records the capture configs/demo.yaml replays: the
// project's own test network, not a third-party file. It runs only when
// asked (go test ./internal/lab -run TestRecordDemoCapture -record-demo
// configs/demo/lab.pcap), as a generator, not a check.
func TestRecordDemoCapture(t *testing.T) {
	if *recordDemo == "" {
		t.Skip("a generator: run with -record-demo FILE to record the demo capture")
	}
	lab.Require(t, "dnsmasq", "dhclient", "nginx", "ssh-keygen", "ssh-keyscan", "curl", "ping", "tcpdump")
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{
		{Name: "gw", MAC: mac("00:1b:21:3a:10:01"), Hostname: "core-gw"},
		{Name: "web", MAC: mac("00:50:56:a1:22:10"), Hostname: "intranet-web"},
		{Name: "laptop", MAC: mac("3c:22:fb:5d:41:07"), Hostname: "fin-laptop-07", DHCP: true},
		{Name: "desk", MAC: mac("00:14:22:8e:91:3c"), Hostname: "hr-desk-12", DHCP: true},
		{Name: "nas", MAC: mac("00:11:32:4f:aa:02"), Hostname: "nas01", DHCP: true},
		{Name: "cam", MAC: mac("bc:ad:28:77:19:c4"), Hostname: "lobby-cam", DHCP: true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := filepath.Abs(*recordDemo)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "demo.pcap")
	dump := exec.Command("ip", "netns", "exec", l.SensorNetns, "tcpdump", "-i", l.SensorIface, "-U", "-w", tmp, "not ip6")
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	gw, web := l.Host("gw"), l.Host("web")
	gw.DHCPServer()
	web.SSHServer()
	web.HTTPServer("intranet")
	for _, name := range []string{"laptop", "desk", "nas", "cam"} {
		if _, err := l.Host(name).DHCPClient(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"laptop", "desk"} {
		h := l.Host(name)
		if _, err := h.SSHKeyscan(ctx, web.IP); err != nil {
			t.Fatal(err)
		}
		if _, err := h.HTTPGet(ctx, "http://"+web.IP.String()+"/"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Host("cam").Ping(ctx, gw.IP, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	dump.Process.Signal(os.Interrupt)
	dump.Wait()
	data, err := os.ReadFile(tmp)
	if err != nil || len(data) < 100 {
		t.Fatalf("capture: %v (%d bytes)", err, len(data))
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d bytes to %s", len(data), out)
}
