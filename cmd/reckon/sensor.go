package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/discovery/ship"
	"github.com/reckon-dev/reckon/discovery/vendor"
	"github.com/reckon-dev/reckon/inventory"
)

// listFlag collects a repeatable, comma-separable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// runSensor runs a passive sensor on a capture file or a live interface.
// Standalone it folds the observations through the same identity engine as
// the server and prints the devices (at the end of a file; as they appear
// or change when live). With --server it ships them to the central server
// through an on-disk spool.
func runSensor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensor", flag.ContinueOnError)
	var sc config.Sensor
	var locals, networks, sigs listFlag
	fs.StringVar(&sc.Read, "read", "", "a pcap or pcapng capture to read (the format is found from its magic bytes)")
	fs.StringVar(&sc.Interface, "interface", "", "a live interface to capture from (AF_PACKET; needs root or CAP_NET_RAW)")
	fs.StringVar(&sc.BPF, "bpf", "", "a tcpdump filter expression for live capture")
	fs.IntVar(&sc.Workers, "workers", 0, "fanout sockets and decoders for live capture (0: one per CPU)")
	fs.BoolVar(&sc.Replay, "replay", false, "pace a capture file by its timestamps")
	fs.DurationVar(&sc.Resight, "resight", 0, "report a known fact again after this long (default 5m)")
	fs.Var(&locals, "local-networks", "on-link prefixes, comma-separated (more are learned from DHCP, ARP and router advertisements)")
	fs.Var(&networks, "networks", "the organisation's address space (default: the private ranges)")
	fs.Var(&sigs, "signatures", "extra signature files or directories (OS and device-type hints), comma-separated")
	noBuiltin := fs.Bool("no-builtin-signatures", false, "use only the --signatures files, not the built-in set")
	format := fs.String("format", "table", "jsonl (one asset per line) or table")
	name := fs.String("sensor", "", "the sensor's name in observations (default: the host name)")
	ouiFile := fs.String("oui", "", "a newer IEEE oui.csv to name vendors with (default: the embedded table)")
	server := fs.String("server", "", "ship observations to this reckon server (https://reckon.example:8080) instead of printing devices")
	tokenFile := fs.String("token-file", "", "a file holding an operator token for --server (default: $RECKON_TOKEN)")
	spoolDir := fs.String("spool", "", "the on-disk spool for --server (default: a folder under the user's state directory)")
	spoolMax := fs.String("spool-max", "256MiB", "the most the spool may hold on disk; past it the oldest batches are dropped and counted")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on this address (127.0.0.1:9101)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if (sc.Read == "") == (sc.Interface == "") {
		return fmt.Errorf("%w: give --read FILE or --interface IF", errUsage)
	}
	if *format != "jsonl" && *format != "table" {
		return fmt.Errorf("%w: --format must be jsonl or table", errUsage)
	}
	sc.Name = *name
	if sc.Name == "" {
		sc.Name, _ = os.Hostname()
		sc.Name = cmpOr(sc.Name, "sensor")
	}
	sc.LocalNetworks, sc.Networks, sc.Signatures = locals, networks, sigs
	if *noBuiltin {
		f := false
		sc.BuiltinSignatures = &f
	}
	if sc.Read != "" {
		// A file that is no capture is one clear error, before anything runs.
		f, err := passive.OpenFile(sc.Read)
		if err != nil {
			return err
		}
		f.Close()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts, err := sensorOptions(sc, *ouiFile, logger)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *server != "" {
		return shipSensor(ctx, opts, *server, *tokenFile, *spoolDir, *spoolMax, *metricsAddr, stderr, logger)
	}
	engine := inventory.NewEngine(inventory.Options{})
	live := sc.Interface != ""
	var mu sync.Mutex // the engine is touched by the sensor and the printer
	printer := &devicePrinter{w: stdout, format: *format, engine: engine}
	bad := 0
	sensor, err := passive.NewSensor(opts, func(o discovery.Observation) {
		if errs := o.Normalize(); len(errs) > 0 {
			bad++
			return
		}
		mu.Lock()
		defer mu.Unlock()
		engine.Apply(&o)
		if live {
			printer.changed(engine.TakeEvents())
		} else if engine.Len()%1024 == 0 {
			engine.TakeEvents() // nobody reads them: keep memory flat
		}
		engine.TakeDirty()
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, logger, sensor.Collector())
		if err != nil {
			return err
		}
		defer stop()
	}
	if live {
		printer.header()
	}
	runErr := sensor.Run(ctx)
	if live && errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	if !live {
		mu.Lock()
		err := printer.all()
		mu.Unlock()
		if err != nil {
			return err
		}
	}
	st := sensor.Stats()
	src := cmpOr(sc.Read, sc.Interface)
	fmt.Fprintf(stderr, "%s: %d packets, %d observations, %d devices", src, st.Packets, st.Observations, engine.Len())
	if live {
		fmt.Fprintf(stderr, ", %d kernel drops", st.KernelDrops)
	}
	if s := st.ErrorSummary(); s != "" {
		fmt.Fprintf(stderr, "; decode errors: %s", s)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "; %d observations did not normalise", bad)
	}
	fmt.Fprintln(stderr)
	if runErr != nil {
		return fmt.Errorf("%w (the devices above are those found before)", runErr)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sensorOptions turns a sensor's configuration into the passive package's
// options; every problem names its setting.
func sensorOptions(sc config.Sensor, ouiFile string, logger *slog.Logger) (passive.SensorOptions, error) {
	opts := passive.SensorOptions{Read: sc.Read, Interface: sc.Interface, BPF: sc.BPF, Workers: sc.Workers, Replay: sc.Replay,
		Decoder: passive.Options{Sensor: sc.Name, Segment: cmpOr(sc.Interface, filepath.Base(sc.Read)), Resight: sc.Resight, Logger: logger}}
	for _, n := range sc.LocalNetworks {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return opts, fmt.Errorf("local network %q is not a CIDR prefix", n)
		}
		opts.Decoder.LocalNetworks = append(opts.Decoder.LocalNetworks, p)
	}
	for _, n := range sc.Networks {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return opts, fmt.Errorf("network %q is not a CIDR prefix", n)
		}
		opts.Decoder.Networks = append(opts.Decoder.Networks, p)
	}
	builtin := sc.BuiltinSignatures == nil || *sc.BuiltinSignatures
	if len(sc.Signatures) > 0 || !builtin {
		if !builtin && len(sc.Signatures) == 0 {
			return opts, errors.New("no signatures: the built-in set is off and no signature files are given")
		}
		s, err := passive.LoadSignatures(sc.Signatures, builtin)
		if err != nil {
			return opts, fmt.Errorf("signatures: %w", err)
		}
		opts.Decoder.Signatures = s
	}
	if ouiFile != "" {
		t, err := vendor.Load(ouiFile)
		if err != nil {
			return opts, fmt.Errorf("--oui: %w", err)
		}
		opts.Decoder.Vendors = t
	}
	return opts, nil
}

