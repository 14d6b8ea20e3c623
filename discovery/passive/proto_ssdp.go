package passive

// SSDP (UPnP device discovery over UDP 1900) and the HTTP-style header
// scanner it shares with the HTTP reader; also the TiVoConnect beacon
// (UDP 2190), whose "key=value" lines need the same care. All read in
// place without allocating.

import "bytes"

// httpMaxHeaderLines bounds the header lines scanHeaders reads.
const httpMaxHeaderLines = 128

// scanHeaders reads an HTTP-style message head from p: a start line, then
// "Name: value" lines up to the empty line that ends the head or the end
// of p. It calls fn for each complete header line with the name and the
// value trimmed of spaces and tabs, both pointing into p; fn returns false
// to stop. Lines end in CRLF or a bare LF. A line cut off by the end of p
// is not reported (its value may be cut too), nor are lines without a
// colon, folded continuation lines, or lines past httpMaxHeaderLines.
// ok is false when p has no complete, non-empty start line of isPrintableText
// text: then it is not such a message and fn was not called.
func scanHeaders(p []byte, fn func(name, value []byte) bool) (firstLine []byte, ok bool) {
	line, rest, ok := cutTextLine(p)
	if !ok || len(line) == 0 || !isPrintableText(line) {
		return nil, false
	}
	firstLine = line
	for range httpMaxHeaderLines {
		line, rest, ok = cutTextLine(rest)
		if !ok || len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding (RFC 9112 §5.2)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		if !fn(line[:colon:colon], trimOWS(line[colon+1:])) {
			break
		}
	}
	return firstLine, true
}

// cutTextLine splits the first LF-terminated line off p, without its CR LF.
// ok is false when p holds no line terminator.
func cutTextLine(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return nil, p, false
	}
	line = p[:i:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[: len(line)-1 : len(line)-1]
	}
	return line, p[i+1:], true
}

// isPrintableText reports whether b holds no control bytes other than tab.
func isPrintableText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// headerIs reports whether a header name equals want, ignoring ASCII case.
func headerIs(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range len(name) {
		if asciiLower(name[i]) != asciiLower(want[i]) {
			return false
		}
	}
	return true
}

func asciiLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// textHasPrefix reports whether p starts with s, without converting s.
func textHasPrefix(p []byte, s string) bool {
	return len(p) >= len(s) && string(p[:len(s)]) == s
}

// ssdpKind is the kind of an SSDP message, told by its start line.
type ssdpKind uint8

const (
	ssdpNone     ssdpKind = iota
	ssdpNotify            // "NOTIFY * HTTP/1.1": a device announces itself (alive/byebye)
	ssdpSearch            // "M-SEARCH * HTTP/1.1": a control point looks for devices
	ssdpResponse          // "HTTP/1.1 200 OK": a device answers a search
)

// ssdpMsg is what parseSSDP reads. Its slices point into the payload and
// are valid only until it is reused; a header not present is nil.
type ssdpMsg struct {
	Kind ssdpKind
	// Status is a response's status code.
	Status int
	// Server is the device's "OS/version UPnP/1.x product/version" line.
	Server []byte
	// Location is the URL of the device description.
	Location []byte
	// NT (notification type), NTS (ssdp:alive or ssdp:byebye), ST (search
	// target) and USN (unique service name, "uuid:...") name the service.
	NT, NTS, ST, USN []byte
	// UserAgent is sent by some control points in M-SEARCH.
	UserAgent []byte
}

// parseSSDP reads an SSDP message into m and reports whether p is one.
func parseSSDP(p []byte, m *ssdpMsg) bool {
	*m = ssdpMsg{}
	first, ok := scanHeaders(p, func(name, value []byte) bool {
		switch {
		case headerIs(name, "server"):
			m.Server = value
		case headerIs(name, "location"):
			m.Location = value
		case headerIs(name, "nt"):
			m.NT = value
		case headerIs(name, "nts"):
			m.NTS = value
		case headerIs(name, "st"):
			m.ST = value
		case headerIs(name, "usn"):
			m.USN = value
		case headerIs(name, "user-agent"):
			m.UserAgent = value
		}
		return true
	})
	if !ok {
		return false
	}
	switch {
	case string(first) == "NOTIFY * HTTP/1.1":
		m.Kind = ssdpNotify
	case string(first) == "M-SEARCH * HTTP/1.1":
		m.Kind = ssdpSearch
	case textHasPrefix(first, "HTTP/1.1 ") || textHasPrefix(first, "HTTP/1.0 "):
		status, ok := parseStatus(first[9:])
		if !ok {
			*m = ssdpMsg{}
			return false
		}
		m.Kind, m.Status = ssdpResponse, status
	default:
		*m = ssdpMsg{}
		return false
	}
	return true
}

// parseStatus reads the three-digit status code that starts b and must be
// followed by a space or the end of the line.
func parseStatus(b []byte) (int, bool) {
	if len(b) < 3 || len(b) > 3 && b[3] != ' ' {
		return 0, false
	}
	v := 0
	for _, c := range b[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v >= 100
}

// tivoBeacon is what parseTiVo reads from a TiVoConnect discovery beacon,
// pointing into the payload.
type tivoBeacon struct {
	// Machine is the device's name, Platform its kind ("tcd/Series3",
	// "pc/minidlna"), Identity its unique id, SWVersion its software and
	// Services what it offers ("TiVoMediaServer:8200/http").
	Machine, Platform, Identity, SWVersion, Services []byte
}

// parseTiVo reads a TiVoConnect beacon (lines of key=value, the first
// "tivoconnect=1") into b and reports whether p is one.
func parseTiVo(p []byte, b *tivoBeacon) bool {
	*b = tivoBeacon{}
	line, rest, ok := cutTextLine(p)
	if !ok || !headerIs(line, "tivoconnect=1") {
		return false
	}
	for range httpMaxHeaderLines {
		if line, rest, ok = cutTextLine(rest); !ok {
			// The last line may lack its terminator.
			line, rest = trimTrailingNUL(rest), nil
			if len(line) == 0 {
				break
			}
		}
		eq := bytes.IndexByte(line, '=')
		if eq <= 0 || !isPrintableText(line) {
			continue
		}
		key, value := line[:eq], line[eq+1:]
		switch {
		case headerIs(key, "machine"):
			b.Machine = value
		case headerIs(key, "platform"):
			b.Platform = value
		case headerIs(key, "identity"):
			b.Identity = value
		case headerIs(key, "swversion"):
			b.SWVersion = value
		case headerIs(key, "services"):
			b.Services = value
		}
	}
	return true
}

func trimTrailingNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
