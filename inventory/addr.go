package inventory

import (
	"encoding/hex"
	"net/netip"
	"strings"
)

// Addr is a MAC or IP address held inline in 17 bytes, with no pointer:
// address records are a large part of the identity heap, and records
// without pointers are never scanned by the garbage collector. In JSON it
// is the canonical text form.
type Addr struct {
	b    [16]byte
	kind uint8 // 0 none, 1 MAC, 4 IPv4, 6 IPv6
}

const (
	addrMAC = 1
	addrV4  = 4
	addrV6  = 6
)

// AddrOf reads a canonical MAC (aa:bb:cc:dd:ee:ff) or an IP; anything else
// is the zero Addr.
func AddrOf(s string) Addr {
	if mac, ok := parseMAC(s); ok {
		var a Addr
		copy(a.b[:], mac[:])
		a.kind = addrMAC
		return a
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return AddrFromIP(ip)
	}
	return Addr{}
}

// AddrFromIP converts an IP.
func AddrFromIP(ip netip.Addr) Addr {
	ip = ip.Unmap()
	a := Addr{b: ip.As16(), kind: addrV6}
	if ip.Is4() {
		a.kind = addrV4
	}
	return a
}

// IsZero says whether a holds nothing.
func (a Addr) IsZero() bool { return a.kind == 0 }

// IP returns the address as an IP (invalid for a MAC).
func (a Addr) IP() netip.Addr {
	switch a.kind {
	case addrV4:
		return netip.AddrFrom16(a.b).Unmap()
	case addrV6:
		return netip.AddrFrom16(a.b)
	}
	return netip.Addr{}
}

func (a Addr) String() string {
	switch a.kind {
	case addrMAC:
		var sb strings.Builder
		for i := range 6 {
			if i > 0 {
				sb.WriteByte(':')
			}
			sb.WriteString(hex.EncodeToString(a.b[i : i+1]))
		}
		return sb.String()
	case addrV4, addrV6:
		return a.IP().String()
	}
	return ""
}

func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (a *Addr) UnmarshalText(b []byte) error {
	*a = AddrOf(string(b))
	return nil
}

// local says whether a MAC has the locally administered bit set.
func (a Addr) local() bool { return a.kind == addrMAC && a.b[0]&0x02 != 0 }

// parseMAC reads a canonical MAC (aa:bb:cc:dd:ee:ff) without allocating:
// it runs for every observation on the ingest path.
func parseMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	if len(s) != 17 {
		return mac, false
	}
	for i := range 6 {
		if i > 0 && s[3*i-1] != ':' {
			return mac, false
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return mac, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
