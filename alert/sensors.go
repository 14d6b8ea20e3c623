package alert

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
)

// NoteSensors records that the named remote sensors shipped observations
// at at (through a token named by).
func NoteSensors(ctx context.Context, st *store.Store, names []string, by string, at time.Time) error {
	slices.Sort(names)
	names = slices.Compact(names)
	q := st.DB.Rebind(`INSERT INTO sensor_status (name, last_seen_at, last_by) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET last_seen_at = excluded.last_seen_at, last_by = excluded.last_by`)
	for _, n := range names {
		if n == "" {
			continue
		}
		if _, err := st.DB.ExecContext(ctx, q, n, at.UTC(), by); err != nil {
			return fmt.Errorf("recording sensor %s: %w", n, err)
		}
	}
	return nil
}

// SilentSensors gives a health signal for each remote sensor that has not
// shipped anything for longer than silence, but did within the last week
// (one retired for longer is forgotten).
func SilentSensors(ctx context.Context, st *store.Store, silence time.Duration, now time.Time) ([]Signal, error) {
	var rows []struct {
		Name string    `db:"name"`
		At   time.Time `db:"last_seen_at"`
		By   string    `db:"last_by"`
	}
	if err := st.DB.SelectContext(ctx, &rows, `SELECT name, last_seen_at, last_by FROM sensor_status`); err != nil {
		return nil, err
	}
	var out []Signal
	for _, r := range rows {
		quiet := now.Sub(r.At)
		if quiet <= silence || quiet > 7*24*time.Hour {
			continue
		}
		out = append(out, Signal{Severity: SeverityHigh, Key: "sensor " + r.Name,
			Title:  fmt.Sprintf("Sensor %s stopped reporting: nothing since %s", r.Name, r.At.UTC().Format(time.RFC3339)),
			Detail: map[string]any{"sensor": r.Name, "last_seen_at": r.At.UTC(), "token": r.By}})
	}
	return out, nil
}
