// Package passive finds devices in traffic without sending a packet: it
// decodes frames from a capture file (and, later, a live span port) and
// reports what each protocol says about who is on the wire as
// discovery.Observations. It never imports the inventory.
//
// The hot path decodes every frame with one reusable DecodingLayerParser per
// link type and allocates nothing for a frame that tells nothing new:
// repeated sightings are deduplicated by a fixed-size key. Rare frames
// (LLDP, CDP) take a slower, allocating path.
package passive

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/vendor"
)

// Options configure a decoder.
type Options struct {
	// Sensor names the sensor in observations.
	Sensor string
	// Segment names the L2 segment (the interface or site).
	Segment string
	// Vendors names makers by OUI; nil uses the embedded table.
	Vendors *vendor.Table
	// Resight: a binding already reported is reported again only after this
	// much capture time (keeps last-seen fresh without a flood).
	Resight time.Duration
	Logger  *slog.Logger
}

// Stats count what the decoder saw.
type Stats struct {
	Packets, Bytes uint64
	// Errors counts decode errors by layer.
	Errors map[string]uint64
	// Observations is how many observations were emitted.
	Observations uint64
}

type seenKey struct {
	kind uint8
	vlan uint16
	mac  [6]byte
	ip   [16]byte
}

const (
	kindARP uint8 = iota + 1
)

// dhcpOptClientFQDN is DHCP option 81 (RFC 4702), which gopacket does not name.
const dhcpOptClientFQDN layers.DHCPOpt = 81

// Decoder turns frames into observations. It is not safe for concurrent use.
type Decoder struct {
	opts    Options
	vendors *vendor.Table
	emit    func(discovery.Observation)
	parsers map[layers.LinkType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType

	eth   layers.Ethernet
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	dot1q layers.Dot1Q
	llc   layers.LLC
	snap  layers.SNAP
	ip4   layers.IPv4
	ip6   layers.IPv6
	udp   layers.UDP
	tcp   layers.TCP
	arp   layers.ARP
	dhcp  layers.DHCPv4

	seen  map[seenKey]int64
	Stats Stats
}

// NewDecoder returns a decoder that calls emit for every observation.
func NewDecoder(opts Options, emit func(discovery.Observation)) *Decoder {
	if opts.Vendors == nil {
		opts.Vendors = vendor.Default()
	}
	if opts.Resight <= 0 {
		opts.Resight = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Decoder{opts: opts, vendors: opts.Vendors, emit: emit, parsers: map[layers.LinkType]*gopacket.DecodingLayerParser{},
		decoded: make([]gopacket.LayerType, 0, 16), seen: map[seenKey]int64{}, Stats: Stats{Errors: map[string]uint64{}}}
}

func (d *Decoder) parser(link layers.LinkType) *gopacket.DecodingLayerParser {
	if p, ok := d.parsers[link]; ok {
		return p
	}
	var first gopacket.LayerType
	switch link {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	default:
		d.parsers[link] = nil
		return nil
	}
	p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.sll, &d.sll2, &d.dot1q, &d.llc, &d.snap,
		&d.ip4, &d.ip6, &d.udp, &d.tcp, &d.arp)
	p.IgnoreUnsupported = true
	d.parsers[link] = p
	return p
}

// Packet decodes one frame. data is only read during the call. A malformed
// frame is counted as a decode error of its layer and otherwise ignored.
func (d *Decoder) Packet(data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
	// Some of gopacket's decoders index past a crafted length field (Linux
	// SLL's address length, for one): a hostile frame must cost one error
	// count, never the sensor.
	defer func() {
		if r := recover(); r != nil {
			d.Stats.Errors["panic"]++
		}
	}()
	d.Stats.Packets++
	d.Stats.Bytes += uint64(len(data))
	p := d.parser(link)
	if p == nil {
		d.Stats.Errors["linktype:"+link.String()]++
		return
	}
	d.decoded = d.decoded[:0]
	err := p.DecodeLayers(data, &d.decoded)
	if err != nil {
		d.countError(err)
	}
	var (
		srcMAC  net.HardwareAddr
		vlan    uint16
		hasEth  bool
		hasIP4  bool
		hasUDP  bool
		hasSNAP bool
		hasARP  bool
	)
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeEthernet:
			srcMAC, hasEth = d.eth.SrcMAC, true
		case layers.LayerTypeLinuxSLL:
			if d.sll.AddrLen == 6 {
				srcMAC = d.sll.Addr
			}
		case layers.LayerTypeLinuxSLL2:
			if d.sll2.AddrLength == 6 {
				srcMAC = d.sll2.Addr
			}
		case layers.LayerTypeDot1Q:
			vlan = d.dot1q.VLANIdentifier // the innermost tag of QinQ
		case layers.LayerTypeIPv4:
			hasIP4 = true
		case layers.LayerTypeUDP:
			hasUDP = true
		case layers.LayerTypeSNAP:
			hasSNAP = true
		case layers.LayerTypeARP:
			hasARP = true
		}
	}
	switch {
	case hasARP:
		d.onARP(ci, vlan)
	case hasUDP && hasIP4 && (d.udp.SrcPort == 68 || d.udp.DstPort == 67 || d.udp.SrcPort == 67 && d.udp.DstPort == 68):
		d.onDHCP(ci, vlan)
	case hasEth && d.eth.EthernetType == layers.EthernetTypeLinkLayerDiscovery,
		hasEth && len(d.decoded) > 0 && d.lastIsDot1QWith(layers.EthernetTypeLinkLayerDiscovery):
		d.slowPath(data, ci, link, vlan, srcMAC)
	case hasSNAP && d.snap.Type == layers.EthernetTypeCiscoDiscovery:
		d.slowPath(data, ci, link, vlan, srcMAC)
	}
}

