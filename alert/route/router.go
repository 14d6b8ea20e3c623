package route

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/alert/notify"
)

// Device is what the router needs to know of an alert's device.
type Device struct {
	Site, BusinessUnit, Owner, DeviceType string
	IPs                                   []netip.Addr
	// Down: the device is not seen any more (the inventory marked it
	// missing): its check and drift alerts are inhibited, since an
	// assessment of a host that is gone says nothing new.
	Down bool
}

// RouterOptions configure a Router.
type RouterOptions struct {
	Tree     Route
	Alerts   *alert.Store
	Silences *Silences
	// Device looks an asset up; false when there is none.
	Device func(assetID string) (Device, bool)
	// Send hands notifications to a receiver (an outbox: it must not wait
	// for delivery).
	Send   func(ctx context.Context, receiver string, n []notify.Notification) error
	Logger *slog.Logger
	Now    func() time.Time
}

// Router assigns teams to alerts and notifies their receivers, grouped, with
// silences and inhibition applied.
type Router struct {
	o  RouterOptions
	mu sync.Mutex
	// groups waiting to be sent, by receiver and group key.
	groups map[string]*group
	// lastSent is when each alert was last notified, for repeats.
	lastSent map[string]time.Time
}

type group struct {
	receiver string
	key      string
	due      time.Time
	sentOnce bool
	items    map[string]notify.Notification // by alert id: the latest word on each
	interval time.Duration
}

// NewRouter returns a Router.
func NewRouter(o RouterOptions) *Router {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Router{o: o, groups: map[string]*group{}, lastSent: map[string]time.Time{}}
}

// Attrs are an alert's routing attributes.
func (r *Router) Attrs(a alert.Alert) (Attrs, Device) {
	at := Attrs{Severity: string(a.Severity), Kind: string(a.Kind), CheckID: a.CheckID, AssetID: a.AssetID}
	if i := strings.IndexByte(a.CheckID, '-'); i > 0 {
		at.Family = strings.ToLower(a.CheckID[:i])
	}
	var d Device
	if a.AssetID != "" && r.o.Device != nil {
		if dev, ok := r.o.Device(a.AssetID); ok {
			d = dev
			at.Site, at.BusinessUnit, at.Owner, at.DeviceType, at.IPs = d.Site, d.BusinessUnit, d.Owner, d.DeviceType, d.IPs
		}
	}
	return at, d
}

// Handle routes what Observe changed: it gives each new alert its team and
// queues the notifications (held back by silences and inhibition).
func (r *Router) Handle(ctx context.Context, changes []alert.Change) {
	silences := r.activeSilences(ctx)
	for _, ch := range changes {
		event := string(ch.Type)
		switch ch.Type {
		case alert.ChangeOpened, alert.ChangeReopened, alert.ChangeCleared:
		case alert.ChangeUpdated:
			if !ch.Refired {
				continue
			}
			event = "refired"
		default:
			continue
		}
		a := ch.Alert
		at, dev := r.Attrs(a)
		targets := r.o.Tree.Resolve(at)
		if a.Team == "" && targets[0].Team != "" {
			if err := r.o.Alerts.SetTeam(ctx, a.ID, targets[0].Team); err != nil {
				r.o.Logger.Warn("routing: setting the alert's team failed", "alert", a.ID, "err", err)
			} else {
				a.Team = targets[0].Team
			}
		}
		if dev.Down && (a.Kind == alert.KindCheckFailed || a.Kind == alert.KindDrift) {
			r.o.Logger.Info("routing: inhibited (the device is down)", "alert", a.ID)
			continue
		}
		if sl := silences.Silencing(at); sl != nil {
			r.o.Logger.Info("routing: silenced", "alert", a.ID, "silence", sl.ID)
			continue
		}
		n := notification(a, event, r.o.Now())
		for _, t := range targets {
			for _, recv := range t.Receivers {
				r.add(recv, t, at, n)
			}
		}
	}
}

// activeSilences reads the silences active now; on a read error it notifies
// anyway (a silence is the exception, losing an alert is worse).
func (r *Router) activeSilences(ctx context.Context) Active {
	if r.o.Silences == nil {
		return nil
	}
	act, err := r.o.Silences.Active(ctx)
	if err != nil {
		r.o.Logger.Warn("routing: reading silences failed; notifying anyway", "err", err)
	}
	return act
}

