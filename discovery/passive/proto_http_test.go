package passive

import (
	"strings"
	"testing"
)

// Expected values read with tshark -T fields -e http.request.method -e
// http.request.uri -e http.host -e http.user_agent -e http.response.code
// -e http.server; tshark shows the response on the segment that completes
// it, the head is in the first one (frame 6 in both captures).
func TestHTTPCaptures(t *testing.T) {
	for _, c := range []struct {
		file                  string
		target, host, ua, srv string
	}{
		{"zeek__http_get.pcap", "/download/CHANGES.bro-aux.txt", "bro.org", "Wget/1.14 (darwin12.2.0)", "Apache/2.4.3 (Fedora)"},
		{"csanders__http_google.pcapng", "/", "www.google.com",
			"Mozilla/5.0 (Windows; U; Windows NT 6.1; en-US; rv:1.9.1.7) Gecko/20091221 Firefox/3.5.7", "gws"},
	} {
		p := capturePayloads(t, c.file)
		var m httpMsg
		if !parseHTTP(p[4], &m) || !m.Request || string(m.Method) != "GET" || string(m.Target) != c.target || string(m.Version) != "HTTP/1.1" ||
			string(m.Host) != c.host || string(m.UserAgent) != c.ua || m.Server != nil {
			t.Errorf("%s request: %+v", c.file, m)
		}
		if !parseHTTP(p[6], &m) || m.Request || m.Status != 200 || string(m.Version) != "HTTP/1.1" || string(m.Server) != c.srv || m.Host != nil {
			t.Errorf("%s response: %+v", c.file, m)
		}
		// The other segments carry the body, which is not HTTP.
		for frame, payload := range p {
			if frame != 4 && frame != 6 && (looksLikeHTTP(payload) || parseHTTP(payload, &m)) {
				t.Errorf("%s frame %d taken for a message head", c.file, frame)
			}
		}
	}
}

func TestLooksLikeHTTP(t *testing.T) {
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "DELETE ", "CONNECT ", "PATCH ", "HTTP/1.0 ", "HTTP/1.1 "} {
		if !looksLikeHTTP([]byte(m + "x")) {
			t.Errorf("%q not taken for HTTP", m)
		}
	}
	for _, p := range []string{"", "GET", "GETS /", "get / HTTP/1.1", "HTTP/2 200", "PRI * HTTP/2.0", "\x16\x03\x01\x02\x00", "SSH-2.0-OpenSSH"} {
		if looksLikeHTTP([]byte(p)) {
			t.Errorf("%q taken for HTTP", p)
		}
	}
}

func TestHTTPEdges(t *testing.T) {
	var m httpMsg
	// A head cut by the end of the segment: complete lines are read, the
	// cut one is not.
	if !parseHTTP([]byte("GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: cu"), &m) || string(m.Host) != "h" || m.UserAgent != nil {
		t.Errorf("cut head: %+v", m)
	}
	// A request target with spaces in it is taken up to the last space.
	if !parseHTTP([]byte("GET /a b HTTP/1.0\n\n"), &m) || string(m.Target) != "/a b" || string(m.Version) != "HTTP/1.0" {
		t.Errorf("odd target: %+v", m)
	}
	for _, p := range []string{
		"GET / HTTP/1.1",          // no line end
		"GET /\r\n\r\n",           // HTTP/0.9: no version
		"GET  \r\n\r\n",           // no target
		"HTTP/1.1 20\r\n\r\n",     // short status
		"HTTP/1.1 abc OK\r\n\r\n", // not a number
		"POST /\x01 HTTP/1.1\r\n", // control byte
		"HTTP/1.0 ",
	} {
		if parseHTTP([]byte(p), &m) {
			t.Errorf("%q parsed: %+v", p, m)
		}
		if m.Method != nil || m.Status != 0 {
			t.Errorf("%q left %+v", p, m)
		}
	}
	if !parseHTTP([]byte("HTTP/1.0 404\r\nServer: x\r\n\r\n"), &m) || m.Status != 404 || string(m.Server) != "x" {
		t.Errorf("status line without a reason: %+v", m)
	}
	long := "GET / HTTP/1.1\r\n" + strings.Repeat("X-Pad: y\r\n", 200) + "Host: late\r\n\r\n"
	if !parseHTTP([]byte(long), &m) || m.Host != nil {
		t.Errorf("a header past the line limit was read: %+v", m)
	}
}

func TestHTTPNoAllocs(t *testing.T) {
	req := framePayload(t, "csanders__http_google.pcapng", 4)
	resp := framePayload(t, "csanders__http_google.pcapng", 6)
	var server []byte
	noAllocs(t, "parseHTTP", func() {
		var m httpMsg // a local stays on the stack
		looksLikeHTTP(req)
		parseHTTP(req, &m)
		parseHTTP(resp, &m)
		server = m.Server
	})
	if string(server) != "gws" {
		t.Fatalf("server %q", server)
	}
}

// FuzzHTTP: any payload parses without a panic; fields lie in the payload;
// parseHTTP accepts only what looksLikeHTTP does.
func FuzzHTTP(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 301 Moved\r\nServer: s\r\n\r\n"))
	f.Add([]byte("CONNECT h:443 HTTP/1.1\n\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var m httpMsg
		ok := parseHTTP(p, &m)
		if ok && !looksLikeHTTP(p) {
			t.Fatal("parsed what looksLikeHTTP refuses")
		}
		for _, v := range [][]byte{m.Method, m.Target, m.Version, m.Host, m.UserAgent, m.Server} {
			if !within(v, p) {
				t.Fatal("a field lies outside the payload")
			}
		}
		if ok && !m.Request && (m.Status < 100 || m.Status > 999) {
			t.Fatalf("status %d", m.Status)
		}
	})
}
