package passive

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

func parse6(t *testing.T, file string, frame int) *dhcp6Msg {
	t.Helper()
	var m dhcp6Msg
	if err := parseDHCPv6(framePayload(t, file, frame), &m); err != nil {
		t.Fatalf("%s frame %d: %v", file, frame, err)
	}
	return &m
}

func addrs6(m *dhcp6Msg) []netip.Addr { return m.Addrs[:m.NAddrs] }

func oro(m *dhcp6Msg) string { return string(appendORO(nil, m.ORO)) }

// Expected values read with tshark -T fields -e dhcpv6.msgtype -e
// dhcpv6.xid -e dhcpv6.duid.bytes -e dhcpv6.duidllt.link_layer_addr -e
// dhcpv6.iaaddr.ip -e dhcpv6.requested_option_code.
func TestDHCPv6Lease(t *testing.T) {
	const file = "csanders__dhcp6_outlease_acquisition.pcapng"
	client := "000100011def69bd000c295e7744" // DUID-LLT of 00:0c:29:5e:77:44
	server := "000100011de4b858000c291fa755"
	lease := netip.MustParseAddr("2001:db8:1:2::1002")
	for _, c := range []struct {
		frame       int
		typ         uint8
		xid         uint32
		server, oro string
		leased      bool
	}{
		{1, dhcp6Solicit, 0x9de03f, "", "23,24,39,31", false},
		{2, dhcp6Advertise, 0x9de03f, server, "", true},
		{3, dhcp6Request, 0x2d1603, server, "23,24,39,31", true},
		{4, dhcp6Reply, 0x2d1603, server, "", true},
	} {
		m := parse6(t, file, c.frame)
		if m.Type != c.typ || m.XID != c.xid || hex.EncodeToString(m.ClientDUID) != client || hex.EncodeToString(m.ServerDUID) != c.server ||
			!m.HasClientMAC || m.ClientMAC != [6]byte{0x00, 0x0c, 0x29, 0x5e, 0x77, 0x44} || oro(m) != c.oro || m.Relays != 0 {
			t.Errorf("frame %d: %+v", c.frame, m)
		}
		if got := addrs6(m); c.leased != (len(got) == 1 && got[0] == lease) || !c.leased && len(got) != 0 {
			t.Errorf("frame %d: addresses %v", c.frame, got)
		}
	}
}

// tcpdump__dhcpv6-ia-na.pcap: the client identifies by DUID-LL
// 00030001000102030405; the reply (frame 4) leases
// 2a00:1:1:200:38e6:b22e:c440:acdf from server DUID
// 000100011846488c001122334455.
func TestDHCPv6LinkLayerDUID(t *testing.T) {
	const file = "tcpdump__dhcpv6-ia-na.pcap"
	m := parse6(t, file, 1)
	if m.Type != dhcp6Solicit || m.XID != 0x90b45c || !m.HasClientMAC || m.ClientMAC != [6]byte{0, 1, 2, 3, 4, 5} || oro(m) != "23,24" {
		t.Errorf("solicit %+v", m)
	}
	m = parse6(t, file, 4)
	if m.Type != dhcp6Reply || m.XID != 0x2ffdd1 || m.ClientMAC != [6]byte{0, 1, 2, 3, 4, 5} ||
		hex.EncodeToString(m.ServerDUID) != "000100011846488c001122334455" ||
		len(addrs6(m)) != 1 || addrs6(m)[0] != netip.MustParseAddr("2a00:1:1:200:38e6:b22e:c440:acdf") {
		t.Errorf("reply %+v", m)
	}
}

// tcpdump__dhcpv6-mud.pcap: a Relay-forw (link 2001:8a8:1006:3:225:84ff:fedb:2380,
// peer fe80::ba27:ebff:feb8:53c8) carrying a Raspberry Pi's Solicit
// (xid 0x78244b): DUID-LLT of b8:27:eb:b8:53:c8, Client FQDN "raspberrypi"
// with flags 0x01, vendor class 40712 "dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709",
// options requested 23,24,31,39,82,83.
func TestDHCPv6Relayed(t *testing.T) {
	m := parse6(t, "tcpdump__dhcpv6-mud.pcap", 1)
	if m.Relays != 1 || m.RelayLink != netip.MustParseAddr("2001:8a8:1006:3:225:84ff:fedb:2380") || m.RelayPeer != netip.MustParseAddr("fe80::ba27:ebff:feb8:53c8") {
		t.Errorf("relay %d %v %v", m.Relays, m.RelayLink, m.RelayPeer)
	}
	if m.Type != dhcp6Solicit || m.XID != 0x78244b || m.ClientMAC != [6]byte{0xb8, 0x27, 0xeb, 0xb8, 0x53, 0xc8} ||
		!m.HasFQDN || string(m.FQDN()) != "raspberrypi" || m.FQDNFlags != 0x01 ||
		!m.HasVendorClass || m.VendorEnterprise != 40712 || string(m.VendorClass) != "dhcpcd-6.11.5:Linux-4.1.18-v7+:armv7l:BCM2709" ||
		oro(m) != "23,24,31,39,82,83" {
		t.Errorf("relayed solicit %+v", m)
	}
}

