package passive

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packetReader is what the file formats share.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// File is an open capture file, pcap or pcapng, told apart by its magic
// bytes rather than its name.
type File struct {
	f      *os.File
	r      packetReader
	ng     *pcapgo.NgReader
	link   layers.LinkType
	unmap  func()
	Format string // "pcap" or "pcapng"
}

// ErrNotCapture is returned for a file that is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// OpenFile opens a capture file.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w (the file is empty or shorter than a header)", path, ErrNotCapture)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &File{f: f}
	switch {
	case magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a:
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: pcapng: %w", path, err)
		}
		c.r, c.ng, c.link, c.Format = ng, ng, ng.LinkType(), "pcapng"
	case isPcapMagic(magic):
		mapped, unmap := mapFile(f)
		r, err := newPcapReader(br, mapped)
		if err != nil {
			unmap()
			f.Close()
			return nil, fmt.Errorf("%s: pcap: %w", path, err)
		}
		c.unmap = unmap
		c.r, c.link, c.Format = r, r.link, "pcap"
	default:
		f.Close()
		return nil, fmt.Errorf("%s: %w (magic %x)", path, ErrNotCapture, magic)
	}
	return c, nil
}

func isPcapMagic(m []byte) bool {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	switch v {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return true
	}
	return false
}

// Next returns the next packet and its link type; the bytes are valid only
// until the next call. It returns io.EOF at the end.
func (c *File) Next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := c.r.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, 0, err
	}
	link := c.link
	if c.ng != nil && ci.InterfaceIndex > 0 {
		if iface, err := c.ng.Interface(ci.InterfaceIndex); err == nil {
			link = iface.LinkType
		}
	}
	return data, ci, link, nil
}

// Close closes the file.
func (c *File) Close() error {
	if c.unmap != nil {
		c.unmap()
	}
	return c.f.Close()
}
