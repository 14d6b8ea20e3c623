package passive

// DNS wire format (RFC 1035) as spoken by unicast DNS, multicast DNS
// (RFC 6762), LLMNR (RFC 4795) and the NetBIOS Name Service (RFC 1002),
// which all share the header, the record layout and name compression.
//
// Everything here reads a UDP payload in place and allocates nothing: names
// are decompressed into fixed buffers of a caller-owned dnsScratch, other
// fields point into the message. Every loop is bounded by the message
// length and the constants below, so a hostile message costs an error, not
// a panic or a spin.

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

const (
	// dnsMaxRecords bounds the records (questions included) one message
	// may declare; a header that claims more is refused outright.
	dnsMaxRecords = 1024
	// dnsMaxHops bounds the compression pointers followed in one name.
	dnsMaxHops = 16
	// dnsMaxWire is the longest name on the wire, length octets and the
	// terminating zero included (RFC 1035 §3.1).
	dnsMaxWire = 255
)

// Record types the sensor cares about. NetBIOS reuses the numbering: its
// NB records are type 32 and its node status (NBSTAT) answers type 33, the
// number DNS gives SRV; the UDP port tells which protocol spoke.
const (
	dnsTypeA      uint16 = 1
	dnsTypeCNAME  uint16 = 5
	dnsTypePTR    uint16 = 12
	dnsTypeHINFO  uint16 = 13
	dnsTypeTXT    uint16 = 16
	dnsTypeAAAA   uint16 = 28
	dnsTypeSRV    uint16 = 33
	dnsTypeNB     uint16 = 32
	dnsTypeNBSTAT uint16 = 33
)

var (
	errDNSShort   = errors.New("dns: message truncated")
	errDNSName    = errors.New("dns: malformed name")
	errDNSLoop    = errors.New("dns: too many compression pointers")
	errDNSTooMany = errors.New("dns: too many records")
)

// dnsSection says where in the message a record sits.
type dnsSection uint8

const (
	dnsQuestion dnsSection = iota
	dnsAnswer
	dnsAuthority
	dnsAdditional
)

// dnsHeader is the fixed 12-byte message header.
type dnsHeader struct {
	ID    uint16
	Flags uint16
	// Counts holds QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT, indexed by
	// dnsSection.
	Counts [4]uint16
}

// response reports the QR bit: the message answers rather than asks.
func (h dnsHeader) response() bool { return h.Flags&0x8000 != 0 }

// opcode is 0 for a query; NetBIOS uses 5 for registration, 6 for
// release, 8 for refresh.
func (h dnsHeader) opcode() uint8 { return uint8(h.Flags>>11) & 0x0f }

// rcode is the response code; 0 means no error.
func (h dnsHeader) rcode() uint8 { return uint8(h.Flags & 0x0f) }

// dnsRR is one record of a message, as walkDNS hands it to its callback.
// Its slices are valid only during that callback and only while the
// message bytes are not reused: copy what you keep.
type dnsRR struct {
	Section dnsSection
	// Name is the owner name, decompressed, ASCII letters lower-cased,
	// labels joined by '.', without a trailing dot; the root is empty.
	// Label bytes are kept as they are (a DNS-SD instance name may hold
	// spaces, dots or UTF-8). It lives in the scratch buffer and is
	// overwritten by the next record.
	Name []byte
	Type uint16
	// Class with the top bit cleared: in mDNS that bit is the cache-flush
	// bit of a record and the unicast-response bit of a question.
	Class      uint16
	CacheFlush bool
	// TTL in seconds; zero for a question.
	TTL uint32
	// Data is the RDATA, pointing into the message; nil for a question.
	Data []byte

	msg     []byte
	dataOff int // offset of Data in msg, for names compressed inside RDATA
	s       *dnsScratch
}

// dnsScratch is the caller-owned working memory of walkDNS (about 600
// bytes). Keep one per decoder and reuse it: walkDNS hands the callback a
// record inside it, so it lives on the heap, and a fresh one per message
// would be an allocation per message. It is not safe for concurrent use.
type dnsScratch struct {
	// Header is the header of the message being walked, set before the
	// first callback.
	Header dnsHeader

	rr     dnsRR
	name   [dnsMaxWire]byte
	rdname [dnsMaxWire]byte
}

