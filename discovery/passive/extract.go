package passive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/reckon-dev/reckon/discovery"
)

// The extractors below turn the in-place parsers' results (proto_*.go) into
// observations. Each computes its dedup key from the parsed bytes first and
// builds strings only for a fact that is new or due again.

// scratch holds the parsers' working memory, one set per decoder.
type scratch struct {
	dns   dnsScratch
	dhcp6 dhcp6Msg
	nd    ndMsg
	ssdp  ssdpMsg
	tivo  tivoBeacon
	http  httpMsg
	hello tlsClientHello
	ja4   [36]byte
	buf   [512]byte
}

func addHint(o *discovery.Observation, kind string, v []byte, conf float64, src string) string {
	s := cleanText(v)
	if len(s) > 300 {
		s = s[:300]
	}
	if s != "" {
		o.Hints = append(o.Hints, discovery.Hint{Kind: kind, Value: s, Confidence: conf, Source: src})
	}
	return s
}

func addName(o *discovery.Observation, name []byte, how string) {
	n := cleanName(name)
	n = strings.TrimSuffix(n, ".local")
	if n == "" || !validHostname(n) {
		return
	}
	for _, h := range o.Hostnames {
		if h.Name == n {
			return
		}
	}
	o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: n, How: how})
}

// validHostname refuses what is not a host's name: a bare address, a
// reverse-lookup name, or something with spaces.
func validHostname(n string) bool {
	if _, err := netip.ParseAddr(n); err == nil {
		return false
	}
	if strings.HasSuffix(n, ".arpa") || strings.ContainsAny(n, " /\\@") {
		return false
	}
	return true
}

// other starts an observation of a host that is not the frame's sender
// (the server a client named, an address a DNS answer gave): by IP alone,
// and only inside the organisation's networks.
func (d *Decoder) other(source string, ip netip.Addr) (discovery.Observation, bool) {
	ip = ip.Unmap()
	if !usableIP(ip) || !d.internal(ip) {
		return discovery.Observation{}, false
	}
	return discovery.Observation{Source: source, Time: d.fr.ci.Timestamp.UTC(), VLAN: int(d.fr.vlan), IP: ip.String()}, true
}

// onDHCPv6 reports a DHCPv6 client: its MAC (from a link-layer DUID, else
// the frame), its DUID as a client id, the addresses a server assigned in a
// Reply, its FQDN (option 39), vendor class (16) and option request list
// (6) as a fingerprint.
func (d *Decoder) onDHCPv6() {
	f, m := &d.fr, &d.sc.dhcp6
	if err := parseDHCPv6(f.payload, m); err != nil && m.Type == 0 {
		d.countError("DHCPv6")
		return
	}
	const reply, advertise = 7, 2
	fromServer := m.Type == reply || m.Type == advertise || m.Type == 10 /* reconfigure */ || m.Type == 13
	var mac [6]byte
	switch {
	case m.HasClientMAC:
		mac = m.ClientMAC
	case !fromServer && f.hasSrc && m.Relays == 0:
		mac = f.src
	case fromServer && m.Relays == 0 && usableMAC(f.dst):
		mac = f.dst
	}
	if mac == [6]byte{} || !usableMAC(mac) {
		if len(m.ClientDUID) == 0 {
			return
		}
	}
	if fromServer && m.Type != reply {
		return // an advertisement offers; only a reply assigns
	}
	p := f.payload
	k := seenKey{kind: kindDHCP6, vlan: f.vlan, mac: mac}
	if len(p) > 4 {
		k.h = d.hash(p[:1], p[4:])
	}
	if !d.fresh(k) {
		return
	}
	o := discovery.Observation{Source: "passive:dhcpv6", Time: f.ci.Timestamp.UTC(), VLAN: int(f.vlan)}
	if mac != [6]byte{} && usableMAC(mac) {
		o.MAC = net.HardwareAddr(mac[:]).String()
		o.Vendor = d.vendorOf(mac)
	}
	if len(m.ClientDUID) > 0 {
		o.Identifiers.DHCPClientID = hexColons(m.ClientDUID)
	}
	if m.HasFQDN {
		addName(&o, m.FQDN(), "dhcpv6-fqdn")
	}
	if m.HasVendorClass && !fromServer {
		addHint(&o, "vendor_class", m.VendorClass, 0.5, "dhcpv6-vendor-class")
	}
	if len(m.ORO) > 0 && !fromServer {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "dhcpv6_fingerprint", Value: string(appendORO(d.sc.buf[:0], m.ORO)), Confidence: 1, Source: "dhcpv6-option-6"})
	}
	var addrs []netip.Addr
	if m.Type == reply {
		for _, a := range m.Addrs[:m.NAddrs] {
			if usableIP(a) {
				addrs = append(addrs, a)
			}
		}
	} else if !fromServer && m.Relays == 0 && usableIP(f.srcIP) {
		addrs = append(addrs, f.srcIP)
	}
	if len(addrs) == 0 {
		if o.MAC != "" || len(o.Hostnames) > 0 || o.Identifiers.DHCPClientID != "" {
			d.send(o)
		}
		return
	}
	for _, a := range addrs {
		oa := o
		oa.IP = a.String()
		if o.MAC != "" {
			d.local.learnHost(a, mac)
		}
		d.send(oa)
	}
}

