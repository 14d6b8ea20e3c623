package alert

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Options configure a Store.
type Options struct {
	Store *store.Store
	// Logger may be nil, for none.
	Logger *slog.Logger
	// Now is the clock for the times recorded on alerts and transitions;
	// nil means store.Now.
	Now func() time.Time
}

// Store keeps alerts in reckon's database and runs their workflow.
type Store struct {
	st     *store.Store
	logger *slog.Logger
	now    func() time.Time
	// beforeMove, set by tests, runs between a move's read and its update.
	beforeMove func()
}

// New returns a Store over opts.Store, which must be migrated.
func New(opts Options) *Store {
	s := &Store{st: opts.Store, logger: opts.Logger, now: opts.Now}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = store.Now
	}
	return s
}

func (s *Store) db() *sqlx.DB { return s.st.DB }

func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

const alertCols = `id, fingerprint, kind, severity, asset_id, check_id, key, title, condition, workflow, resolution, change_ref,
	risk_expires_at, team, assignee, detail, detail_hash, first_fired_at, last_fired_at, cleared_at, fire_count, regression,
	reopened_count, created_at, updated_at, closed_at, acked_at, escalated_at`

// alertRow is an alert as stored: its detail as JSON, with the hash of its
// stable part.
type alertRow struct {
	Alert
	DetailJSON string `db:"detail"`
	DetailHash string `db:"detail_hash"`
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// alert decodes the stored row into the Alert it carries.
func (r alertRow) alert() (Alert, error) {
	a := r.Alert
	a.Detail = map[string]any{}
	if err := json.Unmarshal([]byte(r.DetailJSON), &a.Detail); err != nil {
		return a, fmt.Errorf("stored alert %s: detail: %w", r.ID, err)
	}
	a.FirstFiredAt, a.LastFiredAt, a.CreatedAt, a.UpdatedAt = a.FirstFiredAt.UTC(), a.LastFiredAt.UTC(), a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	a.RiskExpiresAt, a.ClearedAt, a.ClosedAt, a.AckedAt, a.EscalatedAt = utc(a.RiskExpiresAt), utc(a.ClearedAt), utc(a.ClosedAt), utc(a.AckedAt), utc(a.EscalatedAt)
	return a, nil
}

// selectRow reads one alert by a column (id or fingerprint), taking its row
// lock on PostgreSQL when lock is set (SQLite's write transactions are
// exclusive already).
func (s *Store) selectRow(ctx context.Context, q sqlx.QueryerContext, col, val string, lock bool) (alertRow, bool, error) {
	query := `SELECT ` + alertCols + ` FROM alerts WHERE ` + col + ` = ?`
	if lock && s.st.Kind == store.Postgres {
		query += ` FOR UPDATE`
	}
	var r alertRow
	err := sqlx.GetContext(ctx, q, &r, s.db().Rebind(query), val)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("reading alert: %w", err)
	}
	return r, true, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// insertAlert stores a new alert unless its fingerprint is there already
// (another batch opened it meanwhile); it says whether it did.
func (s *Store) insertAlert(ctx context.Context, tx *sqlx.Tx, r alertRow) (bool, error) {
	a := r.Alert
	res, err := tx.ExecContext(ctx, s.db().Rebind(`INSERT INTO alerts (`+alertCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (fingerprint) DO NOTHING`),
		a.ID, a.Fingerprint, a.Kind, a.Severity, a.AssetID, a.CheckID, a.Key, a.Title, a.Condition, a.Workflow, a.Resolution, a.ChangeRef,
		a.RiskExpiresAt, a.Team, a.Assignee, r.DetailJSON, r.DetailHash, a.FirstFiredAt, a.LastFiredAt, a.ClearedAt, a.FireCount, a.Regression,
		a.ReopenedCount, a.CreatedAt, a.UpdatedAt, a.ClosedAt, a.AckedAt, a.EscalatedAt)
	if err != nil {
		return false, fmt.Errorf("storing alert: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// saveAlert writes back every column but the identity, the team and the
// first firing of an alert whose row the transaction holds.
func (s *Store) saveAlert(ctx context.Context, tx *sqlx.Tx, r alertRow) error {
	a := r.Alert
	_, err := tx.ExecContext(ctx, s.db().Rebind(`UPDATE alerts SET severity = ?, title = ?, condition = ?, workflow = ?, resolution = ?,
		change_ref = ?, risk_expires_at = ?, assignee = ?, detail = ?, detail_hash = ?, last_fired_at = ?, cleared_at = ?, fire_count = ?,
		regression = ?, reopened_count = ?, updated_at = ?, closed_at = ?, acked_at = ?, escalated_at = ? WHERE id = ?`),
		a.Severity, a.Title, a.Condition, a.Workflow, a.Resolution, a.ChangeRef, a.RiskExpiresAt, a.Assignee, r.DetailJSON, r.DetailHash,
		a.LastFiredAt, a.ClearedAt, a.FireCount, a.Regression, a.ReopenedCount, a.UpdatedAt, a.ClosedAt, a.AckedAt, a.EscalatedAt, a.ID)
	if err != nil {
		return fmt.Errorf("storing alert %s: %w", a.ID, err)
	}
	return nil
}

func (s *Store) insertOccurrence(ctx context.Context, tx *sqlx.Tx, alertID string, at time.Time, c Condition, detail string) error {
	_, err := tx.ExecContext(ctx, s.db().Rebind(`INSERT INTO alert_occurrences (alert_id, at, condition, detail) VALUES (?, ?, ?, ?)`),
		alertID, at, c, detail)
	if err != nil {
		return fmt.Errorf("storing an occurrence of alert %s: %w", alertID, err)
	}
	return nil
}

func (s *Store) insertTransition(ctx context.Context, tx *sqlx.Tx, alertID string, t Transition) error {
	_, err := tx.ExecContext(ctx, s.db().Rebind(`INSERT INTO alert_transitions
		(alert_id, at, actor, from_state, to_state, resolution, note, change_ref, expires_at, accept_baseline)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		alertID, t.At, t.By, t.From, t.To, t.Resolution, t.Note, t.ChangeRef, t.ExpiresAt, t.AcceptBaseline)
	if err != nil {
		return fmt.Errorf("storing a transition of alert %s: %w", alertID, err)
	}
	return nil
}

// Observe applies a batch of signals in one transaction, in order for each
// condition, and returns what changed. A cleared signal for a condition with
// no alert changes nothing. Rows are taken in fingerprint order, so that
// concurrent batches do not deadlock; the changes come in that order too.
func (s *Store) Observe(ctx context.Context, signals []Signal) ([]Change, error) {
	type item struct {
		sig        Signal
		fp, hash   string
		detailJSON string
	}
	now := s.clock()
	items := make([]item, 0, len(signals))
	for i, sig := range signals {
		sig, err := sig.prepare(now)
		if err != nil {
			return nil, fmt.Errorf("signal %d: %w", i, err)
		}
		items = append(items, item{sig: sig, fp: Fingerprint(sig), hash: detailHash(sig.Detail), detailJSON: mustJSON(sig.Detail)})
	}
	if len(items) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(items, func(a, b item) int { return strings.Compare(a.fp, b.fp) })
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("observing alerts: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var changes []Change
	for _, it := range items {
		ch, err := s.observeOne(ctx, tx, it.sig, it.fp, it.hash, it.detailJSON, now)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			changes = append(changes, *ch)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("observing alerts: %w", err)
	}
	for _, ch := range changes {
		if ch.Type == ChangeReopened {
			s.logger.Info("alert reopened", "alert", ch.Alert.ID, "kind", ch.Alert.Kind, "closed_as", ch.ClosedAs)
		}
	}
	return changes, nil
}

func (s *Store) observeOne(ctx context.Context, tx *sqlx.Tx, sig Signal, fp, hash, detail string, now time.Time) (*Change, error) {
	r, found, err := s.selectRow(ctx, tx, "fingerprint", fp, true)
	if err != nil {
		return nil, err
	}
	if !found {
		if !sig.Firing {
			return nil, nil
		}
		r = alertRow{Alert: Alert{ID: uuid.Must(uuid.NewV7()).String(), Fingerprint: fp, Kind: sig.Kind, Severity: sig.Severity,
			AssetID: sig.AssetID, CheckID: sig.CheckID, Key: sig.Key, Title: sig.Title, Condition: Firing, Workflow: StateNew,
			FirstFiredAt: sig.At, LastFiredAt: sig.At, FireCount: 1, CreatedAt: now, UpdatedAt: now, Detail: sig.Detail},
			DetailJSON: detail, DetailHash: hash}
		inserted, err := s.insertAlert(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		if inserted {
			if err := s.insertOccurrence(ctx, tx, r.ID, sig.At, Firing, detail); err != nil {
				return nil, err
			}
			return &Change{Type: ChangeOpened, Alert: r.Alert}, nil
		}
		// Another batch opened it first: carry on as an update of theirs.
		if r, found, err = s.selectRow(ctx, tx, "fingerprint", fp, true); err != nil {
			return nil, err
		} else if !found {
			return nil, fmt.Errorf("alert %s was neither stored nor found", fp)
		}
	}
	a := &r.Alert
	if !sig.Firing {
		if a.Condition == Cleared || sig.At.Before(a.LastFiredAt) {
			return nil, nil // cleared already, or older than its latest firing
		}
		a.Condition, a.ClearedAt, a.UpdatedAt = Cleared, &sig.At, now
		if err := s.saveAlert(ctx, tx, r); err != nil {
			return nil, err
		}
		if err := s.insertOccurrence(ctx, tx, a.ID, sig.At, Cleared, detail); err != nil {
			return nil, err
		}
		out, err := r.alert()
		return &Change{Type: ChangeCleared, Alert: out}, err
	}
	if a.Condition == Cleared && a.ClearedAt != nil && sig.At.Before(*a.ClearedAt) {
		return nil, nil // fired before it cleared: old news
	}
	ch := Change{Type: ChangeUpdated, Refired: a.Condition == Cleared}
	var reopened *Transition
	if a.Workflow == StateClosed {
		ch.ClosedAs = a.Resolution
		note := "fired again after being closed as " + string(a.Resolution)
		switch a.Resolution {
		case AcceptedRisk:
			if a.RiskExpiresAt != nil && sig.At.Before(*a.RiskExpiresAt) {
				ch.Type = ChangeSuppressed
			} else if a.RiskExpiresAt != nil {
				note += "; the acceptance expired at " + a.RiskExpiresAt.UTC().Format(time.RFC3339)
			}
		case FalsePositive, AuthorizedChange:
			if hash == r.DetailHash {
				ch.Type = ChangeSuppressed
			} else {
				note += "; its detail differs from when it was closed"
			}
		}
		if ch.Type != ChangeSuppressed {
			t := reopen(a, now, note)
			reopened = &t
			a.Regression = true
			ch.Type = ChangeReopened
		}
	}
	a.Condition, a.ClearedAt, a.UpdatedAt = Firing, nil, now
	a.FireCount++
	if !sig.At.Before(a.LastFiredAt) {
		a.LastFiredAt, a.Severity, a.Title = sig.At, sig.Severity, sig.Title
		r.DetailJSON, r.DetailHash = detail, hash
	}
	if err := s.saveAlert(ctx, tx, r); err != nil {
		return nil, err
	}
	if err := s.insertOccurrence(ctx, tx, a.ID, sig.At, Firing, detail); err != nil {
		return nil, err
	}
	if reopened != nil {
		if err := s.insertTransition(ctx, tx, a.ID, *reopened); err != nil {
			return nil, err
		}
	}
	out, err := r.alert()
	ch.Alert = out
	return &ch, err
}

// ReopenExpired reopens the alerts closed as accepted_risk whose expiry is
// at or before now and whose condition still fires, and returns them. One
// whose condition has cleared stays closed; if it fires again, Observe
// reopens it as a regression.
func (s *Store) ReopenExpired(ctx context.Context, now time.Time) ([]Change, error) {
	var ids []string
	err := s.db().SelectContext(ctx, &ids, s.db().Rebind(`SELECT id FROM alerts
		WHERE workflow = 'closed' AND resolution = 'accepted_risk' AND risk_expires_at <= ? AND condition = 'firing'
		ORDER BY risk_expires_at, id`), now.UTC().Truncate(time.Microsecond))
	if err != nil {
		return nil, fmt.Errorf("finding expired accepted risks: %w", err)
	}
	var changes []Change
	for _, id := range ids {
		ch, err := s.reopenExpired(ctx, id, now.UTC())
		if err != nil {
			return changes, err
		}
		if ch != nil {
			changes = append(changes, *ch)
			s.logger.Info("alert reopened", "alert", id, "kind", ch.Alert.Kind, "closed_as", AcceptedRisk)
		}
	}
	return changes, nil
}

func (s *Store) reopenExpired(ctx context.Context, id string, now time.Time) (*Change, error) {
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reopening alert %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	r, found, err := s.selectRow(ctx, tx, "id", id, true)
	if err != nil || !found {
		return nil, err
	}
	a := &r.Alert
	if a.Workflow != StateClosed || a.Resolution != AcceptedRisk || a.Condition != Firing || a.RiskExpiresAt == nil || a.RiskExpiresAt.After(now) {
		return nil, nil // changed meanwhile
	}
	t := reopen(a, s.clock(), "the accepted risk expired at "+a.RiskExpiresAt.UTC().Format(time.RFC3339)+" and the condition still fires")
	if err := s.saveAlert(ctx, tx, r); err != nil {
		return nil, err
	}
	if err := s.insertTransition(ctx, tx, id, t); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("reopening alert %s: %w", id, err)
	}
	out, err := r.alert()
	return &Change{Type: ChangeReopened, Alert: out, ClosedAs: AcceptedRisk}, err
}

// Transition moves an alert's workflow as req asks, on behalf of by, and
// returns the alert as Get does. A refused move is a *TransitionError. The
// update checks that the workflow is still the one the move was judged on
// (and, for fixed, that the condition is still cleared): of two concurrent
// moves one wins, and the other is refused.
func (s *Store) Transition(ctx context.Context, id string, req TransitionRequest, by string) (Alert, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return Alert{}, errors.New("alert transition: who makes it is not given")
	}
	cur, found, err := s.selectRow(ctx, s.db(), "id", id, false)
	if err != nil {
		return Alert{}, err
	}
	if !found {
		return Alert{}, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	now := s.clock()
	if terr := checkMove(cur.Alert, req, now); terr != nil {
		return Alert{}, terr
	}
	next := cur.Alert
	applyMove(&next, req, by, now)
	t := Transition{At: now, By: by, From: cur.Workflow, To: req.To, Resolution: req.Resolution, Note: strings.TrimSpace(req.Note),
		ChangeRef: next.ChangeRef, ExpiresAt: next.RiskExpiresAt, AcceptBaseline: req.AcceptBaseline}
	if s.beforeMove != nil {
		s.beforeMove()
	}
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return Alert{}, fmt.Errorf("moving alert %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	query := `UPDATE alerts SET workflow = ?, resolution = ?, change_ref = ?, risk_expires_at = ?, assignee = ?, updated_at = ?,
		closed_at = ?, acked_at = ?, escalated_at = ? WHERE id = ? AND workflow = ?`
	if req.Resolution == Fixed {
		query += ` AND condition = 'cleared'`
	}
	res, err := tx.ExecContext(ctx, s.db().Rebind(query), next.Workflow, next.Resolution, next.ChangeRef, next.RiskExpiresAt, next.Assignee,
		next.UpdatedAt, next.ClosedAt, next.AckedAt, next.EscalatedAt, id, cur.Workflow)
	if err != nil {
		return Alert{}, fmt.Errorf("moving alert %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Alert{}, fmt.Errorf("moving alert %s: %w", id, err)
	} else if n == 0 {
		_ = tx.Rollback()
		return Alert{}, s.conflict(ctx, cur.Alert, req, now)
	}
	if err := s.insertTransition(ctx, tx, id, t); err != nil {
		return Alert{}, err
	}
	if err := tx.Commit(); err != nil {
		return Alert{}, fmt.Errorf("moving alert %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

// conflict explains why a move judged on cur found the alert changed.
func (s *Store) conflict(ctx context.Context, cur Alert, req TransitionRequest, now time.Time) error {
	fresh, found, err := s.selectRow(ctx, s.db(), "id", cur.ID, false)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("alert %s: %w", cur.ID, ErrNotFound)
	}
	if fresh.Workflow != cur.Workflow {
		who := ""
		var last Transition
		err := s.db().GetContext(ctx, &last, s.db().Rebind(`SELECT id, at, actor, from_state, to_state, resolution, note, change_ref,
			expires_at, accept_baseline FROM alert_transitions WHERE alert_id = ? ORDER BY id DESC LIMIT 1`), cur.ID)
		if err == nil {
			who = fmt.Sprintf(" (by %s at %s)", last.By, last.At.UTC().Format(time.RFC3339))
		}
		return &TransitionError{From: fresh.Workflow, To: req.To,
			Reason: fmt.Sprintf("the alert moved from %s to %s meanwhile%s; look at it again before moving it", cur.Workflow, fresh.Workflow, who)}
	}
	if terr := checkMove(fresh.Alert, req, now); terr != nil {
		return terr
	}
	return &TransitionError{From: fresh.Workflow, To: req.To, Reason: "the alert changed meanwhile; look at it again before moving it"}
}

// occurrencesShown bounds the occurrences Get returns.
const occurrencesShown = 50

// Get returns an alert with all its transitions and its latest occurrences.
func (s *Store) Get(ctx context.Context, id string) (Alert, error) {
	r, found, err := s.selectRow(ctx, s.db(), "id", id, false)
	if err != nil {
		return Alert{}, err
	}
	if !found {
		return Alert{}, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	a, err := r.alert()
	if err != nil {
		return a, err
	}
	a.Transitions = []Transition{}
	if err := s.db().SelectContext(ctx, &a.Transitions, s.db().Rebind(`SELECT id, at, actor, from_state, to_state, resolution, note,
		change_ref, expires_at, accept_baseline FROM alert_transitions WHERE alert_id = ? ORDER BY id`), id); err != nil {
		return a, fmt.Errorf("reading transitions of alert %s: %w", id, err)
	}
	for i := range a.Transitions {
		t := &a.Transitions[i]
		t.At, t.ExpiresAt = t.At.UTC(), utc(t.ExpiresAt)
	}
	var occ []struct {
		ID        int64     `db:"id"`
		At        time.Time `db:"at"`
		Condition Condition `db:"condition"`
		Detail    string    `db:"detail"`
	}
	if err := s.db().SelectContext(ctx, &occ, s.db().Rebind(`SELECT id, at, condition, detail FROM alert_occurrences
		WHERE alert_id = ? ORDER BY id DESC LIMIT ?`), id, occurrencesShown); err != nil {
		return a, fmt.Errorf("reading occurrences of alert %s: %w", id, err)
	}
	a.Occurrences = make([]Occurrence, len(occ))
	for i, o := range occ {
		oc := Occurrence{ID: o.ID, At: o.At.UTC(), Condition: o.Condition, Detail: map[string]any{}}
		if err := json.Unmarshal([]byte(o.Detail), &oc.Detail); err != nil {
			return a, fmt.Errorf("stored occurrence %d of alert %s: %w", o.ID, id, err)
		}
		a.Occurrences[len(occ)-1-i] = oc
	}
	return a, nil
}

// SetTeam routes an alert to a team ("" for none).
func (s *Store) SetTeam(ctx context.Context, id, team string) error {
	res, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE alerts SET team = ?, updated_at = ? WHERE id = ?`),
		strings.TrimSpace(team), s.clock(), id)
	if err != nil {
		return fmt.Errorf("routing alert %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("routing alert %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	return nil
}

// Filter selects alerts for List; empty fields select all. Several values
// in one field are alternatives.
type Filter struct {
	States     []State
	Severities []Severity
	Kinds      []Kind
	Teams      []string
	AssetID    string
	// Limit is the page size: 100 when zero, at most 1000.
	Limit int
	// Cursor is the next cursor of the previous page.
	Cursor string
}

// MaxLimit bounds a List page.
const MaxLimit = 1000

func in[T ~string](col string, vals []T, where []string, args []any) ([]string, []any) {
	if len(vals) == 0 {
		return where, args
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
	for _, v := range vals {
		args = append(args, string(v))
	}
	return append(where, col+" IN ("+ph+")"), args
}

// List returns the alerts matching f, newest first, and the cursor of the
// next page ("" on the last). An unknown state, severity or kind, or a bad
// cursor, wraps ErrBadFilter.
func (s *Store) List(ctx context.Context, f Filter) ([]Alert, string, error) {
	for _, v := range f.States {
		if !v.Valid() {
			return nil, "", fmt.Errorf("%w: unknown state %q", ErrBadFilter, v)
		}
	}
	for _, v := range f.Severities {
		if !v.Valid() {
			return nil, "", fmt.Errorf("%w: unknown severity %q", ErrBadFilter, v)
		}
	}
	for _, v := range f.Kinds {
		if !v.Valid() {
			return nil, "", fmt.Errorf("%w: unknown kind %q", ErrBadFilter, v)
		}
	}
	var where []string
	var args []any
	where, args = in("workflow", f.States, where, args)
	where, args = in("severity", f.Severities, where, args)
	where, args = in("kind", f.Kinds, where, args)
	where, args = in("team", f.Teams, where, args)
	if f.AssetID != "" {
		where, args = append(where, "asset_id = ?"), append(args, f.AssetID)
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, t, t, id)
	}
	limit := cmp.Or(f.Limit, 100)
	limit = min(max(limit, 1), MaxLimit)
	query := `SELECT ` + alertCols + ` FROM alerts`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit+1)
	var rows []alertRow
	if err := s.db().SelectContext(ctx, &rows, s.db().Rebind(query), args...); err != nil {
		return nil, "", fmt.Errorf("listing alerts: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	out := make([]Alert, len(rows))
	for i, r := range rows {
		a, err := r.alert()
		if err != nil {
			return nil, "", err
		}
		out[i] = a
	}
	return out, next, nil
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	bad := fmt.Errorf("%w: not a cursor List gave out", ErrBadFilter)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ns, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return time.Unix(0, n).UTC(), id, nil
}

// Sync makes the firing alerts of one kind those of current: the signals
// in current fire, and every alert of the kind that fires now but is not in
// current clears. Sources that see a whole state at once use it (the CMDB
// records found stale, reckon's own health).
func (s *Store) Sync(ctx context.Context, kind Kind, current []Signal) ([]Change, error) {
	want := map[string]bool{}
	signals := make([]Signal, 0, len(current))
	for _, sig := range current {
		sig.Kind, sig.Firing = kind, true
		want[Fingerprint(sig)] = true
		signals = append(signals, sig)
	}
	var rows []struct {
		AssetID string `db:"asset_id"`
		CheckID string `db:"check_id"`
		Key     string `db:"key"`
	}
	if err := s.db().SelectContext(ctx, &rows, s.db().Rebind(`SELECT asset_id, check_id, key FROM alerts WHERE kind = ? AND condition = ?`),
		string(kind), string(Firing)); err != nil {
		return nil, fmt.Errorf("reading %s alerts: %w", kind, err)
	}
	for _, r := range rows {
		sig := Signal{Kind: kind, AssetID: r.AssetID, CheckID: r.CheckID, Key: r.Key}
		if !want[Fingerprint(sig)] {
			signals = append(signals, sig)
		}
	}
	return s.Observe(ctx, signals)
}
