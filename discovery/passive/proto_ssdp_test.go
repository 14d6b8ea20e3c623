package passive

import (
	"strings"
	"testing"
)

// ndpi__ssdp-m-search-ua.pcap: four M-SEARCHes from Chrome for the DIAL
// service, each with USER-AGENT "Google Chrome/99.0.4844.74 Mac OS X"
// (tshark -T fields -e udp.payload). ndpi__iphone.pcap frames 18 and 19
// (2 and 3 of the excerpt): the same search without a user agent.
func TestSSDPSearch(t *testing.T) {
	const st = "urn:dial-multiscreen-org:service:dial:1"
	p := capturePayloads(t, "ndpi__ssdp-m-search-ua.pcap")
	if len(p) != 4 {
		t.Fatalf("%d payloads", len(p))
	}
	var m ssdpMsg
	for frame, payload := range p {
		if !parseSSDP(payload, &m) || m.Kind != ssdpSearch || string(m.ST) != st || string(m.UserAgent) != "Google Chrome/99.0.4844.74 Mac OS X" {
			t.Errorf("frame %d: %+v", frame, m)
		}
	}
	for _, frame := range []int{2, 3} {
		if !parseSSDP(framePayload(t, "ndpi__iphone-excerpt.pcap", frame), &m) || m.Kind != ssdpSearch || string(m.ST) != st || m.UserAgent != nil {
			t.Errorf("iphone frame %d: %+v", frame, m)
		}
	}
}

// The corpus holds no NOTIFY or search response; these are written after
// the UPnP Device Architecture 2.0 examples, with bare LF line ends and
// odd header case, which devices send too.
func TestSSDPNotifyAndResponse(t *testing.T) {
	notify := "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n" +
		"LOCATION: http://192.168.1.20:49152/description.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n" +
		"server: Linux/3.14 UPnP/1.0 IpBridge/1.26.0\r\nUSN: uuid:2f402f80-da50-11e1-9b23-001788255acc::upnp:rootdevice\r\n\r\n"
	var m ssdpMsg
	if !parseSSDP([]byte(notify), &m) || m.Kind != ssdpNotify || string(m.Location) != "http://192.168.1.20:49152/description.xml" ||
		string(m.NT) != "upnp:rootdevice" || string(m.NTS) != "ssdp:alive" || string(m.Server) != "Linux/3.14 UPnP/1.0 IpBridge/1.26.0" ||
		string(m.USN) != "uuid:2f402f80-da50-11e1-9b23-001788255acc::upnp:rootdevice" {
		t.Errorf("notify %+v", m)
	}
	resp := "HTTP/1.1 200 OK\nCACHE-CONTROL: max-age=100\nEXT:\nLOCATION: http://10.0.0.2:80/desc.xml\n" +
		"Server:   FreeRTOS/6.0.5 UPnP/1.0 IpBridge/1.17.0  \nST: upnp:rootdevice\nUSN: uuid:abc::upnp:rootdevice\n\n"
	if !parseSSDP([]byte(resp), &m) || m.Kind != ssdpResponse || m.Status != 200 || string(m.Server) != "FreeRTOS/6.0.5 UPnP/1.0 IpBridge/1.17.0" ||
		string(m.ST) != "upnp:rootdevice" || string(m.Location) != "http://10.0.0.2:80/desc.xml" {
		t.Errorf("response %+v", m)
	}
}

// Not SSDP: WS-Discovery probes (SOAP over UDP 3702, ndpi__upnp.pcap), a
// TiVo beacon, binary, a start line cut off, an HTTP request.
func TestSSDPRefuses(t *testing.T) {
	var m ssdpMsg
	for frame, p := range capturePayloads(t, "ndpi__upnp.pcap") {
		if parseSSDP(p, &m) {
			t.Errorf("WS-Discovery frame %d taken for SSDP: %+v", frame, m)
		}
	}
	for _, p := range []string{
		"TiVoConnect=1\nswversion=1.0\n",
		"\x00\x01\x02\x03\n",
		"NOTIFY * HTTP/1.1",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 099 Low\r\n\r\n",
		"",
	} {
		if parseSSDP([]byte(p), &m) {
			t.Errorf("%q taken for SSDP: %+v", p, m)
		}
		if m.Kind != ssdpNone || m.ST != nil || m.Server != nil {
			t.Errorf("%q left %+v", p, m)
		}
	}
}

