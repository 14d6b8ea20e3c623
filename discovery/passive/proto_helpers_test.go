package passive

// Helpers shared by the protocol parsers' tests: payloads out of the
// captures in testdata, and the invariants the fuzz targets check.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capturePayloads reads testdata/name (pcap or pcapng, told by its magic)
// and returns the L4 payload of each frame by its 1-based number, as
// tshark numbers them: the UDP or TCP payload (when not empty), or the
// ICMPv6 message from its type byte. Frames without one are absent.
func capturePayloads(t testing.TB, name string) map[int][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var (
		next func() ([]byte, gopacket.CaptureInfo, error)
		link layers.LinkType
	)
	if bytes.HasPrefix(raw, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, link = r.ReadPacketData, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, link = r.ReadPacketData, r.LinkType()
	}
	out := map[int][]byte{}
	for n := 1; ; n++ {
		data, _, err := next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s frame %d: %v", name, n, err)
		}
		pkt := gopacket.NewPacket(data, link, gopacket.Default)
		if l, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && len(l.Payload) > 0 {
			out[n] = slices.Clip(l.Payload)
		} else if l, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(l.Payload) > 0 {
			out[n] = slices.Clip(l.Payload)
		} else if l, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			out[n] = append(slices.Clone(l.Contents), l.Payload...)
		}
	}
}

// framePayload returns one frame's payload, failing the test without one.
func framePayload(t testing.TB, name string, frame int) []byte {
	t.Helper()
	p, ok := capturePayloads(t, name)[frame]
	if !ok {
		t.Fatalf("%s: frame %d has no payload", name, frame)
	}
	return p
}

// within reports whether inner lies inside outer's memory; an empty inner
// lies anywhere.
func within(inner, outer []byte) bool {
	if len(inner) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return p >= lo && p+uintptr(len(inner)) <= lo+uintptr(len(outer))
}

// noAllocs fails the test when f allocates.
func noAllocs(t *testing.T, what string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(100, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", what, n)
	}
}
