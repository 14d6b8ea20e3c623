package route

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Silence holds back the notifications of the alerts its matchers match
// while it is active.
type Silence struct {
	ID        string     `json:"id" db:"id"`
	Matchers  Match      `json:"matchers" db:"-"`
	StartsAt  time.Time  `json:"starts_at" db:"starts_at"`
	EndsAt    time.Time  `json:"ends_at" db:"ends_at"`
	CreatedBy string     `json:"created_by" db:"created_by"`
	Comment   string     `json:"comment" db:"comment"`
	CreatedAt time.Time  `json:"created_at" db:"created_at"`
	ExpiredAt *time.Time `json:"expired_at" db:"expired_at"` // ended early (DELETE)
	// Active: it holds notifications back now.
	Active bool `json:"active" db:"-"`
}

// ActiveAt says whether s holds notifications back at t.
func (s Silence) ActiveAt(t time.Time) bool {
	return s.ExpiredAt == nil && !t.Before(s.StartsAt) && t.Before(s.EndsAt)
}

// ErrSilence is a silence that cannot be made (no matchers, a bad time).
var ErrSilence = errors.New("bad silence")

// ErrNotFound: no such silence.
var ErrNotFound = errors.New("silence not found")

// Silences keeps silences in the database.
type Silences struct {
	st  *store.Store
	now func() time.Time
}

// NewSilences returns the silences over st.
func NewSilences(st *store.Store) *Silences { return &Silences{st: st, now: store.Now} }

func (s *Silences) db() *sqlx.DB { return s.st.DB }

// Create stores a silence: it needs at least one matcher and an end after
// its start (a zero start is now) and in the future.
func (s *Silences) Create(ctx context.Context, sl Silence) (Silence, error) {
	now := s.now()
	if sl.Matchers.Empty() {
		return Silence{}, fmt.Errorf("%w: matchers: at least one is needed (a silence of everything hides every alert)", ErrSilence)
	}
	if sl.StartsAt.IsZero() {
		sl.StartsAt = now
	}
	if !sl.EndsAt.After(sl.StartsAt) || !sl.EndsAt.After(now) {
		return Silence{}, fmt.Errorf("%w: ends_at must be after starts_at and in the future", ErrSilence)
	}
	sl.ID, sl.CreatedAt, sl.ExpiredAt = uuid.NewString(), now, nil
	sl.StartsAt, sl.EndsAt = sl.StartsAt.UTC(), sl.EndsAt.UTC()
	m, err := json.Marshal(sl.Matchers)
	if err != nil {
		return Silence{}, err
	}
	_, err = s.db().ExecContext(ctx, s.db().Rebind(`INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), sl.ID, string(m), sl.StartsAt, sl.EndsAt, sl.CreatedBy, sl.Comment, sl.CreatedAt)
	if err != nil {
		return Silence{}, fmt.Errorf("storing the silence: %w", err)
	}
	sl.Active = sl.ActiveAt(now)
	return sl, nil
}

type silenceRow struct {
	Silence
	MatchersJSON string `db:"matchers"`
}

func (r silenceRow) silence(now time.Time) (Silence, error) {
	sl := r.Silence
	if err := json.Unmarshal([]byte(r.MatchersJSON), &sl.Matchers); err != nil {
		return sl, fmt.Errorf("silence %s: %w", sl.ID, err)
	}
	sl.StartsAt, sl.EndsAt, sl.CreatedAt = sl.StartsAt.UTC(), sl.EndsAt.UTC(), sl.CreatedAt.UTC()
	if sl.ExpiredAt != nil {
		t := sl.ExpiredAt.UTC()
		sl.ExpiredAt = &t
	}
	sl.Active = sl.ActiveAt(now)
	return sl, nil
}

// List returns the silences not yet ended (all of them with ended),
// newest first.
func (s *Silences) List(ctx context.Context, ended bool) ([]Silence, error) {
	now := s.now()
	q := `SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at FROM silences`
	var args []any
	if !ended {
		q += ` WHERE ends_at > ? AND expired_at IS NULL`
		args = append(args, now)
	}
	var rows []silenceRow
	if err := s.db().SelectContext(ctx, &rows, s.db().Rebind(q+` ORDER BY created_at DESC, id`), args...); err != nil {
		return nil, err
	}
	out := make([]Silence, 0, len(rows))
	for _, r := range rows {
		sl, err := r.silence(now)
		if err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, nil
}

// Get returns one silence.
func (s *Silences) Get(ctx context.Context, id string) (Silence, error) {
	var r silenceRow
	err := s.db().GetContext(ctx, &r, s.db().Rebind(`SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at
		FROM silences WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Silence{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Silence{}, err
	}
	return r.silence(s.now())
}

// Expire ends a silence now.
func (s *Silences) Expire(ctx context.Context, id string) (Silence, error) {
	res, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL`), s.now(), id)
	if err != nil {
		return Silence{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return Silence{}, err
		}
	}
	return s.Get(ctx, id)
}

// Active are the silences holding notifications back at one moment.
type Active []Silence

// Active returns the silences active now: one read serves a whole batch
// of alerts.
func (s *Silences) Active(ctx context.Context) (Active, error) {
	list, err := s.List(ctx, false)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, sl := range list {
		if sl.Active {
			out = append(out, sl)
		}
	}
	return out, nil
}

// Silencing returns the active silence matching a, if any.
func (act Active) Silencing(a Attrs) *Silence {
	for i := range act {
		if act[i].Matchers.Matches(a) {
			return &act[i]
		}
	}
	return nil
}
