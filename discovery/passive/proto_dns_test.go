package passive

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// dnsRecord is a copy of what a test keeps of a record.
type dnsRecord struct {
	sec        dnsSection
	name       string
	typ, class uint16
	flush      bool
	addr       netip.Addr
	target     string // PTR, CNAME or SRV target
	port       uint16
	txt        []string
}

func walkAll(t *testing.T, msg []byte) (dnsHeader, []dnsRecord, error) {
	t.Helper()
	var s dnsScratch
	var out []dnsRecord
	err := walkDNS(msg, &s, func(rr *dnsRR) bool {
		r := dnsRecord{sec: rr.Section, name: string(rr.Name), typ: rr.Type, class: rr.Class, flush: rr.CacheFlush}
		if a, ok := rr.A(); ok {
			r.addr = a
		} else if a, ok := rr.AAAA(); ok {
			r.addr = a
		}
		switch rr.Type {
		case dnsTypePTR, dnsTypeCNAME:
			if n, _, err := rr.DataName(0); err == nil {
				r.target = string(n)
			}
		case dnsTypeSRV:
			if port, target, ok := rr.SRV(); ok {
				r.port, r.target = port, string(target)
			}
		case dnsTypeTXT:
			for d := rr.Data; len(d) > 0; {
				s, rest, ok := nextTXT(d)
				if !ok {
					break
				}
				r.txt, d = append(r.txt, string(s)), rest
			}
		}
		out = append(out, r)
		return true
	})
	return s.Header, out, err
}