func TestDHCPv6Hostile(t *testing.T) {
	relay := func(inner []byte) []byte {
		b := append([]byte{dhcp6RelayForw, 0}, make([]byte, 32)...)
		return append(b, 0, dhcp6OptRelayMsg, byte(len(inner)>>8), byte(len(inner)))
	}
	solicit := []byte{1, 0, 0, 1}
	nested := solicit
	for range dhcp6MaxRelay {
		nested = append(relay(nested), nested...)
	}
	tooDeep := append(relay(nested), nested...)
	var m dhcp6Msg
	if err := parseDHCPv6(nested, &m); err != nil || m.Relays != dhcp6MaxRelay || m.Type != dhcp6Solicit {
		t.Errorf("%d relays: %v %+v", dhcp6MaxRelay, err, m)
	}
	for name, c := range map[string]struct {
		p    []byte
		want error
	}{
		"empty":            {nil, errDHCP6Short},
		"short header":     {[]byte{1, 0, 0}, errDHCP6Short},
		"type zero":        {[]byte{0, 0, 0, 0}, errDHCP6Type},
		"option past end":  {[]byte{1, 0, 0, 1, 0, 1, 0, 9, 1}, errDHCP6Short},
		"relay too deep":   {tooDeep, errDHCP6Relay},
		"relay no message": {append([]byte{12, 0}, make([]byte, 32)...), errDHCP6Inner},
		"relay short":      {[]byte{12, 0, 1}, errDHCP6Short},
	} {
		if err := parseDHCPv6(c.p, &m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// An FQDN whose label runs past the option keeps what came before.
	fqdn := []byte{1, 0, 0, 1, 0, 39, 0, 9, 0x04, 3, 'w', 'w', 'w', 9, 'h', 'o', 's'}
	if err := parseDHCPv6(fqdn, &m); err != nil || string(m.FQDN()) != "www" {
		t.Errorf("cut FQDN: %v %q", err, m.FQDN())
	}
	// tcpdump's crafted Reconfigure: a fault, not a crash.
	for _, p := range capturePayloads(t, "tcpdump__dhcp6_reconf_asan.pcap") {
		if err := parseDHCPv6(p, &m); err == nil {
			t.Errorf("the crafted reconfigure parsed: %+v", m)
		}
	}
}

func TestDHCPv6NoAllocs(t *testing.T) {
	p := framePayload(t, "tcpdump__dhcpv6-mud.pcap", 1)
	buf := make([]byte, 0, 64)
	noAllocs(t, "parseDHCPv6", func() {
		var m dhcp6Msg // a local stays on the stack
		parseDHCPv6(p, &m)
		buf = appendORO(buf[:0], m.ORO)
	})
	if string(buf) != "23,24,31,39,82,83" {
		t.Errorf("ORO %q", buf)
	}
}

// FuzzDHCPv6: any payload parses without a panic; slices lie in the
// payload or the struct, counts within bounds.
func FuzzDHCPv6(f *testing.F) {
	f.Add([]byte{12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 4, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		var m dhcp6Msg
		parseDHCPv6(p, &m)
		if m.NAddrs < 0 || m.NAddrs > dhcp6MaxAddrs || m.Relays > dhcp6MaxRelay {
			t.Fatalf("counts %d %d", m.NAddrs, m.Relays)
		}
		for _, s := range [][]byte{m.ClientDUID, m.ServerDUID, m.VendorClass, m.ORO} {
			if !within(s, p) {
				t.Fatal("a field lies outside the payload")
			}
		}
		if !within(m.FQDN(), m.fqdn[:]) || len(m.ORO)%2 != 0 {
			t.Fatal("FQDN outside its buffer or ORO odd")
		}
		appendORO(nil, m.ORO)
	})
}
