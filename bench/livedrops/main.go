// Command livedrops is the sensor side of bench/live-drops.sh: it captures
// an interface with passive.Live, one decoder per worker, until SIGINT or
// SIGTERM, then prints one line of counts:
//
//	received=N kernel=N drops=N freezes=N observations=N
//
// It logs "live capture" on stderr once its sockets are open.
//
//	livedrops -i eth0 [-workers 2] [-blocks 32] [-bpf EXPR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
)

func main() {
	iface := flag.String("i", "", "interface")
	workers := flag.Int("workers", 0, "fanout sockets (0: one per CPU)")
	blocks := flag.Int("blocks", 0, "1 MiB ring blocks per worker (0: Live's default)")
	filter := flag.String("bpf", "", "tcpdump filter expression")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n := *workers
	if n <= 0 {
		n = defaultWorkers()
	}
	var observations atomic.Uint64
	decs := make([]*passive.Decoder, n)
	for i := range decs {
		decs[i] = passive.NewDecoder(passive.Options{Sensor: "livedrops", Segment: *iface},
			func(discovery.Observation) { observations.Add(1) })
	}
	var stats passive.LiveStats
	err := passive.Live(ctx, passive.LiveOptions{Interface: *iface, BPF: *filter, Workers: n, NumBlocks: *blocks, Stats: &stats, Logger: log},
		func(w int, data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
			decs[w].Packet(data, ci, link)
		})
	if err != nil {
		fmt.Fprintln(os.Stderr, "livedrops:", err)
		os.Exit(1)
	}
	fmt.Printf("received=%d kernel=%d drops=%d freezes=%d observations=%d\n",
		stats.Received(), stats.Kernel(), stats.Drops(), stats.QueueFreezes(), observations.Load())
}

// defaultWorkers matches Live's own default, so that there is a decoder
// for every worker.
func defaultWorkers() int { return runtime.NumCPU() }
