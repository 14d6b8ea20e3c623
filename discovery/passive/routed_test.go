package passive_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
)

func readWith(t *testing.T, name string, opts passive.Options) []discovery.Observation {
	t.Helper()
	f, err := passive.OpenFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var obs []discovery.Observation
	d := passive.NewDecoder(opts, func(o discovery.Observation) { obs = append(obs, o) })
	for {
		data, ci, link, err := f.Next()
		if errors.Is(err, io.EOF) {
			return obs
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Packet(data, ci, link)
	}
}

func byIP(obs []discovery.Observation, ip string) []discovery.Observation {
	var out []discovery.Observation
	for _, o := range obs {
		if o.IP == ip {
			out = append(out, o)
		}
	}
	return out
}

func hint(o discovery.Observation, kind string) string {
	for _, h := range o.Hints {
		if h.Kind == kind {
			return h.Value
		}
	}
	return ""
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// A SYN gives the client's stack signature and an OS hint from the
// signature table; the SYN-ACK gives the server's open port. Facts read
// with tshark: the client 141.142.228.5 (c8:bc:c8:96:d2:a0, an Apple OUI)
// sends window 65535, MSS 1460, WS 16 (shift 4), timestamps and SACK; the
// server 192.150.187.43 answers from port 80 through the router
// 00:10:db:88:d2:ef.
func TestSYNSignatureAndService(t *testing.T) {
	org := prefixes("141.142.0.0/16", "192.150.187.0/24")
	obs := readWith(t, "zeek__tcp_syn-synack.pcap", passive.Options{Networks: org})
	client := byIP(obs, "141.142.228.5")
	if len(client) != 1 || hint(client[0], "tcp_syn") != "64:65535:M1460,N,W4,N,N,T,S,E" || hint(client[0], "os") != "macOS or iOS" {
		t.Fatalf("client: %+v", client)
	}
	server := byIP(obs, "192.150.187.43")
	if len(server) != 1 || len(server[0].Services) != 1 || server[0].Services[0].Port != 80 || server[0].Services[0].Name != "http" {
		t.Fatalf("server: %+v", server)
	}
	// Nothing says either end is on-link: neither is given a MAC, above
	// all not the router's, which carries every remote address.
	for _, o := range obs {
		if o.MAC != "" {
			t.Errorf("a MAC was given without evidence the address is on-link: %+v", o)
		}
	}
	// With the client's network configured as local, the client gets its
	// own MAC; the remote server still gets none.
	obs = readWith(t, "zeek__tcp_syn-synack.pcap", passive.Options{Networks: org, LocalNetworks: prefixes("141.142.228.0/24")})
	if c := byIP(obs, "141.142.228.5"); len(c) != 1 || c[0].MAC != "c8:bc:c8:96:d2:a0" || !strings.Contains(c[0].Vendor, "Apple") {
		t.Fatalf("local client: %+v", c)
	}
	if s := byIP(obs, "192.150.187.43"); len(s) != 1 || s[0].MAC != "" {
		t.Fatalf("routed server was given a MAC: %+v", s)
	}
	// Outside the organisation's networks, traffic names no device.
	if obs := readWith(t, "zeek__tcp_syn-synack.pcap", passive.Options{}); len(obs) != 0 {
		t.Fatalf("public addresses reported: %+v", obs)
	}
}

// HSRP: the virtual MAC 00:00:0c:07:ac:XX moves between routers and names
// none of them; the standby router hellos from its own MAC
// 00:12:7f:ba:1f:02 (10.28.168.252, VLAN 10) and is a router.
func TestHSRPVirtualMAC(t *testing.T) {
	obs := readWith(t, "ndpi__hsrp0.pcap", passive.Options{})
	if len(obs) != 1 {
		t.Fatalf("%d observations, want the standby router only: %+v", len(obs), obs)
	}
	o := obs[0]
	if o.MAC != "00:12:7f:ba:1f:02" || o.IP != "10.28.168.252" || o.VLAN != 10 || hint(o, "device_type") != "router" {
		t.Fatalf("router: %+v", o)
	}
	for _, o := range obs {
		if strings.HasPrefix(o.MAC, "00:00:0c:07:ac") {
			t.Fatalf("a virtual MAC was taken for a device: %+v", o)
		}
	}
}

// Three stacked 802.1Q tags (30, 20, 10): the device lives in the innermost.
func TestStackedVLANs(t *testing.T) {
	obs := readWith(t, "zeek__vlan-qinqinq.pcap", passive.Options{Networks: prefixes("141.142.0.0/16", "192.150.187.0/24")})
	if len(obs) == 0 {
		t.Fatal("no observations")
	}
	for _, o := range obs {
		if o.VLAN != 10 {
			t.Fatalf("VLAN %d, want the innermost tag 10: %+v", o.VLAN, o)
		}
	}
}

// Linux cooked captures (SLL) carry the sender's MAC in their own header.
func TestLinuxSLL(t *testing.T) {
	obs := readWith(t, "zeek__linuxsll-arp.pcap", passive.Options{})
	want := map[string]string{"cc:2d:e0:26:19:99": "192.168.22.1", "00:50:56:8b:cf:fa": "10.1.10.100", "00:50:56:8b:3f:0d": "192.168.22.81"}
	got := map[string]string{}
	for _, o := range obs {
		got[o.MAC] = o.IP
	}
	for mac, ip := range want {
		if got[mac] != ip {
			t.Errorf("%s: %q, want %s (all: %v)", mac, got[mac], ip, got)
		}
	}
}

// An ARP binding teaches the decoder that an address is on-link, so later
// IP traffic from it carries its MAC; the same address arriving through a
// router's MAC does not take the router's MAC, and an internal address never
// bound (a host behind the router) is reported by IP alone.
func TestLearnsOnLinkFromARP(t *testing.T) {
	host, router := net.HardwareAddr{0x00, 0x16, 0xce, 1, 2, 3}, net.HardwareAddr{0x00, 0x13, 0x46, 9, 9, 9}
	arp := func(mac net.HardwareAddr, ip string) []byte {
		return frame(t, &layers.Ethernet{SrcMAC: mac, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPRequest, SourceHwAddress: mac, SourceProtAddress: net.ParseIP(ip).To4(),
				DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP("10.0.0.1").To4()})
	}
	syn := func(mac net.HardwareAddr, ip string, window uint16) []byte {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(ip).To4(), DstIP: net.ParseIP("10.0.0.200").To4()}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: window,
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
		tcp.SetNetworkLayerForChecksum(ip4)
		return frame(t, &layers.Ethernet{SrcMAC: mac, DstMAC: router, EthernetType: layers.EthernetTypeIPv4}, ip4, tcp)
	}
	var obs []discovery.Observation
	d := passive.NewDecoder(passive.Options{}, func(o discovery.Observation) { obs = append(obs, o) })
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0)}
	for _, f := range [][]byte{arp(host, "10.0.0.5"), syn(host, "10.0.0.5", 64240), syn(router, "10.0.0.5", 29200), syn(router, "10.9.9.9", 64240)} {
		ci.Timestamp = ci.Timestamp.Add(time.Second)
		d.Packet(f, ci, layers.LinkTypeEthernet)
	}
	var got []string
	for _, o := range obs {
		got = append(got, o.Source+" "+o.MAC+" "+o.IP)
	}
	want := []string{
		"passive:arp 00:16:ce:01:02:03 10.0.0.5",
		"passive:tcp-syn 00:16:ce:01:02:03 10.0.0.5",
		// ARP bound 10.0.0.5 to another MAC: a frame from the router
		// carrying it does not give it the router's MAC
		"passive:tcp-syn  10.0.0.5",
		// never bound, not in an on-link prefix: by IP alone
		"passive:tcp-syn  10.9.9.9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The decoders of one sensor's workers share what they learn: an ARP
// binding one worker saw gives the MAC to a SYN another worker decodes.
func TestWorkersShareOnLinkKnowledge(t *testing.T) {
	host := net.HardwareAddr{0x00, 0x16, 0xce, 1, 2, 3}
	arp := frame(t, &layers.Ethernet{SrcMAC: host, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: host, SourceProtAddress: net.IP{10, 0, 0, 5},
			DstHwAddress: make([]byte, 6), DstProtAddress: net.IP{10, 0, 0, 1}})
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 5}, DstIP: net.IP{10, 0, 0, 200}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: 64240}
	tcp.SetNetworkLayerForChecksum(ip4)
	syn := frame(t, &layers.Ethernet{SrcMAC: host, DstMAC: net.HardwareAddr{0, 0x13, 0x46, 9, 9, 9}, EthernetType: layers.EthernetTypeIPv4}, ip4, tcp)
	for _, shared := range []bool{false, true} {
		var obs []discovery.Observation
		emit := func(o discovery.Observation) { obs = append(obs, o) }
		opts := passive.Options{}
		if shared {
			opts.Shared = passive.NewShared(nil)
		}
		a, b := passive.NewDecoder(opts, emit), passive.NewDecoder(opts, emit)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0)}
		a.Packet(arp, ci, layers.LinkTypeEthernet)
		b.Packet(syn, ci, layers.LinkTypeEthernet)
		if len(obs) != 2 || (obs[1].MAC == host.String()) != shared {
			t.Fatalf("shared %v: %+v", shared, obs)
		}
	}
}

