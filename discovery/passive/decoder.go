// Package passive finds devices in traffic without sending a packet: it
// decodes frames from a capture file or a live span port and reports what
// each protocol says about who is on the wire as discovery.Observations. It
// never imports the inventory.
//
// The hot path walks the link, network and transport headers of every frame
// by hand (a few bounds-checked loads, no interface calls) and hands only the
// frames that can say something about a device to a protocol extractor:
// ARP, DHCP, DHCPv6, neighbour discovery, mDNS, LLMNR, NetBIOS, SSDP, DNS
// answers, TCP SYN and SYN-ACK, TLS and HTTP heads, LLDP, CDP, HSRP and
// VRRP. gopacket's layer decoders do the protocol work where they exist
// (ARP, DHCPv4, LLDP, CDP); gopacket's DecodingLayerParser is not used on
// the hot path because at 4 million frames a second its per-layer dispatch
// alone costs more than the whole budget (measured: 125 ns a frame against
// 20 ns for the walk below).
//
// A frame that tells nothing new costs no allocation: every fact is keyed
// by a fixed-size struct and a hash of its content before anything is
// built, and a fact already reported is reported again only after the
// resight window.
package passive

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"sort"
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
	// Signatures give OS and device-type hints; nil uses the embedded set.
	Signatures *Signatures
	// Resight: a fact already reported is reported again only after this
	// much capture time (keeps last-seen fresh without a flood).
	Resight time.Duration
	// LocalNetworks are on-link prefixes: an address inside one is given the
	// MAC its frames come from. More are learned from DHCP and router
	// advertisements, and single hosts from ARP.
	LocalNetworks []netip.Prefix
	// Networks are the organisation's own address space: a host inside it
	// but not on-link (seen behind a router) is reported by IP alone.
	// Traffic to and from other addresses says nothing about devices.
	// Empty means the private ranges (RFC 1918, 100.64/10, fc00::/7).
	Networks []netip.Prefix
	// MaxTracked bounds the facts remembered for deduplication.
	MaxTracked int
	// Shared, when set, is on-link knowledge shared with the sensor's other
	// decoders (LocalNetworks is then ignored: give it to NewShared).
	Shared *Shared
	Logger *slog.Logger
}

// DefaultNetworks are the private ranges used when Options.Networks is empty.
var DefaultNetworks = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// Stats count what the decoder saw.
type Stats struct {
	Packets, Bytes uint64
	// Errors counts decode errors by layer.
	Errors map[string]uint64
	// Observations is how many observations were emitted.
	Observations uint64
	// Tracked is how many facts are remembered for deduplication.
	Tracked int
	// Devices is how many devices (by MAC, or by IP without one) were
	// reported within the resight window.
	Devices int
}

// deviceKey names a reported device: its MAC, or its IP without one.
type deviceKey struct {
	mac [6]byte
	ip  netip.Addr
}

// fact kinds: the first field of a dedup key.
const (
	kindARP uint8 = iota + 1
	kindDHCP
	kindDHCP6
	kindND
	kindSlow
	kindSYN
	kindService
	kindTLSClient
	kindTLSCert
	kindHTTPClient
	kindHTTPServer
	kindDNS
	kindSSDP
	kindNBNS
	kindRedundancy
)

type seenKey struct {
	kind uint8
	vlan uint16
	mac  [6]byte
	ip   [16]byte
	h    uint64
}

// frame is what the header walk found; slices point into the frame.
type frame struct {
	ci      gopacket.CaptureInfo
	vlan    uint16
	src     [6]byte
	dst     [6]byte
	hasSrc  bool
	virtual bool // the source is a first-hop-redundancy virtual MAC
	etype   uint16
	l3      []byte
	srcIP   netip.Addr
	dstIP   netip.Addr
	ttl     uint8 // IPv4 TTL or IPv6 hop limit
	df      bool
	proto   uint8
	l4      []byte
	sport   uint16
	dport   uint16
	payload []byte
}

