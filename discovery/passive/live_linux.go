//go:build linux

package passive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Live captures frames from a network interface until ctx ends, and calls
// handle for each. It opens one TPACKET_V3 AF_PACKET socket per worker,
// joined in one hash fanout group, and reads each from a goroutine of its
// own. Setup errors come back at once: ErrNoSuchInterface, a permission
// error ("needs root or CAP_NET_RAW"), a bad filter. Live returns nil when
// ctx ends, within about PollTimeout, or an error if a socket fails (the
// interface went down or away); the caller may start it again.
func Live(ctx context.Context, opts LiveOptions, handle LiveHandler) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := opts.Interface
	if name == "" {
		return errors.New("live capture: no interface given")
	}
	if handle == nil {
		return errors.New("live capture: no handler")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		if strings.Contains(err.Error(), "no such network interface") {
			return fmt.Errorf("%w %s", ErrNoSuchInterface, name)
		}
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	link, err := linkTypeOf(name)
	if err != nil {
		return err
	}
	if ifi.Flags&net.FlagUp == 0 {
		log.Warn("capture interface is down; it will see nothing until it is up", "interface", name)
	}
	var filter []bpf.RawInstruction
	if opts.BPF != "" {
		if filter, err = CompileBPF(ctx, opts.BPF); err != nil {
			return fmt.Errorf("capture on %s: %w", name, err)
		}
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	frameSize, blockSize, numBlocks := opts.FrameSize, opts.BlockSize, opts.NumBlocks
	if frameSize <= 0 {
		frameSize = 4096
	}
	if blockSize <= 0 {
		blockSize = 1 << 20
	}
	if numBlocks <= 0 {
		numBlocks = 32
	}
	poll := opts.PollTimeout
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	stats := opts.Stats
	if stats == nil {
		stats = &LiveStats{}
	}

	socks := make([]*afpacket.TPacket, 0, workers)
	closeAll := func() {
		for _, s := range socks {
			s.Close()
		}
	}
	fanout := uint16(rand.UintN(1 << 16))
	for i := range workers {
		s, err := afpacket.NewTPacket(afpacket.OptInterface(name), afpacket.TPacketVersion3,
			afpacket.OptFrameSize(frameSize), afpacket.OptBlockSize(blockSize), afpacket.OptNumBlocks(numBlocks),
			afpacket.OptPollTimeout(poll), afpacket.OptAddVLANHeader(true))
		if err != nil {
			closeAll()
			if errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("capture on %s needs root or CAP_NET_RAW: %w", name, err)
			}
			return fmt.Errorf("capture on %s: socket with a %d MiB ring: %w", name, blockSize*numBlocks>>20, err)
		}
		socks = append(socks, s)
		// Frames that arrived between bind and here were not filtered; the
		// decoder takes any frame, so they cost a little and mislead nothing.
		if filter != nil {
			if err := s.SetBPF(filter); err != nil {
				closeAll()
				return fmt.Errorf("capture on %s: attach filter %q: %w", name, opts.BPF, err)
			}
		}
		if !opts.NoPromisc {
			if err := s.SetPromiscuous(true); err != nil {
				closeAll()
				return fmt.Errorf("capture on %s: promiscuous mode: %w", name, err)
			}
		}
		if workers > 1 {
			err := s.SetFanout(afpacket.FanoutHash, fanout)
			// The group id is drawn at random; should the first socket hit
			// a group of another's, draw again.
			for try := 0; err != nil && i == 0 && try < 8; try++ {
				fanout = uint16(rand.UintN(1 << 16))
				err = s.SetFanout(afpacket.FanoutHash, fanout)
			}
			if err != nil {
				closeAll()
				return fmt.Errorf("capture on %s: fanout group %d: %w", name, fanout, err)
			}
		}
	}
	log.Info("live capture", "interface", name, "workers", workers, "filter", opts.BPF,
		"ring_mib_per_worker", blockSize*numBlocks>>20, "promiscuous", !opts.NoPromisc)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	stopWatch := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer stopWatch()

	counts := make([]paddedCount, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readLoop(s, i, link, handle, &stop, &counts[i].n); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}

	kernel := make([]kernelCount, workers)
	refresh := func() {
		var received uint64
		for i := range counts {
			received += counts[i].n.Load()
		}
		stats.received.Store(received)
		var packets, drops, freezes uint64
		for i, s := range socks {
			if _, v3, err := s.SocketStats(); err == nil {
				kernel[i].update(v3)
			}
			packets += kernel[i].packets
			drops += kernel[i].drops
			freezes += kernel[i].freezes
		}
		stats.kernel.Store(packets)
		stats.drops.Store(drops)
		stats.freezes.Store(freezes)
	}
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				refresh()
			}
		}
	}()

	// Close only after every reader and the stats goroutine are done:
	// Close unmaps the ring without the reader's lock.
	wg.Wait()
	cancel()
	<-statsDone
	refresh()
	closeAll()
	log.Info("live capture ended", "interface", name, "received", stats.Received(), "kernel", stats.Kernel(),
		"drops", stats.Drops(), "queue_freezes", stats.QueueFreezes())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	return nil
}

// readLoop hands frames to handle until stop is set or the socket fails.
func readLoop(s *afpacket.TPacket, worker int, link layers.LinkType, handle LiveHandler, stop *atomic.Bool, n *atomic.Uint64) error {
	for !stop.Load() {
		data, ci, err := s.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				continue
			}
			if errors.Is(err, afpacket.ErrPoll) {
				// The kernel flags the socket (ENETDOWN) when the interface
				// goes down or away, and the flag stays: this socket is done.
				return errors.New("the interface went down or away")
			}
			return err
		}
		n.Add(1)
		handle(worker, data, ci, link)
	}
	return nil
}

// paddedCount keeps each worker's counter on a cache line of its own.
type paddedCount struct {
	n atomic.Uint64
	_ [56]byte
}

// kernelCount widens a socket's 32-bit counters (which wrap after four
// billion frames) into running totals.
type kernelCount struct {
	lastPackets, lastDrops, lastFreezes uint32
	packets, drops, freezes             uint64
}

func (k *kernelCount) update(s afpacket.SocketStatsV3) {
	p, d, f := uint32(s.Packets()), uint32(s.Drops()), uint32(s.QueueFreezes())
	k.packets += uint64(p - k.lastPackets)
	k.drops += uint64(d - k.lastDrops)
	k.freezes += uint64(f - k.lastFreezes)
	k.lastPackets, k.lastDrops, k.lastFreezes = p, d, f
}

// linkTypeOf tells the link type of an interface's frames from its hardware
// type. AF_PACKET hands over Ethernet headers on Ethernet and loopback
// devices; the decoder reads nothing else from a live interface.
func linkTypeOf(name string) (layers.LinkType, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("capture on %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("capture on %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("capture on %s: hardware type: %w", name, err)
	}
	switch hw := ifr.Uint16(); hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return layers.LinkTypeEthernet, nil
	default:
		return 0, fmt.Errorf("capture on %s: not an Ethernet interface (ARPHRD %d)", name, hw)
	}
}
