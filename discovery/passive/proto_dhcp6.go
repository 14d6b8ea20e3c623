package passive

// DHCPv6 (RFC 8415) client messages and relay wrappers, read in place from
// a UDP payload (ports 546/547) without allocating.

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// DHCPv6 message types (RFC 8415 §7.3).
const (
	dhcp6Solicit   uint8 = 1
	dhcp6Advertise uint8 = 2
	dhcp6Request   uint8 = 3
	dhcp6Confirm   uint8 = 4
	dhcp6Renew     uint8 = 5
	dhcp6Rebind    uint8 = 6
	dhcp6Reply     uint8 = 7
	dhcp6Release   uint8 = 8
	dhcp6Decline   uint8 = 9
	dhcp6InfoReq   uint8 = 11
	dhcp6RelayForw uint8 = 12
	dhcp6RelayRepl uint8 = 13
)

// DHCPv6 option codes read here.
const (
	dhcp6OptClientID    = 1
	dhcp6OptServerID    = 2
	dhcp6OptIANA        = 3
	dhcp6OptIATA        = 4
	dhcp6OptIAAddr      = 5
	dhcp6OptORO         = 6
	dhcp6OptRelayMsg    = 9
	dhcp6OptVendorClass = 16
	dhcp6OptClientFQDN  = 39
)

const (
	// dhcp6MaxRelay bounds the relay wrappers unwrapped (RFC 8415 §7.6
	// sets HOP_COUNT_LIMIT to 8).
	dhcp6MaxRelay = 8
	// dhcp6MaxAddrs is how many IA addresses a message keeps.
	dhcp6MaxAddrs = 4
)

var (
	errDHCP6Short = errors.New("dhcpv6: message truncated")
	errDHCP6Relay = errors.New("dhcpv6: relay nesting too deep")
	errDHCP6Type  = errors.New("dhcpv6: unknown message type")
	errDHCP6Inner = errors.New("dhcpv6: relay message without a relayed message")
)

// dhcp6Msg is what parseDHCPv6 reads from one message. Byte-slice fields
// point into the payload and are valid only until the payload is reused
// or the struct is parsed into again.
type dhcp6Msg struct {
	// Type and XID are those of the innermost message, after relay
	// wrappers have been taken off.
	Type uint8
	XID  uint32 // 24 bits
	// Relays counts the Relay-forward/-reply wrappers taken off;
	// RelayLink and RelayPeer are the link-address and peer-address of
	// the innermost one (the relay nearest the client): the peer is the
	// client's own address.
	Relays    int
	RelayLink netip.Addr
	RelayPeer netip.Addr

	// ClientDUID is the Client Identifier option's DUID (option 1).
	ClientDUID []byte
	// ClientMAC is the link-layer address inside a DUID-LLT or DUID-LL of
	// hardware type 1 (Ethernet); HasClientMAC says whether there was one.
	ClientMAC    [6]byte
	HasClientMAC bool
	// ServerDUID is the Server Identifier option's DUID (option 2).
	ServerDUID []byte
	// Addrs[:NAddrs] are the IA Address sub-options (option 5) of IA_NA
	// and IA_TA options, in order, at most dhcp6MaxAddrs.
	Addrs  [dhcp6MaxAddrs]netip.Addr
	NAddrs int
	// FQDNFlags is the Client FQDN option's (option 39) flags octet
	// (S 0x01, O 0x02, N 0x04), HasFQDN whether the option was there; the
	// FQDN method returns its name.
	FQDNFlags uint8
	HasFQDN   bool
	// VendorEnterprise and VendorClass are the Vendor Class option's
	// (option 16) enterprise number and first vendor-class-data string.
	VendorEnterprise uint32
	VendorClass      []byte
	HasVendorClass   bool
	// ORO is the Option Request option (6): big-endian 16-bit option
	// codes, two bytes each; appendORO renders it.
	ORO []byte

	// The name lives in the struct, not behind a slice of it, so that a
	// dhcp6Msg can stay on its caller's stack.
	fqdn    [dnsMaxWire]byte
	fqdnLen int
}

// FQDN returns the Client FQDN option's name as dotted text, lower-cased,
// without a trailing dot; empty without the option. It points into m.
func (m *dhcp6Msg) FQDN() []byte { return m.fqdn[:m.fqdnLen] }