// Decoder turns frames into observations. It is not safe for concurrent
// use: a live capture runs one decoder per worker.
type Decoder struct {
	opts    Options
	vendors *vendor.Table
	sigs    *Signatures
	emit    func(discovery.Observation)
	seed    maphash.Seed

	arp  layers.ARP
	dhcp layers.DHCPv4
	fr   frame

	seen      map[seenKey]int64
	devices   map[deviceKey]int64 // who was reported, for the devices gauge
	lastSweep int64
	local     *localNets
	sc        scratch
	flows     map[flowKey]*tlsFlow
	freeBufs  [][]byte

	Stats Stats
}

// NewDecoder returns a decoder that calls emit for every observation.
func NewDecoder(opts Options, emit func(discovery.Observation)) *Decoder {
	if opts.Vendors == nil {
		opts.Vendors = vendor.Default()
	}
	if opts.Signatures == nil {
		opts.Signatures = DefaultSignatures()
	}
	if opts.Resight <= 0 {
		opts.Resight = 5 * time.Minute
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Networks) == 0 {
		opts.Networks = DefaultNetworks
	}
	d := &Decoder{opts: opts, vendors: opts.Vendors, sigs: opts.Signatures, emit: emit, seed: maphash.MakeSeed(),
		seen: map[seenKey]int64{}, devices: map[deviceKey]int64{}, flows: map[flowKey]*tlsFlow{}, Stats: Stats{Errors: map[string]uint64{}}}
	if opts.Shared == nil {
		opts.Shared = NewShared(opts.LocalNetworks)
	}
	d.local = opts.Shared.local
	return d
}

// Ethernet types the walk knows.
const (
	etIPv4   = 0x0800
	etARP    = 0x0806
	etIPv6   = 0x86dd
	etLLDP   = 0x88cc
	etDot1Q  = 0x8100
	etDot1AD = 0x88a8
	etQinQ   = 0x9100
)

// Packet decodes one frame. data is only read during the call. A malformed
// frame is counted as a decode error of its layer and otherwise ignored.
func (d *Decoder) Packet(data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
	// gopacket's layer decoders, and any bug of ours, must cost one error
	// count on a hostile frame, never the sensor.
	defer func() {
		if r := recover(); r != nil {
			d.Stats.Errors["panic"]++
		}
	}()
	d.Stats.Packets++
	d.Stats.Bytes += uint64(len(data))
	f := &d.fr
	*f = frame{ci: ci}
	var rest []byte
	switch link {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			d.Stats.Errors["Ethernet"]++
			return
		}
		copy(f.dst[:], data[0:6])
		copy(f.src[:], data[6:12])
		f.hasSrc = true
		f.etype = binary.BigEndian.Uint16(data[12:14])
		rest = data[14:]
	case layers.LinkTypeLinuxSLL:
		// packet type, ARPHRD type, address length, 8 address bytes, protocol
		if len(data) < 16 {
			d.Stats.Errors["LinuxSLL"]++
			return
		}
		if binary.BigEndian.Uint16(data[2:4]) == 1 && binary.BigEndian.Uint16(data[4:6]) == 6 {
			copy(f.src[:], data[6:12])
			f.hasSrc = true
		}
		f.etype = binary.BigEndian.Uint16(data[14:16])
		rest = data[16:]
	case layers.LinkTypeLinuxSLL2:
		// protocol, reserved, ifindex, ARPHRD type, packet type, address length, 8 address bytes
		if len(data) < 20 {
			d.Stats.Errors["LinuxSLL2"]++
			return
		}
		f.etype = binary.BigEndian.Uint16(data[0:2])
		if binary.BigEndian.Uint16(data[8:10]) == 1 && data[11] == 6 {
			copy(f.src[:], data[12:18])
			f.hasSrc = true
		}
		rest = data[20:]
	default:
		d.Stats.Errors["linktype:"+link.String()]++
		return
	}
	// 802.1Q, 802.1ad and the old QinQ type: the innermost tag is the VLAN
	// the device lives in.
	for i := 0; i < 4 && (f.etype == etDot1Q || f.etype == etDot1AD || f.etype == etQinQ); i++ {
		if len(rest) < 4 {
			d.Stats.Errors["Dot1Q"]++
			return
		}
		f.vlan = binary.BigEndian.Uint16(rest[0:2]) & 0x0fff
		f.etype = binary.BigEndian.Uint16(rest[2:4])
		rest = rest[4:]
	}
	if f.hasSrc && !usableMAC(f.src) {
		// Group, all-zero and first-hop-redundancy virtual MACs name no
		// device; HSRP and VRRP hellos from them still tell of a router.
		f.hasSrc = false
		if f.virtual = isVirtualRouterMAC(f.src); !f.virtual {
			return
		}
	}
	f.l3 = rest
	switch {
	case f.virtual && f.etype != etIPv4 && f.etype != etIPv6:
		return
	case f.etype == etARP:
		d.onARP(data, link)
	case f.etype == etIPv4:
		d.ipv4(rest)
	case f.etype == etIPv6:
		d.ipv6(rest)
	case f.etype == etLLDP:
		d.slowPath(data, link)
	case f.etype < 0x0600 && len(rest) >= 8 && rest[0] == 0xaa && rest[1] == 0xaa &&
		rest[3] == 0x00 && rest[4] == 0x00 && rest[5] == 0x0c && rest[6] == 0x20 && rest[7] == 0x00:
		// 802.3 + LLC/SNAP with Cisco's OUI and protocol 0x2000: CDP.
		d.slowPath(data, link)
	}
}