func (d *Decoder) lastIsDot1QWith(t layers.EthernetType) bool {
	return d.decoded[len(d.decoded)-1] == layers.LayerTypeDot1Q && d.dot1q.Type == t
}

func (d *Decoder) countError(err error) {
	msg := err.Error()
	layer := "decode"
	if i := strings.Index(msg, " "); i > 0 {
		layer = strings.TrimSuffix(msg[:i], ":")
	}
	d.Stats.Errors[layer]++
}

func (d *Decoder) send(o discovery.Observation) {
	o.Sensor, o.Segment = d.opts.Sensor, d.opts.Segment
	d.Stats.Observations++
	d.emit(o)
}

// fresh reports whether a binding is new or due again, and records it.
func (d *Decoder) fresh(k seenKey, ci gopacket.CaptureInfo) bool {
	now := ci.Timestamp.Unix()
	if last, ok := d.seen[k]; ok && now-last < int64(d.opts.Resight/time.Second) && now >= last {
		return false
	}
	d.seen[k] = now
	return true
}

func (d *Decoder) vendorOf(mac net.HardwareAddr) string {
	if len(mac) != 6 {
		return ""
	}
	return d.vendors.Lookup([6]byte(mac))
}

func usableMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 || mac[0]&0x01 != 0 {
		return false
	}
	for _, b := range mac {
		if b != 0 {
			return true
		}
	}
	return false
}

// onARP reports the sender's binding: requests, replies and gratuitous ARP
// all say "this IP is at this MAC". A probe (sender IP 0.0.0.0) says only
// that the MAC exists.
func (d *Decoder) onARP(ci gopacket.CaptureInfo, vlan uint16) {
	a := &d.arp
	if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 || len(a.SourceHwAddress) != 6 || len(a.SourceProtAddress) != 4 {
		return
	}
	mac := net.HardwareAddr(a.SourceHwAddress)
	if !usableMAC(mac) {
		return
	}
	k := seenKey{kind: kindARP, vlan: vlan}
	copy(k.mac[:], mac)
	ip, _ := netip.AddrFromSlice(a.SourceProtAddress)
	if !ip.IsUnspecified() {
		k.ip = ip.As16()
	}
	if !d.fresh(k, ci) {
		return
	}
	o := discovery.Observation{Source: "passive:arp", Time: ci.Timestamp.UTC(), VLAN: int(vlan), MAC: mac.String(), Vendor: d.vendorOf(mac)}
	if !ip.IsUnspecified() && !ip.IsMulticast() && ip != netip.IPv4Unspecified() {
		o.IP = ip.String()
	}
	d.send(o)
}