// walkDNS calls fn for each record of msg in order: questions, answers,
// authority, additional. fn returns false to stop early. It returns nil
// when every declared record was read (or fn stopped), else an error
// saying why the walk ended; records before the fault have been seen.
// fn must not keep rr or its slices.
func walkDNS(msg []byte, s *dnsScratch, fn func(rr *dnsRR) bool) error {
	if len(msg) < 12 {
		return errDNSShort
	}
	h := dnsHeader{ID: binary.BigEndian.Uint16(msg), Flags: binary.BigEndian.Uint16(msg[2:])}
	total := 0
	for i := range h.Counts {
		h.Counts[i] = binary.BigEndian.Uint16(msg[4+2*i:])
		total += int(h.Counts[i])
	}
	s.Header = h
	if total > dnsMaxRecords {
		return errDNSTooMany
	}
	rr := &s.rr
	off := 12
	for sec := dnsQuestion; sec <= dnsAdditional; sec++ {
		for range h.Counts[sec] {
			name, next, err := readDNSName(msg, off, &s.name)
			if err != nil {
				return err
			}
			off = next
			*rr = dnsRR{Section: sec, Name: name, msg: msg, s: s}
			if len(msg)-off < 4 {
				return errDNSShort
			}
			rr.Type = binary.BigEndian.Uint16(msg[off:])
			class := binary.BigEndian.Uint16(msg[off+2:])
			rr.Class, rr.CacheFlush = class&0x7fff, class&0x8000 != 0
			off += 4
			if sec != dnsQuestion {
				if len(msg)-off < 6 {
					return errDNSShort
				}
				rr.TTL = binary.BigEndian.Uint32(msg[off:])
				n := int(binary.BigEndian.Uint16(msg[off+4:]))
				off += 6
				if len(msg)-off < n {
					return errDNSShort
				}
				rr.Data, rr.dataOff = msg[off:off+n:off+n], off
				off += n
			}
			if !fn(rr) {
				return nil
			}
		}
	}
	return nil
}

// readDNSName decompresses the name at msg[off:] into buf and returns it
// with the offset just past the name where it started (past the first
// compression pointer, if any).
func readDNSName(msg []byte, off int, buf *[dnsMaxWire]byte) (name []byte, end int, err error) {
	n, wire, hops := 0, 0, 0
	end = -1
	for {
		if off >= len(msg) {
			return nil, 0, errDNSShort
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return buf[:n], end, nil
			}
			if len(msg)-off-1 < c {
				return nil, 0, errDNSShort
			}
			// The text (labels and dots) is one byte shorter than the wire
			// form without its final zero, so it always fits buf.
			wire += 1 + c
			if wire >= dnsMaxWire {
				return nil, 0, errDNSName
			}
			if n > 0 {
				buf[n] = '.'
				n++
			}
			for _, b := range msg[off+1 : off+1+c] {
				if 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				buf[n] = b
				n++
			}
			off += 1 + c
		case 0xc0:
			if len(msg)-off < 2 {
				return nil, 0, errDNSShort
			}
			if end < 0 {
				end = off + 2
			}
			if hops++; hops > dnsMaxHops {
				return nil, 0, errDNSLoop
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
		default: // 0x40 and 0x80: extended and reserved label types
			return nil, 0, errDNSName
		}
	}
}

// A returns the address of an IN A record.
func (rr *dnsRR) A() (netip.Addr, bool) {
	if rr.Type != dnsTypeA || len(rr.Data) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(rr.Data)), true
}

// AAAA returns the address of an IN AAAA record.
func (rr *dnsRR) AAAA() (netip.Addr, bool) {
	if rr.Type != dnsTypeAAAA || len(rr.Data) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(rr.Data)), true
}

// DataName decompresses a name that starts off bytes into the RDATA (0 for
// PTR and CNAME, 6 for SRV) and returns it, in the form of Name, with the
// RDATA offset just past it. The name lives in a second scratch buffer,
// overwritten by the next DataName call.
func (rr *dnsRR) DataName(off int) (name []byte, next int, err error) {
	if off < 0 || off >= len(rr.Data) {
		return nil, 0, errDNSShort
	}
	name, end, err := readDNSName(rr.msg, rr.dataOff+off, &rr.s.rdname)
	if err != nil {
		return nil, 0, err
	}
	if end > rr.dataOff+len(rr.Data) {
		return nil, 0, errDNSShort // the name runs out of its record
	}
	return name, end - rr.dataOff, nil
}

