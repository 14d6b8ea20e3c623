//go:build linux

package passive_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/internal/lab"
)

// capture runs Live on the lab's sensor interface, one decoder per worker,
// and collects what they emit.
type capture struct {
	stats  passive.LiveStats
	frames atomic.Int64
	cancel context.CancelFunc
	done   chan error

	mu  sync.Mutex
	obs []discovery.Observation
}

func startCapture(t *testing.T, l *lab.Lab, opts passive.LiveOptions) *capture {
	t.Helper()
	c := &capture{done: make(chan error, 1)}
	if opts.Interface == "" {
		opts.Interface = l.SensorIface
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.NumBlocks == 0 {
		opts.NumBlocks = 4
	}
	opts.Stats = &c.stats
	decs := make([]*passive.Decoder, opts.Workers)
	for i := range decs {
		decs[i] = passive.NewDecoder(passive.Options{Sensor: "lab", Segment: l.ID}, func(o discovery.Observation) {
			c.mu.Lock()
			c.obs = append(c.obs, o)
			c.mu.Unlock()
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		c.done <- lab.Do(l.SensorNetns, func() error {
			return passive.Live(ctx, opts, func(w int, data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
				c.frames.Add(1)
				decs[w].Packet(data, ci, link)
			})
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// waitFrames makes traffic with poke until the capture has seen a frame.
func (c *capture) waitFrames(t *testing.T, poke func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.frames.Load() == 0 {
		if err := poke(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-c.done:
			t.Fatalf("capture ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the capture saw nothing in 10s")
		}
	}
}

// stop ends the capture and fails the test unless Live returns nil in time.
func (c *capture) stop(t *testing.T) {
	t.Helper()
	if c.done == nil {
		return
	}
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("Live: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Live did not return within 5s of its context ending")
	}
	c.done = nil
}

func (c *capture) observations() []discovery.Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.obs)
}

// TestLiveLab is the sensor against real hosts: a dnsmasq DHCP server that
// also runs sshd and nginx, and three clients that lease addresses with
// dhclient, each sending a hostname of its own, then scan, fetch and ping
// the server. Everything is read off the lab's mirror port with Live and
// decoded, one decoder per worker, and checked against the ground truth of
// dnsmasq's lease file and the hosts' interfaces.
func TestLiveLab(t *testing.T) {
	t.Parallel()
	lab.Require(t, "dnsmasq", "dhclient", "nginx", "ssh-keygen", "ssh-keyscan", "curl", "arping", "ping")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{
		{Name: "srv"},
		{Name: "c1", Hostname: "alpha-01", DHCP: true},
		{Name: "c2", Hostname: "bravo-02", DHCP: true},
		{Name: "c3", Hostname: "charlie-03", DHCP: true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := l.Host("srv")
	clients := []*lab.Host{l.Host("c1"), l.Host("c2"), l.Host("c3")}

	c := startCapture(t, l, passive.LiveOptions{})
	c.waitFrames(t, func() error { _, err := srv.Arping(ctx, srv.IP.Next(), 1); return err })

	dhcp := srv.DHCPServer()
	srv.SSHServer()
	srv.HTTPServer("reckon lab")
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, h := range clients {
		wg.Go(func() { _, errs[i] = h.DHCPClient(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, h := range clients {
		t.Logf("%s (%s, %s) leased %s", h.Name, h.Hostname, h.MAC, h.IP)
	}
	if keys, err := clients[0].SSHKeyscan(ctx, srv.IP); err != nil || !strings.Contains(keys, "ssh-ed25519") {
		t.Errorf("ssh-keyscan %s: %q, %v", srv.IP, keys, err)
	}
	if body, err := clients[1].HTTPGet(ctx, "http://"+srv.IP.String()+"/"); err != nil || body != "reckon lab\n" {
		t.Errorf("curl %s: %q, %v", srv.IP, body, err)
	}
	if err := clients[2].Ping(ctx, srv.IP, 2); err != nil {
		t.Error(err)
	}

	// The ground truth: dnsmasq's leases agree with the clients' interfaces.
	leases, err := dhcp.Leases()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range clients {
		i := slices.IndexFunc(leases, func(le lab.Lease) bool { return le.MAC.String() == h.MAC.String() })
		if i < 0 || leases[i].IP != h.IP || leases[i].Hostname != h.Hostname {
			t.Fatalf("%s: no lease of %s with %s for %s in %+v", h.Name, h.IP, h.Hostname, h.MAC, leases)
		}
	}

	type want struct {
		mac      string
		ip       netip.Addr
		hostname string
	}
	wants := []want{{mac: srv.MAC.String(), ip: srv.IP}}
	for _, h := range clients {
		wants = append(wants, want{h.MAC.String(), h.IP, h.Hostname})
	}
	// missing lists what the observations do not show yet: each MAC with
	// its address, and with its hostname.
	missing := func() []string {
		var out []string
		obs := c.observations()
		for _, w := range wants {
			hasIP := slices.ContainsFunc(obs, func(o discovery.Observation) bool { return o.MAC == w.mac && o.IP == w.ip.String() })
			if !hasIP {
				out = append(out, fmt.Sprintf("%s at %s", w.mac, w.ip))
			}
			if w.hostname == "" {
				continue
			}
			hasName := slices.ContainsFunc(obs, func(o discovery.Observation) bool {
				return o.MAC == w.mac && slices.ContainsFunc(o.Hostnames, func(h discovery.Hostname) bool { return h.Name == w.hostname })
			})
			if !hasName {
				out = append(out, fmt.Sprintf("%s named %s", w.mac, w.hostname))
			}
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	c.stop(t)
	if m := missing(); len(m) > 0 {
		t.Errorf("the sensor never reported: %s", strings.Join(m, "; "))
		for _, o := range c.observations() {
			t.Logf("observed %s %s %s %v", o.Source, o.MAC, o.IP, o.Hostnames)
		}
	}
	sources := map[string]int{}
	for _, o := range c.observations() {
		sources[o.Source]++
		if errs := o.Normalize(); len(errs) > 0 {
			t.Errorf("observation %+v: %v", o, errs)
		}
	}
	t.Logf("%d frames in, %d kernel, %d dropped; observations by source: %v",
		c.stats.Received(), c.stats.Kernel(), c.stats.Drops(), sources)
	if c.stats.Received() == 0 || c.stats.Drops() != 0 {
		t.Errorf("stats: received %d, dropped %d", c.stats.Received(), c.stats.Drops())
	}
}

// TestLiveFilter checks that a tcpdump expression reaches the kernel: with
// "arp", ping's echoes never reach the handler.
func TestLiveFilter(t *testing.T) {
	t.Parallel()
	lab.Require(t, "tcpdump", "ping", "arping")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "a"}, {Name: "b"}}})
	a, b := l.Host("a"), l.Host("b")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var arp, other atomic.Int64
	var since atomic.Int64 // UnixNano; frames captured before are not counted as other
	done := make(chan error, 1)
	capCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		done <- lab.Do(l.SensorNetns, func() error {
			return passive.Live(capCtx, passive.LiveOptions{Interface: l.SensorIface, BPF: "arp", Workers: 1, NumBlocks: 2},
				func(_ int, data []byte, ci gopacket.CaptureInfo, _ layers.LinkType) {
					switch {
					case len(data) >= 14 && data[12] == 0x08 && data[13] == 0x06:
						arp.Add(1)
					case since.Load() != 0 && ci.Timestamp.UnixNano() >= since.Load():
						other.Add(1)
					}
				})
		})
	}()
	for arp.Load() == 0 {
		if _, err := a.Arping(ctx, b.IP, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Frames that came before the filter was attached may still be on their
	// way (a block is handed over when full or after 64ms): count from now.
	since.Store(time.Now().UnixNano())
	if err := a.Ping(ctx, b.IP, 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a block is handed over after at most 64ms
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if other.Load() != 0 {
		t.Errorf("filter \"arp\" let %d other frames through", other.Load())
	}
}

// TestLiveCancel checks that Live returns promptly, with nil, when its
// context ends, both idle and while frames flow.
func TestLiveCancel(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "a"}, {Name: "b"}}})
	a := l.Host("a")
	for _, busy := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		if busy {
			// A flood, bounded in count and time, inside the lab only.
			a.Start("ping", "-f", "-c", "200000", "-w", "20", l.Host("b").IP.String())
		}
		done := make(chan error, 1)
		go func() {
			done <- lab.Do(l.SensorNetns, func() error {
				return passive.Live(ctx, passive.LiveOptions{Interface: l.SensorIface, NumBlocks: 2},
					func(int, []byte, gopacket.CaptureInfo, layers.LinkType) {})
			})
		}()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("busy=%v: Live returned %v after cancel, want nil", busy, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("busy=%v: Live took %s to return after cancel", busy, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("busy=%v: Live did not return within 5s of cancel", busy)
		}
	}
}

// TestLiveInterfaceGone checks that Live reports an error, rather than
// spinning or hanging, when its interface is removed under it.
func TestLiveInterfaceGone(t *testing.T) {
	t.Parallel()
	l := lab.New(t, lab.Options{})
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		done <- lab.Do(l.SensorNetns, func() error {
			return passive.Live(ctx, passive.LiveOptions{Interface: l.SensorIface, NumBlocks: 2},
				func(int, []byte, gopacket.CaptureInfo, layers.LinkType) {})
		})
	}()
	time.Sleep(300 * time.Millisecond)
	// Deleting the switch's end of the veth takes the sensor's with it.
	if err := execIP("-n", l.SwitchNetns, "link", "del", "mirror"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "went down or away") {
			t.Errorf("Live returned %v, want the interface gone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Live did not return within 5s of its interface going away")
	}
}

// TestLiveNoSuchInterface needs no privilege: the interface is looked up
// before any socket is opened.
func TestLiveNoSuchInterface(t *testing.T) {
	name := fmt.Sprintf("rkno%x", time.Now().UnixNano()&0xffffff)
	err := passive.Live(context.Background(), passive.LiveOptions{Interface: name},
		func(int, []byte, gopacket.CaptureInfo, layers.LinkType) {})
	if !errors.Is(err, passive.ErrNoSuchInterface) || err.Error() != "no such interface "+name {
		t.Fatalf("Live on %s: %v, want \"no such interface %s\"", name, err, name)
	}
}

// TestLiveNotPermitted runs Live without CAP_NET_RAW: as a user if the
// test is one, else on a thread of its own that dropped the capability.
func TestLiveNotPermitted(t *testing.T) {
	live := func() error {
		return passive.Live(context.Background(), passive.LiveOptions{Interface: "lo"},
			func(int, []byte, gopacket.CaptureInfo, layers.LinkType) {})
	}
	var err error
	if os.Geteuid() != 0 {
		err = live()
	} else {
		err = withoutNetRaw(live)
	}
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "needs root or CAP_NET_RAW") {
		t.Fatalf("Live without CAP_NET_RAW: %v", err)
	}
}

// withoutNetRaw runs fn on a thread that has dropped CAP_NET_RAW from its
// effective set; the thread is thrown away afterwards.
func withoutNetRaw(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its narrowed rights
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[unix.CAP_NET_RAW/32].Effective &^= 1 << (unix.CAP_NET_RAW % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func execIP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
