package passive_test

import (
	"slices"
	"testing"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
)

// merged folds a capture's observations per MAC (or per IP without one),
// the way the inventory would, so that golden facts read like tshark's.
type device struct {
	macs, ips, names []string
	hints            map[string]string
	services         []discovery.Service
	ids              discovery.Identifiers
}

func devicesOf(obs []discovery.Observation) map[string]*device {
	out := map[string]*device{}
	for _, o := range obs {
		key := o.MAC
		if key == "" {
			key = o.IP
		}
		d := out[key]
		if d == nil {
			d = &device{hints: map[string]string{}}
			out[key] = d
		}
		add := func(list *[]string, v string) {
			if v != "" && !slices.Contains(*list, v) {
				*list = append(*list, v)
			}
		}
		add(&d.macs, o.MAC)
		add(&d.ips, o.IP)
		for _, h := range o.Hostnames {
			add(&d.names, h.Name)
		}
		for _, h := range o.Hints {
			d.hints[h.Kind] = h.Value
		}
		d.services = append(d.services, o.Services...)
		if o.Identifiers.DHCPClientID != "" {
			d.ids.DHCPClientID = o.Identifiers.DHCPClientID
		}
		if o.Identifiers.TLSCert != "" {
			d.ids.TLSCert = o.Identifiers.TLSCert
		}
	}
	return out
}

func hasService(d *device, port int, name string) bool {
	for _, s := range d.services {
		if s.Port == port && (name == "" || s.Name == name) {
			return true
		}
	}
	return false
}