// onND reports what IPv6 neighbour and router discovery say: a solicitation
// or advertisement binds an address to a link-layer address, a router
// advertisement names a router and its on-link prefixes (which the decoder
// learns).
func (d *Decoder) onND(b []byte) {
	f, m := &d.fr, &d.sc.nd
	if err := parseND(b, m); err != nil && m.Type == 0 {
		d.countError("ICMPv6")
		return
	}
	if f.ttl != 255 {
		return // RFC 4861: anything else may come from off-link
	}
	var mac [6]byte
	switch {
	case len(m.SourceLL) == 6:
		mac = [6]byte(m.SourceLL)
	case m.Type == 136 && len(m.TargetLL) == 6:
		mac = [6]byte(m.TargetLL)
	case f.hasSrc:
		mac = f.src
	}
	if !usableMAC(mac) {
		return
	}
	ip := f.srcIP
	if m.Type == 136 && m.Target.IsValid() {
		ip = m.Target // an advertisement speaks for its target
	}
	if m.Type == 134 {
		for _, p := range m.Prefixes[:m.NPrefixes] {
			if p.OnLink {
				d.local.learnPrefix(p.Prefix)
			}
		}
	}
	k := seenKey{kind: kindND, vlan: f.vlan, mac: mac, ip: ip.As16(), h: uint64(m.Type)}
	if m.Type == 136 && m.Router {
		k.h |= 0x100
	}
	if !d.fresh(k) {
		return
	}
	o := discovery.Observation{Source: "passive:ndp", Time: f.ci.Timestamp.UTC(), VLAN: int(f.vlan), MAC: net.HardwareAddr(mac[:]).String(), Vendor: d.vendorOf(mac)}
	if usableIP(ip) {
		o.IP = ip.String()
		d.local.learnHost(ip, mac)
	}
	if m.Type == 134 || m.Type == 136 && m.Router {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: "router", Confidence: 0.7, Source: "ndp-router"})
	}
	d.send(o)
}

// onDNS reads mDNS, LLMNR and NetBIOS name service messages for the names,
// services and models their senders announce, and DNS answers for the
// names of internal addresses.
func (d *Decoder) onDNS(kind string) {
	f := &d.fr
	p := f.payload
	if len(p) < 12 || p[2]&0x80 == 0 && kind != "netbios" {
		return // a query names nothing
	}
	k := d.key(kindDNS)
	k.mac = f.src
	k.h = d.hash(p[2:])
	if !d.fresh(k) {
		return
	}
	var err error
	switch kind {
	case "mdns":
		err = d.mdns(p)
	case "llmnr":
		err = d.llmnr(p)
	case "netbios":
		err = d.netbios(p)
	case "dns":
		err = d.dnsAnswers(p)
	}
	if err != nil {
		d.countError(kind)
	}
}

