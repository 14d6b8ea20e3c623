package passive_test

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
)

func read(t testing.TB, name string) ([]discovery.Observation, passive.Stats, error) {
	t.Helper()
	f, err := passive.OpenFile(filepath.Join("testdata", name))
	if err != nil {
		return nil, passive.Stats{}, err
	}
	defer f.Close()
	var obs []discovery.Observation
	d := passive.NewDecoder(passive.Options{Sensor: "test"}, func(o discovery.Observation) { obs = append(obs, o) })
	for {
		data, ci, link, err := f.Next()
		if errors.Is(err, io.EOF) {
			return obs, d.Stats, nil
		}
		if err != nil {
			return obs, d.Stats, err
		}
		d.Packet(data, ci, link)
	}
}

func find(obs []discovery.Observation, source, mac string) []discovery.Observation {
	var out []discovery.Observation
	for _, o := range obs {
		if o.Source == source && o.MAC == mac {
			out = append(out, o)
		}
	}
	return out
}

func names(o discovery.Observation) []string {
	var out []string
	for _, h := range o.Hostnames {
		out = append(out, h.Name)
	}
	return out
}

// Golden facts, read from the captures with tshark.
func TestARPResolution(t *testing.T) {
	obs, st, err := read(t, "csanders__arp_resolution.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 2 {
		t.Fatalf("%d packets", st.Packets)
	}
	for mac, ip := range map[string]string{"00:16:ce:6e:8b:24": "192.168.0.114", "00:13:46:0b:22:ba": "192.168.0.1"} {
		got := find(obs, "passive:arp", mac)
		if len(got) != 1 || got[0].IP != ip || got[0].Vendor == "" {
			t.Errorf("%s: %+v, want one ARP binding to %s with a vendor", mac, got, ip)
		}
	}
}