func findRecord(recs []dnsRecord, name string, typ uint16) []dnsRecord {
	var out []dnsRecord
	for _, r := range recs {
		if r.name == name && r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

// Expected values read with tshark -r zeek__dns_mdns.pcap -T fields -e
// dns.resp.name -e dns.resp.type -e dns.a -e dns.aaaa -e dns.ptr.domain_name.
func TestDNSMulticastAnswers(t *testing.T) {
	const host = "johanna-qemu-virtual-machine.local" // sent as johanna-QEMU-Virtual-Machine.local
	h, recs, err := walkAll(t, framePayload(t, "zeek__dns_mdns.pcap", 4))
	if err != nil {
		t.Fatal(err)
	}
	if !h.response() || h.opcode() != 0 || h.rcode() != 0 || len(recs) != 6 {
		t.Fatalf("header %+v, %d records; want a response with 6 answers", h, len(recs))
	}
	var v6 []string
	for _, r := range findRecord(recs, host, dnsTypeAAAA) {
		v6 = append(v6, r.addr.String())
		if r.sec != dnsAnswer || r.class != 1 || !r.flush {
			t.Errorf("AAAA %+v: want an IN answer with the cache-flush bit", r)
		}
	}
	slices.Sort(v6)
	if want := []string{"fd52:429e:c03c:8235:5968:5bc6:1563:f82f", "fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4"}; !slices.Equal(v6, want) {
		t.Errorf("AAAA %v, want %v", v6, want)
	}
	if a := findRecord(recs, host, dnsTypeA); len(a) != 1 || a[0].addr != netip.MustParseAddr("10.0.2.7") {
		t.Errorf("A %+v, want 10.0.2.7", a)
	}
	if p := findRecord(recs, "7.2.0.10.in-addr.arpa", dnsTypePTR); len(p) != 1 || p[0].target != host {
		t.Errorf("PTR %+v, want %s", p, host)
	}

	h, recs, err = walkAll(t, framePayload(t, "zeek__dns_mdns.pcap", 1))
	if err != nil || h.response() || len(recs) != 2 || recs[0].sec != dnsQuestion ||
		recs[0].name != "_ipp._tcp.local" || recs[1].name != "_ipps._tcp.local" || recs[0].typ != dnsTypePTR {
		t.Errorf("query: %v %+v %+v", err, h, recs)
	}
}

// tshark -r zeek__dns_mdns-no-assoc.pcap: frame 3 answers
// unrelated-reply-a.local A 192.168.0.2, frame 4 unrelated-reply-aaaa.local
// AAAA fe80::200:deff:fead:beef, frame 6 v6-unrelated.local AAAA fe80::1.
func TestDNSMulticastUnsolicited(t *testing.T) {
	p := capturePayloads(t, "zeek__dns_mdns-no-assoc.pcap")
	for frame, want := range map[int]dnsRecord{
		3: {name: "unrelated-reply-a.local", typ: dnsTypeA, addr: netip.MustParseAddr("192.168.0.2")},
		4: {name: "unrelated-reply-aaaa.local", typ: dnsTypeAAAA, addr: netip.MustParseAddr("fe80::200:deff:fead:beef")},
		6: {name: "v6-unrelated.local", typ: dnsTypeAAAA, addr: netip.MustParseAddr("fe80::1")},
	} {
		_, recs, err := walkAll(t, p[frame])
		if err != nil || len(recs) != 1 || recs[0].name != want.name || recs[0].typ != want.typ || recs[0].addr != want.addr {
			t.Errorf("frame %d: %v %+v, want %+v", frame, err, recs, want)
		}
	}
}

// A DNS-SD announcement from an iMac (ndpi__iphone.pcap frame 3, frame 1
// of the excerpt): 30 answers and 11 additional records, per tshark's
// dns.count.answers and dns.count.add_rr, with SRV, TXT, A, AAAA, NSEC
// and OPT records, owner names holding UTF-8 and compressed SRV targets.
func TestDNSServiceDiscovery(t *testing.T) {
	h, recs, err := walkAll(t, framePayload(t, "ndpi__iphone-excerpt.pcap", 1))
	if err != nil {
		t.Fatal(err)
	}
	if h.Counts != [4]uint16{0, 30, 0, 11} || len(recs) != 41 {
		t.Fatalf("counts %v, %d records", h.Counts, len(recs))
	}
	const inst = "luca’s imac." // "Luca’s iMac", lower-cased ASCII, UTF-8 kept
	ports := map[string]uint16{"_odisk._tcp.local": 49152, "_smb._tcp.local": 445, "_afpovertcp._tcp.local": 548,
		"_ssh._tcp.local": 22, "_sftp-ssh._tcp.local": 22, "_nfs._tcp.local": 2049, "_companion-link._tcp.local": 49155}
	for svc, port := range ports {
		srv := findRecord(recs, inst+svc, dnsTypeSRV)
		if len(srv) != 1 || srv[0].port != port || srv[0].target != "lucas-imac.local" || !srv[0].flush {
			t.Errorf("SRV %s: %+v, want port %d on lucas-imac.local", svc, srv, port)
		}
		ptr := findRecord(recs, svc, dnsTypePTR)
		if len(ptr) != 1 || ptr[0].target != inst+svc {
			t.Errorf("PTR %s: %+v", svc, ptr)
		}
	}
	info := findRecord(recs, inst+"_device-info._tcp.local", dnsTypeTXT)
	if len(info) != 1 || !slices.Equal(info[0].txt, []string{"model=iMac11,3", "osxvers=17"}) {
		t.Errorf("device-info TXT %+v", info)
	}
	if a := findRecord(recs, "lucas-imac.local", dnsTypeA); len(a) != 1 || a[0].addr.String() != "192.168.2.1" || a[0].sec != dnsAdditional {
		t.Errorf("A %+v", a)
	}
	if a := findRecord(recs, "lucas-imac.local", dnsTypeAAAA); len(a) != 1 || a[0].addr.String() != "fe80::c42c:3ff:fe60:6a64" {
		t.Errorf("AAAA %+v", a)
	}
	key, val, ok := splitTXT([]byte("model=iMac11,3"))
	if string(key) != "model" || string(val) != "iMac11,3" || !ok {
		t.Errorf("splitTXT: %q %q %v", key, val, ok)
	}
	if key, _, ok := splitTXT([]byte("flag")); string(key) != "flag" || ok {
		t.Errorf("splitTXT of a boolean key: %q %v", key, ok)
	}
}

// NetBIOS Name Service, read from ndpi__netbios.pcap with tshark -O nbns:
// frame 1 asks for XSTREAM_HY<00>, frame 102 for OZI<1c>; frame 69
// answers GUNNAR<00> at 10.0.4.24 (flags 0x0000, unique B-node); frame
// 129 is a node status answer naming GUNNAR<00>, VIGILANT_GROUP<00>
// (group), GUNNAR<20> and VIGILANT_GROUP<1e> (group), unit ID
// 00:1c:c4:10:79:0f.
func TestNetBIOSNameService(t *testing.T) {
	p := capturePayloads(t, "ndpi__netbios.pcap")
	question := func(frame int) string {
		var s dnsScratch
		var got string
		err := walkDNS(p[frame], &s, func(rr *dnsRR) bool {
			name, n, suffix, ok := decodeNetBIOSName(rr.Name)
			if ok && rr.Section == dnsQuestion && rr.Type == dnsTypeNB {
				got = string(name[:n]) + "<" + string("0123456789abcdef"[suffix>>4]) + string("0123456789abcdef"[suffix&15]) + ">"
			}
			return true
		})
		if err != nil {
			t.Errorf("frame %d: %v", frame, err)
		}
		return got
	}
	if got := question(1); got != "XSTREAM_HY<00>" {
		t.Errorf("frame 1 asks for %q", got)
	}
	if got := question(102); got != "OZI<1c>" {
		t.Errorf("frame 102 asks for %q", got)
	}

	var s dnsScratch
	var seen int
	err := walkDNS(p[69], &s, func(rr *dnsRR) bool {
		name, n, suffix, ok := decodeNetBIOSName(rr.Name)
		flags, ip, ok2 := nbAddr(rr.Data, 0)
		_, _, more := nbAddr(rr.Data, 1)
		if !ok || string(name[:n]) != "GUNNAR" || suffix != 0 || rr.Type != dnsTypeNB || !ok2 || flags != 0 || ip.String() != "10.0.4.24" || more {
			t.Errorf("frame 69: %q<%02x> type %d flags %#x ip %v", name[:n], suffix, rr.Type, flags, ip)
		}
		seen++
		return true
	})
	if err != nil || !s.Header.response() || seen != 1 {
		t.Errorf("frame 69: %v, response %v, %d records", err, s.Header.response(), seen)
	}

	var names []string
	err = walkDNS(p[129], &s, func(rr *dnsRR) bool {
		if name, n, _, ok := decodeNetBIOSName(rr.Name); !ok || string(name[:n]) != "*" || rr.Type != dnsTypeNBSTAT {
			t.Errorf("frame 129 owner %q type %d", name[:n], rr.Type)
		}
		id, ok := walkNBStat(rr.Data, func(name []byte, suffix byte, flags uint16) bool {
			g := ""
			if flags&0x8000 != 0 {
				g = " group"
			}
			names = append(names, string(name)+"<"+string("0123456789abcdef"[suffix>>4])+string("0123456789abcdef"[suffix&15])+">"+g)
			return true
		})
		if !ok || id != [6]byte{0x00, 0x1c, 0xc4, 0x10, 0x79, 0x0f} {
			t.Errorf("frame 129 unit id %x %v", id, ok)
		}
		return true
	})
	if want := []string{"GUNNAR<00>", "VIGILANT_GROUP<00> group", "GUNNAR<20>", "VIGILANT_GROUP<1e> group"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("frame 129: %v %q, want %q", err, names, want)
	}
}

func TestNetBIOSNameEncoding(t *testing.T) {
	for _, c := range []struct {
		in     string
		name   string
		suffix byte
		ok     bool
	}{
		{"EHFFEOEOEBFCCACACACACACACACACAAA", "GUNNAR", 0x00, true},
		{"ehffeoeoebfccacacacacacacacacaaa", "GUNNAR", 0x00, true}, // as walkDNS lower-cases it
		{"EHFFEOEOEBFCCACACACACACACACACAAA.workgroup", "GUNNAR", 0x00, true},
		{"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "*", 0x00, true},
		{"EHFFEOEOEBFCCACACACACACACACACAA", "", 0, false},   // 31 characters
		{"EHFFEOEOEBFCCACACACACACACACACAAQ", "", 0, false},  // 'Q' is no nibble
		{"EHFFEOEOEBFCCACACACACACACACACAAAx", "", 0, false}, // no dot before the scope
	} {
		name, n, suffix, ok := decodeNetBIOSName([]byte(c.in))
		if string(name[:n]) != c.name || suffix != c.suffix || ok != c.ok {
			t.Errorf("%s: %q <%02x> %v", c.in, name[:n], suffix, ok)
		}
	}
}

// Truncated, crafted and corrupt messages end the walk with an error and
// never panic; records before the fault are still delivered.
func TestDNSHostile(t *testing.T) {
	hdr := func(qd, an uint16) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		return b
	}
	selfLoop := append(hdr(1, 0), 0xc0, 12, 0, 1, 0, 1) // the name points at itself
	long := hdr(1, 0)                                   // 5 labels of 63: 320 octets, over 255
	for range 5 {
		long = append(long, 63)
		long = append(long, strings.Repeat("a", 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)
	for name, c := range map[string]struct {
		msg  []byte
		want error
	}{
		"short header":     {make([]byte, 11), errDNSShort},
		"pointer loop":     {selfLoop, errDNSLoop},
		"name over 255":    {long, errDNSName},
		"extended label":   {append(hdr(1, 0), 0x41, 0, 0, 1, 0, 1), errDNSName},
		"counts lie":       {hdr(0xffff, 0xffff), errDNSTooMany},
		"missing record":   {hdr(1, 0), errDNSShort},
		"rdata past end":   {append(hdr(0, 1), 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2), errDNSShort},
		"pointer past end": {append(hdr(1, 0), 0xc0, 0xff, 0, 1, 0, 1), errDNSShort},
	} {
		var s dnsScratch
		err := walkDNS(c.msg, &s, func(*dnsRR) bool { return true })
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}

	// A name behind 16 pointers is read, one behind 17 is not: "x" at
	// offset 12, then pointers each to the one before.
	chain := append(hdr(0, 0), 1, 'x', 0)
	last := 12
	for range 17 {
		chain = append(chain, 0xc0, byte(last))
		last = len(chain) - 2
	}
	var s dnsScratch
	if name, _, err := readDNSName(chain, last-2, &s.name); err != nil || string(name) != "x" {
		t.Errorf("16 pointers: %q %v", name, err)
	}
	if _, _, err := readDNSName(chain, last, &s.name); !errors.Is(err, errDNSLoop) {
		t.Errorf("17 pointers: %v, want %v", err, errDNSLoop)
	}

	// The real captures of truncated and corrupt NBNS and DNS.
	for _, c := range []struct {
		file string
		want error
	}{{"tcpdump__nbns-valgrind.pcap", errDNSShort}} {
		for frame, p := range capturePayloads(t, c.file) {
			if err := walkDNS(p, &s, func(*dnsRR) bool { return true }); !errors.Is(err, c.want) {
				t.Errorf("%s frame %d: %v, want %v", c.file, frame, err, c.want)
			}
		}
	}
	for _, p := range capturePayloads(t, "ndpi__malformed_dns.pcap") {
		walkDNS(p, &s, func(rr *dnsRR) bool {
			rr.DataName(0)
			rr.SRV()
			rr.HINFO()
			return true
		})
	}
}

// RDATA names must start and, uncompressed, end inside their record.
func TestDNSDataNameBounds(t *testing.T) {
	// One PTR answer whose RDATA (length 2) holds a label that runs on.
	msg := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 0, 12, 0, 1, 0, 0, 0, 0, 0, 2, 3, 'a', 'b', 'c', 0}
	var s dnsScratch
	n := 0
	err := walkDNS(msg, &s, func(rr *dnsRR) bool {
		n++
		if name, _, err := rr.DataName(0); err == nil {
			t.Errorf("a name running out of its RDATA was read: %q", name)
		}
		if _, _, err := rr.DataName(5); err == nil {
			t.Error("an offset past the RDATA was read")
		}
		return true
	})
	if err != nil || n != 1 {
		t.Fatal(err, n)
	}
}

func TestDNSNoAllocs(t *testing.T) {
	msg := framePayload(t, "ndpi__iphone-excerpt.pcap", 1)
	var s dnsScratch
	var ports, addrs, txt int
	noAllocs(t, "walkDNS", func() {
		walkDNS(msg, &s, func(rr *dnsRR) bool {
			if _, ok := rr.A(); ok {
				addrs++
			}
			if _, ok := rr.AAAA(); ok {
				addrs++
			}
			if port, _, ok := rr.SRV(); ok {
				ports += int(port)
			}
			if rr.Type == dnsTypePTR {
				rr.DataName(0)
			}
			if rr.Type == dnsTypeTXT {
				for d := rr.Data; len(d) > 0; {
					s, rest, ok := nextTXT(d)
					if !ok {
						break
					}
					splitTXT(s)
					txt++
					d = rest
				}
			}
			return true
		})
	})
	if addrs == 0 || ports == 0 || txt == 0 {
		t.Errorf("walked nothing: %d addresses, %d ports, %d TXT strings", addrs, ports, txt)
	}
	nb := framePayload(t, "ndpi__netbios.pcap", 129)
	noAllocs(t, "NetBIOS", func() {
		walkDNS(nb, &s, func(rr *dnsRR) bool {
			decodeNetBIOSName(rr.Name)
			nbAddr(rr.Data, 0)
			walkNBStat(rr.Data, func([]byte, byte, uint16) bool { return true })
			return true
		})
	})
}

// FuzzDNS: any payload walks without a panic or a spin; every name lies in
// the scratch buffers, every RDATA inside the message.
func FuzzDNS(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Add([]byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 'a', 0, 0, 33, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 80, 0xc0, 12})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var s dnsScratch
		n := 0
		walkDNS(msg, &s, func(rr *dnsRR) bool {
			n++
			if !within(rr.Name, s.name[:]) || !within(rr.Data, msg) || len(rr.Name) > 253 {
				t.Fatalf("record %d: name or data out of bounds", n)
			}
			if name, next, err := rr.DataName(0); err == nil && (!within(name, s.rdname[:]) || next > len(rr.Data)) {
				t.Fatalf("record %d: RDATA name out of bounds", n)
			}
			if _, target, ok := rr.SRV(); ok && !within(target, s.rdname[:]) {
				t.Fatal("SRV target out of bounds")
			}
			if cpu, os, ok := rr.HINFO(); ok && (!within(cpu, msg) || !within(os, msg)) {
				t.Fatal("HINFO out of bounds")
			}
			for d := rr.Data; len(d) > 0; {
				s, rest, ok := nextTXT(d)
				if !ok {
					break
				}
				if !within(s, rr.Data) || len(rest) >= len(d) {
					t.Fatal("TXT string out of bounds or not advancing")
				}
				d = rest
			}
			if name, n, _, ok := decodeNetBIOSName(rr.Name); ok && n > 15 || !ok && n != 0 {
				t.Fatalf("NetBIOS name %q, length %d", name, n)
			}
			walkNBStat(rr.Data, func(name []byte, _ byte, _ uint16) bool {
				if !within(name, rr.Data) || len(name) > 15 {
					t.Fatal("NBSTAT name out of bounds")
				}
				return true
			})
			return true
		})
		if n > dnsMaxRecords {
			t.Fatalf("%d records", n)
		}
	})
}
