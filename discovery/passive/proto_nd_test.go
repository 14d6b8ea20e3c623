package passive

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func parseNDFrame(t *testing.T, file string, frame int) *ndMsg {
	t.Helper()
	var m ndMsg
	if err := parseND(framePayload(t, file, frame), &m); err != nil {
		t.Fatalf("%s frame %d: %v", file, frame, err)
	}
	return &m
}

func mac(b []byte) string { return net.HardwareAddr(b).String() }

// Expected values read with tshark -T fields -e icmpv6.type -e
// icmpv6.nd.ns.target_address -e icmpv6.nd.na.target_address -e
// icmpv6.nd.na.flag.{r,s,o} -e icmpv6.opt.src_linkaddr -e
// icmpv6.opt.target_linkaddr.
func TestNDNeighbors(t *testing.T) {
	const file = "csanders__icmpv6_neighbor_solicitation.pcapng"
	m := parseNDFrame(t, file, 1)
	if m.Type != ndNeighborSolicit || m.Target != netip.MustParseAddr("2001:db8:1:2::1000") || mac(m.SourceLL) != "00:0c:29:2f:80:31" || m.TargetLL != nil {
		t.Errorf("NS %+v", m)
	}
	m = parseNDFrame(t, file, 2)
	if m.Type != ndNeighborAdvert || m.Target != netip.MustParseAddr("2001:db8:1:2::1000") || mac(m.TargetLL) != "00:0c:29:1f:a7:55" ||
		m.Router || !m.Solicited || !m.Override || m.SourceLL != nil {
		t.Errorf("NA %+v", m)
	}

	// zeek__icmp_icmp6-nd-options.pcap frame 2: a router's NA (R and O
	// set, S clear); frame 1: a duplicate address detection NS, no options.
	m = parseNDFrame(t, "zeek__icmp_icmp6-nd-options.pcap", 2)
	if m.Type != ndNeighborAdvert || !m.Router || m.Solicited || !m.Override || m.Target != netip.MustParseAddr("fe80::c000:54ff:fef5:0") || mac(m.TargetLL) != "c2:00:54:f5:00:00" {
		t.Errorf("router NA %+v", m)
	}
	m = parseNDFrame(t, "zeek__icmp_icmp6-nd-options.pcap", 1)
	if m.Type != ndNeighborSolicit || m.Target != netip.MustParseAddr("fe80::c000:54ff:fef5:0") || m.SourceLL != nil {
		t.Errorf("DAD NS %+v", m)
	}
	if m := parseNDFrame(t, "zeek__icmp_icmp6-nd-options.pcap", 13); m.Type != ndRouterSolicit || m.SourceLL != nil {
		t.Errorf("RS %+v", m)
	}
}

// zeek__icmp_icmp6-nd-options.pcap frame 3 (tshark -O icmpv6): an RA with
// hop limit 64, flags 0x00, lifetime 1800 s, source link-layer address
// c2:00:54:f5:00:00, MTU 1500 and prefix 2001:db8:0:1::/64 (L and A,
// valid 2592000 s, preferred 604800 s). zeek__icmp_icmp6-router-advert.pcap:
// hop limit 13, flags 0xb8 (M, H, preference low), lifetime 1800 s,
// reachable 3700 ms, retransmit 1300 ms, no options.
func TestNDRouterAdvert(t *testing.T) {
	m := parseNDFrame(t, "zeek__icmp_icmp6-nd-options.pcap", 3)
	want := ndPrefix{Prefix: netip.MustParsePrefix("2001:db8:0:1::/64"), OnLink: true, Autonomous: true, Valid: 2592000, Preferred: 604800}
	if m.Type != ndRouterAdvert || m.HopLimit != 64 || m.RAFlags != 0 || m.RouterLifetime != 1800 || mac(m.SourceLL) != "c2:00:54:f5:00:00" ||
		m.MTU != 1500 || m.NPrefixes != 1 || m.Prefixes[0] != want {
		t.Errorf("RA %+v", m)
	}
	m = parseNDFrame(t, "zeek__icmp_icmp6-router-advert.pcap", 1)
	if m.Type != ndRouterAdvert || m.HopLimit != 13 || m.RAFlags != ndRAManaged|ndRAHomeAgent|ndRAPrefMask || m.RAFlags&ndRAOther != 0 ||
		m.RouterLifetime != 1800 || m.Reachable != 3700 || m.Retrans != 1300 || m.NPrefixes != 0 || m.SourceLL != nil {
		t.Errorf("RA %+v", m)
	}
}

