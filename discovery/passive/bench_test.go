package passive_test

import (
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
)

// BenchmarkDecode decodes every frame of the committed captures (ARP,
// DHCP, DHCPv6, ND, mDNS, NetBIOS, SSDP, TCP, TLS, HTTP, LLDP, CDP, HSRP
// ...) over and over, as a span port repeats itself: the steady state,
// where every fact is already known, must not allocate.
func BenchmarkDecode(b *testing.B) {
	type frame struct {
		data []byte
		ci   gopacket.CaptureInfo
		link layers.LinkType
	}
	var frames []frame
	names, _ := filepath.Glob(filepath.Join("testdata", "*.pcap*"))
	for _, name := range names {
		c, err := passive.OpenFile(name)
		if err != nil {
			continue // the empty and hostile ones
		}
		for {
			data, ci, link, err := c.Next()
			if err != nil {
				break
			}
			frames = append(frames, frame{slices.Clone(data), ci, link})
		}
		c.Close()
	}
	d := passive.NewDecoder(passive.Options{}, func(discovery.Observation) {})
	for _, f := range frames {
		d.Packet(f.data, f.ci, f.link)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := &frames[i%len(frames)]
		d.Packet(f.data, f.ci, f.link)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
}

// BenchmarkMemoryPerDevice reports what the decoder holds per device it
// tracks, at a million devices: each announces itself by ARP (a binding, a
// learned on-link host) and by a TCP SYN (a stack signature), the facts a
// busy segment keeps. The figure is the live heap after a collection,
// divided by the devices.
func BenchmarkMemoryPerDevice(b *testing.B) {
	const n = 1_000_000
	arp := frameARP(b)
	syn := frameSYN(b)
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		emitted := 0
		d := passive.NewDecoder(passive.Options{MaxTracked: 4 * n}, func(discovery.Observation) { emitted++ })
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0)}
		for i := range n {
			mac := [6]byte{0x00, 0x1b, 0x21, byte(i >> 16), byte(i >> 8), byte(i)}
			ip := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
			copy(arp[6:12], mac[:])  // Ethernet source
			copy(arp[22:28], mac[:]) // ARP sender MAC
			copy(arp[28:32], ip[:])  // ARP sender IP
			copy(syn[6:12], mac[:])  // Ethernet source
			copy(syn[26:30], ip[:])  // IPv4 source
			d.Packet(arp, ci, layers.LinkTypeEthernet)
			d.Packet(syn, ci, layers.LinkTypeEthernet)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if emitted != 2*n || d.Tracked() < 2*n {
			b.Fatalf("%d observations, %d facts for %d devices", emitted, d.Tracked(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/device")
		runtime.KeepAlive(d)
	}
}

func frameARP(b *testing.B) []byte {
	buf := gopacket.NewSerializeBuffer()
	src := net.HardwareAddr{0, 0x1b, 0x21, 0, 0, 1}
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: src, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: src, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 254}})
	if err != nil {
		b.Fatal(err)
	}
	return slices.Clone(buf.Bytes())
}

func frameSYN(b *testing.B) []byte {
	buf := gopacket.NewSerializeBuffer()
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 254}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	tcp.SetNetworkLayerForChecksum(ip4)
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0x1b, 0x21, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0x1b, 0x21, 9, 9, 9}, EthernetType: layers.EthernetTypeIPv4}, ip4, tcp)
	if err != nil {
		b.Fatal(err)
	}
	return slices.Clone(buf.Bytes())
}
