//go:build linux

package lab_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/internal/lab"
)

// TestMirror checks the lab's promise: two hosts ping each other, and the
// sensor interface, read with passive.Live, gets every frame they exchange
// (the broadcast ARP request, the unicast reply, each echo and its answer)
// exactly once.
func TestMirror(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "a"}, {Name: "b"}}})
	a, b := l.Host("a"), l.Host("b")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var (
		mu     sync.Mutex
		frames []string
		since  time.Time // frames captured before are ignored
		any    atomic.Int64
	)
	name := map[string]string{a.MAC.String(): "a", b.MAC.String(): "b", "ff:ff:ff:ff:ff:ff": "all"}
	handle := func(_ int, data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
		any.Add(1)
		p := gopacket.NewPacket(data, link, gopacket.DecodeOptions{NoCopy: true, Lazy: true})
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if eth == nil {
			return
		}
		desc := ""
		switch {
		case p.Layer(layers.LayerTypeARP) != nil:
			arp := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			desc = map[uint16]string{layers.ARPRequest: "arp-request", layers.ARPReply: "arp-reply"}[arp.Operation]
		case p.Layer(layers.LayerTypeICMPv4) != nil:
			icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			desc = map[uint8]string{layers.ICMPv4TypeEchoRequest: "echo-request", layers.ICMPv4TypeEchoReply: "echo-reply"}[icmp.TypeCode.Type()]
		}
		if desc == "" {
			return // IPv6 chatter of the hosts' own
		}
		mu.Lock()
		if !ci.Timestamp.Before(since) {
			frames = append(frames, name[eth.SrcMAC.String()]+">"+name[eth.DstMAC.String()]+" "+desc)
		}
		mu.Unlock()
	}
	stats := &passive.LiveStats{}
	capCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	done := make(chan error, 1)
	go func() {
		done <- lab.Do(l.SensorNetns, func() error {
			return passive.Live(capCtx, passive.LiveOptions{Interface: l.SensorIface, Workers: 2, NumBlocks: 4, Stats: stats}, handle)
		})
	}()

	// Wait until the capture sees the lab, then start from clean ARP caches
	// and count only what was captured from then on: frames come in blocks,
	// so some of the first arping's may still be on their way.
	for any.Load() == 0 {
		if _, err := a.Arping(ctx, b.IP, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("capture ended early: %v", err)
		default:
		}
	}
	for _, h := range []*lab.Host{a, b} {
		if _, err := h.Exec(ctx, "ip", "neigh", "flush", "dev", h.Iface); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	frames, since = nil, time.Now()
	mu.Unlock()

	if err := a.Ping(ctx, b.IP, 3); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a>all arp-request": 1, "b>a arp-reply": 1, "a>b echo-request": 3, "b>a echo-reply": 3}
	deadline := time.Now().Add(5 * time.Second)
	var got map[string]int
	for {
		got = map[string]int{}
		mu.Lock()
		for _, f := range frames {
			got[f]++
		}
		mu.Unlock()
		if got["b>a echo-reply"] >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopCapture()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Live: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Live did not return after its context ended")
	}
	t.Logf("sensor saw %v", got)
	for f, n := range want {
		if got[f] != n {
			t.Errorf("sensor saw %q %d times, want %d (all: %v)", f, got[f], n, got)
		}
	}
	// b may ask for a itself once a's entry is stale; anything else is news.
	for f := range got {
		if _, ok := want[f]; !ok && f != "b>a arp-request" && f != "a>b arp-reply" && f != "b>all arp-request" {
			t.Errorf("unexpected frames %q ×%d", f, got[f])
		}
	}
	if stats.Received() == 0 || stats.Drops() != 0 {
		t.Errorf("stats: received %d, dropped %d", stats.Received(), stats.Drops())
	}
}

// TestCleanup checks that a lab leaves nothing behind: its namespaces (and
// with them the veths and the bridge) and its processes are gone once the
// test that made it ends.
func TestCleanup(t *testing.T) {
	t.Parallel()
	var id string
	var proc *lab.Proc
	t.Run("lab", func(t *testing.T) {
		l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "a"}}})
		id = l.ID
		proc = l.Host("a").Start("sleep", "600")
	})
	if t.Failed() {
		return
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(lab.Prefix+id)) {
		t.Errorf("namespaces of lab %s left behind:\n%s", id, out)
	}
	select {
	case <-proc.Done():
	default:
		t.Error("a lab process outlived its test")
	}
}

// TestNames checks that hosts get what they were given, and unique,
// well-formed defaults otherwise.
func TestNames(t *testing.T) {
	t.Parallel()
	mac, _ := net.ParseMAC("02:00:5e:10:00:01")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "fixed", MAC: mac, Hostname: "fixed-host"}, {Name: "auto"}, {Name: "dyn", DHCP: true}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fixed, auto, dyn := l.Host("fixed"), l.Host("auto"), l.Host("dyn")
	if fixed.MAC.String() != mac.String() || fixed.Hostname != "fixed-host" {
		t.Errorf("fixed: %s %s", fixed.MAC, fixed.Hostname)
	}
	if auto.MAC[0]&0x03 != 0x02 || auto.Hostname != "auto" || !l.Subnet.Contains(auto.IP) || auto.IP == fixed.IP {
		t.Errorf("auto: MAC %s hostname %s IP %s (fixed has %s)", auto.MAC, auto.Hostname, auto.IP, fixed.IP)
	}
	if dyn.IP.IsValid() {
		t.Errorf("a DHCP host has %s before asking", dyn.IP)
	}
	for _, h := range []*lab.Host{fixed, auto} {
		out, err := h.Exec(ctx, "ip", "-br", "link", "show", "dev", h.Iface)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), h.MAC.String()) {
			t.Errorf("%s: interface says %s, want MAC %s", h.Name, out, h.MAC)
		}
		if ip, err := h.Addr(ctx); err != nil || ip != h.IP {
			t.Errorf("%s: interface has %v (%v), want %s", h.Name, ip, err, h.IP)
		}
	}
	if err := fixed.Ping(ctx, auto.IP, 1); err != nil {
		t.Error(err)
	}
}