func TestNDHostile(t *testing.T) {
	rs := func(opts ...byte) []byte { return append([]byte{ndRouterSolicit, 0, 0, 0, 0, 0, 0, 0}, opts...) }
	prefix := func(length byte) []byte {
		o := make([]byte, 32)
		o[0], o[1], o[2], o[3] = ndOptPrefixInfo, 4, length, 0xc0
		o[16] = 0x20
		return o
	}
	var m ndMsg
	for name, c := range map[string]struct {
		p    []byte
		want error
	}{
		"option length zero": {rs(1, 0, 1, 2, 3, 4, 5, 6), errNDOption},
		"option past end":    {rs(1, 2, 1, 2, 3, 4, 5, 6), errNDShort},
		"one stray byte":     {rs(1), errNDShort},
		"short RA":           {[]byte{ndRouterAdvert, 0, 0, 0, 0, 0, 0, 0, 0}, errNDShort},
		"short NS":           {append([]byte{ndNeighborSolicit}, make([]byte, 20)...), errNDShort},
		"short NA":           {append([]byte{ndNeighborAdvert}, make([]byte, 20)...), errNDShort},
		"echo request":       {[]byte{128, 0, 0, 0, 0, 0, 0, 0}, errNDType},
		"empty":              {nil, errNDShort},
	} {
		if err := parseND(c.p, &m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// Over-long prefixes are skipped, the rest kept up to the limit.
	p := rs(prefix(129)...)
	for range ndMaxPrefixes + 2 {
		p = append(p, prefix(48)...)
	}
	if err := parseND(p, &m); err != nil || m.NPrefixes != ndMaxPrefixes || m.Prefixes[0].Prefix != netip.MustParsePrefix("2000::/48") {
		t.Errorf("prefixes: %v %+v", err, m.Prefixes)
	}
	// A source link-layer option of another link type is kept whole.
	if err := parseND(rs(1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0), &m); err != nil || len(m.SourceLL) != 14 {
		t.Errorf("long link-layer address: %v %x", err, m.SourceLL)
	}
}

func TestNDNoAllocs(t *testing.T) {
	p := framePayload(t, "zeek__icmp_icmp6-nd-options.pcap", 3)
	n := 0
	noAllocs(t, "parseND", func() {
		var m ndMsg // a local stays on the stack
		parseND(p, &m)
		n = m.NPrefixes
	})
	if n != 1 {
		t.Fatalf("%d prefixes", n)
	}
}

// FuzzND: any message parses without a panic or a spin; link-layer
// addresses lie in the message, prefixes are valid and within the limit.
func FuzzND(f *testing.F) {
	f.Add([]byte{ndRouterSolicit, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{ndNeighborAdvert, 0, 0, 0, 0xe0, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, p []byte) {
		var m ndMsg
		parseND(p, &m)
		if !within(m.SourceLL, p) || !within(m.TargetLL, p) || m.NPrefixes < 0 || m.NPrefixes > ndMaxPrefixes {
			t.Fatalf("%+v", m)
		}
		for _, pre := range m.Prefixes[:m.NPrefixes] {
			if !pre.Prefix.IsValid() || pre.Prefix.Masked() != pre.Prefix {
				t.Fatalf("prefix %v", pre.Prefix)
			}
		}
	})
}
