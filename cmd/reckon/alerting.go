package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/alert/notify"
	"github.com/reckon-dev/reckon/alert/route"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/cmdb/runner"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

// routeTree turns the configuration's routing tree into route's.
func routeTree(r config.AlertRoute) (route.Route, error) {
	out := route.Route{Team: r.Team, Receiver: r.Receivers, Continue: r.Continue, GroupBy: r.GroupBy,
		GroupWait: r.GroupWait, GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval,
		Match: route.Match{Severity: r.Match.Severity, Kind: r.Match.Kind, Family: r.Match.Family, CheckID: r.Match.CheckID,
			Site: r.Match.Site, BusinessUnit: r.Match.BusinessUnit, Owner: r.Match.Owner, DeviceType: r.Match.DeviceType}}
	for _, n := range r.Match.Network {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return route.Route{}, fmt.Errorf("alerts.route: network %q: %w", n, err)
		}
		out.Match.Network = append(out.Match.Network, p)
	}
	for _, c := range r.Routes {
		rc, err := routeTree(c)
		if err != nil {
			return route.Route{}, err
		}
		out.Routes = append(out.Routes, rc)
	}
	return out, nil
}

// alerting is the alert process serve runs: routing, silences and one
// notification outbox per receiver.
type alerting struct {
	router      *route.Router
	silences    *route.Silences
	dispatchers map[string]*notify.Dispatcher
}

func newAlerting(cfg config.Config, st *store.Store, alerts *alert.Store, inv *inventory.Inventory, logger *slog.Logger, reg prometheus.Registerer) (*alerting, error) {
	tree, err := routeTree(cfg.Alerts.Route)
	if err != nil {
		return nil, err
	}
	var names []string
	a := &alerting{silences: route.NewSilences(st), dispatchers: map[string]*notify.Dispatcher{}}
	log := logger.With("component", "alerts")
	for _, rc := range cfg.Alerts.Receivers {
		var sink notify.Sink
		switch {
		case rc.Webhook != nil:
			w := &notify.Webhook{URL: rc.Webhook.URL, Timeout: rc.Webhook.Timeout, ID: "webhook:" + rc.Name}
			if rc.Webhook.SecretFile != "" {
				b, err := os.ReadFile(rc.Webhook.SecretFile)
				if err != nil {
					return nil, fmt.Errorf("alerts.receivers %s: secret_file: %w", rc.Name, err)
				}
				w.Secret = []byte(strings.TrimSpace(string(b)))
			}
			sink = w
		case rc.Syslog != nil:
			sink = &notify.Syslog{Network: rc.Syslog.Network, Addr: rc.Syslog.Addr, Facility: rc.Syslog.Facility, Version: version, ID: "syslog:" + rc.Name}
		}
		d, err := notify.NewDispatcher(notify.Options{Store: st, Sinks: []notify.Sink{sink}, Logger: log, Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"receiver": rc.Name}, reg)})
		if err != nil {
			return nil, fmt.Errorf("alerts.receivers %s: %w", rc.Name, err)
		}
		a.dispatchers[rc.Name] = d
		names = append(names, rc.Name)
	}
	if err := tree.Validate(names); err != nil {
		return nil, err
	}
	a.router = route.NewRouter(route.RouterOptions{Tree: tree, Alerts: alerts, Silences: a.silences, Logger: log,
		Device: func(id string) (route.Device, bool) {
			s, ok := inv.Lookup(id)
			if !ok {
				return route.Device{}, false
			}
			d := route.Device{DeviceType: s.DeviceType, Down: s.Missing}
			if s.CMDB != nil {
				d.Site, d.BusinessUnit, d.Owner = s.CMDB.Site, s.CMDB.BusinessUnit, s.CMDB.Owner
			}
			for _, ip := range s.IPs {
				if p, err := netip.ParseAddr(ip); err == nil {
					d.IPs = append(d.IPs, p)
				}
			}
			return d, true
		},
		Send: func(ctx context.Context, receiver string, n []notify.Notification) error {
			d, ok := a.dispatchers[receiver]
			if !ok {
				return fmt.Errorf("no receiver %q", receiver)
			}
			return d.Enqueue(ctx, n)
		}})
	return a, nil
}

// start runs the outboxes and the router until ctx ends; wait returns once
// they have stopped.
func (a *alerting) start(ctx context.Context, alerts *alert.Store) (wait func(), err error) {
	for name, d := range a.dispatchers {
		if err := d.Start(ctx); err != nil {
			return nil, fmt.Errorf("alerts.receivers %s: %w", name, err)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); a.router.Run(ctx) }()
	// Accepted risks whose expiry passed while their condition fires reopen.
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ch, err := alerts.ReopenExpired(ctx, time.Now()); err == nil && len(ch) > 0 {
					a.router.Handle(ctx, ch)
				}
			}
		}
	}()
	return func() {
		<-done
		for _, d := range a.dispatchers {
			d.Stop()
		}
	}, nil
}