// mdns: a response's A/AAAA records for the sender's address give its
// names; PTR, SRV and TXT records its services and model; HINFO its OS.
func (d *Decoder) mdns(p []byte) error {
	f := &d.fr
	o, ok := d.base("passive:mdns", f.srcIP)
	if !ok {
		return nil
	}
	var services []string
	type srv struct {
		target string
		svc    discovery.Service
	}
	var srvs []srv
	err := walkDNS(p, &d.sc.dns, func(rr *dnsRR) bool {
		if rr.Section == dnsQuestion {
			return true
		}
		switch rr.Type {
		case dnsTypeA, dnsTypeAAAA:
			a, ok := rr.A()
			if !ok {
				a, ok = rr.AAAA()
			}
			if ok && a.Unmap() == f.srcIP.Unmap() {
				addName(&o, rr.Name, "mdns")
			}
		case dnsTypePTR:
			// _services._dns-sd._udp.local lists service types; a type's
			// PTR names an instance of it.
			if bytes.HasPrefix(rr.Name, []byte("_")) && !bytes.HasPrefix(rr.Name, []byte("_services.")) {
				t := string(rr.Name)
				if !containsStr(services, t) && len(services) < 16 {
					services = append(services, t)
					d.sigs.text(&o, t, "mdns-service")
				}
			}
		case dnsTypeSRV:
			// A sleep proxy answers for hosts that sleep: a service is
			// the sender's only when its target is a name the sender's
			// own address record proves (checked after the walk).
			if port, target, ok := rr.SRV(); ok && port != 0 && len(srvs) < 16 {
				if proto := srvProto(rr.Name); proto != "" {
					srvs = append(srvs, srv{target: strings.TrimSuffix(cleanName(target), ".local"),
						svc: discovery.Service{Port: int(port), Proto: proto, Name: srvService(rr.Name)}})
				}
			}
		case dnsTypeTXT:
			for data := rr.Data; len(data) > 0; {
				s, rest, ok := nextTXT(data)
				if !ok {
					break
				}
				data = rest
				key, val, has := splitTXT(s)
				if !has || len(val) == 0 {
					continue
				}
				switch strings.ToLower(string(key)) {
				case "md", "model", "am", "usb_mdl", "ty", "product", "mdl":
					if v := addHint(&o, "model", val, 0.8, "mdns-txt-"+strings.ToLower(string(key))); v != "" {
						d.sigs.text(&o, v, "mdns-model")
					}
				case "fn", "n":
					addHint(&o, "friendly_name", val, 0.6, "mdns-txt-"+strings.ToLower(string(key)))
				}
			}
		case dnsTypeHINFO:
			if cpu, osb, ok := rr.HINFO(); ok {
				if v := addHint(&o, "os", osb, 0.5, "mdns-hinfo"); v != "" {
					d.sigs.text(&o, v, "mdns-hinfo")
				}
				addHint(&o, "cpu", cpu, 0.5, "mdns-hinfo")
			}
		}
		return true
	})
	for _, s := range srvs {
		for _, h := range o.Hostnames {
			if h.Name == s.target {
				o.Services = append(o.Services, s.svc)
				break
			}
		}
	}
	if len(services) > 0 {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "mdns_services", Value: strings.Join(services, " "), Confidence: 1, Source: "mdns"})
	}
	if len(o.Hostnames) > 0 || len(o.Hints) > 0 || len(o.Services) > 0 {
		d.send(o)
	}
	return err
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// srvProto and srvService read "instance._http._tcp.local".
func srvProto(name []byte) string {
	switch {
	case bytes.Contains(name, []byte("._tcp.")):
		return "tcp"
	case bytes.Contains(name, []byte("._udp.")):
		return "udp"
	}
	return ""
}

func srvService(name []byte) string {
	i := bytes.LastIndex(name, []byte("._tcp."))
	if i < 0 {
		i = bytes.LastIndex(name, []byte("._udp."))
	}
	if i < 0 {
		return ""
	}
	j := bytes.LastIndex(name[:i], []byte("._"))
	if j < 0 {
		return ""
	}
	return cleanName(name[j+2 : i])
}

