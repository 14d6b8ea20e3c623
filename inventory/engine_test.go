package inventory

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func ob(t time.Time, src, mac, ip string, names ...string) *discovery.Observation {
	o := &discovery.Observation{Source: src, Time: t, MAC: mac, IP: ip}
	for _, n := range names {
		o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: n})
	}
	if errs := o.Normalize(); len(errs) > 0 {
		panic(fmt.Sprint(errs))
	}
	return o
}

func apply(e *Engine, obs ...*discovery.Observation) {
	for _, o := range obs {
		e.Apply(o)
	}
}

func withMAC(e *Engine, mac string) []*Asset {
	var out []*Asset
	e.Assets(func(a *Asset) {
		if slices.Contains(a.Summary().MACs, mac) {
			out = append(out, a)
		}
	})
	return out
}

func TestDHCPChurn(t *testing.T) {
	e := NewEngine(Options{})
	A, B := "00:16:3e:00:00:01", "00:16:3e:00:00:02"
	apply(e,
		ob(at(0), "passive:dhcp", A, "10.20.0.10", "alpha"),
		ob(at(0), "passive:dhcp", B, "10.20.0.11", "bravo"),
		ob(at(24), "passive:dhcp", A, "10.20.0.12", "alpha"),
		ob(at(24), "passive:dhcp", B, "10.20.0.10", "bravo"),
	)
	if e.Len() != 2 {
		t.Fatalf("%d assets, want 2", e.Len())
	}
	a, b := withMAC(e, A)[0].Summary(), withMAC(e, B)[0].Summary()
	if !slices.Equal(a.IPs, []string{"10.20.0.12"}) {
		t.Errorf("A holds %v, want [10.20.0.12]", a.IPs)
	}
	if !slices.Contains(b.IPs, "10.20.0.10") || slices.Contains(b.IPs, "10.20.0.11") {
		t.Errorf("B holds %v, want 10.20.0.10 (and not its old lease)", b.IPs)
	}
	// History keeps both of A's addresses.
	if len(withMAC(e, A)[0].IPHistory) != 2 {
		t.Errorf("A's IP history %v", withMAC(e, A)[0].IPHistory)
	}
	// An IP-only sighting of .10 now joins B, the device that holds it.
	got := e.Apply(ob(at(25), "active:nmap", "", "10.20.0.10"))
	if got != withMAC(e, B)[0] {
		t.Errorf("IP-only sighting of 10.20.0.10 joined %s, want B", got.ID)
	}
	// Past the lease window, an IP-only sighting starts a new device.
	got = e.Apply(ob(at(24+72), "active:nmap", "", "10.20.0.12"))
	if got == withMAC(e, A)[0] || e.Len() != 3 {
		t.Errorf("IP-only sighting past the lease window joined A (assets: %d)", e.Len())
	}
}

func TestPhoneRotatingMACs(t *testing.T) {
	e := NewEngine(Options{})
	cid := "01:aa:bb:cc:dd:ee:ff"
	for i, mac := range []string{"02:11:22:33:44:55", "06:aa:bb:cc:dd:01", "0a:12:34:56:78:9a"} {
		o := ob(at(i), "passive:dhcp", mac, fmt.Sprintf("10.20.0.%d", 50+i), "pixel-7")
		o.Identifiers.DHCPClientID = cid
		e.Apply(o)
	}
	if e.Len() != 1 {
		t.Fatalf("%d assets for one phone", e.Len())
	}
	var a *Asset
	e.Assets(func(x *Asset) { a = x })
	if s := a.Summary(); !slices.Equal(s.MACs, []string{"0a:12:34:56:78:9a"}) || !slices.Equal(s.IPs, []string{"10.20.0.52"}) {
		t.Errorf("phone holds MACs %v and IPs %v, want only the newest of each", s.MACs, s.IPs)
	}
	if a.Identity.String() != IdentityWeak {
		t.Errorf("identity %q: randomised MACs are not strong identity", a.Identity)
	}
	// Another device with the same hostname but no corroboration stays apart.
	e.Apply(ob(at(5), "passive:mdns", "0e:00:00:00:00:01", "10.20.0.90", "pixel-7"))
	if e.Len() != 2 {
		t.Errorf("an uncorroborated hostname merged devices (%d assets)", e.Len())
	}
}

