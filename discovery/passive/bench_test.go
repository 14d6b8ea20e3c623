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

// BenchmarkDecode decodes the corpus's ARP, DHCP, CDP and LLDP frames over
// and over, as a span port repeats itself: the steady state, where every
// binding is already known, must not allocate.
func BenchmarkDecode(b *testing.B) {
	type frame struct {
		data []byte
		ci   gopacket.CaptureInfo
		link layers.LinkType
	}
	var frames []frame
	for _, name := range []string{"csanders__arp_resolution.pcapng", "csanders__dhcp_nolease_initialization.pcapng"} {
		c, err := passive.OpenFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
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
