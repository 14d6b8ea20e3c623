package reconcile

import "strings"

// DefaultJunkSerials are placeholder serials firmware ships with. It is a copy
// of inventory.DefaultJunkSerials (this package does not import inventory),
// compared case-insensitively.
var DefaultJunkSerials = []string{
	"to be filled by o.e.m.", "to be filled by oem", "default string", "0", "00000000", "000000000000",
	"none", "n/a", "na", "not specified", "not applicable", "system serial number", "serial number",
	"123456789", "1234567890", "chassis serial number", "invalid", "unknown", "xxxxxxxxxx", "0123456789",
	"base board serial number", "oem", "empty",
}

// DefaultJunkMACs are MACs that name no one device: placeholders, and the
// fixed MACs of VPN and hypervisor virtual adapters found on many hosts at
// once. An entry shorter than a full MAC is a prefix: the shared
// virtual-router MACs of VRRP, HSRP and GLBP move between routers.
var DefaultJunkMACs = []string{
	"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
	"02:00:4c:4f:4f:50", // Npcap loopback
	"00:05:9a:3c:7a:00", // Cisco AnyConnect virtual adapter
	"00:09:0f:fe:00:01", // FortiClient virtual adapter
	"00:50:56:c0:00:01", // VMware host-only adapter (VMnet1)
	"00:50:56:c0:00:08", // VMware NAT adapter (VMnet8)
	"0a:00:27:00:00:00", // VirtualBox host-only adapter
	"20:41:53:59:4e:ff", // Windows RAS async adapter
	"50:50:54:50:30:30", // Windows WAN Miniport (PPTP)
	"00:00:5e:00:01:",   // VRRP (IPv4)
	"00:00:5e:00:02:",   // VRRP (IPv6)
	"00:00:0c:07:ac:",   // HSRP v1
	"00:00:0c:9f:f",     // HSRP v2
	"00:07:b4:00:",      // GLBP
}

// normSerial upper-cases and trims a serial or asset tag: serials are mostly
// upper-case already, so this rarely allocates.
func normSerial(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// normName lower-cases a hostname and drops a trailing dot.
func normName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// shortName is the first label of a hostname.
func shortName(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}

// normMAC returns a MAC in lower-case colon form; canonical input is
// returned as is.
func normMAC(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '-' || (c >= 'A' && c <= 'F') {
			return strings.ReplaceAll(strings.ToLower(s), "-", ":")
		}
	}
	return s
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// junkSet holds junk values compared exactly, and prefixes.
type junkSet struct {
	exact    map[string]struct{}
	prefixes []string
}

func newJunkSet(lists [][]string, norm func(string) string, full int) junkSet {
	j := junkSet{exact: map[string]struct{}{}}
	for _, l := range lists {
		for _, s := range l {
			s = norm(s)
			if full > 0 && len(s) < full {
				j.prefixes = append(j.prefixes, s)
				continue
			}
			j.exact[s] = struct{}{}
		}
	}
	return j
}

func (j *junkSet) has(s string) bool {
	if _, ok := j.exact[s]; ok {
		return true
	}
	for _, p := range j.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// macKind classifies a normalised MAC.
type macKind uint8

const (
	macInvalid   macKind = iota
	macUniversal         // names one device
	macLocal             // locally administered: randomised, VM, container
	macJunk              // group address, placeholder or shared virtual MAC
)

func (m *matcher) macKind(mac string) macKind {
	if len(mac) != 17 {
		return macInvalid
	}
	hi, ok1 := hexVal(mac[0])
	lo, ok2 := hexVal(mac[1])
	if !ok1 || !ok2 {
		return macInvalid
	}
	b := hi<<4 | lo
	switch {
	case b&0x01 != 0 || m.junkMACs.has(mac):
		return macJunk
	case b&0x02 != 0:
		return macLocal
	}
	return macUniversal
}

// validSerial says whether a normalised serial identifies a device.
func (m *matcher) validSerial(s string) bool {
	if len(s) < 3 || m.junkSerials.has(s) {
		return false
	}
	// A serial of one repeated character (000000, XXXXXX) is a placeholder.
	return strings.Count(s, s[:1]) != len(s)
}