// SRV returns an SRV record's port and target host (a DataName result).
func (rr *dnsRR) SRV() (port uint16, target []byte, ok bool) {
	if rr.Type != dnsTypeSRV || len(rr.Data) < 7 {
		return 0, nil, false
	}
	target, _, err := rr.DataName(6)
	if err != nil {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(rr.Data[4:]), target, true
}

// HINFO returns the CPU and OS strings of a host information record,
// pointing into the message.
func (rr *dnsRR) HINFO() (cpu, os []byte, ok bool) {
	if rr.Type != dnsTypeHINFO {
		return nil, nil, false
	}
	cpu, rest, ok := nextTXT(rr.Data)
	if !ok {
		return nil, nil, false
	}
	os, _, ok = nextTXT(rest)
	return cpu, os, ok
}

// nextTXT splits the first character-string (a length octet and that many
// bytes) off d, as found in TXT and HINFO RDATA. Walk a TXT record with
//
//	for d := rr.Data; len(d) > 0; {
//		s, rest, ok := nextTXT(d)
//		if !ok { break }
//		d = rest
//		...
//	}
func nextTXT(d []byte) (s, rest []byte, ok bool) {
	if len(d) == 0 || len(d)-1 < int(d[0]) {
		return nil, nil, false
	}
	n := int(d[0])
	return d[1 : 1+n : 1+n], d[1+n:], true
}

// splitTXT splits a DNS-SD TXT string into key and value at the first '='
// (RFC 6763 §6.3); hasValue is false for a bare boolean key.
func splitTXT(s []byte) (key, value []byte, hasValue bool) {
	for i, b := range s {
		if b == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, nil, false
}

// decodeNetBIOSName undoes the first-level encoding of RFC 1001 §14.1:
// 32 characters 'A'..'P' (either case, as walkDNS lower-cases them) carry
// 16 bytes as nibbles. encoded is the owner name of an NBNS record; what
// follows the first 32 bytes must be nothing or a '.' and the scope.
// name[:n] is the NetBIOS name with its space (or NUL) padding trimmed;
// suffix is its 16th byte, the service type (0x00 workstation, 0x20 file
// server, 0x1c domain controllers, ...).
func decodeNetBIOSName(encoded []byte) (name [16]byte, n int, suffix byte, ok bool) {
	if len(encoded) < 32 || len(encoded) > 32 && encoded[32] != '.' {
		return name, 0, 0, false
	}
	var raw [16]byte
	for i := range raw {
		hi, lo := nbNibble(encoded[2*i]), nbNibble(encoded[2*i+1])
		if hi > 15 || lo > 15 {
			return name, 0, 0, false
		}
		raw[i] = hi<<4 | lo
	}
	n = 15
	for n > 0 && (raw[n-1] == ' ' || raw[n-1] == 0) {
		n--
	}
	copy(name[:], raw[:n])
	return name, n, raw[15], true
}

func nbNibble(c byte) byte {
	switch {
	case 'A' <= c && c <= 'P':
		return c - 'A'
	case 'a' <= c && c <= 'p':
		return c - 'a'
	}
	return 0xff
}

// nbAddr returns the i-th entry of an NB record's RDATA: the NB_FLAGS
// (0x8000 group name, 0x6000 owner node type) and the IPv4 address.
func nbAddr(rdata []byte, i int) (flags uint16, ip netip.Addr, ok bool) {
	if i < 0 || i >= len(rdata)/6 {
		return 0, netip.Addr{}, false
	}
	e := rdata[6*i:]
	return binary.BigEndian.Uint16(e), netip.AddrFrom4([4]byte(e[2:6])), true
}

// walkNBStat reads the RDATA of a NetBIOS node status answer (RFC 1002
// §4.2.18): fn gets each name the node holds, space padding trimmed and
// pointing into rdata, with its suffix and NAME_FLAGS (0x8000 group).
// It returns the unit ID (usually the MAC address) when the statistics
// block holds one; names are reported even when it does not.
func walkNBStat(rdata []byte, fn func(name []byte, suffix byte, flags uint16) bool) (unitID [6]byte, ok bool) {
	if len(rdata) < 1 {
		return unitID, false
	}
	count := int(rdata[0])
	d := rdata[1:]
	for i := 0; i < count; i++ {
		if len(d) < 18 {
			return unitID, false
		}
		n := 15
		for n > 0 && (d[n-1] == ' ' || d[n-1] == 0) {
			n--
		}
		if !fn(d[:n:n], d[15], binary.BigEndian.Uint16(d[16:])) {
			return unitID, false
		}
		d = d[18:]
	}
	if len(d) < 6 {
		return unitID, false
	}
	return [6]byte(d), true
}
