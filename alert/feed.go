package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Asset event kinds the feeder reads (written by the inventory, the CMDB
// reconciliation and the assessments).
const (
	eventVerdict      = "cmdb_verdict"
	eventCheckFailed  = "check_failed"
	eventCheckCleared = "check_cleared"
	eventDrift        = "config_drift"
)

// Event is one row of the asset timeline, as the feeder reads it.
type Event struct {
	ID      int64
	AssetID string
	At      time.Time
	Kind    string
	Detail  map[string]string
}

// EventSignals turns one asset event into alert signals:
//   - a CMDB verdict turning unmanaged fires an unmanaged alert, one
//     turning conflict a conflict alert; leaving either clears it;
//   - a check that starts failing fires a check_failed alert with the
//     check's severity; check_cleared clears it;
//   - configuration drift that weakens the host (a port opened, a weak
//     algorithm offered, a header gone) fires a drift alert keyed by port and
//     field; drift on the same port and field that does not weaken it (the
//     port closed again, the algorithm gone) clears that alert. A replaced
//     certificate or host key, or a new service version, fires a drift
//     alert of its own (low; medium for a host key).
//
// Other events give none.
func EventSignals(ev Event) []Signal {
	d := ev.Detail
	base := func(k Kind, sev Severity, firing bool) Signal {
		return Signal{Kind: k, Severity: sev, AssetID: ev.AssetID, At: ev.At, Firing: firing}
	}
	switch ev.Kind {
	case eventVerdict:
		var out []Signal
		from, to := d["from"], d["to"]
		detail := map[string]any{"reason": d["reason"], "verdict": to, "previous_verdict": from}
		if to == "unmanaged" && from != "unmanaged" {
			s := base(KindUnmanaged, SeverityHigh, true)
			s.Title, s.Detail = "A device the CMDB does not know is on the network", detail
			out = append(out, s)
		}
		if from == "unmanaged" && to != "unmanaged" {
			out = append(out, base(KindUnmanaged, "", false))
		}
		if to == "conflict" && from != "conflict" {
			s := base(KindConflict, SeverityMedium, true)
			s.Title, s.Detail = "The CMDB disagrees with what is on the network", detail
			out = append(out, s)
		}
		if from == "conflict" && to != "conflict" {
			out = append(out, base(KindConflict, "", false))
		}
		return out
	case eventCheckFailed, eventCheckCleared:
		if d["check"] == "" {
			return nil
		}
		sev := Severity(d["severity"])
		if !sev.Valid() {
			sev = SeverityMedium
		}
		s := base(KindCheckFailed, sev, ev.Kind == eventCheckFailed)
		s.CheckID = d["check"]
		if s.Firing {
			s.Title = d["title"]
			s.Detail = map[string]any{"assessment_id": d["assessment"], "evidence": jsonValue(d["evidence"])}
		}
		return []Signal{s}
	case eventDrift:
		return driftSignals(ev)
	}
	return nil
}

// driftSignals: see EventSignals.
func driftSignals(ev Event) []Signal {
	d := ev.Detail
	kind, field := d["drift"], d["field"]
	where := d["protocol"] + "/" + d["port"]
	if d["port"] == "" || d["port"] == "0" {
		where = "host"
	}
	key := where + " " + field
	if kind == "port_opened" || kind == "port_closed" {
		key = where + " port"
	}
	detail := map[string]any{"drift": kind, "port": d["port"], "protocol": d["protocol"], "field": field,
		"before": jsonValue(d["before"]), "after": jsonValue(d["after"]),
		"assessment_id": d["assessment"], "previous_assessment_id": d["previous"]}
	title := "Configuration change: " + strings.ReplaceAll(kind, "_", " ") + " on " + where
	if field != "" && kind != "port_opened" && kind != "port_closed" {
		title += " (" + field + ")"
	}
	switch {
	case d["weaker"] == "true":
		return []Signal{{Kind: KindDrift, Severity: SeverityMedium, AssetID: ev.AssetID, Key: key, Title: title, Detail: detail, At: ev.At, Firing: true}}
	case kind == "cert_changed" || kind == "version_changed" || kind == "service_changed" || kind == "host_key_changed":
		sev := SeverityLow
		if kind == "host_key_changed" {
			sev = SeverityMedium // a new host key is also what a man in the middle shows
		}
		// Its own condition: the key names the change, so the next change
		// of the same kind on the port fires it again.
		return []Signal{{Kind: KindDrift, Severity: sev, AssetID: ev.AssetID, Key: key + " " + kind, Title: title, Detail: detail, At: ev.At, Firing: true}}
	default:
		// Not weaker: it undoes (or improves on) what an earlier drift
		// alert on the same port and field reported.
		return []Signal{{Kind: KindDrift, AssetID: ev.AssetID, Key: key, At: ev.At, Firing: false}}
	}
}

// jsonValue decodes a JSON text kept in an event's detail, or keeps the
// text when it is not JSON.
func jsonValue(s string) any {
	if s == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	return v
}

// Feeder reads the asset timeline and turns its events into alerts. It
// keeps its place in the alert_feed table, so after a restart it goes on
// where it stopped (an event may be read twice after a crash; an alert
// firing twice is the same alert).
type Feeder struct {
	st      *store.Store
	alerts  *Store
	log     *slog.Logger
	name    string
	every   time.Duration
	batch   int
	changes func([]Change)
}

// FeederOptions configure a Feeder.
type FeederOptions struct {
	Store  *store.Store
	Alerts *Store
	// Every is how often the timeline is read (default 1s).
	Every time.Duration
	// OnChanges, when set, is told of every alert change (notifications).
	OnChanges func([]Change)
	Logger    *slog.Logger
}

// NewFeeder returns a Feeder.
func NewFeeder(o FeederOptions) *Feeder {
	f := &Feeder{st: o.Store, alerts: o.Alerts, log: o.Logger, name: "asset_events", every: o.Every, batch: 1000, changes: o.OnChanges}
	if f.every <= 0 {
		f.every = time.Second
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Run reads the timeline until ctx ends.
func (f *Feeder) Run(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		for {
			n, err := f.Once(ctx)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn("alert feed: reading the asset timeline failed; will retry", "err", err)
				}
				break
			}
			if n < f.batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once reads one batch of events past the stored position, observes their
// signals and moves the position on; it returns how many events it read.
func (f *Feeder) Once(ctx context.Context) (int, error) {
	db := f.st.DB
	var last int64
	err := db.GetContext(ctx, &last, db.Rebind(`SELECT last_event_id FROM alert_feed WHERE name = ?`), f.name)
	if errors.Is(err, sql.ErrNoRows) {
		last = 0
	} else if err != nil {
		return 0, err
	}
	type row struct {
		ID      int64     `db:"id"`
		AssetID string    `db:"asset_id"`
		At      time.Time `db:"at"`
		Kind    string    `db:"kind"`
		Detail  string    `db:"detail"`
	}
	var rows []row
	err = db.SelectContext(ctx, &rows, db.Rebind(`SELECT id, asset_id, at, kind, detail FROM asset_events
		WHERE id > ? AND kind IN ('cmdb_verdict', 'check_failed', 'check_cleared', 'config_drift') ORDER BY id LIMIT ?`), last, f.batch)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	var signals []Signal
	for _, r := range rows {
		ev := Event{ID: r.ID, AssetID: r.AssetID, At: r.At.UTC(), Kind: r.Kind}
		if err := json.Unmarshal([]byte(r.Detail), &ev.Detail); err != nil {
			f.log.Warn("alert feed: an event's detail is not JSON; skipped", "event", r.ID, "err", err)
			continue
		}
		signals = append(signals, EventSignals(ev)...)
	}
	changes, err := f.alerts.Observe(ctx, signals)
	if err != nil {
		return 0, fmt.Errorf("observing %d signals: %w", len(signals), err)
	}
	upTo := rows[len(rows)-1].ID
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO alert_feed (name, last_event_id) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id`), f.name, upTo); err != nil {
		return 0, fmt.Errorf("storing the feed position %s: %w", strconv.FormatInt(upTo, 10), err)
	}
	if len(changes) > 0 {
		f.log.Info("alerts changed", "changes", len(changes), "events", len(rows))
		if f.changes != nil {
			f.changes(changes)
		}
	}
	return len(rows), nil
}