func frame(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Signature files extend or replace the built-in set without a rebuild;
// a bad file is refused with its name, the entry and the problem.
func TestSignatureFiles(t *testing.T) {
	dir := t.TempDir()
	extra := filepath.Join(dir, "site.yaml")
	os.WriteFile(extra, []byte(`signatures:
  - {id: site-mac-syn, on: syn, ttl: 64, window: "65535", options: "M*,N,W4,N,N,T,S,E", os: Site macOS build, confidence: 0.9}
`), 0o600)
	sigs, err := passive.LoadSignatures([]string{extra}, true)
	if err != nil {
		t.Fatal(err)
	}
	org := prefixes("141.142.0.0/16", "192.150.187.0/24")
	obs := readWith(t, "zeek__tcp_syn-synack.pcap", passive.Options{Networks: org, Signatures: sigs})
	if c := byIP(obs, "141.142.228.5"); len(c) != 1 || hint(c[0], "os") != "Site macOS build" {
		t.Fatalf("the more confident site signature did not win: %+v", c)
	}
	// Without the built-in set, only the site's rules apply.
	only, err := passive.LoadSignatures([]string{dir}, false)
	if err != nil {
		t.Fatal(err)
	}
	obs = readWith(t, "csanders__dhcp_nolease_initialization.pcapng", passive.Options{Signatures: only})
	for _, o := range obs {
		if hint(o, "os") != "" {
			t.Fatalf("a built-in rule applied with the built-in set off: %+v", o)
		}
	}
	for body, want := range map[string]string{
		"signatures:\n  - {id: x, on: syn, ttl: 63, options: M*, os: X, confidence: 0.5}\n": "signature x: ttl 63",
		"signatures:\n  - {id: y, on: text, pattern: '(', os: X, confidence: 0.5}\n":        "signature y: pattern",
		"signatures:\n  - {id: z, on: dhcp, fingerprint: '1,3', confidence: 0.5}\n":         "signature z: concludes nothing",
		"signatures:\n  - {id: w, on: smell, os: X, confidence: 0.5}\n":                     `signature w: on "smell"`,
		"signatures:\n  - {on: syn}\n":                                                      "signature #1: id is required",
		"signaturez: []\n":                                                                  "field signaturez not found",
	} {
		p := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(p, []byte(body), 0o600)
		_, err := passive.LoadSignatures([]string{p}, true)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want the file and %q", body, err, want)
		}
	}
}

// The embedded table loads and covers every kind of evidence.
func TestDefaultSignatures(t *testing.T) {
	s := passive.DefaultSignatures()
	if len(s.Files) != 1 {
		t.Fatalf("%v", s.Files)
	}
}