func TestDHCPInitialisation(t *testing.T) {
	obs, _, err := read(t, "csanders__dhcp_nolease_initialization.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	got := find(obs, "passive:dhcp", "00:0c:29:59:fd:21")
	var ack *discovery.Observation
	for i := range got {
		if got[i].IP != "" {
			ack = &got[i]
		}
	}
	if ack == nil || ack.IP != "192.168.1.10" {
		t.Fatalf("no acknowledged lease for the client: %+v", got)
	}
	if got[0].Vendor != "VMware, Inc." || !slices.Contains(names(got[0]), "ubuntu2") || got[0].Identifiers.DHCPFingerprint == "" {
		t.Fatalf("client request %+v: want vendor VMware, hostname ubuntu2 and a fingerprint", got[0])
	}
}

func TestCDPAndLLDP(t *testing.T) {
	obs, _, err := read(t, "tcpdump__3560_CDP.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cdp := find(obs, "passive:cdp", "00:19:06:ea:b8:85")
	if len(cdp) == 0 || !slices.Contains(names(cdp[0]), "switch") || !strings.Contains(cdp[0].OS, "C3560") || cdp[0].IP != "192.168.0.1" {
		t.Fatalf("CDP: %+v", cdp)
	}
	obs, _, err = read(t, "tcpdump__LLDP_and_CDP.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for mac, name := range map[string]string{"00:18:ba:98:68:8f": "s1.cisco.com", "00:19:2f:a7:b2:8d": "s2.cisco.com"} {
		lldp := find(obs, "passive:lldp", mac)
		if len(lldp) == 0 || !slices.Contains(names(lldp[0]), name) {
			t.Errorf("LLDP %s: %+v, want system name %s", mac, lldp, name)
		}
		for _, o := range obs {
			if o.IP == "0.0.0.0" {
				t.Errorf("an unspecified address was reported: %+v", o)
			}
		}
	}
}

// Crafted and truncated captures: no panic, and errors are counted, not fatal.
func TestHostileCaptures(t *testing.T) {
	for _, name := range []string{"tcpdump__arp-too-long-tha.pcap", "tcpdump__lldp_asan.pcap", "tcpdump__bootp_asan.pcap", "ndpi__malformed_dns.pcap"} {
		if _, _, err := read(t, name); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("%s: %v (a reading error is allowed; a crash is not)", name, err)
		}
	}
	for _, name := range []string{"tcpdump__empty.pcap", "tcpdump__empty.pcapng"} {
		obs, st, err := read(t, name)
		if err != nil || len(obs) != 0 || st.Packets != 0 {
			t.Errorf("%s: %v, %d observations", name, err, len(obs))
		}
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"zero": "", "text": "hello world, not a capture\n", "short": "\xd4\xc3"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := passive.OpenFile(p); !errors.Is(err, passive.ErrNotCapture) {
			t.Errorf("%s: %v, want ErrNotCapture", name, err)
		}
	}
}

// A crafted Linux SLL header whose address length runs past the frame made
// gopacket's decoder index out of range; the header walk checks the length
// and reads nothing from such a frame, and short frames count an error of
// their layer.
func TestCraftedSLL(t *testing.T) {
	n := 0
	d := passive.NewDecoder(passive.Options{}, func(discovery.Observation) { n++ })
	frame := make([]byte, 16)
	frame[4], frame[5] = 0xff, 0xff // address length 65535
	d.Packet(frame, gopacket.CaptureInfo{}, layers.LinkTypeLinuxSLL)
	d.Packet(make([]byte, 3), gopacket.CaptureInfo{}, layers.LinkTypeEthernet)
	d.Packet(make([]byte, 10), gopacket.CaptureInfo{}, layers.LinkTypeLinuxSLL2)
	d.Packet(nil, gopacket.CaptureInfo{}, layers.LinkType(147))
	if d.Stats.Packets != 4 || n != 0 {
		t.Fatalf("packets %d, observations %d", d.Stats.Packets, n)
	}
	for _, layer := range []string{"Ethernet", "LinuxSLL2", "linktype:"} {
		found := false
		for k := range d.Stats.Errors {
			found = found || strings.HasPrefix(k, layer)
		}
		if !found {
			t.Errorf("no %s error counted: %v", layer, d.Stats.Errors)
		}
	}
	if d.Stats.Errors["panic"] != 0 {
		t.Fatalf("a panic was recovered: %v", d.Stats.Errors)
	}
}

// Repeated sightings of one binding are reported once per resight window.
func TestResightDedup(t *testing.T) {
	f, err := passive.OpenFile(filepath.Join("testdata", "csanders__arp_resolution.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, ci, link, err := f.Next()
	if err != nil {
		t.Fatal(err)
	}
	frame := slices.Clone(data)
	n := 0
	d := passive.NewDecoder(passive.Options{}, func(discovery.Observation) { n++ })
	for range 1000 {
		d.Packet(frame, ci, link)
	}
	if n != 1 {
		t.Fatalf("%d observations for 1000 copies of one frame", n)
	}
}

// FuzzPacket: any frame on any supported link type decodes without a panic
// escaping, and every observation it yields normalises cleanly.
func FuzzPacket(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "*.pcap*"))
	for _, name := range names {
		c, err := passive.OpenFile(name)
		if err != nil {
			continue // the empty ones
		}
		for {
			data, _, _, err := c.Next()
			if err != nil {
				break
			}
			f.Add(slices.Clone(data), uint8(0))
		}
		c.Close()
	}
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2}
	f.Fuzz(func(t *testing.T, frame []byte, link uint8) {
		d := passive.NewDecoder(passive.Options{Networks: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}, func(o discovery.Observation) {
			if errs := o.Normalize(); len(errs) > 0 && o.MAC != "" {
				t.Fatalf("observation does not normalise: %v %+v", errs, o)
			}
		})
		d.Packet(frame, gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0)}, links[int(link)%len(links)])
	})
}
