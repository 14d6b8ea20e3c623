package passive_test

import (
	"path/filepath"
	"slices"
	"testing"

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
