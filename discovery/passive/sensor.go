package passive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/discovery"
)

// SensorOptions say where a sensor reads frames and how it decodes them.
type SensorOptions struct {
	Decoder Options
	// Read is a capture file (pcap or pcapng); Interface a live interface.
	// Exactly one is set.
	Read      string
	Interface string
	// BPF is a tcpdump filter expression for live capture.
	BPF string
	// Workers is the number of fanout sockets (and decoders) for live
	// capture; 0 means one per CPU.
	Workers int
	// Replay paces a capture file by its timestamps (a demo or a test
	// replaying a recorded network) instead of reading at full speed, and
	// shifts them so that the first packet is seen now.
	Replay bool
}

// Sensor runs decoders over a capture and reports observations. Its
// counters may be read while it runs.
type Sensor struct {
	opts SensorOptions
	emit func(discovery.Observation)
	mu   sync.Mutex // serialises emit across workers

	packets, bytes, observations, drops atomic.Uint64
	tracked, devices                    atomic.Int64
	errMu                               sync.Mutex
	errors                              map[string]uint64
	started                             time.Time
}

// NewSensor returns a sensor; emit is called for each observation, never
// concurrently.
func NewSensor(opts SensorOptions, emit func(discovery.Observation)) (*Sensor, error) {
	if (opts.Read == "") == (opts.Interface == "") {
		return nil, errors.New("a sensor reads either a capture file or an interface")
	}
	if opts.Decoder.Shared == nil {
		// One view of what is on-link for all the workers' decoders.
		opts.Decoder.Shared = NewShared(opts.Decoder.LocalNetworks)
	}
	return &Sensor{opts: opts, emit: emit, errors: map[string]uint64{}}, nil
}

// SensorStats are a sensor's counters.
type SensorStats struct {
	Packets, Bytes, Observations, KernelDrops uint64
	Tracked, Devices                          int64
	Errors                                    map[string]uint64
}

// Stats returns the counters so far.
func (s *Sensor) Stats() SensorStats {
	s.errMu.Lock()
	errs := maps.Clone(s.errors)
	s.errMu.Unlock()
	return SensorStats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), Observations: s.observations.Load(),
		KernelDrops: s.drops.Load(), Tracked: s.tracked.Load(), Devices: s.devices.Load(), Errors: errs}
}

// ErrorSummary renders the decode error counts for a log line.
func (st SensorStats) ErrorSummary() string { return Stats{Errors: st.Errors}.ErrorSummary() }

// worker is one decoder and the counts it has not yet published.
type worker struct {
	s   *Sensor
	dec *Decoder
	pub Stats
}

func (s *Sensor) newWorker() *worker {
	w := &worker{s: s}
	w.dec = NewDecoder(s.opts.Decoder, func(o discovery.Observation) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.emit(o)
	})
	w.pub.Errors = map[string]uint64{}
	return w
}

// publish adds what the worker counted since the last call to the shared
// counters.
func (w *worker) publish() {
	st := &w.dec.Stats
	w.s.packets.Add(st.Packets - w.pub.Packets)
	w.s.bytes.Add(st.Bytes - w.pub.Bytes)
	w.s.observations.Add(st.Observations - w.pub.Observations)
	w.s.tracked.Add(int64(len(w.dec.seen)) - int64(w.pub.Tracked))
	w.s.devices.Add(int64(len(w.dec.devices)) - int64(w.pub.Devices))
	w.pub.Packets, w.pub.Bytes, w.pub.Observations, w.pub.Tracked, w.pub.Devices = st.Packets, st.Bytes, st.Observations, len(w.dec.seen), len(w.dec.devices)
	w.s.errMu.Lock()
	for k, v := range st.Errors {
		if d := v - w.pub.Errors[k]; d > 0 {
			w.s.errors[k] += d
			w.pub.Errors[k] = v
		}
	}
	w.s.errMu.Unlock()
}

// Run reads until the file ends or ctx is done. A file that stops early
// (truncated, corrupt) returns an error after everything before the fault
// was decoded.
func (s *Sensor) Run(ctx context.Context) error {
	s.started = time.Now()
	if s.opts.Read != "" {
		return s.runFile(ctx)
	}
	return s.runLive(ctx)
}