func notification(a alert.Alert, event string, now time.Time) notify.Notification {
	return notify.Notification{ID: uuid.NewString(), Event: event, AlertID: a.ID, Kind: string(a.Kind), Severity: string(a.Severity),
		AssetID: a.AssetID, Title: a.Title, Condition: string(a.Condition), Workflow: string(a.Workflow), Team: a.Team,
		Detail: a.Detail, At: now.UTC()}
}

func (r *Router) add(receiver string, t Target, at Attrs, n notify.Notification) {
	key := receiver + "|" + t.GroupKey(at)
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.groups[key]
	if !ok {
		g = &group{receiver: receiver, key: t.GroupKey(at), due: now.Add(t.GroupWait), items: map[string]notify.Notification{}, interval: t.GroupInterval}
		r.groups[key] = g
	}
	g.items[n.AlertID] = n
}

// Flush sends the groups that are due; Run calls it every second.
func (r *Router) Flush(ctx context.Context) {
	now := r.o.Now()
	type batch struct {
		receiver string
		ns       []notify.Notification
	}
	var out []batch
	r.mu.Lock()
	for _, g := range r.groups {
		if len(g.items) == 0 || now.Before(g.due) {
			continue
		}
		ns := make([]notify.Notification, 0, len(g.items))
		for _, n := range g.items {
			n.Group, n.Count = g.key, len(g.items)
			ns = append(ns, n)
			r.lastSent[n.AlertID] = now
		}
		out = append(out, batch{g.receiver, ns})
		g.items = map[string]notify.Notification{}
		g.sentOnce = true
		g.due = now.Add(g.interval)
	}
	r.mu.Unlock()
	for _, b := range out {
		if err := r.o.Send(ctx, b.receiver, b.ns); err != nil {
			r.o.Logger.Error("routing: queueing notifications failed", "receiver", b.receiver, "notifications", len(b.ns), "err", err)
		}
	}
}

// Repeat notifies again, through their routes, the alerts still firing
// that nobody has taken in hand (workflow new) and that were last notified
// longer ago than their route's repeat interval.
func (r *Router) Repeat(ctx context.Context) error {
	open, _, err := r.o.Alerts.List(ctx, alert.Filter{States: []alert.State{alert.StateNew}, Limit: alert.MaxLimit})
	if err != nil {
		return err
	}
	now := r.o.Now()
	silences := r.activeSilences(ctx)
	for _, a := range open {
		if a.Condition != alert.Firing {
			continue
		}
		at, dev := r.Attrs(a)
		if dev.Down && (a.Kind == alert.KindCheckFailed || a.Kind == alert.KindDrift) {
			continue
		}
		targets := r.o.Tree.Resolve(at)
		r.mu.Lock()
		last, seen := r.lastSent[a.ID]
		r.mu.Unlock()
		if !seen {
			// Not notified by this process yet (it started since): count
			// from when the alert last fired.
			last = a.LastFiredAt
		}
		if now.Sub(last) < targets[0].RepeatInterval {
			continue
		}
		if silences.Silencing(at) != nil {
			continue
		}
		n := notification(a, "repeat", now)
		for _, t := range targets {
			for _, recv := range t.Receivers {
				r.add(recv, t, at, n)
			}
		}
		r.mu.Lock()
		r.lastSent[a.ID] = now
		r.mu.Unlock()
	}
	return nil
}

// Run flushes groups every second and looks for repeats every minute,
// until ctx ends.
func (r *Router) Run(ctx context.Context) {
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	repeat := time.NewTicker(time.Minute)
	defer repeat.Stop()
	for {
		select {
		case <-ctx.Done():
			// What is grouped goes out now rather than be lost.
			r.mu.Lock()
			for _, g := range r.groups {
				g.due = time.Time{}
			}
			r.mu.Unlock()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.Flush(fctx)
			cancel()
			return
		case <-flush.C:
			r.Flush(ctx)
		case <-repeat.C:
			if err := r.Repeat(ctx); err != nil {
				r.o.Logger.Warn("routing: looking for repeats failed", "err", err)
			}
		}
	}
}