// A randomised MAC is evidence with time, like an IP: the sightings of one
// (an ARP binding, then an IPv6 neighbour advertisement, then a DHCP
// request with a name) are one device while it stays current, and a MAC
// silent for longer than the lease window starts a new one.
func TestRandomisedMACWithTime(t *testing.T) {
	e := NewEngine(Options{LeaseWindow: 24 * time.Hour})
	mac := "1e:3a:a4:37:58:9f"
	e.Apply(ob(at(0), "passive:arp", mac, "10.77.21.162"))
	e.Apply(ob(at(0), "passive:ndp", mac, "fe80::1c3a:a4ff:fe37:589f"))
	e.Apply(ob(at(1), "passive:dhcp", mac, "", "echo-02"))
	if e.Len() != 1 {
		t.Fatalf("%d assets for one device with a randomised MAC", e.Len())
	}
	var a *Asset
	e.Assets(func(x *Asset) { a = x })
	if s := a.Summary(); !slices.Contains(s.IPs, "10.77.21.162") || !slices.Contains(s.Hostnames, "echo-02") || a.Identity.String() != IdentityWeak {
		t.Fatalf("%+v identity %s", s, a.Identity)
	}
	// Two days of silence: the MAC alone no longer proves the same device.
	e.Apply(ob(at(49), "passive:ndp", mac, ""))
	if e.Len() != 2 {
		t.Fatalf("%d assets: a randomised MAC silent past the lease window joined the old device", e.Len())
	}
	// A new randomised MAC at an address still leased joins the holder.
	e.Apply(ob(at(2), "passive:arp", "3a:00:00:00:00:07", "10.77.21.162"))
	if e.Len() != 2 {
		t.Fatalf("%d assets: a rotated MAC on a held lease started a new device", e.Len())
	}
}

func TestRouterWithRoutedIPs(t *testing.T) {
	e := NewEngine(Options{GatewayIPs: 8})
	router := "00:1b:21:00:00:fe"
	e.Apply(ob(at(0), "passive:arp", router, "10.0.0.1"))
	for i := range 200 {
		e.Apply(ob(at(1), "passive:tcp", router, fmt.Sprintf("172.16.%d.%d", i/250, 1+i%250)))
	}
	for i := range 200 {
		e.Apply(ob(at(2), "active:nmap", "", fmt.Sprintf("172.16.%d.%d", i/250, 1+i%250)))
	}
	if e.Len() != 201 {
		t.Fatalf("%d assets, want one router plus 200", e.Len())
	}
	r := withMAC(e, router)
	if len(r) != 1 || r[0].DeviceType.String() != "router" || !slices.Equal(r[0].Summary().IPs, []string{"10.0.0.1"}) {
		t.Fatalf("router %+v", r[0].Summary())
	}
}

func TestMultiHomedBySSHKey(t *testing.T) {
	e := NewEngine(Options{})
	key := "SHA256:q1w2e3r4t5y6u7i8o9p0multihomed"
	// The second interface is first seen passively, without the key.
	e.Apply(ob(at(0), "passive:arp", "00:16:3e:00:00:0d", "10.20.0.31"))
	e.TakeDirty() // written: merging it away leaves a record
	o1 := ob(at(1), "active:nmap", "00:16:3e:00:00:0c", "10.20.0.30")
	o1.Identifiers.SSHHostKey = key
	o2 := ob(at(1), "active:nmap", "00:16:3e:00:00:0d", "10.20.0.31")
	o2.Identifiers.SSHHostKey = key
	apply(e, o1, o2)
	if e.Len() != 1 {
		t.Fatalf("%d assets for one multi-homed host", e.Len())
	}
	var a *Asset
	e.Assets(func(x *Asset) { a = x })
	if s := a.Summary(); len(s.MACs) != 2 || len(s.IPs) != 2 || a.Identity.String() != IdentityStrong {
		t.Fatalf("multi-homed host %+v identity %s", s, a.Identity)
	}
	evs := e.TakeEvents()
	if !slices.ContainsFunc(evs, func(ev Event) bool { return ev.Kind == EventMerged }) {
		t.Error("no merge event recorded")
	}
}

func TestJunkSerialsIgnored(t *testing.T) {
	e := NewEngine(Options{})
	for i, serial := range []string{"To be filled by O.E.M.", "0", "Default string", "0000000", "To Be Filled By O.E.M."} {
		o := ob(at(0), "active:snmp", fmt.Sprintf("00:16:3e:00:01:%02x", i), "")
		o.Identifiers.Serial = serial
		e.Apply(o)
	}
	if e.Len() != 5 {
		t.Fatalf("junk serials merged devices: %d assets, want 5", e.Len())
	}
	o := ob(at(1), "active:snmp", "00:16:3e:00:02:01", "")
	o.Identifiers.Serial = "CZJ12345XY"
	o2 := ob(at(1), "active:snmp", "00:16:3e:00:02:02", "")
	o2.Identifiers.Serial = "CZJ12345XY"
	apply(e, o, o2)
	if e.Len() != 6 {
		t.Fatalf("a real serial did not join two MACs: %d assets", e.Len())
	}
}