func (s *Sensor) runFile(ctx context.Context) error {
	f, err := OpenFile(s.opts.Read)
	if err != nil {
		return err
	}
	defer f.Close()
	w := s.newWorker()
	defer w.publish()
	var (
		first, start time.Time
		n            int
	)
	for {
		data, ci, link, err := f.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: reading stopped after %d packets: %w", s.opts.Read, w.dec.Stats.Packets, err)
		}
		if s.opts.Replay {
			if first.IsZero() {
				first, start = ci.Timestamp, time.Now()
			}
			if wait := ci.Timestamp.Sub(first) - time.Since(start); wait > time.Millisecond {
				w.publish()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			// A replayed network is seen now: devices in it are current,
			// not as old as the recording.
			ci.Timestamp = start.Add(ci.Timestamp.Sub(first))
		}
		w.dec.Packet(data, ci, link)
		if n++; n&0xfff == 0 {
			w.publish()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}

// runLive captures from the interface with one decoder per fanout worker.
// Each worker publishes its counts every 4096 frames, and a ticker does so
// for quiet workers and copies the ring's drop count.
func (s *Sensor) runLive(ctx context.Context) error {
	workers := s.opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	ws := make([]*worker, workers)
	wmu := make([]sync.Mutex, workers)
	for i := range ws {
		ws[i] = s.newWorker()
	}
	var ls LiveStats
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := make(chan struct{})
	defer close(done)
	publishAll := func() {
		for i, w := range ws {
			wmu[i].Lock()
			w.publish()
			wmu[i].Unlock()
		}
		s.drops.Store(ls.Drops())
	}
	go func() {
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				publishAll()
			}
		}
	}()
	err := Live(ctx, LiveOptions{Interface: s.opts.Interface, BPF: s.opts.BPF, Workers: workers, Stats: &ls, Logger: s.opts.Decoder.Logger},
		func(i int, data []byte, ci gopacket.CaptureInfo, link layers.LinkType) {
			wmu[i].Lock()
			w := ws[i]
			w.dec.Packet(data, ci, link)
			if w.dec.Stats.Packets&0xfff == 0 {
				w.publish()
			}
			wmu[i].Unlock()
		})
	publishAll()
	return err
}

// Collector exports the sensor's counters as Prometheus metrics labelled
// with the sensor's name.
func (s *Sensor) Collector() prometheus.Collector { return &sensorCollector{s: s} }

type sensorCollector struct{ s *Sensor }

var (
	mPackets  = prometheus.NewDesc("reckon_sensor_packets_total", "Frames the sensor decoded.", []string{"sensor"}, nil)
	mBytes    = prometheus.NewDesc("reckon_sensor_bytes_total", "Bytes of the frames the sensor decoded.", []string{"sensor"}, nil)
	mDrops    = prometheus.NewDesc("reckon_sensor_kernel_drops_total", "Frames the kernel dropped before the sensor read them (from the ring's statistics).", []string{"sensor"}, nil)
	mErrors   = prometheus.NewDesc("reckon_sensor_decode_errors_total", "Frames that failed to decode, by layer.", []string{"sensor", "layer"}, nil)
	mObs      = prometheus.NewDesc("reckon_sensor_observations_total", "Observations the sensor produced.", []string{"sensor"}, nil)
	mTracked  = prometheus.NewDesc("reckon_sensor_tracked_facts", "Facts (bindings, names, services) the sensor remembers to report each once per resight window.", []string{"sensor"}, nil)
	mDevices  = prometheus.NewDesc("reckon_sensor_devices", "Devices (by MAC, or by IP without one) the sensor reported within its resight window; with several workers a device seen by two counts twice.", []string{"sensor"}, nil)
	mUptimeTS = prometheus.NewDesc("reckon_sensor_start_time_seconds", "When the sensor started reading.", []string{"sensor"}, nil)
)

func (c *sensorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mPackets, mBytes, mDrops, mErrors, mObs, mTracked, mDevices, mUptimeTS} {
		ch <- d
	}
}

func (c *sensorCollector) Collect(ch chan<- prometheus.Metric) {
	name := c.s.opts.Decoder.Sensor
	st := c.s.Stats()
	ch <- prometheus.MustNewConstMetric(mPackets, prometheus.CounterValue, float64(st.Packets), name)
	ch <- prometheus.MustNewConstMetric(mBytes, prometheus.CounterValue, float64(st.Bytes), name)
	ch <- prometheus.MustNewConstMetric(mDrops, prometheus.CounterValue, float64(st.KernelDrops), name)
	ch <- prometheus.MustNewConstMetric(mObs, prometheus.CounterValue, float64(st.Observations), name)
	ch <- prometheus.MustNewConstMetric(mTracked, prometheus.GaugeValue, float64(st.Tracked), name)
	ch <- prometheus.MustNewConstMetric(mDevices, prometheus.GaugeValue, float64(st.Devices), name)
	if !c.s.started.IsZero() {
		ch <- prometheus.MustNewConstMetric(mUptimeTS, prometheus.GaugeValue, float64(c.s.started.Unix()), name)
	}
	for layer, n := range st.Errors {
		ch <- prometheus.MustNewConstMetric(mErrors, prometheus.CounterValue, float64(n), name, layer)
	}
}