// Golden facts for the newer extractors, each read from its capture with
// tshark (the capture's MANIFEST line says where it comes from).
func TestExtractorsGolden(t *testing.T) {
	all := prefixes("0.0.0.0/0", "::/0")
	t.Run("mdns", func(t *testing.T) {
		// dns.a / dns.aaaa answers for johanna-qemu-virtual-machine.local
		// from 10.0.2.7 and fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4.
		d := devicesOf(readWith(t, "zeek__dns_mdns.pcap", passive.Options{}))["8a:3c:d6:e1:4d:c4"]
		if d == nil || !slices.Contains(d.names, "johanna-qemu-virtual-machine") || !slices.Contains(d.ips, "10.0.2.7") ||
			!slices.Contains(d.ips, "fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("mdns-services-and-model", func(t *testing.T) {
		// An iMac sharing its connection (192.168.2.1) announces its SMB,
		// AFP and SSH services and model iMac11,3 (TXT model=).
		d := devicesOf(readWith(t, "ndpi__iphone-excerpt.pcap", passive.Options{}))["c6:2c:03:60:6a:64"]
		if d == nil || !slices.Contains(d.names, "lucas-imac") || d.hints["model"] != "iMac11,3" || d.hints["os"] != "macOS" ||
			!hasService(d, 445, "smb") || !hasService(d, 548, "afpovertcp") || !hasService(d, 22, "sftp-ssh") {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("netbios", func(t *testing.T) {
		// nbns.name GUNNAR<00> at 10.0.4.24 in workgroup VIGILANT_GROUP; GURU at 10.0.5.1.
		devs := devicesOf(readWith(t, "ndpi__netbios.pcap", passive.Options{}))
		if d := devs["10.0.4.24"]; d == nil || !slices.Contains(d.names, "gunnar") || d.hints["workgroup"] != "VIGILANT_GROUP" {
			t.Fatalf("gunnar: %+v", d)
		}
		if d := devs["10.0.5.1"]; d == nil || !slices.Contains(d.names, "guru") {
			t.Fatalf("guru: %+v", d)
		}
	})
	t.Run("dhcpv6", func(t *testing.T) {
		// Solicit/Request from 00:0c:29:5e:77:44 (DUID-LLT); the Reply,
		// sent from port 57236, assigns 2001:db8:1:2::1002.
		d := devicesOf(readWith(t, "csanders__dhcp6_outlease_acquisition.pcapng", passive.Options{}))["00:0c:29:5e:77:44"]
		if d == nil || !slices.Contains(d.ips, "2001:db8:1:2::1002") || !slices.Contains(d.ips, "fe80::20c:29ff:fe5e:7744") ||
			d.ids.DHCPClientID != "00:01:00:01:1d:ef:69:bd:00:0c:29:5e:77:44" || d.hints["dhcpv6_fingerprint"] != "23,24,39,31" {
			t.Fatalf("%+v", d)
		}
		d = devicesOf(readWith(t, "tcpdump__dhcpv6-ia-na.pcap", passive.Options{}))["00:01:02:03:04:05"]
		if d == nil || !slices.Contains(d.ips, "2a00:1:1:200:38e6:b22e:c440:acdf") {
			t.Fatalf("ia-na: %+v", d)
		}
	})
	t.Run("ndp", func(t *testing.T) {
		// NS from 2001:db8:1:2::1003 (00:0c:29:2f:80:31); NA for
		// 2001:db8:1:2::1000 at 00:0c:29:1f:a7:55.
		devs := devicesOf(readWith(t, "csanders__icmpv6_neighbor_solicitation.pcapng", passive.Options{}))
		if d := devs["00:0c:29:2f:80:31"]; d == nil || !slices.Contains(d.ips, "2001:db8:1:2::1003") {
			t.Fatalf("solicitor: %+v", d)
		}
		if d := devs["00:0c:29:1f:a7:55"]; d == nil || !slices.Contains(d.ips, "2001:db8:1:2::1000") {
			t.Fatalf("advertiser: %+v", d)
		}
	})
	t.Run("ssdp-search", func(t *testing.T) {
		// A search to 239.255.255.250 may cross a multicast router: nothing
		// proves the sender on-link, so it is known by its address.
		d := devicesOf(readWith(t, "ndpi__ssdp-m-search-ua.pcap", passive.Options{}))["192.168.242.50"]
		if d == nil || d.hints["user_agent"] != "Google Chrome/99.0.4844.74 Mac OS X" || d.hints["os"] != "macOS" {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("http", func(t *testing.T) {
		// http.user_agent Wget/1.14 (darwin12.2.0), Host bro.org, server
		// Apache/2.4.3 (Fedora) on 192.150.187.43:80.
		devs := devicesOf(readWith(t, "zeek__http_get.pcap", passive.Options{Networks: all}))
		if d := devs["141.142.228.5"]; d == nil || d.hints["user_agent"] != "Wget/1.14 (darwin12.2.0)" {
			t.Fatalf("client: %+v", d)
		}
		d := devs["192.150.187.43"]
		if d == nil || !slices.Contains(d.names, "bro.org") {
			t.Fatalf("server: %+v", d)
		}
		found := false
		for _, s := range d.services {
			found = found || s.Port == 80 && s.Product == "Apache" && s.Version == "2.4.3" && s.Banner == "Apache/2.4.3 (Fedora)"
		}
		if !found {
			t.Fatalf("server services: %+v", d.services)
		}
	})
	t.Run("tls", func(t *testing.T) {
		// Chrome 34's ClientHello to google.de; JA4 as proto_tls_test derives it.
		devs := devicesOf(readWith(t, "zeek__tls_chrome-34-google.pcap", passive.Options{Networks: all}))
		if d := devs["192.168.4.149"]; d == nil || d.hints["ja4"] != "t12d2011s3_8dd61975155f_06a4338d0495" {
			t.Fatalf("client: %+v", d)
		}
		if d := devs["74.125.239.152"]; d == nil || !slices.Contains(d.names, "google.de") || !hasService(d, 443, "") {
			t.Fatalf("server: %+v", d)
		}
	})
	t.Run("tls-certificate-over-segments", func(t *testing.T) {
		// The leaf certificate of 68.233.76.12:443 spans two segments; its
		// SHA-256 (tshark's tls.handshake.certificate | sha256sum) and its
		// names (*.taleo.net, taleo.net: the wildcard is no host's name).
		d := devicesOf(readWith(t, "zeek__tls_tls1.2.pcap", passive.Options{Networks: all}))["68.233.76.12"]
		if d == nil || d.ids.TLSCert != "95cb443934beda97627688546191ab1d3989a835592cebdd2434f9ad41324ce1" ||
			!slices.Equal(d.names, []string{"taleo.net"}) || !hasService(d, 443, "ssl") {
			t.Fatalf("%+v", d)
		}
		d = devicesOf(readWith(t, "ndpi__443-safari.pcap", passive.Options{Networks: all}))["178.62.197.130"]
		if d == nil || !slices.Contains(d.names, "www.ntop.org") || d.ids.TLSCert == "" {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("tivo", func(t *testing.T) {
		d := devicesOf(readWith(t, "ndpi__TivoDVR.pcap", passive.Options{Networks: all}))["02:cc:c0:a8:c9:df"]
		if d == nil || !slices.Contains(d.names, "r7000p") || d.hints["model"] != "pc/minidlna" {
			t.Fatalf("%+v", d)
		}
	})
}
