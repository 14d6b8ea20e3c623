package passive

import (
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
)

// dhcpOptClientFQDN is DHCP option 81 (RFC 4702), which gopacket does not name.
const dhcpOptClientFQDN layers.DHCPOpt = 81

// onDHCP reports the client of a DHCPv4 exchange: its MAC, the address a
// server acknowledged (or the one it already holds), its hostname (option
// 12 and the FQDN of option 81), vendor class (60), client id (61) and the
// parameter request list (55) as a fingerprint. An acknowledgement with a
// subnet mask teaches the decoder an on-link prefix.
func (d *Decoder) onDHCP() {
	p := d.fr.payload
	if len(p) < 240 {
		d.countError("DHCPv4")
		return
	}
	// The same message again (a retransmission, a renewal with a new
	// transaction id) is the same fact: hash all but xid and secs.
	k := seenKey{kind: kindDHCP, vlan: d.fr.vlan, mac: [6]byte(p[28:34]), h: d.hash(p[:4], p[10:])}
	if !d.fresh(k) {
		return
	}
	if err := d.dhcp.DecodeFromBytes(p, gopacket.NilDecodeFeedback); err != nil {
		d.countError("DHCPv4")
		delete(d.seen, k)
		return
	}
	m := &d.dhcp
	if m.HardwareType != layers.LinkTypeEthernet || len(m.ClientHWAddr) != 6 || !usableMAC([6]byte(m.ClientHWAddr)) {
		return
	}
	mac := [6]byte(m.ClientHWAddr)
	var (
		msgType layers.DHCPMsgType
		mask    net.IPMask
		vclass  string
	)
	o := discovery.Observation{Source: "passive:dhcp", Time: d.fr.ci.Timestamp.UTC(), VLAN: int(d.fr.vlan), MAC: m.ClientHWAddr.String(), Vendor: d.vendorOf(mac)}
	for _, opt := range m.Options {
		switch opt.Type {
		case layers.DHCPOptMessageType:
			if len(opt.Data) == 1 {
				msgType = layers.DHCPMsgType(opt.Data[0])
			}
		case layers.DHCPOptSubnetMask:
			if len(opt.Data) == 4 {
				mask = net.IPMask(opt.Data)
			}
		case layers.DHCPOptHostname:
			if name := cleanName(opt.Data); name != "" {
				o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: "dhcp-option-12"})
			}
		case dhcpOptClientFQDN:
			if len(opt.Data) > 3 {
				if name := fqdnName(opt.Data[0], opt.Data[3:]); name != "" {
					o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: "dhcp-option-81"})
				}
			}
		case layers.DHCPOptClassID:
			if v := cleanText(opt.Data); v != "" {
				vclass = v
				o.Hints = append(o.Hints, discovery.Hint{Kind: "vendor_class", Value: v, Confidence: 0.5, Source: "dhcp-option-60"})
			}
		case layers.DHCPOptClientID:
			if len(opt.Data) > 0 {
				o.Identifiers.DHCPClientID = hexColons(opt.Data)
			}
		case layers.DHCPOptParamsRequest:
			if len(opt.Data) > 0 {
				parts := make([]string, len(opt.Data))
				for i, b := range opt.Data {
					parts[i] = strconv.Itoa(int(b))
				}
				o.Identifiers.DHCPFingerprint = strings.Join(parts, ",")
			}
		}
	}
	switch msgType {
	case layers.DHCPMsgTypeAck:
		// The server's word: this client holds yiaddr (or ciaddr on a renewal).
		ip, ok := netip.AddrFromSlice(m.YourClientIP.To4())
		if !ok || ip.IsUnspecified() {
			ip, ok = netip.AddrFromSlice(m.ClientIP.To4())
		}
		if ok && usableIP(ip) {
			o.IP = ip.String()
			d.local.learnHost(ip, mac)
			if ones, bits := mask.Size(); bits == 32 {
				d.local.learnPrefix(netip.PrefixFrom(ip, ones))
			}
		}
	case layers.DHCPMsgTypeRequest, layers.DHCPMsgTypeInform, layers.DHCPMsgTypeRelease:
		if ip, ok := netip.AddrFromSlice(m.ClientIP.To4()); ok && usableIP(ip) {
			o.IP = ip.String()
		}
	case layers.DHCPMsgTypeOffer, layers.DHCPMsgTypeNak:
		// Offers and refusals say nothing the client holds; the hostname,
		// if any, comes from the client's own messages.
		if len(o.Hostnames) == 0 {
			return
		}
	}
	if m.Operation == layers.DHCPOpRequest {
		d.sigs.dhcp(&o, o.Identifiers.DHCPFingerprint, vclass)
	}
	d.send(o)
}

// fqdnName reads option 81's name: wire-format labels when the E flag is
// set, else ASCII.
func fqdnName(flags byte, b []byte) string {
	if flags&0x04 == 0 {
		return cleanName(b)
	}
	var labels []string
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || n > 63 || 1+n > len(b) {
			break
		}
		labels = append(labels, string(b[1:1+n]))
		b = b[1+n:]
	}
	return cleanName([]byte(strings.Join(labels, ".")))
}

func hexColons(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}
