package passive

// TLS handshakes seen in cleartext at the start of a TCP connection: the
// client's ClientHello (server name, ALPN, the JA4 fingerprint) and the
// server's ServerHello and, up to TLS 1.2, its certificate chain. Everything
// but certNames reads one TCP payload in place and allocates nothing; a
// record or message cut off by the end of the payload yields what is
// complete and an errTLSIncomplete for the rest.

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"slices"
)

const (
	tlsRecordHandshake = 22
	tlsHSClientHello   = 1
	tlsHSServerHello   = 2
	tlsHSCertificate   = 11

	tlsExtServerName    = 0x0000
	tlsExtSigAlgs       = 0x000d
	tlsExtALPN          = 0x0010
	tlsExtSupportedVers = 0x002b

	// tlsMaxRecord is the longest record fragment allowed on the wire:
	// 2^14 bytes of plaintext plus 2048 of expansion (RFC 5246 §6.2.3).
	tlsMaxRecord = 1<<14 + 2048

	// The JA4 fingerprint needs every cipher suite, extension and
	// signature algorithm; a ClientHello with more than these (no real
	// client comes near) gets none.
	tlsMaxCiphers = 256
	tlsMaxExts    = 64
	tlsMaxSigAlgs = 128
)

var (
	errTLSNotHandshake = errors.New("tls: not a handshake record")
	errTLSIncomplete   = errors.New("tls: handshake continues past the payload")
	errTLSMalformed    = errors.New("tls: malformed handshake")
	errTLSNotHello     = errors.New("tls: not a client hello")
)

// isGREASE reports a GREASE value (RFC 8701): 0x0a0a, 0x1a1a ... 0xfafa,
// which clients sprinkle among ciphers, extensions and versions and which
// fingerprints ignore.
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// tlsClientHello is what parseClientHello reads. Its slices point into the
// payload and are valid only until it is reused or the struct parsed into
// again. The struct also holds the scratch space JA4 needs (some 4 KiB):
// keep one per decoder.
type tlsClientHello struct {
	// Complete reports that the whole ClientHello lay in the payload. When
	// false, the fields hold what came before the cut, and no JA4.
	Complete bool
	// RecordVersion is the record layer's version; Version the hello's
	// legacy_version (0x0303 for TLS 1.2 and 1.3).
	RecordVersion, Version uint16
	// SupportedVersion is the highest non-GREASE version of the
	// supported_versions extension (0x0304 for TLS 1.3), 0 without one.
	SupportedVersion uint16
	// Ciphers is the raw cipher_suites vector: big-endian 16-bit values,
	// GREASE included, in the client's order.
	Ciphers []byte
	// Extensions[:NExtensions] are the extension types in order, GREASE
	// included; past tlsMaxExts they are counted but not kept.
	Extensions  [tlsMaxExts]uint16
	NExtensions int
	// SNI is the first host_name of the server_name extension; HasSNI says
	// whether the extension was present at all.
	SNI    []byte
	HasSNI bool
	// ALPN is the first protocol of the ALPN extension ("h2", "http/1.1").
	ALPN []byte
	// SigAlgs is the raw signature_algorithms list, two bytes each.
	SigAlgs []byte

	ciphers [tlsMaxCiphers]uint16
	exts    [tlsMaxExts]uint16
	text    [tlsMaxCiphers * 5]byte
}

// parseClientHello reads the ClientHello that starts a TCP payload (a
// handshake record whose first message is a ClientHello) into h. It
// returns nil when the whole hello was read, errTLSIncomplete when the
// payload ends inside it (h holds what came before), or another error when
// p is not a ClientHello or is malformed. A hello fragmented over several
// records is read only as far as its first record.
func parseClientHello(p []byte, h *tlsClientHello) error {
	h.reset()
	if len(p) < 5 || p[0] != tlsRecordHandshake || p[1] != 3 {
		return errTLSNotHandshake
	}
	h.RecordVersion = binary.BigEndian.Uint16(p[1:])
	rlen := int(binary.BigEndian.Uint16(p[3:]))
	if rlen > tlsMaxRecord {
		return errTLSMalformed
	}
	frag := p[5:]
	if len(frag) > rlen {
		frag = frag[:rlen]
	}
	if len(frag) < 4 {
		return errTLSIncomplete
	}
	if frag[0] != tlsHSClientHello {
		return errTLSNotHello
	}
	mlen := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
	body := frag[4:]
	complete := len(body) >= mlen
	if complete {
		body = body[:mlen]
	}
	err := h.readBody(body)
	if err == nil && !complete {
		// The body parsed cleanly up to the cut; report the cut.
		err = errTLSIncomplete
	}
	if errors.Is(err, errTLSIncomplete) && complete {
		// The declared message ended before its own fields did.
		err = errTLSMalformed
	}
	h.Complete = err == nil
	return err
}