func TestSameObservationsTwice(t *testing.T) {
	e := NewEngine(Options{})
	obs := []*discovery.Observation{
		ob(at(0), "passive:dhcp", "00:16:3e:00:00:01", "10.20.0.10", "alpha"),
		ob(at(1), "passive:dhcp", "00:16:3e:00:00:01", "10.20.0.12", "alpha"),
		ob(at(1), "active:nmap", "", "10.20.0.99"),
	}
	apply(e, obs...)
	before := snapshot(e)
	apply(e, obs...)
	if after := snapshot(e); after != before {
		t.Fatalf("applying the same observations twice changed the state:\n%s\n%s", before, after)
	}
}

func snapshot(e *Engine) string {
	var out []string
	e.Assets(func(a *Asset) { out = append(out, fmt.Sprintf("%+v", a.Summary())+fmt.Sprint(a.IPHistory)) })
	slices.Sort(out)
	return fmt.Sprint(out)
}

func TestConflictingStrongIdentifiersHeldAmbiguous(t *testing.T) {
	e := NewEngine(Options{})
	a := ob(at(0), "active:nmap", "00:16:3e:00:00:01", "10.0.0.1")
	a.Identifiers.SSHHostKey = "SHA256:aaa"
	b := ob(at(0), "active:nmap", "00:16:3e:00:00:02", "10.0.0.2")
	b.Identifiers.TLSCert = "ffff"
	apply(e, a, b)
	// One sighting shows both the key of the first and the certificate of the second.
	c := ob(at(1), "active:nmap", "", "10.0.0.3")
	c.Identifiers.SSHHostKey, c.Identifiers.TLSCert = "SHA256:aaa", "ffff"
	e.Apply(c)
	if e.Len() != 2 {
		t.Fatalf("%d assets: an ambiguous sighting must not merge", e.Len())
	}
	n := 0
	e.Assets(func(x *Asset) {
		if x.Identity.String() == IdentityAmbiguous && x.Status.String() == StatusUnknown {
			n++
		}
	})
	if n != 2 {
		t.Fatalf("%d assets held as unknown, want both", n)
	}
}

func TestMergeAndSplit(t *testing.T) {
	e := NewEngine(Options{})
	x := e.Apply(ob(at(0), "passive:arp", "00:16:3e:00:00:01", "10.0.0.1", "db1"))
	y := e.Apply(ob(at(0), "passive:arp", "00:16:3e:00:00:02", "10.0.0.2"))
	m, err := e.Merge(x.ID.String(), y.ID.String(), "alice", at(1))
	if err != nil || e.Len() != 1 || len(m.Summary().MACs) != 2 {
		t.Fatalf("merge: %v, %d assets", err, e.Len())
	}
	if to, ok := e.MergedInto(y.ID.String()); !ok || to != x.ID.String() {
		t.Fatalf("MergedInto(%s) = %s", y.ID.String(), to)
	}
	// Later sightings of the second MAC land on the merged asset.
	if got := e.Apply(ob(at(2), "passive:arp", "00:16:3e:00:00:02", "10.0.0.2")); got != m {
		t.Fatal("a sighting after the merge made a new asset")
	}
	left, right, err := e.Split(x.ID.String(), SplitSpec{MACs: []string{"00:16:3E:00:00:02"}, IPs: []string{"10.0.0.2"}}, "bob", at(3))
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 2 || slices.Contains(left.Summary().MACs, "00:16:3e:00:00:02") || !slices.Contains(right.Summary().MACs, "00:16:3e:00:00:02") {
		t.Fatalf("split: %+v / %+v", left.Summary(), right.Summary())
	}
	if got := e.Apply(ob(at(4), "passive:arp", "00:16:3e:00:00:02", "10.0.0.2")); got != right {
		t.Fatal("a sighting after the split went back to the original")
	}
	if _, _, err := e.Split(x.ID.String(), SplitSpec{MACs: []string{"00:16:3e:00:00:99"}}, "bob", at(5)); err == nil {
		t.Fatal("a split of nothing succeeded")
	}
	if _, err := e.Merge(x.ID.String(), x.ID.String(), "bob", at(5)); err == nil {
		t.Fatal("merging an asset into itself succeeded")
	}
}

