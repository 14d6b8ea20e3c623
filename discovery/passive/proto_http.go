package passive

// Cleartext HTTP/1.x: the request or response head at the start of one TCP
// payload, read in place without allocating. There is no reassembly: a
// header that falls in a later segment is not seen.

import "bytes"

// httpMsg is what parseHTTP reads from a message head. Its slices point
// into the payload and are valid only until it is reused; a header not
// present is nil.
type httpMsg struct {
	// Request is true for a request, false for a response.
	Request bool
	// Method, Target and Version are a request line's parts ("GET",
	// "/index.html", "HTTP/1.1"); Version is also a response's.
	Method, Target, Version []byte
	// Status is a response's status code.
	Status int
	// Host and UserAgent are request headers; Server a response header.
	Host, UserAgent, Server []byte
}

// looksLikeHTTP is the cheap test for a TCP payload that starts an HTTP/1.x
// request (GET, POST, HEAD, PUT, OPTIONS, DELETE, CONNECT, PATCH) or
// response (HTTP/1.0 or HTTP/1.1): a switch on the first byte and one or
// two prefix compares.
func looksLikeHTTP(p []byte) bool {
	if len(p) < 4 {
		return false
	}
	switch p[0] {
	case 'G':
		return textHasPrefix(p, "GET ")
	case 'P':
		return textHasPrefix(p, "POST ") || textHasPrefix(p, "PUT ") || textHasPrefix(p, "PATCH ")
	case 'H':
		return textHasPrefix(p, "HTTP/1.1 ") || textHasPrefix(p, "HTTP/1.0 ") || textHasPrefix(p, "HEAD ")
	case 'O':
		return textHasPrefix(p, "OPTIONS ")
	case 'D':
		return textHasPrefix(p, "DELETE ")
	case 'C':
		return textHasPrefix(p, "CONNECT ")
	}
	return false
}

// parseHTTP reads the head of an HTTP/1.x request or response that starts
// p into m and reports whether p starts one (its start line complete and
// well formed). Headers are read up to the end of the head or of p.
func parseHTTP(p []byte, m *httpMsg) bool {
	*m = httpMsg{}
	if !looksLikeHTTP(p) {
		return false
	}
	first, ok := scanHeaders(p, func(name, value []byte) bool {
		switch {
		case headerIs(name, "host"):
			m.Host = value
		case headerIs(name, "user-agent"):
			m.UserAgent = value
		case headerIs(name, "server"):
			m.Server = value
		}
		return true
	})
	if !ok {
		*m = httpMsg{}
		return false
	}
	if textHasPrefix(first, "HTTP/1.") {
		status, ok := parseStatus(first[9:])
		if !ok {
			*m = httpMsg{}
			return false
		}
		m.Version, m.Status = first[:8:8], status
		return true
	}
	// method SP request-target SP HTTP-version (RFC 9112 §3)
	sp := bytes.IndexByte(first, ' ')
	rest := first[sp+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 || !textHasPrefix(rest[sp2+1:], "HTTP/") {
		*m = httpMsg{}
		return false
	}
	m.Request = true
	m.Method, m.Target, m.Version = first[:sp:sp], rest[:sp2:sp2], rest[sp2+1:]
	return true
}