func (h *tlsClientHello) reset() {
	h.Complete, h.RecordVersion, h.Version, h.SupportedVersion = false, 0, 0, 0
	h.Ciphers, h.NExtensions, h.SNI, h.HasSNI, h.ALPN, h.SigAlgs = nil, 0, nil, false, nil, nil
}

// readBody reads a ClientHello body; errTLSIncomplete means it ended early.
func (h *tlsClientHello) readBody(b []byte) error {
	if len(b) < 2+32+1 {
		return errTLSIncomplete
	}
	h.Version = binary.BigEndian.Uint16(b)
	b = b[34:]
	sid := int(b[0])
	if sid > 32 {
		return errTLSMalformed
	}
	if len(b) < 1+sid+2 {
		return errTLSIncomplete
	}
	b = b[1+sid:]
	n := int(binary.BigEndian.Uint16(b))
	if n%2 != 0 {
		return errTLSMalformed
	}
	if len(b) < 2+n {
		return errTLSIncomplete
	}
	h.Ciphers = b[2 : 2+n : 2+n]
	b = b[2+n:]
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return errTLSIncomplete
	}
	b = b[1+int(b[0]):] // compression methods
	if len(b) == 0 {
		return nil // no extensions: a bare TLS 1.0-era hello
	}
	if len(b) < 2 {
		return errTLSIncomplete
	}
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	short := len(b) < n
	if !short {
		b = b[:n]
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return errTLSIncomplete
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b)-4 < n {
			return errTLSIncomplete
		}
		h.readExtension(typ, b[4:4+n:4+n])
		b = b[4+n:]
	}
	if short {
		return errTLSIncomplete
	}
	return nil
}

func (h *tlsClientHello) readExtension(typ uint16, d []byte) {
	if h.NExtensions < tlsMaxExts {
		h.Extensions[h.NExtensions] = typ
	}
	h.NExtensions++
	switch typ {
	case tlsExtServerName:
		h.HasSNI = true
		if len(d) < 2 {
			return
		}
		for l := d[2:]; len(l) >= 3; {
			n := int(binary.BigEndian.Uint16(l[1:]))
			if len(l)-3 < n {
				return
			}
			if l[0] == 0 { // host_name
				h.SNI = l[3 : 3+n : 3+n]
				return
			}
			l = l[3+n:]
		}
	case tlsExtALPN:
		if len(d) >= 3 && len(d)-3 >= int(d[2]) {
			h.ALPN = d[3 : 3+int(d[2]) : 3+int(d[2])]
		}
	case tlsExtSupportedVers:
		if len(d) < 1 {
			return
		}
		l := d[1:]
		if len(l) > int(d[0]) {
			l = l[:d[0]]
		}
		for ; len(l) >= 2; l = l[2:] {
			if v := binary.BigEndian.Uint16(l); !isGREASE(v) && v > h.SupportedVersion {
				h.SupportedVersion = v
			}
		}
	case tlsExtSigAlgs:
		if len(d) >= 2 {
			n := min(int(binary.BigEndian.Uint16(d)), len(d)-2) &^ 1
			h.SigAlgs = d[2 : 2+n : 2+n]
		}
	}
}