func (d *Decoder) ipv4(b []byte) {
	f := &d.fr
	if len(b) < 20 || b[0]>>4 != 4 {
		d.Stats.Errors["IPv4"]++
		return
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || len(b) < ihl {
		d.Stats.Errors["IPv4"]++
		return
	}
	if total < len(b) {
		b = b[:total] // Ethernet padding
	}
	f.srcIP = netip.AddrFrom4([4]byte(b[12:16]))
	f.dstIP = netip.AddrFrom4([4]byte(b[16:20]))
	f.ttl = b[8]
	flags := binary.BigEndian.Uint16(b[6:8])
	f.df = flags&0x4000 != 0
	if flags&0x1fff != 0 {
		return // a later fragment: no transport header
	}
	f.proto = b[9]
	d.transport(b[ihl:])
}

func (d *Decoder) ipv6(b []byte) {
	f := &d.fr
	if len(b) < 40 || b[0]>>4 != 6 {
		d.Stats.Errors["IPv6"]++
		return
	}
	if plen := int(binary.BigEndian.Uint16(b[4:6])); plen+40 < len(b) && plen != 0 {
		b = b[:40+plen]
	}
	f.srcIP = netip.AddrFrom16([16]byte(b[8:24]))
	f.dstIP = netip.AddrFrom16([16]byte(b[24:40]))
	f.ttl = b[7]
	next := b[6]
	b = b[40:]
	// Hop-by-hop, routing and destination options share one shape; a
	// non-first fragment has no transport header.
	for i := 0; i < 8; i++ {
		switch next {
		case 0, 43, 60:
			if len(b) < 8 {
				d.Stats.Errors["IPv6"]++
				return
			}
			n := (int(b[1]) + 1) * 8
			if len(b) < n {
				d.Stats.Errors["IPv6"]++
				return
			}
			next, b = b[0], b[n:]
			continue
		case 44:
			if len(b) < 8 {
				d.Stats.Errors["IPv6"]++
				return
			}
			if binary.BigEndian.Uint16(b[2:4])&0xfff8 != 0 {
				return
			}
			next, b = b[0], b[8:]
			continue
		}
		break
	}
	f.proto = next
	d.transport(b)
}

const (
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoVRRP   = 112
)

func (d *Decoder) transport(b []byte) {
	f := &d.fr
	f.l4 = b
	if f.virtual && f.proto != protoVRRP && f.proto != protoUDP {
		return
	}
	switch f.proto {
	case protoTCP:
		if len(b) < 20 {
			d.Stats.Errors["TCP"]++
			return
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > len(b) {
			d.Stats.Errors["TCP"]++
			return
		}
		f.sport, f.dport = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		f.payload = b[off:]
		d.onTCP(b, off)
	case protoUDP:
		if len(b) < 8 {
			d.Stats.Errors["UDP"]++
			return
		}
		f.sport, f.dport = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		p := b[8:]
		if n := int(binary.BigEndian.Uint16(b[4:6])); n >= 8 && n-8 < len(p) {
			p = p[:n-8]
		}
		f.payload = p
		d.onUDP()
	case protoICMPv6:
		if len(b) >= 4 && b[0] >= 133 && b[0] <= 136 {
			d.onND(b)
		}
	case protoVRRP:
		d.onRedundancy("vrrp")
	}
}

func (d *Decoder) onUDP() {
	f := &d.fr
	s, t := f.sport, f.dport
	if f.virtual && t != 1985 && t != 2029 {
		return
	}
	switch {
	case s == 68 || t == 67 || s == 67 && t == 68:
		if f.srcIP.Is4() {
			d.onDHCP()
		}
	case s == 546 || t == 546 || t == 547 || s == 547:
		d.onDHCPv6()
	case s == 5353 || t == 5353:
		d.onDNS("mdns")
	case s == 5355:
		d.onDNS("llmnr")
	case s == 137 || t == 137:
		d.onDNS("netbios")
	case s == 53:
		d.onDNS("dns")
	case s == 1900 || t == 1900:
		d.onSSDP()
	case t == 2190:
		d.onTiVo()
	case t == 1985 || t == 2029:
		d.onRedundancy("hsrp")
	}
}

func (d *Decoder) countError(layer string) { d.Stats.Errors[layer]++ }

// Tracked reports how many facts are remembered.
func (d *Decoder) Tracked() int { return len(d.seen) }

func (d *Decoder) send(o discovery.Observation) {
	o.Sensor, o.Segment = d.opts.Sensor, d.opts.Segment
	d.Stats.Observations++
	var k deviceKey
	if hw, err := net.ParseMAC(o.MAC); err == nil && len(hw) == 6 {
		k.mac = [6]byte(hw)
	} else if ip, err := netip.ParseAddr(o.IP); err == nil {
		k.ip = ip
	}
	if len(d.devices) >= d.opts.MaxTracked {
		clear(d.devices)
	}
	d.devices[k] = d.fr.ci.Timestamp.Unix()
	d.Stats.Tracked, d.Stats.Devices = len(d.seen), len(d.devices)
	d.emit(o)
}

// fresh reports whether a fact is new or due again, and records it.
func (d *Decoder) fresh(k seenKey) bool {
	now := d.fr.ci.Timestamp.Unix()
	if last, ok := d.seen[k]; ok && now-last < int64(d.opts.Resight/time.Second) && now >= last {
		return false
	}
	d.sweep(now)
	d.seen[k] = now
	return true
}

// sweep forgets facts older than the resight window, at most once a window,
// and everything if a flood of new facts passes the bound.
func (d *Decoder) sweep(now int64) {
	window := int64(d.opts.Resight / time.Second)
	if len(d.seen) >= d.opts.MaxTracked {
		clear(d.seen)
		d.Stats.Errors["tracked-overflow"]++
		d.lastSweep = now
		return
	}
	if now-d.lastSweep < window {
		return
	}
	d.lastSweep = now
	for k, t := range d.seen {
		if now-t >= window || t > now {
			delete(d.seen, k)
		}
	}
	for k, t := range d.devices {
		if now-t >= window || t > now {
			delete(d.devices, k)
		}
	}
	d.dropFlows(false)
}

// key starts a dedup key for the frame's source.
func (d *Decoder) key(kind uint8) seenKey {
	k := seenKey{kind: kind, vlan: d.fr.vlan}
	if d.fr.srcIP.IsValid() {
		k.ip = d.fr.srcIP.As16()
	}
	return k
}

func (d *Decoder) hash(parts ...[]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, p := range parts {
		h.Write(p)
		h.WriteByte(0)
	}
	return h.Sum64()
}

func (d *Decoder) vendorOf(mac [6]byte) string { return d.vendors.Lookup(mac) }

// base starts an observation of the frame's source host at ip: the MAC goes
// with it only when ip is on-link (see localNets.owns), and nothing is
// returned for an address outside the organisation's networks.
func (d *Decoder) base(source string, ip netip.Addr) (discovery.Observation, bool) {
	f := &d.fr
	o := discovery.Observation{Source: source, Time: f.ci.Timestamp.UTC(), VLAN: int(f.vlan)}
	usable := ip.IsValid() && usableIP(ip)
	onLink := f.hasSrc && (!usable || d.local.owns(ip, f.src))
	if !onLink && f.hasSrc && usable && ip == f.srcIP && d.linkScoped() {
		// A frame no router forwards came from the host itself.
		d.local.learnHost(ip, f.src)
		onLink = true
	}
	if onLink {
		o.MAC = net.HardwareAddr(f.src[:]).String()
		o.Vendor = d.vendorOf(f.src)
	}
	if usable {
		if !onLink && !d.internal(ip) {
			return o, false
		}
		o.IP = ip.Unmap().String()
	}
	if o.MAC == "" && o.IP == "" {
		return o, false
	}
	return o, true
}

// linkScoped says whether the frame's destination is one routers never
// forward: the limited broadcast, link-local multicast (224.0.0.0/24,
// ff02::/16), or IPv6 with hop limit 255 (neighbour discovery).
func (d *Decoder) linkScoped() bool {
	dst := d.fr.dstIP
	if dst.Is4() {
		b := dst.As4()
		return b == [4]byte{255, 255, 255, 255} || b[0] == 224 && b[1] == 0 && b[2] == 0
	}
	if dst.Is6() {
		b := dst.As16()
		return b[0] == 0xff && b[1]&0x0f == 0x02 || d.fr.ttl == 255 && d.fr.proto == protoICMPv6
	}
	return false
}

func (d *Decoder) internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range d.opts.Networks {
		if p.Contains(ip) {
			return true
		}
	}
	return d.local.contains(ip)
}

func usableMAC(mac [6]byte) bool {
	if mac[0]&0x01 != 0 || mac == [6]byte{} || isVirtualRouterMAC(mac) {
		return false
	}
	return true
}

// isVirtualRouterMAC recognises the virtual MACs of first-hop redundancy
// protocols, which move between routers and name none of them: HSRPv1
// 00:00:0c:07:ac:XX, HSRPv2 00:00:0c:9f:fX:XX, VRRP 00:00:5e:00:01:XX (IPv4)
// and 00:00:5e:00:02:XX (IPv6), GLBP 00:07:b4:00:XX:XX.
func isVirtualRouterMAC(m [6]byte) bool {
	switch {
	case m[0] == 0 && m[1] == 0 && m[2] == 0x0c && m[3] == 0x07 && m[4] == 0xac:
		return true
	case m[0] == 0 && m[1] == 0 && m[2] == 0x0c && m[3] == 0x9f && m[4]&0xf0 == 0xf0:
		return true
	case m[0] == 0 && m[1] == 0 && m[2] == 0x5e && m[3] == 0 && (m[4] == 1 || m[4] == 2):
		return true
	case m[0] == 0 && m[1] == 0x07 && m[2] == 0xb4 && m[3] == 0:
		return true
	}
	return false
}

// usableIP says whether an address can name a device: not unspecified,
// multicast, loopback or broadcast.
func usableIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() && !ip.IsLoopback() && ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// ErrorSummary renders the decode error counts for a log line.
func (s Stats) ErrorSummary() string {
	var parts []string
	for k, v := range s.Errors {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