// onDHCP reports the client of a DHCPv4 exchange: its MAC, the address a
// server acknowledged (or the one it already holds), its hostname (option
// 12 and the FQDN of option 81), vendor class (60), client id (61) and the
// parameter request list (55) as a fingerprint.
func (d *Decoder) onDHCP(ci gopacket.CaptureInfo, vlan uint16) {
	if err := d.dhcp.DecodeFromBytes(d.udp.Payload, gopacket.NilDecodeFeedback); err != nil {
		d.Stats.Errors["DHCPv4"]++
		return
	}
	m := &d.dhcp
	if m.HardwareType != layers.LinkTypeEthernet || len(m.ClientHWAddr) != 6 || !usableMAC(m.ClientHWAddr) {
		return
	}
	var msgType layers.DHCPMsgType
	o := discovery.Observation{Source: "passive:dhcp", Time: ci.Timestamp.UTC(), VLAN: int(vlan), MAC: m.ClientHWAddr.String(), Vendor: d.vendorOf(m.ClientHWAddr)}
	for _, opt := range m.Options {
		switch opt.Type {
		case layers.DHCPOptMessageType:
			if len(opt.Data) == 1 {
				msgType = layers.DHCPMsgType(opt.Data[0])
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
		if ip, ok := netip.AddrFromSlice(m.YourClientIP.To4()); ok && !ip.IsUnspecified() {
			o.IP = ip.String()
		} else if ip, ok := netip.AddrFromSlice(m.ClientIP.To4()); ok && !ip.IsUnspecified() {
			o.IP = ip.String()
		}
	case layers.DHCPMsgTypeRequest, layers.DHCPMsgTypeInform, layers.DHCPMsgTypeRelease:
		if ip, ok := netip.AddrFromSlice(m.ClientIP.To4()); ok && !ip.IsUnspecified() {
			o.IP = ip.String()
		}
	case layers.DHCPMsgTypeOffer, layers.DHCPMsgTypeNak:
		// Offers and refusals say nothing the client holds; the hostname,
		// if any, comes from the client's own messages.
		if len(o.Hostnames) == 0 {
			return
		}
	}
	d.send(o)
}

// cleanName keeps a hostname printable and within DNS limits.
func cleanName(b []byte) string {
	s := strings.TrimRight(cleanText(b), ".")
	if len(s) > 253 {
		s = s[:253]
	}
	return strings.ToLower(s)
}

func cleanText(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		}
	}
	return strings.TrimSpace(sb.String())
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

// slowPath decodes a rare frame (LLDP, CDP) with gopacket's full decoder.
func (d *Decoder) slowPath(data []byte, ci gopacket.CaptureInfo, link layers.LinkType, vlan uint16, src net.HardwareAddr) {
	if !usableMAC(src) {
		return
	}
	pkt := gopacket.NewPacket(data, link, gopacket.DecodeOptions{NoCopy: true, Lazy: false})
	if el := pkt.ErrorLayer(); el != nil {
		d.Stats.Errors[el.LayerType().String()]++
	}
	o := discovery.Observation{Time: ci.Timestamp.UTC(), VLAN: int(vlan), MAC: src.String(), Vendor: d.vendorOf(src)}
	if l, ok := pkt.Layer(layers.LayerTypeLinkLayerDiscoveryInfo).(*layers.LinkLayerDiscoveryInfo); ok {
		o.Source = "passive:lldp"
		if name := cleanName([]byte(l.SysName)); name != "" {
			o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: "lldp-system-name"})
		}
		if desc := cleanText([]byte(l.SysDescription)); desc != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "os", Value: desc, Confidence: 0.7, Source: "lldp-system-description"})
		}
		if t := lldpDeviceType(l.SysCapabilities.EnabledCap); t != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: t, Confidence: 0.8, Source: "lldp-capabilities"})
		}
		if ip, ok := netip.AddrFromSlice(l.MgmtAddress.Address); ok && l.MgmtAddress.Subtype == layers.IANAAddressFamilyIPV4 && usableIP(ip) {
			o.IP = ip.Unmap().String()
		}
		if lldp, ok := pkt.Layer(layers.LayerTypeLinkLayerDiscovery).(*layers.LinkLayerDiscovery); ok &&
			lldp.ChassisID.Subtype == layers.LLDPChassisIDSubTypeMACAddr && len(lldp.ChassisID.ID) == 6 {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "chassis_mac", Value: net.HardwareAddr(lldp.ChassisID.ID).String(), Confidence: 1, Source: "lldp-chassis-id"})
		}
		d.send(o)
		return
	}
	if c, ok := pkt.Layer(layers.LayerTypeCiscoDiscoveryInfo).(*layers.CiscoDiscoveryInfo); ok {
		o.Source = "passive:cdp"
		if name := cleanName([]byte(c.DeviceID)); name != "" {
			o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: "cdp-device-id"})
		}
		if v := cleanText([]byte(c.Version)); v != "" {
			o.OS = firstLine(v)
			o.Hints = append(o.Hints, discovery.Hint{Kind: "os", Value: firstLine(v), Confidence: 0.8, Source: "cdp-software-version"})
		}
		if p := cleanText([]byte(c.Platform)); p != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "model", Value: p, Confidence: 0.9, Source: "cdp-platform"})
		}
		if t := cdpDeviceType(c.Capabilities); t != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: t, Confidence: 0.8, Source: "cdp-capabilities"})
		}
		for _, a := range c.Addresses {
			if ip, ok := netip.AddrFromSlice(a); ok && ip.Unmap().Is4() && usableIP(ip) {
				o.IP = ip.Unmap().String()
				break
			}
		}
		d.send(o)
	}
}

// usableIP says whether an address can name a device: not unspecified,
// multicast or broadcast.
func usableIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}

func lldpDeviceType(c layers.LLDPCapabilities) string {
	switch {
	case c.Router:
		return "router"
	case c.Bridge:
		return "switch"
	case c.WLANAP:
		return "access-point"
	case c.Phone:
		return "phone"
	case c.StationOnly:
		return "host"
	}
	return ""
}

func cdpDeviceType(c layers.CDPCapabilities) string {
	switch {
	case c.L3Router:
		return "router"
	case c.L2Switch, c.TBBridge, c.SPBridge:
		return "switch"
	case c.IsPhone:
		return "phone"
	case c.IsHost:
		return "host"
	}
	return ""
}

// ErrorSummary renders the decode error counts for a log line.
func (s Stats) ErrorSummary() string {
	var parts []string
	for k, v := range s.Errors {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	return strings.Join(parts, " ")
}
