package passive

// ICMPv6 Neighbor Discovery (RFC 4861): router and neighbor solicitations
// and advertisements, read in place from the ICMPv6 message without
// allocating.

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ICMPv6 Neighbor Discovery message types.
const (
	ndRouterSolicit   uint8 = 133
	ndRouterAdvert    uint8 = 134
	ndNeighborSolicit uint8 = 135
	ndNeighborAdvert  uint8 = 136
	ndRedirect        uint8 = 137
)

// ND option types read here.
const (
	ndOptSourceLL   = 1
	ndOptTargetLL   = 2
	ndOptPrefixInfo = 3
	ndOptMTU        = 5
)

// Router Advertisement flags (RFC 4861 §4.2, RFC 4191 §2.2, RFC 5175).
const (
	ndRAManaged   uint8 = 0x80 // M: addresses from DHCPv6
	ndRAOther     uint8 = 0x40 // O: other configuration from DHCPv6
	ndRAHomeAgent uint8 = 0x20 // H: Mobile IPv6 home agent
	ndRAPrefMask  uint8 = 0x18 // Prf: default router preference, 2 bits
	ndRAProxy     uint8 = 0x04 // P: ND proxy
)

const (
	ndMaxPrefixes  = 4 // Prefix Information options kept per message
	ndHeaderMinLen = 8 // type, code, checksum and four bytes, as in an RS
)

var (
	errNDShort  = errors.New("nd: message truncated")
	errNDType   = errors.New("nd: not a neighbor discovery message")
	errNDOption = errors.New("nd: option of length zero")
)

// ndPrefix is one Prefix Information option.
type ndPrefix struct {
	Prefix netip.Prefix
	// OnLink is the L flag, Autonomous the A flag (SLAAC may use it).
	OnLink, Autonomous bool
	// Valid and Preferred are lifetimes in seconds (0xffffffff: forever).
	Valid, Preferred uint32
}

// ndMsg is what parseND reads from one Neighbor Discovery message.
// SourceLL and TargetLL point into the message and are valid only until
// it is reused.
type ndMsg struct {
	Type uint8
	Code uint8
	// Target is the target address of a neighbor solicitation or
	// advertisement (or a redirect); the zero Addr otherwise.
	Target netip.Addr
	// Router, Solicited and Override are the R, S and O flags of a
	// neighbor advertisement.
	Router, Solicited, Override bool
	// HopLimit, RAFlags (ndRA* bits), RouterLifetime (seconds; 0 means
	// "not a default router"), Reachable and Retrans (milliseconds) are
	// a router advertisement's fixed fields.
	HopLimit       uint8
	RAFlags        uint8
	RouterLifetime uint16
	Reachable      uint32
	Retrans        uint32
	// SourceLL and TargetLL are the bodies of the Source and Target
	// Link-layer Address options: the six-byte address on Ethernet (an
	// option of length 1); on other links the address and its padding.
	// nil when absent.
	SourceLL []byte
	TargetLL []byte
	// MTU is the MTU option's value, 0 when absent.
	MTU uint32
	// Prefixes[:NPrefixes] are the Prefix Information options, in order,
	// at most ndMaxPrefixes; malformed ones (length over 128) are skipped.
	Prefixes  [ndMaxPrefixes]ndPrefix
	NPrefixes int
}

// parseND reads an ICMPv6 Neighbor Discovery message, starting at its type
// byte, into m. It refuses other ICMPv6 types. On an option error, m holds
// what was read before it. The checksum is not checked.
func parseND(p []byte, m *ndMsg) error {
	*m = ndMsg{}
	if len(p) < ndHeaderMinLen {
		return errNDShort
	}
	m.Type, m.Code = p[0], p[1]
	var opts int // offset of the options
	switch m.Type {
	case ndRouterSolicit:
		opts = 8
	case ndRouterAdvert:
		if len(p) < 16 {
			return errNDShort
		}
		m.HopLimit, m.RAFlags = p[4], p[5]
		m.RouterLifetime = binary.BigEndian.Uint16(p[6:])
		m.Reachable = binary.BigEndian.Uint32(p[8:])
		m.Retrans = binary.BigEndian.Uint32(p[12:])
		opts = 16
	case ndNeighborSolicit, ndNeighborAdvert, ndRedirect:
		opts = 24
		if m.Type == ndRedirect {
			opts = 40
		}
		if len(p) < opts {
			return errNDShort
		}
		m.Target = netip.AddrFrom16([16]byte(p[8:24]))
		if m.Type == ndNeighborAdvert {
			m.Router, m.Solicited, m.Override = p[4]&0x80 != 0, p[4]&0x40 != 0, p[4]&0x20 != 0
		}
	default:
		return errNDType
	}
	// Each option is a whole number of 8-byte units, at least one, so the
	// walk ends within len(p)/8 steps; length zero would never advance.
	for o := p[opts:]; len(o) > 0; {
		if len(o) < 2 {
			return errNDShort
		}
		n := int(o[1]) * 8
		if n == 0 {
			return errNDOption
		}
		if len(o) < n {
			return errNDShort
		}
		body := o[2:n:n]
		switch o[0] {
		case ndOptSourceLL:
			m.SourceLL = body
		case ndOptTargetLL:
			m.TargetLL = body
		case ndOptMTU:
			m.MTU = binary.BigEndian.Uint32(body[2:])
		case ndOptPrefixInfo:
			if n == 32 && body[0] <= 128 && m.NPrefixes < ndMaxPrefixes {
				addr := netip.AddrFrom16([16]byte(body[14:30]))
				pre := netip.PrefixFrom(addr, int(body[0])).Masked()
				m.Prefixes[m.NPrefixes] = ndPrefix{
					Prefix: pre, OnLink: body[1]&0x80 != 0, Autonomous: body[1]&0x40 != 0,
					Valid: binary.BigEndian.Uint32(body[2:]), Preferred: binary.BigEndian.Uint32(body[6:]),
				}
				m.NPrefixes++
			}
		}
		o = o[n:]
	}
	return nil
}
