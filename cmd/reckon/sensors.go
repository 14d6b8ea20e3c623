package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/inventory"
)

// ingester is the part of the inventory an in-process sensor feeds.
type ingester interface {
	Ingest(ctx context.Context, batchID, by string, obs []discovery.Observation, wait bool) (inventory.IngestResult, error)
}

// sensorWatch is what the health alerts know of an in-process sensor.
type sensorWatch struct {
	name    string
	live    bool // reads an interface (a capture file ends by design)
	sensor  *passive.Sensor
	stopped atomic.Pointer[string] // why the live capture stopped; nil while it runs
}

// startSensors runs the configured sensors in-process until ctx ends; the
// returned function waits for them and flushes what they hold. Each
// sensor's observations are ingested in batches of up to 1000, at least
// once a second, under the sensor's own batch ids. It also returns what the
// health alerts watch of each sensor.
func startSensors(ctx context.Context, sensors []config.Sensor, inv ingester, reg prometheus.Registerer, logger *slog.Logger) (func(), []*sensorWatch, error) {
	var wg sync.WaitGroup
	var watches []*sensorWatch
	for _, sc := range sensors {
		opts, err := sensorOptions(sc, "", logger.With("sensor", sc.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("sensors: %s: %w", sc.Name, err)
		}
		b := &sensorBatcher{inv: inv, name: sc.Name, logger: logger.With("sensor", sc.Name), kick: make(chan struct{}, 1)}
		s, err := passive.NewSensor(opts, b.add)
		if err != nil {
			return nil, nil, fmt.Errorf("sensors: %s: %w", sc.Name, err)
		}
		if err := reg.Register(s.Collector()); err != nil {
			return nil, nil, fmt.Errorf("sensors: %s: metrics: %w", sc.Name, err)
		}
		w := &sensorWatch{name: sc.Name, live: sc.Interface != "", sensor: s}
		watches = append(watches, w)
		wg.Add(2)
		done := make(chan struct{})
		go func() {
			defer wg.Done()
			b.loop(ctx, done)
		}()
		go func() {
			defer wg.Done()
			defer close(done)
			for {
				err := s.Run(ctx)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					b.logger.Error("sensor stopped", "err", err)
					why := err.Error()
					w.stopped.Store(&why)
					if sc.Interface != "" {
						// A live interface may come back (a cable, a driver): try again.
						select {
						case <-ctx.Done():
							return
						case <-time.After(10 * time.Second):
						}
						w.stopped.Store(nil)
						continue
					}
				}
				st := s.Stats()
				b.logger.Info("sensor read its capture", "file", sc.Read, "packets", st.Packets, "observations", st.Observations)
				if sc.Repeat <= 0 {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(sc.Repeat):
				}
			}
		}()
		logger.Info("sensor started", "sensor", sc.Name, "interface", sc.Interface, "read", sc.Read)
	}
	return wg.Wait, watches, nil
}

// sensorHealth turns the sensors' state into health signals: a live sensor
// whose capture stopped, one that saw no packet since the last look, one
// whose kernel dropped packets since the last look. last holds the
// counters of the last look, by sensor.
func sensorHealth(watches []*sensorWatch, last map[string]passive.SensorStats) []alert.Signal {
	var out []alert.Signal
	for _, w := range watches {
		st := w.sensor.Stats()
		prev, seen := last[w.name]
		last[w.name] = st
		if !w.live {
			continue
		}
		key := "sensor " + w.name
		switch why := w.stopped.Load(); {
		case why != nil:
			out = append(out, alert.Signal{Severity: alert.SeverityHigh, Key: key, Title: "Sensor " + w.name + " stopped: " + *why,
				Detail: map[string]any{"sensor": w.name, "error": *why}})
		case seen && st.Packets == prev.Packets:
			out = append(out, alert.Signal{Severity: alert.SeverityHigh, Key: key, Title: "Sensor " + w.name + " stopped reporting: no packet since the last look",
				Detail: map[string]any{"sensor": w.name, "packets": st.Packets}})
		}
		if seen && st.KernelDrops > prev.KernelDrops {
			out = append(out, alert.Signal{Severity: alert.SeverityMedium, Key: key + " drops", Title: fmt.Sprintf("Sensor %s dropped %d packets", w.name, st.KernelDrops-prev.KernelDrops),
				Detail: map[string]any{"sensor": w.name, "dropped": st.KernelDrops - prev.KernelDrops, "packets": st.Packets - prev.Packets}})
		}
	}
	return out
}

// sensorBatcher collects a sensor's observations into ingest batches.
type sensorBatcher struct {
	inv    ingester
	name   string
	logger *slog.Logger
	mu     sync.Mutex
	buf    []discovery.Observation
	kick   chan struct{}
}

func (b *sensorBatcher) add(o discovery.Observation) {
	if errs := o.Normalize(); len(errs) > 0 {
		return
	}
	b.mu.Lock()
	b.buf = append(b.buf, o)
	full := len(b.buf) >= 1000
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// loop flushes every second, when a batch fills, and once more after the
// sensor is done (done closed), with a short grace for the last batch.
func (b *sensorBatcher) loop(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			b.flush(fctx)
			cancel()
			return
		case <-t.C:
		case <-b.kick:
		}
		b.flush(ctx)
	}
}

func (b *sensorBatcher) flush(ctx context.Context) {
	b.mu.Lock()
	obs := b.buf
	b.buf = nil
	b.mu.Unlock()
	for len(obs) > 0 {
		n := min(len(obs), 1000)
		id := "sensor:" + b.name + ":" + uuid.Must(uuid.NewV7()).String()
		for attempt := 0; ; attempt++ {
			_, err := b.inv.Ingest(ctx, id, "sensor:"+b.name, obs[:n], false)
			if err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				b.logger.Warn("observations not ingested at shutdown", "count", len(obs))
				return
			}
			b.logger.Warn("ingest failed; retrying", "err", err, "attempt", attempt+1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
			}
		}
		obs = obs[n:]
	}
}