// watchSources syncs the alert kinds that are a whole state rather than
// events, every minute: the CMDB records the last reconciliation found
// stale, and reckon's own health (a CMDB that the last run could not read,
// a sweep whose last run failed, an assessment backlog over its limit).
func (a *alerting) watchSources(ctx context.Context, cfg config.Config, st *store.Store, alerts *alert.Store, recon *runner.Service, sensors []*sensorWatch, logger *slog.Logger) {
	log := logger.With("component", "alerts")
	lastStats := map[string]passive.SensorStats{}
	sync := func() {
		if recon != nil {
			items, run, err := recon.Stale(ctx)
			if err == nil {
				var sigs []alert.Signal
				for _, ci := range items {
					sigs = append(sigs, alert.Signal{Severity: alert.SeverityLow, Key: "ci " + ci.ID,
						Title:  "CMDB record not seen on the network: " + ci.Name,
						Detail: map[string]any{"ci": ci, "run_id": run.ID}})
				}
				a.handle(ctx, alerts, alert.KindStale, sigs, log)
			} else if !errors.Is(err, runner.ErrNotFound) {
				log.Warn("alerts: reading stale CMDB records failed", "err", err)
			}
		}
		sigs, err := healthSignals(ctx, cfg, st)
		if err != nil {
			log.Warn("alerts: reading reckon's health failed", "err", err)
			return
		}
		sigs = append(sigs, sensorHealth(sensors, lastStats)...)
		a.handle(ctx, alerts, alert.KindHealth, sigs, log)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		sync()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *alerting) handle(ctx context.Context, alerts *alert.Store, kind alert.Kind, sigs []alert.Signal, log *slog.Logger) {
	ch, err := alerts.Sync(ctx, kind, sigs)
	if err != nil {
		log.Warn("alerts: syncing "+string(kind)+" alerts failed", "err", err)
		return
	}
	a.router.Handle(ctx, ch)
}

// healthSignals are reckon's own failures as alert signals.
func healthSignals(ctx context.Context, cfg config.Config, st *store.Store) ([]alert.Signal, error) {
	db := st.DB
	var out []alert.Signal
	if cfg.CMDB.Kind != "" {
		var last []struct {
			ID     string `db:"id"`
			State  string `db:"state"`
			Errors string `db:"errors"`
		}
		if err := db.SelectContext(ctx, &last, `SELECT id, state, errors FROM reconciliations
			WHERE state IN ('succeeded', 'partial', 'failed') AND dry_run = `+boolFalse(st)+` ORDER BY created_at DESC LIMIT 1`); err != nil {
			return nil, err
		}
		if len(last) == 1 && last[0].State == "failed" {
			out = append(out, alert.Signal{Severity: alert.SeverityHigh, Key: "cmdb", Title: "The CMDB could not be read: reconciliation failed",
				Detail: map[string]any{"reconciliation": last[0].ID, "errors": last[0].Errors}})
		}
	}
	var sweeps []struct {
		Name    string `db:"name"`
		State   string `db:"state"`
		Failure string `db:"failure"`
		RunID   string `db:"id"`
	}
	if err := db.SelectContext(ctx, &sweeps, `SELECT s.name, r.state, r.failure, r.id FROM sweep_runs r JOIN sweeps s ON s.id = r.sweep_id
		WHERE r.state IN ('succeeded', 'failed') AND r.created_at = (SELECT MAX(r2.created_at) FROM sweep_runs r2
		WHERE r2.sweep_id = r.sweep_id AND r2.state IN ('succeeded', 'failed'))`); err != nil {
		return nil, err
	}
	for _, s := range sweeps {
		if s.State == "failed" {
			out = append(out, alert.Signal{Severity: alert.SeverityHigh, Key: "sweep " + s.Name, Title: "Sweep " + s.Name + " failed: discovery is blind there",
				Detail: map[string]any{"sweep": s.Name, "run": s.RunID, "failure": s.Failure}})
		}
	}
	quiet, err := alert.SilentSensors(ctx, st, cfg.Alerts.SensorSilence, time.Now())
	if err != nil {
		return nil, err
	}
	out = append(out, quiet...)
	if cfg.AssessEnabled() {
		var backlog int
		if err := db.GetContext(ctx, &backlog, `SELECT COUNT(*) FROM river_job WHERE kind = 'assess.host' AND state IN ('available', 'retryable')`); err != nil {
			return nil, err
		}
		if limit := cfg.Assess.BacklogLimit; backlog > limit {
			out = append(out, alert.Signal{Severity: alert.SeverityMedium, Key: "assessment backlog",
				Title:  fmt.Sprintf("%d hosts wait for assessment (limit %d): add workers or narrow the ports", backlog, limit),
				Detail: map[string]any{"waiting": backlog, "limit": limit}})
		}
	}
	return out, nil
}

func boolFalse(st *store.Store) string {
	if st.Kind == store.Postgres {
		return "false"
	}
	return "0"
}

// sensorsSeen records when remote sensors last shipped, at most once a
// minute per sensor: the ingest path then pays a map lookup per batch, not a
// write (the silence that raises an alert is counted in minutes).
func sensorsSeen(st *store.Store) func(ctx context.Context, sensors []string, by string) error {
	var mu sync.Mutex
	written := map[string]time.Time{}
	return func(ctx context.Context, sensors []string, by string) error {
		now := time.Now()
		var due []string
		mu.Lock()
		for _, n := range sensors {
			if now.Sub(written[n]) >= time.Minute {
				written[n] = now
				due = append(due, n)
			}
		}
		mu.Unlock()
		if len(due) == 0 {
			return nil
		}
		return alert.NoteSensors(ctx, st, due, by, now)
	}
}
