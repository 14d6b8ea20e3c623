package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/discovery/active/sweep"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

// runSweep runs a one-off nmap sweep here and prints the devices it finds.
// With a configuration, every target must lie inside one of its scopes.
func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	var targets, discoveryFlag, scripts listFlag
	fs.Var(&targets, "targets", "what to sweep: IPs, CIDRs, ranges (10.0.0.1-20), hostnames; comma-separated or repeated")
	ports := fs.String("ports", "", "top:N, a list or ranges (22,80,8000-8100), T:/U: prefixes (default: nmap's top 1000)")
	cfgPath := configFlag(fs)
	scopeName := fs.String("scope", "", "the configuration's scope to check the targets against (default: the one that allows them)")
	fs.Var(&discoveryFlag, "discovery", "host discovery probes: arp, icmp, syn:PORTS, ack:PORTS, none (default: nmap's)")
	fs.Var(&scripts, "scripts", "identity scripts to run: ssh-hostkey, ssl-cert")
	sv := fs.Bool("service-detection", true, "detect service products and versions (-sV)")
	osd := fs.Bool("os", false, "detect the OS (-O; needs raw packets)")
	noDNS := fs.Bool("no-dns", false, "no reverse DNS lookups (nmap -n)")
	timing := fs.Int("timing", -1, "nmap timing template 0-5 (default: nmap's)")
	maxRate := fs.Int("max-rate", 0, "at most this many packets a second (0: no limit)")
	minRate := fs.Int("min-rate", 0, "at least this many packets a second (0: nmap's own pacing)")
	hostTimeout := fs.Duration("host-timeout", 0, "give up on a host after this long")
	maxRetries := fs.Int("max-retries", -1, "probe retransmissions per port (default: nmap's)")
	chunkSize := fs.Int("chunk-size", 0, "addresses per nmap process (default: the configuration's, 256)")
	workers := fs.Int("workers", 0, "nmap processes at once (default: the configuration's, 2)")
	format := fs.String("format", "table", "table or jsonl (one asset per line)")
	noProgress := fs.Bool("no-progress", false, "no progress bar, even on a terminal")
	verbose := fs.Bool("v", false, "print each nmap command line on stderr")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (targets go in --targets)", errUsage, fs.Arg(0))
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: --targets is required", errUsage)
	}
	if *format != "table" && *format != "jsonl" {
		return fmt.Errorf("%w: --format must be table or jsonl", errUsage)
	}
	cfg := config.Default()
	if *cfgPath != "" {
		c, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		cfg = c
	}
	parsed := make([]active.Target, 0, len(targets))
	for _, raw := range targets {
		t, err := active.ParseTarget(raw)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		parsed = append(parsed, t)
	}
	prefixes, scope, err := checkTargets(ctx, cfg, *cfgPath != "", *scopeName, parsed)
	if err != nil {
		return err
	}
	spec := active.Spec{Discovery: discoveryFlag, ServiceDetection: *sv, OSDetection: *osd, NoDNS: *noDNS, Scripts: scripts,
		MaxRate: *maxRate, MinRate: *minRate, HostTimeout: *hostTimeout, MaxRetries: *maxRetries, NmapPath: cfg.Active.Nmap, Source: "active:nmap", Sensor: "cli"}
	if *timing >= 0 {
		spec.Timing = timing
	}
	if *ports != "" {
		p, err := active.ParsePorts(*ports)
		if err != nil {
			return fmt.Errorf("%w: --ports: %v", errUsage, err)
		}
		spec.Ports = p
	}
	spec.Targets = prefixes
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if spec.NmapPath == "" {
		p, err := active.FindNmap()
		if err != nil {
			return err
		}
		spec.NmapPath = p
	}
	size := cmp(*chunkSize, cfg.Active.ChunkSize)
	nw := cmp(*workers, cfg.Active.Workers)
	chunks := active.Chunk(prefixes, size)
	total := active.Count(prefixes)
	if scope != "" {
		fmt.Fprintf(stderr, "sweeping %d addresses in %d chunks (scope %s)\n", total, len(chunks), scope)
	}

	engine := inventory.NewEngine(inventory.Options{})
	var (
		mu       sync.Mutex
		progress = make([]active.Progress, len(chunks))
		failures []string
		warnings = map[string]bool{}
		found    int
	)
	bar := newProgressBar(stderr, !*noProgress)
	redraw := func(force bool) {
		var sum float64
		up := 0
		var left time.Duration
		for _, p := range progress {
			sum += p.Percent
			up += p.HostsUp
			left = max(left, p.Remaining)
		}
		bar.draw(sum/float64(max(len(chunks), 1)), up, left, force)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(nw, len(chunks)) {
		wg.Go(func() {
			for i := range work {
				sp := spec
				sp.Targets = chunks[i]
				res, err := active.Run(ctx, sp, func(p active.Progress) {
					mu.Lock()
					progress[i] = p
					redraw(false)
					mu.Unlock()
				})
				mu.Lock()
				if *verbose && len(res.Args) > 0 {
					fmt.Fprintf(stderr, "chunk %d: %s\n", i, strings.Join(res.Args, " "))
				}
				progress[i].Percent = 100
				progress[i].HostsUp = res.HostsUp
				for _, w := range res.Warnings {
					warnings[w] = true
				}
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("chunk %d: %v", i, err))
				case res.Partial:
					failures = append(failures, fmt.Sprintf("chunk %d (%s): %s", i, chunks[i][0], res.Failure))
				}
				for _, o := range res.Observations {
					if errs := o.Normalize(); len(errs) == 0 {
						engine.Apply(&o)
						found++
					}
				}
				engine.TakeEvents()
				engine.TakeDirty()
				progress[i].Remaining = 0
				redraw(true)
				mu.Unlock()
			}
		})
	}
	for i := range chunks {
		select {
		case work <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	bar.done()
	for w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	printer := &devicePrinter{w: stdout, format: *format, engine: engine}
	if err := printer.all(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d addresses, %d devices up, %d observations\n", total, engine.Len(), found)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the devices above are those found before")
	}
	if len(failures) > 0 {
		return fmt.Errorf("%s (the devices above are those found)", strings.Join(failures, "; "))
	}
	return nil
}

