package passive

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The JA4 values below were derived by hand from the FoxIO specification
// (technical_details/JA4.md), not by this code: tshark 4.0 (which predates
// its ja4 field) listed each hello's tls.handshake.ciphersuite,
// tls.handshake.extension.type, tls.handshake.sig_hash_alg,
// tls.handshake.extensions_alpn_str and
// tls.handshake.extensions.supported_version; the lists were filtered of
// GREASE, sorted, joined and hashed with sha256sum. raw is the resulting
// JA4_r (the strings before hashing); the test hashes raw's parts again and
// checks them against the fingerprint too.
var ja4Captures = []struct {
	file                string
	frame               int
	sni, alpn           string
	version, supported  uint16
	ciphers, extensions int
	ja4, raw            string
}{
	{
		// ndpi__iphone.pcap frame 68: iOS 13 to p26-fmfmobile.icloud.com.
		"ndpi__iphone-excerpt.pcap", 4, "p26-fmfmobile.icloud.com", "h2", 0x0303, 0x0304, 26, 13,
		"t13d2613h2_2802a3db6c62_845d286b0d67",
		"t13d2613h2_000a,002f,0035,003c,003d,009c,009d,1301,1302,1303,c008,c009,c00a,c012,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,002b,002d,0033,ff01_0403,0804,0401,0503,0203,0805,0805,0501,0806,0601,0201",
	},
	{
		// ndpi__iphone.pcap frame 304: the same client offering only http/1.1.
		"ndpi__iphone-excerpt.pcap", 5, "gsa.apple.com", "http/1.1", 0x0303, 0x0304, 26, 13,
		"t13d2613h1_2802a3db6c62_845d286b0d67",
		"t13d2613h1_000a,002f,0035,003c,003d,009c,009d,1301,1302,1303,c008,c009,c00a,c012,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,002b,002d,0033,ff01_0403,0804,0401,0503,0203,0805,0805,0501,0806,0601,0201",
	},
	{
		"ndpi__443-safari.pcap", 4, "www.ntop.org", "h2", 0x0303, 0, 20, 10,
		"t12d2010h2_2a284e3b0c56_f05fdf8c38a9",
		"t12d2010h2_002f,0035,003c,003d,009c,009d,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,3374,ff01_0403,0804,0401,0503,0805,0501,0806,0601,0201",
	},
	{
		// Chrome 34 offering spdy/3 first: "s3".
		"zeek__tls_chrome-34-google.pcap", 4, "google.de", "spdy/3", 0x0303, 0, 20, 11,
		"t12d2011s3_8dd61975155f_06a4338d0495",
		"t12d2011s3_0004,0005,000a,002f,0032,0033,0035,0039,009c,009e,c007,c009,c00a,c011,c013,c014,c02b,c02f,cc13,cc14_0005,000a,000b,000d,0012,0023,3374,7550,ff01_0401,0501,0201,0403,0503,0203,0402,0202",
	},
	{
		// No SNI ("i"), no ALPN ("00"), 80 ciphers.
		"zeek__tls_tls1.2.pcap", 4, "", "", 0x0303, 0, 80, 5,
		"t12i800500_15c493246000_3eafcbe19126",
		"t12i800500_0003,0004,0005,0006,0007,0008,0009,000a,0011,0012,0013,0014,0015,0016,002f,0032,0033,0035,0038,0039,003c,003d,0040,0041,0044,0045,0067,006a,006b,0084,0087,0088,0096,0099,009a,009c,009d,009e,009f,00a2,00a3,00ff,c002,c003,c004,c005,c007,c008,c009,c00a,c00c,c00d,c00e,c00f,c011,c012,c013,c014,c01b,c01c,c01e,c01f,c021,c022,c023,c024,c025,c026,c027,c028,c029,c02a,c02b,c02c,c02d,c02e,c02f,c030,c031,c032_000a,000b,000d,000f,0023_0601,0602,0603,0501,0502,0503,0401,0402,0403,0301,0302,0303,0201,0202,0203,0101",
	},
}

func TestTLSClientHelloCaptures(t *testing.T) {
	for _, c := range ja4Captures {
		var h tlsClientHello
		if err := parseClientHello(framePayload(t, c.file, c.frame), &h); err != nil {
			t.Errorf("%s frame %d: %v", c.file, c.frame, err)
			continue
		}
		if !h.Complete || string(h.SNI) != c.sni || h.HasSNI != (c.sni != "") || string(h.ALPN) != c.alpn || h.Version != c.version ||
			h.SupportedVersion != c.supported || len(h.Ciphers)/2 != c.ciphers || h.NExtensions != c.extensions {
			t.Errorf("%s frame %d: %+v", c.file, c.frame, h)
		}
		var ja4 [36]byte
		if !h.JA4(&ja4) || string(ja4[:]) != c.ja4 {
			t.Errorf("%s frame %d: JA4 %s, want %s", c.file, c.frame, ja4[:], c.ja4)
		}
		// The fingerprint is the raw one with its two lists hashed.
		parts := strings.SplitN(c.raw, "_", 3)
		if want := parts[0] + "_" + sha12(parts[1]) + "_" + sha12(parts[2]); want != c.ja4 {
			t.Errorf("%s frame %d: the raw form hashes to %s", c.file, c.frame, want)
		}
	}
}