// llmnr: a response's answer names the sender when it gives its address.
func (d *Decoder) llmnr(p []byte) error {
	f := &d.fr
	o, ok := d.base("passive:llmnr", f.srcIP)
	if !ok {
		return nil
	}
	err := walkDNS(p, &d.sc.dns, func(rr *dnsRR) bool {
		if rr.Section != dnsAnswer {
			return true
		}
		a, ok := rr.A()
		if !ok {
			a, ok = rr.AAAA()
		}
		if ok && a.Unmap() == f.srcIP.Unmap() {
			addName(&o, rr.Name, "llmnr")
		}
		return true
	})
	if len(o.Hostnames) > 0 {
		d.send(o)
	}
	return err
}

// netbios: registrations and answers bind a NetBIOS name to an address;
// a node status answer lists a node's names and its MAC.
func (d *Decoder) netbios(p []byte) error {
	f := &d.fr
	type nb struct {
		ip        netip.Addr
		name      string
		workgroup string
	}
	var found []nb
	var unit [6]byte
	var statNames []string
	var statGroup string
	err := walkDNS(p, &d.sc.dns, func(rr *dnsRR) bool {
		if rr.Section == dnsQuestion || len(found) >= 8 {
			return true
		}
		name, n, suffix, ok := decodeNetBIOSName(rr.Name)
		if !ok {
			return true
		}
		switch rr.Type {
		case dnsTypeNB:
			for i := 0; i < 4; i++ {
				flags, ip, ok := nbAddr(rr.Data, i)
				if !ok {
					break
				}
				e := nb{ip: ip}
				switch {
				case flags&0x8000 != 0 && suffix == 0x00:
					e.workgroup = cleanText(name[:n])
				case flags&0x8000 == 0 && (suffix == 0x00 || suffix == 0x20):
					e.name = cleanName(name[:n])
				default:
					continue
				}
				found = append(found, e)
			}
		case dnsTypeNBSTAT:
			u, ok := walkNBStat(rr.Data, func(nm []byte, sfx byte, flags uint16) bool {
				switch {
				case flags&0x8000 == 0 && (sfx == 0x00 || sfx == 0x20):
					if s := cleanName(nm); s != "" && !containsStr(statNames, s) {
						statNames = append(statNames, s)
					}
				case flags&0x8000 != 0 && sfx == 0x00:
					statGroup = cleanText(nm)
				}
				return true
			})
			if ok {
				unit = u
			}
		}
		return true
	})
	for _, e := range found {
		var o discovery.Observation
		var ok bool
		if e.ip.Unmap() == f.srcIP.Unmap() {
			o, ok = d.base("passive:netbios", e.ip)
		} else {
			o, ok = d.other("passive:netbios", e.ip)
		}
		if !ok {
			continue
		}
		if e.name != "" {
			addName(&o, []byte(e.name), "netbios")
		}
		if e.workgroup != "" {
			o.Hints = append(o.Hints, discovery.Hint{Kind: "workgroup", Value: e.workgroup, Confidence: 0.8, Source: "netbios"})
		}
		if len(o.Hostnames) > 0 || len(o.Hints) > 0 {
			d.send(o)
		}
	}
	if len(statNames) > 0 && p[2]&0x80 != 0 {
		// A node status answer comes from the node itself.
		o, ok := d.base("passive:netbios", f.srcIP)
		if ok {
			if usableMAC(unit) && o.MAC == "" && d.local.owns(f.srcIP, f.src) {
				o.MAC = net.HardwareAddr(unit[:]).String()
			}
			for _, n := range statNames {
				addName(&o, []byte(n), "netbios")
			}
			if statGroup != "" {
				o.Hints = append(o.Hints, discovery.Hint{Kind: "workgroup", Value: statGroup, Confidence: 0.8, Source: "netbios"})
			}
			d.send(o)
		}
	}
	return err
}