// shipSensor runs the sensor and ships what it finds through the spool.
func shipSensor(ctx context.Context, opts passive.SensorOptions, server, tokenFile, spoolDir, spoolMax, metricsAddr string, stderr io.Writer, logger *slog.Logger) error {
	token, err := ship.LoadToken(tokenFile)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	maxBytes, err := config.ParseBytes(spoolMax)
	if err != nil || maxBytes <= 0 {
		return fmt.Errorf("%w: --spool-max %q: want a size such as 256MiB", errUsage, spoolMax)
	}
	if spoolDir == "" {
		base, err := os.UserCacheDir()
		if os.Geteuid() == 0 || err != nil {
			base = "/var/lib/reckon"
		}
		spoolDir = filepath.Join(base, "reckon", "spool", opts.Decoder.Sensor)
		if os.Geteuid() == 0 {
			spoolDir = filepath.Join(base, "spool", opts.Decoder.Sensor)
		}
	}
	sp, err := ship.Open(ship.Options{Dir: spoolDir, MaxBytes: maxBytes, Server: server, Token: token, Sensor: opts.Decoder.Sensor, Logger: logger})
	if err != nil {
		return err
	}
	defer sp.Close()
	sensor, err := passive.NewSensor(opts, func(o discovery.Observation) {
		if errs := o.Normalize(); len(errs) > 0 {
			return
		}
		if err := sp.Add(o); err != nil {
			logger.Error("spool", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if metricsAddr != "" {
		stop, err := serveMetrics(metricsAddr, logger, sensor.Collector(), spoolCollector{sp, opts.Decoder.Sensor})
		if err != nil {
			return err
		}
		defer stop()
	}
	shipCtx, stopShip := context.WithCancel(context.WithoutCancel(ctx))
	shipped := make(chan error, 1)
	go func() { shipped <- sp.Run(shipCtx) }()
	logger.Info("sensor shipping", "sensor", opts.Decoder.Sensor, "server", server, "spool", spoolDir)
	runErr := sensor.Run(ctx)
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	// A file is done: give the shipper until the spool is empty or the
	// user interrupts; what is left stays on disk for the next start.
	if ctx.Err() == nil {
		sp.Seal()
		for sp.Stats().Pending > 0 || sp.Stats().Bytes > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
	}
	stopShip()
	<-shipped
	st, ss := sensor.Stats(), sp.Stats()
	fmt.Fprintf(stderr, "%s: %d packets, %d observations, %d shipped in %d batches, %d pending on disk, %d dropped\n",
		cmpOr(opts.Read, opts.Interface), st.Packets, st.Observations, ss.Shipped, ss.BatchesShipped, ss.Spooled-ss.Shipped-ss.Dropped-ss.Rejected, ss.Dropped)
	return runErr
}

// spoolCollector exports the spool's counters.
type spoolCollector struct {
	sp     *ship.Spooler
	sensor string
}

var (
	mShipped  = prometheus.NewDesc("reckon_sensor_observations_shipped_total", "Observations the central server acknowledged.", []string{"sensor"}, nil)
	mBatches  = prometheus.NewDesc("reckon_sensor_batches_shipped_total", "Batches the central server acknowledged.", []string{"sensor"}, nil)
	mSpool    = prometheus.NewDesc("reckon_sensor_spool_bytes", "Bytes waiting in the on-disk spool.", []string{"sensor"}, nil)
	mPending  = prometheus.NewDesc("reckon_sensor_spool_pending_batches", "Sealed batches waiting to be shipped.", []string{"sensor"}, nil)
	mDropped  = prometheus.NewDesc("reckon_sensor_spool_dropped_total", "Observations dropped unsent because the spool was full.", []string{"sensor"}, nil)
	mRejected = prometheus.NewDesc("reckon_sensor_rejected_total", "Observations the server refused as invalid (kept in the spool's rejected/ folder).", []string{"sensor"}, nil)
)

func (c spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mShipped, mBatches, mSpool, mPending, mDropped, mRejected} {
		ch <- d
	}
}

func (c spoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.sp.Stats()
	ch <- prometheus.MustNewConstMetric(mShipped, prometheus.CounterValue, float64(s.Shipped), c.sensor)
	ch <- prometheus.MustNewConstMetric(mBatches, prometheus.CounterValue, float64(s.BatchesShipped), c.sensor)
	ch <- prometheus.MustNewConstMetric(mSpool, prometheus.GaugeValue, float64(s.Bytes), c.sensor)
	ch <- prometheus.MustNewConstMetric(mPending, prometheus.GaugeValue, float64(s.Pending), c.sensor)
	ch <- prometheus.MustNewConstMetric(mDropped, prometheus.CounterValue, float64(s.Dropped), c.sensor)
	ch <- prometheus.MustNewConstMetric(mRejected, prometheus.CounterValue, float64(s.Rejected), c.sensor)
}

// serveMetrics serves /metrics for a standalone sensor.
func serveMetrics(addr string, logger *slog.Logger, cs ...prometheus.Collector) (func(), error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		reg.MustRegister(c)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "err", err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// sensorDevice is the sensor's view of an asset: the inventory's summary
// and, since a sensor's reader wants to know why, the hints and
// identifiers, under the inventory's JSON names.
type sensorDevice struct {
	inventory.Summary
	Hints  []inventory.HintRec `json:"hints,omitempty"`
	Idents []inventory.Ident   `json:"identifiers,omitempty"`
}

type devicePrinter struct {
	w      io.Writer
	format string
	engine *inventory.Engine
	tw     *tabwriter.Writer
}

func (p *devicePrinter) device(a *inventory.Asset) sensorDevice {
	d := a.Detail(nil)
	return sensorDevice{Summary: d.Summary, Hints: d.Hints, Idents: d.Idents}
}

func (p *devicePrinter) header() {
	if p.format == "table" {
		fmt.Fprintln(p.w, "MACS\tIPS\tHOSTNAMES\tVENDOR\tOS\tSOURCES\tLAST SEEN")
	}
}

// changed prints the assets the events name, once each, as they are now.
func (p *devicePrinter) changed(events []inventory.Event) {
	var done []string
	for _, ev := range events {
		if slices.Contains(done, ev.AssetID) {
			continue
		}
		done = append(done, ev.AssetID)
		if a, ok := p.engine.Get(ev.AssetID); ok {
			p.line(p.device(a))
		}
	}
}

// all prints every asset, oldest first.
func (p *devicePrinter) all() error {
	var devs []sensorDevice
	p.engine.Assets(func(a *inventory.Asset) { devs = append(devs, p.device(a)) })
	slices.SortFunc(devs, func(a, b sensorDevice) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if p.format == "table" {
		p.tw = tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(p.tw, "MACS\tIPS\tHOSTNAMES\tVENDOR\tOS\tSOURCES\tLAST SEEN")
	}
	for _, d := range devs {
		p.line(d)
	}
	if p.tw != nil {
		return p.tw.Flush()
	}
	return nil
}

func (p *devicePrinter) line(d sensorDevice) {
	if p.format == "jsonl" {
		b, _ := json.Marshal(d)
		p.w.Write(append(b, '\n'))
		return
	}
	w := p.w
	if p.tw != nil {
		w = p.tw
	}
	dash := func(v []string) string {
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(d.MACs), dash(d.IPs), dash(d.Hostnames), dashS(d.Vendor), dashS(d.OS),
		dash(d.Sources), d.LastSeen.Format(time.RFC3339))
}

func dashS(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