func cmp(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// checkTargets resolves the targets and checks them against the
// configuration's scopes: the one named, else the first that allows them
// all. Without a configuration nothing but their syntax is checked.
func checkTargets(ctx context.Context, cfg config.Config, haveConfig bool, name string, targets []active.Target) ([]netip.Prefix, string, error) {
	if !haveConfig {
		any := active.Scope{Name: "any", Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
		p, err := any.Resolve(ctx, targets, nil)
		return p, "", err
	}
	scopes, err := scopesOf(cfg)
	if err != nil {
		return nil, "", err
	}
	if len(scopes) == 0 {
		return nil, "", errors.New("the configuration defines no scopes: nothing may be swept (add scopes: [{name, allow: [CIDR...]}])")
	}
	var refusals []string
	for _, sc := range scopes {
		if name != "" && sc.Name != name {
			continue
		}
		p, err := sc.Resolve(ctx, targets, nil)
		if err == nil {
			return p, sc.Name, nil
		}
		refusals = append(refusals, err.Error())
	}
	if len(refusals) == 0 {
		return nil, "", fmt.Errorf("%w: --scope %q is not a scope of the configuration", errUsage, name)
	}
	return nil, "", fmt.Errorf("refused before nmap started: %s", strings.Join(refusals, "; "))
}

// scopesOf turns the configuration's scopes into active's.
func scopesOf(cfg config.Config) ([]active.Scope, error) {
	out := make([]active.Scope, 0, len(cfg.Scopes))
	for i, sc := range cfg.Scopes {
		s, err := active.ParseScope(sc.Name, sc.Allow, sc.Exclude)
		if err != nil {
			return nil, fmt.Errorf("scopes[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// sweepDefinitions turns the configuration's sweeps into definitions.
func sweepDefinitions(cfg config.Config) []sweep.Definition {
	out := make([]sweep.Definition, 0, len(cfg.Sweeps))
	for _, s := range cfg.Sweeps {
		d := sweep.Definition{Name: s.Name, Scope: s.Scope, Targets: s.Targets, Ports: s.Ports, Discovery: s.Discovery,
			ServiceDetection: s.ServiceDetection, OSDetection: s.OSDetection, NoDNS: s.NoDNS, Scripts: s.Scripts, Timing: s.Timing, MaxRate: s.MaxRate, MinRate: s.MinRate,
			HostTimeout: sweep.Duration(s.HostTimeout), Schedule: s.Schedule, InitialRun: s.InitialRun, ChunkSize: s.ChunkSize,
			Enabled: s.Enabled == nil || *s.Enabled}
		out = append(out, d)
	}
	return out
}

// progressBar draws one line on a terminal; elsewhere it stays quiet.
type progressBar struct {
	w    io.Writer
	on   bool
	last time.Time
}

func newProgressBar(w io.Writer, want bool) *progressBar {
	on := false
	if f, ok := w.(*os.File); ok && want {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressBar{w: w, on: on}
}

func (b *progressBar) draw(percent float64, up int, left time.Duration, force bool) {
	if !b.on || !force && time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	n := int(percent / 100 * width)
	n = min(max(n, 0), width)
	eta := "--"
	if left > 0 {
		eta = left.Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%%  %d up  %s left ", strings.Repeat("#", n), strings.Repeat(".", width-n), percent, up, eta)
}

func (b *progressBar) done() {
	if b.on {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

// newSweepService builds the sweep service of serve: scopes from the
// configuration, results ingested into the inventory, nmap's files under
// the data directory.
func newSweepService(cfg config.Config, st *store.Store, inv *inventory.Inventory, logger *slog.Logger) (*sweep.Service, error) {
	scopes, err := scopesOf(cfg)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(cfg.DataDir, "sweeps")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("sweeps: %w", err)
	}
	nmapPath := cfg.Active.Nmap
	if len(cfg.Sweeps) > 0 && nmapPath == "" {
		if p, err := active.FindNmap(); err != nil {
			logger.Error("sweeps are configured but will fail", "err", err)
		} else {
			nmapPath = p
		}
	}
	if nmapPath != "" {
		if ok, why := active.Privileges(nmapPath); !ok {
			logger.Warn("nmap may not send raw packets: sweeps use TCP connect scans and no OS detection", "why", why)
		}
	}
	return sweep.New(sweep.Options{
		Store: st,
		Ingest: func(ctx context.Context, batchID, by string, obs []discovery.Observation) error {
			_, err := inv.Ingest(ctx, batchID, by, obs, false)
			return err
		},
		Scopes: scopes, ChunkSize: cfg.Active.ChunkSize, ChunkTimeout: cfg.Active.ChunkTimeout, Nmap: nmapPath, WorkDir: work,
		Logger: logger.With("component", "sweeps"),
	}), nil
}