// dnsAnswers: a DNS answer whose A or AAAA record gives an address inside
// the organisation's networks names that address; so does a PTR answer
// for it.
func (d *Decoder) dnsAnswers(p []byte) error {
	n := 0
	err := walkDNS(p, &d.sc.dns, func(rr *dnsRR) bool {
		if rr.Section != dnsAnswer || n >= 16 {
			return true
		}
		var ip netip.Addr
		var name []byte
		switch rr.Type {
		case dnsTypeA, dnsTypeAAAA:
			a, ok := rr.A()
			if !ok {
				a, ok = rr.AAAA()
			}
			if !ok {
				return true
			}
			ip, name = a, rr.Name
		case dnsTypePTR:
			a, ok := reverseAddr(rr.Name)
			if !ok {
				return true
			}
			target, _, err := rr.DataName(0)
			if err != nil {
				return true
			}
			ip, name = a, target
		default:
			return true
		}
		o, ok := d.other("passive:dns", ip)
		if !ok {
			return true
		}
		addName(&o, name, "dns")
		if len(o.Hostnames) > 0 {
			n++
			d.send(o)
		}
		return true
	})
	return err
}

// reverseAddr reads an IPv4 in-addr.arpa name ("5.0.0.10.in-addr.arpa").
func reverseAddr(name []byte) (netip.Addr, bool) {
	s, ok := strings.CutSuffix(string(name), ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[3-i] = byte(v)
	}
	return netip.AddrFrom4(b), true
}

// onSSDP reads UPnP announcements and answers (a device's SERVER string,
// description LOCATION, types and UUID) and searches (a control point's
// User-Agent).
func (d *Decoder) onSSDP() {
	f, m := &d.fr, &d.sc.ssdp
	if !parseSSDP(f.payload, m) {
		return
	}
	typ := m.NT
	if m.Kind == ssdpResponse {
		typ = m.ST
	}
	k := d.key(kindSSDP)
	k.mac = f.src
	k.h = d.hash([]byte{byte(m.Kind)}, m.Server, m.Location, typ, m.UserAgent)
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:ssdp", f.srcIP)
	if !ok {
		return
	}
	if m.Kind == ssdpSearch {
		if ua := addHint(&o, "user_agent", m.UserAgent, 0.6, "ssdp-user-agent"); ua != "" {
			d.sigs.userAgent(&o, ua)
			d.send(o)
		}
		return
	}
	if v := addHint(&o, "ssdp_server", m.Server, 0.8, "ssdp-server"); v != "" {
		d.sigs.text(&o, v, "ssdp-server")
	}
	addHint(&o, "upnp_location", m.Location, 1, "ssdp-location")
	if v := addHint(&o, "upnp_type", typ, 0.8, "ssdp-type"); v != "" {
		d.sigs.text(&o, v, "ssdp-type")
	}
	if u, _, _ := bytes.Cut(m.USN, []byte("::")); bytes.HasPrefix(u, []byte("uuid:")) {
		addHint(&o, "upnp_uuid", u[5:], 1, "ssdp-usn")
	}
	if len(o.Hints) > 0 {
		d.send(o)
	}
}

// onTiVo reads a TiVoConnect beacon: the machine's name and platform.
func (d *Decoder) onTiVo() {
	f, b := &d.fr, &d.sc.tivo
	if !parseTiVo(f.payload, b) {
		return
	}
	k := d.key(kindSSDP)
	k.mac = f.src
	k.h = d.hash(b.Machine, b.Platform, b.Identity)
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:tivo", f.srcIP)
	if !ok {
		return
	}
	addName(&o, b.Machine, "tivo-beacon")
	if v := addHint(&o, "model", b.Platform, 0.7, "tivo-platform"); v != "" {
		d.sigs.text(&o, v, "tivo-platform")
	}
	addHint(&o, "software", b.SWVersion, 0.7, "tivo-swversion")
	d.send(o)
}

// onStream reads the first bytes of a TCP stream: a TLS ClientHello (the
// client's JA4 fingerprint; its SNI names an internal server), a TLS 1.2
// server flight (the certificate's names and fingerprint), or an HTTP head
// (the client's User-Agent and the Host it names; the server's Server).
func (d *Decoder) onStream(tcp []byte) {
	p := d.fr.payload
	switch {
	case len(p) > 5 && p[0] == tlsRecordHandshake && p[1] == 3:
		if p[5] == tlsHSClientHello {
			d.onClientHello(p)
		} else {
			d.onServerFlight(tcp, p)
		}
	case looksLikeHTTP(p):
		d.onHTTP(p)
	}
}

