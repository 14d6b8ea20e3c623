package passive

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// LiveOptions configure a live capture.
type LiveOptions struct {
	// Interface to capture on, such as a span port; required.
	Interface string
	// BPF is a tcpdump filter expression ("not tcp", "arp or udp port 67");
	// empty takes every frame. It is compiled by Debian's tcpdump.
	BPF string
	// Workers is the number of sockets in the fanout group, each read by a
	// goroutine of its own; a flow (both directions) stays on one worker.
	// Zero means runtime.NumCPU().
	Workers int
	// FrameSize, BlockSize and NumBlocks shape each worker's TPACKET_V3
	// ring: NumBlocks blocks of BlockSize bytes (a multiple of the page
	// size and of FrameSize). Zero takes 4 KiB, 1 MiB and 32: 32 MiB a
	// worker, which holds about 20,000 full-size frames.
	FrameSize, BlockSize, NumBlocks int
	// NoPromisc leaves the interface's promiscuous mode alone. By default
	// each socket asks for it (PACKET_MR_PROMISC), and the kernel drops the
	// request when the socket closes.
	NoPromisc bool
	// PollTimeout bounds each wait for a block; Live notices the end of its
	// context within about this long. Zero means 100ms.
	PollTimeout time.Duration
	// Stats, if set, is kept up to date while Live runs.
	Stats  *LiveStats
	Logger *slog.Logger
}

// LiveHandler gets every captured frame: worker is the index (0 to
// Workers-1) of the socket that read it, and the same worker never runs
// two calls at once, so a handler may keep per-worker state (a Decoder)
// without a lock. data is only valid during the call.
type LiveHandler func(worker int, data []byte, ci gopacket.CaptureInfo, link layers.LinkType)

// LiveStats counts a live capture; its methods may be called while it runs.
// The counts are refreshed every second and when Live returns.
type LiveStats struct {
	received, kernel, drops, freezes atomic.Uint64
}

// Received is the number of frames handed to the handler.
func (s *LiveStats) Received() uint64 { return s.received.Load() }

// Kernel is the number of frames that passed the filter in the kernel,
// delivered or dropped, summed over the sockets.
func (s *LiveStats) Kernel() uint64 { return s.kernel.Load() }

// Drops is the number of frames the kernel dropped because a ring was full,
// summed over the sockets.
func (s *LiveStats) Drops() uint64 { return s.drops.Load() }

// QueueFreezes is the number of times a ring filled up (TPACKET_V3's
// freeze queue count), summed over the sockets.
func (s *LiveStats) QueueFreezes() uint64 { return s.freezes.Load() }

// Sentinel errors of Live, for errors.Is.
var (
	// ErrNoSuchInterface: the interface to capture on does not exist.
	ErrNoSuchInterface = errors.New("no such interface")
	// ErrLiveUnsupported: live capture is for Linux only.
	ErrLiveUnsupported = errors.New("live capture is only supported on Linux")
)