// JA4 writes the JA4 fingerprint of a complete ClientHello (the FoxIO
// JA4 specification, technical_details/JA4.md) into dst, as TLS over TCP:
//
//	t13d1516h2_8daaf6152771_e5627efa2ab1
//
// version (supported_versions, else the hello's), SNI present ('d') or
// not ('i'), cipher and extension counts, first and last character of the
// first ALPN value, then the first 12 hex digits of the SHA-256 of the
// sorted cipher list and of the sorted extension list (less SNI and ALPN)
// followed by the signature algorithms in their order. GREASE is ignored
// throughout. It reports false, leaving dst alone, for an incomplete hello
// or one with more values than the fixed buffers hold.
func (h *tlsClientHello) JA4(dst *[36]byte) bool {
	if !h.Complete || h.NExtensions > tlsMaxExts || len(h.Ciphers)/2 > tlsMaxCiphers || len(h.SigAlgs)/2 > tlsMaxSigAlgs {
		return false
	}
	ciphers := h.ciphers[:0]
	for c := h.Ciphers; len(c) >= 2; c = c[2:] {
		if v := binary.BigEndian.Uint16(c); !isGREASE(v) {
			ciphers = append(ciphers, v)
		}
	}
	exts, nExt := h.exts[:0], 0
	for _, e := range h.Extensions[:h.NExtensions] {
		if isGREASE(e) {
			continue
		}
		nExt++
		if e != tlsExtServerName && e != tlsExtALPN {
			exts = append(exts, e)
		}
	}
	slices.Sort(ciphers)
	slices.Sort(exts)

	var out [36]byte
	out[0] = 't'
	v := h.SupportedVersion
	if v == 0 {
		v = h.Version
	}
	copy(out[1:3], ja4Version(v))
	out[3] = 'i'
	if h.HasSNI {
		out[3] = 'd'
	}
	putTwoDigits(out[4:6], min(len(ciphers), 99))
	putTwoDigits(out[6:8], min(nExt, 99))
	out[8], out[9] = ja4ALPN(h.ALPN)
	out[10], out[23] = '_', '_'

	// The hashed strings are built in h.text, which fits the longest
	// cipher list (5 bytes a value); the extension string is at most
	// (tlsMaxExts+tlsMaxSigAlgs)*5 bytes, which is smaller.
	t := h.text[:0]
	for i, c := range ciphers {
		if i > 0 {
			t = append(t, ',')
		}
		t = appendHex16(t, c)
	}
	ja4Hash(out[11:23], t)
	t = h.text[:0]
	for i, e := range exts {
		if i > 0 {
			t = append(t, ',')
		}
		t = appendHex16(t, e)
	}
	first := true
	for s := h.SigAlgs; len(s) >= 2; s = s[2:] {
		a := binary.BigEndian.Uint16(s)
		if isGREASE(a) {
			continue
		}
		if first {
			t, first = append(t, '_'), false
		} else {
			t = append(t, ',')
		}
		t = appendHex16(t, a)
	}
	if len(exts) == 0 {
		t = t[:0]
	}
	ja4Hash(out[24:36], t)
	*dst = out
	return true
}

// ja4Hash writes the first 12 hex digits of SHA-256(s) into dst, or twelve
// zeros when s is empty (the spec's mark for an empty list).
func ja4Hash(dst []byte, s []byte) {
	if len(s) == 0 {
		copy(dst, "000000000000")
		return
	}
	sum := sha256.Sum256(s)
	for i := range 6 {
		dst[2*i], dst[2*i+1] = hexLower(sum[i]>>4), hexLower(sum[i]&0x0f)
	}
}