func TestScanHeaders(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\n folded\r\nno colon\r\n: empty name\r\nX-Tab:\tv \t\r\nCut: off"
	var got []string
	first, ok := scanHeaders([]byte(in), func(name, value []byte) bool {
		got = append(got, string(name)+"="+string(value))
		return true
	})
	if !ok || string(first) != "GET / HTTP/1.1" || strings.Join(got, "|") != "Host=a|X-Tab=v" {
		t.Errorf("%q %v %q", first, ok, got)
	}
	// fn stops the scan.
	n := 0
	scanHeaders([]byte("A\nB: 1\nC: 2\n\n"), func(_, _ []byte) bool { n++; return false })
	if n != 1 {
		t.Errorf("%d calls after a stop", n)
	}
	// The head ends at the empty line: the body is not read.
	got = got[:0]
	scanHeaders([]byte("A\nB: 1\n\nC: 2\n"), func(name, _ []byte) bool { got = append(got, string(name)); return true })
	if strings.Join(got, "|") != "B" {
		t.Errorf("read past the head: %q", got)
	}
	// At most httpMaxHeaderLines lines are read.
	n = 0
	scanHeaders([]byte("A\n"+strings.Repeat("X: y\n", 1000)), func(_, _ []byte) bool { n++; return true })
	if n != httpMaxHeaderLines {
		t.Errorf("%d header lines read", n)
	}
	if !headerIs([]byte("User-Agent"), "user-agent") || headerIs([]byte("User-Agen"), "user-agent") || headerIs([]byte("User_Agent"), "user-agent") {
		t.Error("headerIs")
	}
}

// ndpi__TivoDVR.pcap: a minidlna server's TiVoConnect beacon, LF line ends.
func TestTiVoBeacon(t *testing.T) {
	var b tivoBeacon
	for frame, p := range capturePayloads(t, "ndpi__TivoDVR.pcap") {
		if !parseTiVo(p, &b) || string(b.Machine) != "R7000P" || string(b.Platform) != "pc/minidlna" ||
			string(b.Identity) != "uuid:4d696e69-444c-164e-9d41-1459c099c043" || string(b.SWVersion) != "1.0" ||
			string(b.Services) != "TiVoMediaServer:8200/http" {
			t.Errorf("frame %d: %+v", frame, b)
		}
	}
	if parseTiVo([]byte("M-SEARCH * HTTP/1.1\r\n\r\n"), &b) || parseTiVo(nil, &b) {
		t.Error("not a beacon, taken for one")
	}
	if !parseTiVo([]byte("tivoconnect=1\r\nmachine=Den\x00\x00"), &b) || string(b.Machine) != "Den" {
		t.Errorf("unterminated last line: %+v", b)
	}
}

func TestSSDPNoAllocs(t *testing.T) {
	p := framePayload(t, "ndpi__ssdp-m-search-ua.pcap", 1)
	tivo := framePayload(t, "ndpi__TivoDVR.pcap", 1)
	var ua, machine []byte
	noAllocs(t, "parseSSDP", func() {
		var m ssdpMsg // a local stays on the stack
		parseSSDP(p, &m)
		ua = m.UserAgent
	})
	noAllocs(t, "parseTiVo", func() {
		var b tivoBeacon
		parseTiVo(tivo, &b)
		machine = b.Machine
	})
	if ua == nil || machine == nil {
		t.Fatal("nothing parsed")
	}
}

// FuzzSSDP: any payload parses without a panic; every header value lies
// in the payload. The TiVo beacon and the HTTP head share the scanner and
// ride along.
func FuzzSSDP(f *testing.F) {
	f.Add([]byte("NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:alive\r\nUSN: u\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\nServer: s\nST: t\n\n"))
	f.Add([]byte("TiVoConnect=1\nmachine=m\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var m ssdpMsg
		ok := parseSSDP(p, &m)
		for _, v := range [][]byte{m.Server, m.Location, m.NT, m.NTS, m.ST, m.USN, m.UserAgent} {
			if !within(v, p) {
				t.Fatal("a value lies outside the payload")
			}
		}
		if ok != (m.Kind != ssdpNone) || m.Kind == ssdpResponse && (m.Status < 100 || m.Status > 999) {
			t.Fatalf("ok %v, %+v", ok, m)
		}
		var b tivoBeacon
		parseTiVo(p, &b)
		for _, v := range [][]byte{b.Machine, b.Platform, b.Identity, b.SWVersion, b.Services} {
			if !within(v, p) {
				t.Fatal("a TiVo value lies outside the payload")
			}
		}
		scanHeaders(p, func(name, value []byte) bool {
			if len(name) == 0 || !within(name, p) || !within(value, p) {
				t.Fatal("header out of bounds")
			}
			return true
		})
	})
}