func (d *Decoder) onClientHello(p []byte) {
	f, h := &d.fr, &d.sc.hello
	if err := parseClientHello(p, h); err != nil {
		if h.RecordVersion == 0 {
			d.countError("TLS")
		}
		return
	}
	ja4 := h.JA4(&d.sc.ja4)
	k := d.key(kindTLSClient)
	if ja4 {
		k.h = d.hash(d.sc.ja4[:], h.SNI, f.dstIP.AsSlice())
	} else {
		k.h = d.hash(h.SNI, f.dstIP.AsSlice())
	}
	if !d.fresh(k) {
		return
	}
	if o, ok := d.base("passive:tls", f.srcIP); ok && ja4 {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "ja4", Value: string(d.sc.ja4[:]), Confidence: 1, Source: "tls-client-hello"})
		d.send(o)
	}
	if h.HasSNI && len(h.SNI) > 0 {
		if o, ok := d.other("passive:tls", f.dstIP); ok {
			addName(&o, h.SNI, "tls-sni")
			if len(o.Hostnames) > 0 {
				o.Services = append(o.Services, discovery.Service{Port: int(f.dport), Proto: "tcp", Name: "ssl"})
				d.send(o)
			}
		}
	}
}

func (d *Decoder) onServerFlight(tcp, p []byte) {
	der, ok := tlsLeafCertificate(p)
	if !ok {
		if p[5] == tlsHSServerHello {
			d.followTLS(tcp)
		}
		return
	}
	d.reportCert(der)
}

// reportCert reports the server's certificate: its names, its SHA-256 as an
// identifier, and the port as a TLS service.
func (d *Decoder) reportCert(der []byte) {
	f := &d.fr
	d.markCertKnown()
	k := d.key(kindTLSCert)
	k.h = d.hash(der, []byte{byte(f.sport >> 8), byte(f.sport)})
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:tls", f.srcIP)
	if !ok {
		return
	}
	sum := sha256.Sum256(der)
	o.Identifiers.TLSCert = hex.EncodeToString(sum[:])
	o.Services = append(o.Services, discovery.Service{Port: int(f.sport), Proto: "tcp", Name: "ssl"})
	if cn, sans, err := certNames(der); err == nil {
		for _, n := range append([]string{cn}, sans...) {
			if !strings.Contains(n, "*") {
				addName(&o, []byte(n), "tls-certificate")
			}
		}
	} else {
		d.countError("X509")
	}
	d.send(o)
}

func (d *Decoder) onHTTP(p []byte) {
	f, m := &d.fr, &d.sc.http
	if !parseHTTP(p, m) {
		return
	}
	if m.Request {
		if len(m.UserAgent) == 0 && len(m.Host) == 0 {
			return
		}
		k := d.key(kindHTTPClient)
		k.h = d.hash(m.UserAgent, m.Host, f.dstIP.AsSlice())
		if !d.fresh(k) {
			return
		}
		if o, ok := d.base("passive:http", f.srcIP); ok {
			if ua := addHint(&o, "user_agent", m.UserAgent, 0.6, "http-user-agent"); ua != "" {
				d.sigs.userAgent(&o, ua)
				d.send(o)
			}
		}
		host, _, _ := bytes.Cut(m.Host, []byte(":"))
		if o, ok := d.other("passive:http", f.dstIP); ok && len(host) > 0 {
			addName(&o, host, "http-host")
			if len(o.Hostnames) > 0 {
				o.Services = append(o.Services, discovery.Service{Port: int(f.dport), Proto: "tcp", Name: "http"})
				d.send(o)
			}
		}
		return
	}
	k := d.key(kindHTTPServer)
	k.h = d.hash(m.Server, []byte{byte(f.sport >> 8), byte(f.sport)})
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:http", f.srcIP)
	if !ok {
		return
	}
	svc := discovery.Service{Port: int(f.sport), Proto: "tcp", Name: "http"}
	if server := cleanText(m.Server); server != "" {
		svc.Banner = server
		product, _, _ := strings.Cut(server, " ")
		svc.Product, svc.Version, _ = strings.Cut(product, "/")
		d.sigs.text(&o, server, "http-server")
	}
	o.Services = append(o.Services, svc)
	d.send(o)
}