func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// ja4ALPN gives the first and last characters of the first ALPN value, or
// the first and last hex digits of its bytes when either end is not an
// ASCII letter or digit, or "00" when there is none.
func ja4ALPN(a []byte) (byte, byte) {
	if len(a) == 0 {
		return '0', '0'
	}
	f, l := a[0], a[len(a)-1]
	if isAlnum(f) && isAlnum(l) {
		return f, l
	}
	return hexLower(f >> 4), hexLower(l & 0x0f)
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func putTwoDigits(dst []byte, n int) { dst[0], dst[1] = byte('0'+n/10), byte('0'+n%10) }

func hexLower(n byte) byte { return "0123456789abcdef"[n&0x0f] }

func appendHex16(dst []byte, v uint16) []byte {
	return append(dst, hexLower(byte(v>>12)), hexLower(byte(v>>8)), hexLower(byte(v>>4)), hexLower(byte(v)))
}

// walkTLSHandshakes calls fn for each handshake message in the handshake
// records at the start of p, stopping at the first record of another type
// (after ChangeCipherSpec the handshake is encrypted). body points into p.
// A message cut off by the end of its record or of p is passed with
// complete false and what is present, and ends the walk with
// errTLSIncomplete; a message fragmented over records is therefore seen
// only in part. fn returns false to stop.
func walkTLSHandshakes(p []byte, fn func(typ uint8, body []byte, complete bool) bool) error {
	if len(p) < 5 || p[0] != tlsRecordHandshake || p[1] != 3 {
		return errTLSNotHandshake
	}
	for len(p) > 0 {
		if len(p) < 5 {
			return errTLSIncomplete
		}
		if p[0] != tlsRecordHandshake {
			return nil
		}
		rlen := int(binary.BigEndian.Uint16(p[3:]))
		if p[1] != 3 || rlen > tlsMaxRecord {
			return errTLSMalformed
		}
		frag, whole := p[5:], len(p)-5 >= rlen
		if whole {
			frag = frag[:rlen]
		}
		for len(frag) > 0 {
			if len(frag) < 4 {
				return errTLSIncomplete
			}
			mlen := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
			if len(frag)-4 < mlen {
				fn(frag[0], frag[4:len(frag):len(frag)], false)
				return errTLSIncomplete
			}
			if !fn(frag[0], frag[4:4+mlen:4+mlen], true) {
				return nil
			}
			frag = frag[4+mlen:]
		}
		if !whole {
			return errTLSIncomplete
		}
		p = p[5+rlen:]
	}
	return nil
}

// tlsLeafCertificate returns the DER of the first (leaf) certificate of a
// TLS 1.2-or-earlier Certificate message in p, when that certificate lies
// entirely within one handshake record of p. TLS 1.3 encrypts the
// certificate, so it is never found there.
func tlsLeafCertificate(p []byte) (der []byte, ok bool) {
	walkTLSHandshakes(p, func(typ uint8, body []byte, _ bool) bool {
		if typ != tlsHSCertificate {
			return true
		}
		// certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>
		if len(body) < 6 {
			return false
		}
		n := int(body[3])<<16 | int(body[4])<<8 | int(body[5])
		if n == 0 || len(body)-6 < n || body[6] != 0x30 {
			return false
		}
		der, ok = body[6:6+n:6+n], true
		return false
	})
	return der, ok
}

// tlsServerHello is what parseServerHello reads; ALPN points into the
// message body.
type tlsServerHello struct {
	// Version is the legacy_version; SelectedVersion the supported_versions
	// extension's choice (0x0304 for TLS 1.3), 0 without one.
	Version, SelectedVersion uint16
	Cipher                   uint16
	// ALPN is the protocol the server selected.
	ALPN []byte
}

// parseServerHello reads the body of a complete ServerHello handshake
// message (as walkTLSHandshakes passes it) into s.
func parseServerHello(b []byte, s *tlsServerHello) error {
	*s = tlsServerHello{}
	if len(b) < 2+32+1 {
		return errTLSMalformed
	}
	s.Version = binary.BigEndian.Uint16(b)
	b = b[34:]
	sid := int(b[0])
	if len(b) < 1+sid+3 {
		return errTLSMalformed
	}
	b = b[1+sid:]
	s.Cipher = binary.BigEndian.Uint16(b)
	b = b[3:] // cipher, compression method
	if len(b) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return errTLSMalformed
	}
	for b = b[2 : 2+n]; len(b) >= 4; {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b)-4 < n {
			return errTLSMalformed
		}
		d := b[4 : 4+n : 4+n]
		switch typ {
		case tlsExtSupportedVers:
			if len(d) == 2 {
				s.SelectedVersion = binary.BigEndian.Uint16(d)
			}
		case tlsExtALPN:
			if len(d) >= 3 && len(d)-3 >= int(d[2]) {
				s.ALPN = d[3 : 3+int(d[2]) : 3+int(d[2])]
			}
		}
		b = b[4+n:]
	}
	return nil
}

// certNames parses a certificate and returns its subject common name and
// DNS subject alternative names. Unlike the rest of this file it
// allocates: call it once per new certificate, not per packet.
func certNames(der []byte) (subjectCN string, dnsNames []string, err error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", nil, err
	}
	return c.Subject.CommonName, c.DNSNames, nil
}