// parseDHCPv6 reads a DHCPv6 message into m, first taking off up to
// dhcp6MaxRelay relay wrappers. On error, m holds what was read before the
// fault (a truncated option ends the walk with errDHCP6Short).
func parseDHCPv6(p []byte, m *dhcp6Msg) error {
	*m = dhcp6Msg{}
	for {
		if len(p) < 1 {
			return errDHCP6Short
		}
		t := p[0]
		if t != dhcp6RelayForw && t != dhcp6RelayRepl {
			break
		}
		if m.Relays == dhcp6MaxRelay {
			return errDHCP6Relay
		}
		if len(p) < 34 {
			return errDHCP6Short
		}
		m.Relays++
		m.RelayLink = netip.AddrFrom16([16]byte(p[2:18]))
		m.RelayPeer = netip.AddrFrom16([16]byte(p[18:34]))
		inner, err := dhcp6Option(p[34:], dhcp6OptRelayMsg)
		if err != nil {
			return err
		}
		p = inner
	}
	if len(p) < 4 {
		return errDHCP6Short
	}
	m.Type = p[0]
	if m.Type == 0 || m.Type > 37 {
		return errDHCP6Type
	}
	m.XID = uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
	opts := p[4:]
	for len(opts) > 0 {
		code, body, rest, ok := nextDHCP6Option(opts)
		if !ok {
			return errDHCP6Short
		}
		opts = rest
		switch code {
		case dhcp6OptClientID:
			m.ClientDUID = body
			m.ClientMAC, m.HasClientMAC = duidMAC(body)
		case dhcp6OptServerID:
			m.ServerDUID = body
		case dhcp6OptIANA, dhcp6OptIATA:
			m.readIA(code, body)
		case dhcp6OptORO:
			m.ORO = body[:len(body)&^1]
		case dhcp6OptClientFQDN:
			if len(body) >= 1 {
				m.FQDNFlags, m.HasFQDN = body[0], true
				m.fqdnLen = len(decodeWireName(body[1:], &m.fqdn))
			}
		case dhcp6OptVendorClass:
			if len(body) >= 4 {
				m.VendorEnterprise, m.HasVendorClass = binary.BigEndian.Uint32(body), true
				if s, _, ok := nextDHCP6String(body[4:]); ok {
					m.VendorClass = s
				}
			}
		}
	}
	return nil
}

// readIA collects the IA Address sub-options of an IA_NA (IAID, T1, T2
// before them) or IA_TA (IAID only).
func (m *dhcp6Msg) readIA(code uint16, body []byte) {
	skip := 12
	if code == dhcp6OptIATA {
		skip = 4
	}
	if len(body) < skip {
		return
	}
	for sub := body[skip:]; len(sub) > 0 && m.NAddrs < dhcp6MaxAddrs; {
		c, b, rest, ok := nextDHCP6Option(sub)
		if !ok {
			return
		}
		sub = rest
		if c == dhcp6OptIAAddr && len(b) >= 16 {
			m.Addrs[m.NAddrs] = netip.AddrFrom16([16]byte(b[:16]))
			m.NAddrs++
		}
	}
}

// nextDHCP6Option splits the first option (code, length, body) off opts.
func nextDHCP6Option(opts []byte) (code uint16, body, rest []byte, ok bool) {
	if len(opts) < 4 {
		return 0, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(opts[2:]))
	if len(opts)-4 < n {
		return 0, nil, nil, false
	}
	return binary.BigEndian.Uint16(opts), opts[4 : 4+n : 4+n], opts[4+n:], true
}

// dhcp6Option finds the first option of the given code.
func dhcp6Option(opts []byte, want uint16) ([]byte, error) {
	for len(opts) > 0 {
		code, body, rest, ok := nextDHCP6Option(opts)
		if !ok {
			return nil, errDHCP6Short
		}
		if code == want {
			return body, nil
		}
		opts = rest
	}
	return nil, errDHCP6Inner
}

// nextDHCP6String splits a 16-bit-length-prefixed string off b, as in the
// Vendor Class and User Class options.
func nextDHCP6String(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return b[2 : 2+n : 2+n], b[2+n:], true
}

// duidMAC returns the Ethernet address inside a DUID-LLT (type 1: hardware
// type, time, address) or DUID-LL (type 3: hardware type, address).
func duidMAC(duid []byte) (mac [6]byte, ok bool) {
	if len(duid) < 4 || binary.BigEndian.Uint16(duid[2:]) != 1 {
		return mac, false
	}
	var addr []byte
	switch binary.BigEndian.Uint16(duid) {
	case 1:
		addr = duid[min(8, len(duid)):]
	case 3:
		addr = duid[4:]
	}
	if len(addr) != 6 {
		return mac, false
	}
	return [6]byte(addr), true
}

// decodeWireName renders an uncompressed wire-format name (RFC 1035 §3.1;
// RFC 4704 allows it to end without the root label, a partial name) into
// buf as dotted, lower-cased text. It stops at the root label, at a label
// that runs past src, or at a compression pointer or reserved label type,
// which this format does not allow, and returns what it has.
func decodeWireName(src []byte, buf *[dnsMaxWire]byte) []byte {
	n, wire := 0, 0
	for len(src) > 0 {
		c := int(src[0])
		if c == 0 || c > 63 || len(src)-1 < c {
			break
		}
		if wire += 1 + c; wire >= dnsMaxWire {
			break
		}
		if n > 0 {
			buf[n] = '.'
			n++
		}
		for _, b := range src[1 : 1+c] {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			buf[n] = b
			n++
		}
		src = src[1+c:]
	}
	return buf[:n]
}

// appendORO appends the Option Request list as decimal codes joined by
// commas ("23,24,39"), the form DHCP fingerprints take. It allocates only
// if dst lacks room.
func appendORO(dst, oro []byte) []byte {
	for i := 0; i+1 < len(oro); i += 2 {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendDecimal(dst, uint(binary.BigEndian.Uint16(oro[i:])))
	}
	return dst
}

func appendDecimal(dst []byte, v uint) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