func TestServicesOpenAndClose(t *testing.T) {
	e := NewEngine(Options{})
	o := ob(at(0), "active:nmap", "", "10.0.0.5")
	o.Services = []discovery.Service{{Port: 22, Proto: "tcp", Product: "OpenSSH", Version: "9.2"}, {Port: 80, Proto: "tcp"}}
	o.PortsScanned = "1-1024"
	a := e.Apply(o)
	e.TakeEvents()
	e.TakeDirty() // written: later changes are events of their own
	o2 := ob(at(1), "active:nmap", "", "10.0.0.5")
	o2.Services = []discovery.Service{{Port: 22, Proto: "tcp", Product: "OpenSSH", Version: "9.6"}}
	o2.PortsScanned = "1-1024"
	e.Apply(o2)
	if s := a.Summary(); len(s.Services) != 1 || s.Services[0].Version != "9.6" {
		t.Fatalf("services %+v", s.Services)
	}
	kinds := map[string]bool{}
	for _, ev := range e.TakeEvents() {
		kinds[ev.Detail["change"]] = true
	}
	if !kinds["closed_service"] || !kinds["service_version"] {
		t.Fatalf("events %v, want closed_service and service_version", kinds)
	}
}

func TestMarkMissing(t *testing.T) {
	e := NewEngine(Options{MissingAfter: 48 * time.Hour})
	a := e.Apply(ob(at(0), "passive:arp", "00:16:3e:00:00:01", "10.0.0.1"))
	if e.MarkMissing(at(24)) != 0 || e.MarkMissing(at(72)) != 1 || !a.Missing {
		t.Fatal("missing not marked after the window")
	}
	e.Apply(ob(at(73), "passive:arp", "00:16:3e:00:00:01", "10.0.0.1"))
	if a.Missing {
		t.Fatal("seen again but still missing")
	}
}

// A routed sweep sees the IP before the sensor sees the MAC: one device.
func TestIPOnlyThenMAC(t *testing.T) {
	e := NewEngine(Options{})
	o := ob(at(0), "active:nmap", "", "10.0.0.7")
	o.Services = []discovery.Service{{Port: 22, Proto: "tcp"}}
	e.Apply(o)
	e.Apply(ob(at(1), "passive:arp", "00:16:3e:00:00:07", "10.0.0.7"))
	if e.Len() != 1 {
		t.Fatalf("%d assets, want 1", e.Len())
	}
	var a *Asset
	e.Assets(func(x *Asset) { a = x })
	if s := a.Summary(); len(s.Services) != 1 || len(s.MACs) != 1 {
		t.Fatalf("%+v", s)
	}
	// Past the lease window the IP-only device stays apart.
	e.Apply(ob(at(10), "active:nmap", "", "10.0.0.8"))
	e.Apply(ob(at(100), "passive:arp", "00:16:3e:00:00:08", "10.0.0.8"))
	if e.Len() != 3 {
		t.Fatalf("%d assets, want 3", e.Len())
	}
}

// Changes to an asset not yet written are not events of their own: its
// creation event carries it whole.
func TestFreshAssetChangesFoldIntoCreation(t *testing.T) {
	e := NewEngine(Options{})
	e.Apply(ob(at(0), "passive:arp", "00:16:3e:00:00:01", "10.0.0.1"))
	e.Apply(ob(at(1), "passive:dhcp", "00:16:3e:00:00:01", "10.0.0.1", "alpha"))
	if evs := e.TakeEvents(); len(evs) != 1 || evs[0].Kind != EventCreated {
		t.Fatalf("events %+v, want one creation", evs)
	}
	e.TakeDirty()
	e.Apply(ob(at(2), "passive:dhcp", "00:16:3e:00:00:01", "10.0.0.1", "alpha", "alpha2"))
	if evs := e.TakeEvents(); len(evs) != 1 || evs[0].Detail["change"] != "new_hostname" {
		t.Fatalf("events %+v, want new_hostname", evs)
	}
}

func TestAddrRoundTrip(t *testing.T) {
	for _, in := range []string{"00:16:3e:aa:bb:cc", "10.0.0.1", "fe80::1", "2001:db8::42"} {
		if got := AddrOf(in).String(); got != in {
			t.Errorf("AddrOf(%q).String() = %q", in, got)
		}
	}
	if !AddrOf("02:00:00:00:00:01").local() || AddrOf("00:16:3e:00:00:01").local() || !AddrOf("nonsense").IsZero() {
		t.Error("MAC bits or the zero Addr are wrong")
	}
}
