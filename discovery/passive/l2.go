package passive

import (
	"net"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
)

// onARP reports the sender's binding: requests, replies and gratuitous ARP
// all say "this IP is at this MAC", and teach the decoder that the IP is
// on-link. A probe (sender IP 0.0.0.0) says only that the MAC exists.
func (d *Decoder) onARP(data []byte, link layers.LinkType) {
	a := &d.arp
	if err := a.DecodeFromBytes(d.fr.l3, gopacket.NilDecodeFeedback); err != nil {
		d.countError("ARP")
		return
	}
	if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 || len(a.SourceHwAddress) != 6 || len(a.SourceProtAddress) != 4 {
		return
	}
	mac := [6]byte(a.SourceHwAddress)
	if !usableMAC(mac) {
		return
	}
	ip := netip.AddrFrom4([4]byte(a.SourceProtAddress))
	k := seenKey{kind: kindARP, vlan: d.fr.vlan, mac: mac}
	if !ip.IsUnspecified() {
		k.ip = ip.As16()
		if usableIP(ip) {
			d.local.learnHost(ip, mac)
		}
	}
	if !d.fresh(k) {
		return
	}
	o := discovery.Observation{Source: "passive:arp", Time: d.fr.ci.Timestamp.UTC(), VLAN: int(d.fr.vlan), MAC: net.HardwareAddr(mac[:]).String(), Vendor: d.vendorOf(mac)}
	if usableIP(ip) {
		o.IP = ip.String()
	}
	d.send(o)
}

// onRedundancy notes a router speaking HSRP or VRRP from its own MAC: a
// router, whatever else it is. Hellos from the virtual MAC name no device.
func (d *Decoder) onRedundancy(proto string) {
	f := &d.fr
	if !f.hasSrc {
		return
	}
	k := d.key(kindRedundancy)
	k.mac = f.src
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:"+proto, f.srcIP)
	if !ok || o.MAC == "" {
		return
	}
	o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: "router", Confidence: 0.7, Source: proto})
	d.send(o)
}

// slowPath decodes a rare frame (LLDP, CDP) with gopacket's full decoder,
// once per distinct content per resight window.
func (d *Decoder) slowPath(data []byte, link layers.LinkType) {
	f := &d.fr
	if !f.hasSrc {
		return
	}
	k := seenKey{kind: kindSlow, vlan: f.vlan, mac: f.src, h: d.hash(f.l3)}
	if !d.fresh(k) {
		return
	}
	pkt := gopacket.NewPacket(data, link, gopacket.DecodeOptions{NoCopy: true, Lazy: false})
	if el := pkt.ErrorLayer(); el != nil {
		d.countError(el.LayerType().String())
	}
	src := f.src
	o := discovery.Observation{Time: f.ci.Timestamp.UTC(), VLAN: int(f.vlan), MAC: net.HardwareAddr(src[:]).String(), Vendor: d.vendorOf(src)}
	if l, ok := pkt.Layer(layers.LayerTypeLinkLayerDiscoveryInfo).(*layers.LinkLayerDiscoveryInfo); ok {
		o.Source = "passive:lldp"
		if name := cleanName([]byte(l.SysName)); name != "" {
			o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: "lldp-system-name"})
		}
		if desc := cleanText([]byte(l.SysDescription)); desc != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "description", Value: firstLine(desc), Confidence: 0.7, Source: "lldp-system-description"})
			d.sigs.text(&o, desc, "lldp-system-description")
		}
		if t := lldpDeviceType(l.SysCapabilities.EnabledCap); t != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: t, Confidence: 0.8, Source: "lldp-capabilities"})
		}
		if ip, ok := netip.AddrFromSlice(l.MgmtAddress.Address); ok && l.MgmtAddress.Subtype == layers.IANAAddressFamilyIPV4 && usableIP(ip) {
			o.IP = ip.Unmap().String()
		}
		if lldp, ok := pkt.Layer(layers.LayerTypeLinkLayerDiscovery).(*layers.LinkLayerDiscovery); ok {
			if lldp.ChassisID.Subtype == layers.LLDPChassisIDSubTypeMACAddr && len(lldp.ChassisID.ID) == 6 {
				o.Hints = append(o.Hints, discovery.Hint{Kind: "chassis_mac", Value: net.HardwareAddr(lldp.ChassisID.ID).String(), Confidence: 1, Source: "lldp-chassis-id"})
			}
			if port := cleanText(lldp.PortID.ID); port != "" && lldp.PortID.Subtype != layers.LLDPPortIDSubtypeMACAddr {
				o.Hints = append(o.Hints, discovery.Hint{Kind: "port", Value: port, Confidence: 1, Source: "lldp-port-id"})
			}
		}
		if l.PortDescription != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "port_description", Value: cleanText([]byte(l.PortDescription)), Confidence: 1, Source: "lldp-port-description"})
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
			d.sigs.text(&o, v, "cdp-software-version")
		}
		if p := cleanText([]byte(c.Platform)); p != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "model", Value: p, Confidence: 0.9, Source: "cdp-platform"})
		}
		if t := cdpDeviceType(c.Capabilities); t != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: t, Confidence: 0.8, Source: "cdp-capabilities"})
		}
		if p := cleanText([]byte(c.PortID)); p != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "port", Value: p, Confidence: 1, Source: "cdp-port-id"})
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

// cleanName keeps a hostname printable and within DNS limits.
func cleanName(b []byte) string {
	s := strings.TrimRight(strings.ReplaceAll(cleanText(b), "\n", " "), ".")
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
		if c >= 0x20 && c < 0x7f || c == '\n' {
			sb.WriteByte(c)
		} else if c == '\r' || c == '\t' {
			sb.WriteByte(' ')
		}
	}
	return strings.TrimSpace(sb.String())
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
