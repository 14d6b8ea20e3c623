package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/alert/notify"
	"github.com/reckon-dev/reckon/alert/route"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
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