func sha12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

type tlsExt struct {
	typ  uint16
	data []byte
}

// clientHello builds a TLS record holding one ClientHello.
func clientHello(ciphers []uint16, exts []tlsExt) []byte {
	body := append([]byte{3, 3}, make([]byte, 32)...) // version, random
	body = append(body, 0)                            // session id
	body = binary.BigEndian.AppendUint16(body, uint16(2*len(ciphers)))
	for _, c := range ciphers {
		body = binary.BigEndian.AppendUint16(body, c)
	}
	body = append(body, 1, 0) // compression: null
	var e []byte
	for _, x := range exts {
		e = binary.BigEndian.AppendUint16(e, x.typ)
		e = binary.BigEndian.AppendUint16(e, uint16(len(x.data)))
		e = append(e, x.data...)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(e)))
	body = append(body, e...)
	hs := append([]byte{tlsHSClientHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{tlsRecordHandshake, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func u16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// The worked example of the JA4 specification, with GREASE added where
// clients put it (it must change nothing): the fingerprint the spec gives,
// t13d1516h2_8daaf6152771_e5627efa2ab1, and, with an empty signature
// algorithm list, the extension hash it gives for no algorithms,
// 6d807ffa2a79.
func TestJA4SpecExample(t *testing.T) {
	ciphers := []uint16{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	build := func(sigalgs []byte) []byte {
		var exts []tlsExt
		for _, e := range []uint16{0x2a2a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x3a3a} {
			var d []byte
			switch e {
			case 0x0000:
				d = append([]byte{0, 14, 0, 0, 11}, "example.com"...)
			case 0x0010:
				d = []byte{0, 3, 2, 'h', '2'}
			case 0x002b:
				d = append([]byte{6}, u16s(0x4a4a, 0x0304, 0x0303)...)
			case 0x000d:
				d = append(u16s(uint16(len(sigalgs))), sigalgs...)
			}
			exts = append(exts, tlsExt{e, d})
		}
		return clientHello(ciphers, exts)
	}
	for _, c := range []struct {
		sigalgs []byte
		want    string
	}{
		{u16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601), "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		{u16s(0x0403, 0x0804, 0x5a5a, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601), "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		{nil, "t13d1516h2_8daaf6152771_6d807ffa2a79"},
	} {
		var h tlsClientHello
		var ja4 [36]byte
		if err := parseClientHello(build(c.sigalgs), &h); err != nil || !h.JA4(&ja4) || string(ja4[:]) != c.want {
			t.Errorf("sigalgs %x: %v %s, want %s", c.sigalgs, err, ja4[:], c.want)
		}
		if string(h.SNI) != "example.com" || h.SupportedVersion != 0x0304 || h.NExtensions != 18 {
			t.Errorf("%+v", h)
		}
	}
	// No ciphers and no extensions: twelve zeros each, "i", "00".
	var h tlsClientHello
	var ja4 [36]byte
	if err := parseClientHello(clientHello(nil, nil), &h); err != nil || !h.JA4(&ja4) || string(ja4[:]) != "t12i000000_000000000000_000000000000" {
		t.Errorf("empty hello: %v %s", err, ja4[:])
	}
}

func TestJA4ALPN(t *testing.T) {
	for in, want := range map[string]string{
		"": "00", "h2": "h2", "http/1.1": "h1", "h": "hh", "spdy/3.1": "s1",
		"\xab": "ab", "\xab\xcd": "ad", "0\xab": "3b", "01\xab\xcd": "3d", "0\xab\xcd1": "01",
	} {
		if f, l := ja4ALPN([]byte(in)); string([]byte{f, l}) != want {
			t.Errorf("%q: %c%c, want %s", in, f, l, want)
		}
	}
	for v, want := range map[uint16]string{0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2", 0xfeff: "d1", 0xfefd: "d2", 0xfefc: "d3", 0x7f1c: "00"} {
		if got := ja4Version(v); got != want {
			t.Errorf("version %#04x: %s, want %s", v, got, want)
		}
	}
	for _, g := range []uint16{0x0a0a, 0x1a1a, 0xfafa} {
		if !isGREASE(g) {
			t.Errorf("%#04x is GREASE", g)
		}
	}
	for _, g := range []uint16{0x0a1a, 0x0b0b, 0x1301, 0} {
		if isGREASE(g) {
			t.Errorf("%#04x is not GREASE", g)
		}
	}
}

// Every prefix of a real hello parses without a panic: a cut hello is
// errTLSIncomplete with what precedes the cut, never a JA4.
func TestTLSClientHelloCut(t *testing.T) {
	p := framePayload(t, "ndpi__iphone-excerpt.pcap", 4)
	sniEnd := 0 // the payload length from which the SNI is whole
	var h tlsClientHello
	for n := range len(p) {
		err := parseClientHello(p[:n], &h)
		var ja4 [36]byte
		switch {
		case n < 5 && !errors.Is(err, errTLSNotHandshake), n >= 5 && !errors.Is(err, errTLSIncomplete):
			t.Fatalf("%d bytes: %v", n, err)
		case h.Complete || h.JA4(&ja4):
			t.Fatalf("%d bytes: complete", n)
		}
		if sniEnd == 0 && string(h.SNI) == "p26-fmfmobile.icloud.com" {
			sniEnd = n
		}
	}
	if sniEnd == 0 || sniEnd > 200 {
		t.Errorf("the SNI was read from %d bytes on", sniEnd)
	}
	// A hello whose fields run past its declared length is malformed.
	bad := slices.Clone(p)
	binary.BigEndian.PutUint16(bad[3:], 100) // record length
	bad[6], bad[7], bad[8] = 0, 0, 96
	if err := parseClientHello(bad, &h); !errors.Is(err, errTLSMalformed) {
		t.Errorf("short declared length: %v", err)
	}
	// Byte 43 of a hello record is the session id length.
	for name, c := range map[string]struct {
		p    []byte
		want error
	}{
		"server hello": {[]byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, errTLSNotHello},
		"odd ciphers":  {[]byte{22, 3, 1, 0, 0x2c, 1, 0, 0, 0x28, 3, 3, 43: 0, 0, 3, 0, 0, 0, 1, 0}, errTLSMalformed},
		"long session": {[]byte{22, 3, 1, 0, 0x2c, 1, 0, 0, 0x28, 3, 3, 43: 33}, errTLSMalformed},
		"http":         {[]byte("GET / HTTP/1.1\r\n\r\n"), errTLSNotHandshake},
		"huge record":  {[]byte{22, 3, 1, 0xff, 0xff, 1}, errTLSMalformed},
	} {
		if err := parseClientHello(c.p, &h); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// The servers' flights (tshark -O tls on the Certificate message):
// chrome-34-google frame 6 holds a ServerHello (TLS 1.2, cipher 0xc02f,
// ALPN spdy/3.1) and the whole leaf, *.google.de; tls1.2 frame 5 a
// ServerHello (cipher 0x0004) and the first 1250-odd bytes of the
// 1449-byte leaf *.taleo.net (SAN *.taleo.net, taleo.net), finished in
// frame 8; 443-safari frame 6 a ServerHello (cipher 0xcca8, ALPN h2) and
// part of the leaf www.ntop.org, finished in frame 7.
func TestTLSServerFlight(t *testing.T) {
	for _, c := range []struct {
		file   string
		frames []int
		cipher uint16
		alpn   string
		whole  bool // the leaf is whole in the first frame
		cn     string
		sans   []string
	}{
		{"zeek__tls_chrome-34-google.pcap", []int{6}, 0xc02f, "spdy/3.1", true, "*.google.de", nil},
		{"zeek__tls_tls1.2.pcap", []int{5, 8}, 0x0004, "", false, "*.taleo.net", []string{"*.taleo.net", "taleo.net"}},
		{"ndpi__443-safari.pcap", []int{6, 7}, 0xcca8, "h2", false, "www.ntop.org", []string{"www.ntop.org"}},
	} {
		p := capturePayloads(t, c.file)
		first := p[c.frames[0]]
		var types []uint8
		var sh tlsServerHello
		err := walkTLSHandshakes(first, func(typ uint8, body []byte, complete bool) bool {
			types = append(types, typ)
			if typ == tlsHSServerHello {
				if !complete || parseServerHello(body, &sh) != nil {
					t.Errorf("%s: server hello %v", c.file, complete)
				}
			}
			return true
		})
		if !errors.Is(err, errTLSIncomplete) || len(types) < 2 || types[0] != tlsHSServerHello || types[1] != tlsHSCertificate {
			t.Errorf("%s: %v, messages %v", c.file, err, types)
		}
		if sh.Version != 0x0303 || sh.Cipher != c.cipher || string(sh.ALPN) != c.alpn {
			t.Errorf("%s: %+v", c.file, sh)
		}
		der, ok := tlsLeafCertificate(first)
		if ok != c.whole {
			t.Errorf("%s: leaf whole in frame %d: %v", c.file, c.frames[0], ok)
		}
		if !ok { // as the caller would, once it has the next segment too
			var flight []byte
			for _, f := range c.frames {
				flight = append(flight, p[f]...)
			}
			der, ok = tlsLeafCertificate(flight)
		}
		cn, sans, err := certNames(der)
		if !ok || err != nil || cn != c.cn || c.sans != nil && !slices.Equal(sans, c.sans) || !slices.Contains(sans, strings.TrimPrefix(cn, "*.")) && !slices.Contains(sans, cn) {
			t.Errorf("%s: %v %v %q %q", c.file, ok, err, cn, sans)
		}
	}
	// A segment that starts inside a record is not a handshake.
	if _, ok := tlsLeafCertificate(framePayload(t, "zeek__tls_tls1.2.pcap", 8)); ok {
		t.Error("a certificate found mid-record")
	}
	if err := walkTLSHandshakes([]byte("GET /"), func(uint8, []byte, bool) bool { return true }); !errors.Is(err, errTLSNotHandshake) {
		t.Errorf("HTTP: %v", err)
	}
	if _, _, err := certNames([]byte{0x30, 0x03, 1, 2, 3}); err == nil {
		t.Error("garbage parsed as a certificate")
	}
}

func TestTLSNoAllocs(t *testing.T) {
	hello := framePayload(t, "ndpi__iphone-excerpt.pcap", 4)
	flight := framePayload(t, "zeek__tls_chrome-34-google.pcap", 6)
	var sh tlsServerHello
	var ja4 [36]byte
	var leaf []byte
	noAllocs(t, "parseClientHello and JA4", func() {
		var h tlsClientHello // a local stays on the stack, scratch and all
		parseClientHello(hello, &h)
		h.JA4(&ja4)
	})
	noAllocs(t, "server flight", func() {
		walkTLSHandshakes(flight, func(typ uint8, body []byte, complete bool) bool {
			if typ == tlsHSServerHello && complete {
				parseServerHello(body, &sh)
			}
			return true
		})
		leaf, _ = tlsLeafCertificate(flight)
	})
	if string(ja4[:]) != "t13d2613h2_2802a3db6c62_845d286b0d67" || sh.Cipher != 0xc02f || len(leaf) != 1151 {
		t.Fatalf("%s %+v %d", ja4[:], sh, len(leaf))
	}
}

// FuzzTLS: any payload parses without a panic; slices lie in the payload;
// a JA4, when given, has the fingerprint's shape.
func FuzzTLS(f *testing.F) {
	f.Add(clientHello([]uint16{0x1301}, []tlsExt{{0, []byte{0, 4, 0, 0, 1, 'a'}}, {0x10, []byte{0, 3, 2, 'h', '2'}}, {0x2b, []byte{2, 3, 4}}, {0x0d, u16s(2, 0x0403)}}))
	f.Add([]byte{22, 3, 3, 0, 12, 11, 0, 0, 8, 0, 0, 5, 0, 0, 2, 0x30, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		var h tlsClientHello
		err := parseClientHello(p, &h)
		if (err == nil) != h.Complete {
			t.Fatalf("error %v, complete %v", err, h.Complete)
		}
		for _, s := range [][]byte{h.Ciphers, h.SNI, h.ALPN, h.SigAlgs} {
			if !within(s, p) {
				t.Fatal("a field lies outside the payload")
			}
		}
		var ja4 [36]byte
		if h.JA4(&ja4) {
			s := string(ja4[:])
			if s[0] != 't' || s[10] != '_' || s[23] != '_' || strings.Trim(s[11:23]+s[24:], "0123456789abcdef") != "" || strings.ContainsAny(s[1:10], "_\x00") {
				t.Fatalf("JA4 %q", s)
			}
		}
		walkTLSHandshakes(p, func(typ uint8, body []byte, complete bool) bool {
			if !within(body, p) {
				t.Fatal("a message lies outside the payload")
			}
			var sh tlsServerHello
			if typ == tlsHSServerHello && complete && parseServerHello(body, &sh) == nil && !within(sh.ALPN, body) {
				t.Fatal("ALPN outside the server hello")
			}
			return true
		})
		if der, ok := tlsLeafCertificate(p); ok && (!within(der, p) || len(der) == 0 || der[0] != 0x30) {
			t.Fatal("leaf certificate out of bounds")
		}
	})
}
