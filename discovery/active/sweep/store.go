package sweep

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/inventory/store"
)

type sweepRow struct {
	ID         string     `db:"id"`
	Name       string     `db:"name"`
	Origin     string     `db:"origin"`
	Definition string     `db:"definition"`
	Enabled    bool       `db:"enabled"`
	CreatedAt  time.Time  `db:"created_at"`
	UpdatedAt  time.Time  `db:"updated_at"`
	NextRunAt  *time.Time `db:"next_run_at"`
}

func (r sweepRow) sweep() (Sweep, error) {
	sw := Sweep{ID: r.ID, Origin: r.Origin, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), NextRunAt: utcPtr(r.NextRunAt)}
	if err := json.Unmarshal([]byte(r.Definition), &sw.Definition); err != nil {
		return sw, fmt.Errorf("sweep %s: stored definition: %w", r.Name, err)
	}
	sw.Name, sw.Enabled = r.Name, r.Enabled
	return sw, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

const sweepCols = `id, name, origin, definition, enabled, created_at, updated_at, next_run_at`

func (s *Service) db() *sqlx.DB { return s.opts.Store.DB }

// List returns every sweep, by name.
func (s *Service) List(ctx context.Context) ([]Sweep, error) {
	var rows []sweepRow
	if err := s.db().SelectContext(ctx, &rows, `SELECT `+sweepCols+` FROM sweeps ORDER BY name`); err != nil {
		return nil, err
	}
	out := make([]Sweep, 0, len(rows))
	for _, r := range rows {
		sw, err := r.sweep()
		if err != nil {
			return nil, err
		}
		out = append(out, sw)
	}
	return out, nil
}

// Get returns a sweep by id or name.
func (s *Service) Get(ctx context.Context, idOrName string) (Sweep, error) {
	return s.get(ctx, s.db(), idOrName)
}

func (s *Service) get(ctx context.Context, q sqlx.QueryerContext, idOrName string) (Sweep, error) {
	var r sweepRow
	err := sqlx.GetContext(ctx, q, &r, s.db().Rebind(`SELECT `+sweepCols+` FROM sweeps WHERE id = ? OR name = ?`), idOrName, idOrName)
	if errors.Is(err, sql.ErrNoRows) {
		return Sweep{}, ErrNotFound
	}
	if err != nil {
		return Sweep{}, err
	}
	return r.sweep()
}

// Create stores a new sweep.
func (s *Service) Create(ctx context.Context, d Definition, origin string) (Sweep, error) {
	if err := s.Validate(ctx, &d); err != nil {
		return Sweep{}, err
	}
	if _, err := s.Get(ctx, d.Name); err == nil {
		return Sweep{}, ErrExists
	} else if !errors.Is(err, ErrNotFound) {
		return Sweep{}, err
	}
	now := store.Now()
	sw := Sweep{ID: newID(), Origin: origin, Definition: d, CreatedAt: now, UpdatedAt: now, NextRunAt: firstRun(d, now)}
	def, _ := json.Marshal(d)
	_, err := s.db().ExecContext(ctx, s.db().Rebind(`INSERT INTO sweeps (`+sweepCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		sw.ID, d.Name, origin, string(def), d.Enabled, now, now, sw.NextRunAt)
	if err != nil {
		return Sweep{}, err
	}
	return sw, nil
}

// firstRun is when a new or changed definition first runs by itself: now
// with initial_run, else at its schedule's next time, else never.
func firstRun(d Definition, now time.Time) *time.Time {
	if !d.Enabled {
		return nil
	}
	if d.InitialRun {
		return &now
	}
	if d.Schedule == "" {
		return nil
	}
	sched, err := cronParser.Parse(d.Schedule)
	if err != nil {
		return nil
	}
	t := sched.Next(now)
	return &t
}

// Update replaces a sweep's definition (the name may change too).
func (s *Service) Update(ctx context.Context, idOrName string, d Definition) (Sweep, error) {
	old, err := s.Get(ctx, idOrName)
	if err != nil {
		return Sweep{}, err
	}
	if old.Origin == "config" {
		return Sweep{}, ErrConfigOwned
	}
	return s.replace(ctx, old, d)
}

func (s *Service) replace(ctx context.Context, old Sweep, d Definition) (Sweep, error) {
	if err := s.Validate(ctx, &d); err != nil {
		return Sweep{}, err
	}
	if d.Name != old.Name {
		if _, err := s.Get(ctx, d.Name); err == nil {
			return Sweep{}, ErrExists
		}
	}
	now := store.Now()
	next := old.NextRunAt
	if d.Schedule != old.Schedule || d.Enabled != old.Enabled || next == nil {
		next = firstRun(d, now)
		if d.InitialRun && old.InitialRun {
			next = firstRun(Definition{Schedule: d.Schedule, Enabled: d.Enabled}, now)
		}
	}
	def, _ := json.Marshal(d)
	_, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweeps SET name = ?, definition = ?, enabled = ?, updated_at = ?, next_run_at = ? WHERE id = ?`),
		d.Name, string(def), d.Enabled, now, next, old.ID)
	if err != nil {
		return Sweep{}, err
	}
	return s.Get(ctx, old.ID)
}

// Delete removes an API-made sweep; its runs stay on record.
func (s *Service) Delete(ctx context.Context, idOrName string) error {
	sw, err := s.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if sw.Origin == "config" {
		return ErrConfigOwned
	}
	_, err = s.db().ExecContext(ctx, s.db().Rebind(`DELETE FROM sweeps WHERE id = ?`), sw.ID)
	return err
}

// SyncConfig makes the configuration's sweeps the stored ones of origin
// config: new ones are created, changed ones replaced, removed ones
// deleted. A name taken by an API-made sweep is an error naming it.
func (s *Service) SyncConfig(ctx context.Context, defs []Definition) error {
	existing, err := s.List(ctx)
	if err != nil {
		return err
	}
	byName := map[string]Sweep{}
	for _, sw := range existing {
		byName[sw.Name] = sw
	}
	keep := map[string]bool{}
	for i, d := range defs {
		keep[d.Name] = true
		old, ok := byName[d.Name]
		switch {
		case !ok:
			if _, err := s.Create(ctx, d, "config"); err != nil {
				return fmt.Errorf("sweeps[%d] (%s): %w", i, d.Name, err)
			}
		case old.Origin != "config":
			return fmt.Errorf("sweeps[%d]: the name %q is taken by a sweep made through the API; rename one of them", i, d.Name)
		default:
			a, _ := json.Marshal(old.Definition)
			b, _ := json.Marshal(d)
			if string(a) != string(b) {
				if _, err := s.replace(ctx, old, d); err != nil {
					return fmt.Errorf("sweeps[%d] (%s): %w", i, d.Name, err)
				}
			}
		}
	}
	for _, sw := range existing {
		if sw.Origin == "config" && !keep[sw.Name] {
			if _, err := s.db().ExecContext(ctx, s.db().Rebind(`DELETE FROM sweeps WHERE id = ?`), sw.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

type runRow struct {
	ID              string     `db:"id"`
	SweepID         string     `db:"sweep_id"`
	SweepName       string     `db:"sweep_name"`
	State           string     `db:"state"`
	Trigger         string     `db:"trigger"`
	Definition      string     `db:"definition"`
	Addresses       int64      `db:"addresses"`
	ChunksTotal     int        `db:"chunks_total"`
	ChunksDone      int        `db:"chunks_done"`
	CancelRequested bool       `db:"cancel_requested"`
	Failure         string     `db:"failure"`
	Warnings        string     `db:"warnings"`
	CreatedAt       time.Time  `db:"created_at"`
	StartedAt       *time.Time `db:"started_at"`
	FinishedAt      *time.Time `db:"finished_at"`
}

const runCols = `id, sweep_id, sweep_name, state, trigger, definition, addresses, chunks_total, chunks_done, cancel_requested, failure, warnings, created_at, started_at, finished_at`

type chunkRow struct {
	RunID        string     `db:"run_id"`
	Idx          int        `db:"idx"`
	Targets      string     `db:"targets"`
	Addresses    int64      `db:"addresses"`
	State        string     `db:"state"`
	Percent      float64    `db:"percent"`
	HostsUp      int        `db:"hosts_up"`
	Observations int        `db:"observations"`
	RemainingS   float64    `db:"remaining_s"`
	Failure      string     `db:"failure"`
	Args         string     `db:"args"`
	StartedAt    *time.Time `db:"started_at"`
	FinishedAt   *time.Time `db:"finished_at"`
}

const chunkCols = `run_id, idx, targets, addresses, state, percent, hosts_up, observations, remaining_s, failure, args, started_at, finished_at`

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

// GetRun returns a run with its chunks and its progress summed over them.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	var r runRow
	err := s.db().GetContext(ctx, &r, s.db().Rebind(`SELECT `+runCols+` FROM sweep_runs WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, ErrRunNotFound
	}
	if err != nil {
		return Run{}, err
	}
	var chunks []chunkRow
	if err := s.db().SelectContext(ctx, &chunks, s.db().Rebind(`SELECT `+chunkCols+` FROM sweep_chunks WHERE run_id = ? ORDER BY idx`), id); err != nil {
		return Run{}, err
	}
	return assemble(r, chunks), nil
}

// ListRuns returns a sweep's runs, newest first, without their chunks'
// details.
func (s *Service) ListRuns(ctx context.Context, sweepID string, limit int) ([]Run, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var rows []runRow
	if err := s.db().SelectContext(ctx, &rows, s.db().Rebind(`SELECT `+runCols+` FROM sweep_runs WHERE sweep_id = ? ORDER BY created_at DESC LIMIT ?`), sweepID, limit); err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(rows))
	for _, r := range rows {
		var chunks []chunkRow
		if err := s.db().SelectContext(ctx, &chunks, s.db().Rebind(`SELECT `+chunkCols+` FROM sweep_chunks WHERE run_id = ? ORDER BY idx`), r.ID); err != nil {
			return nil, err
		}
		run := assemble(r, chunks)
		run.Chunks = []Chunk{}
		out = append(out, run)
	}
	return out, nil
}

// assemble sums a run's progress over its chunks: a finished chunk counts
// as done whatever nmap last said; the time left is the slowest running
// chunk's estimate, else one from the pace so far.
func assemble(r runRow, rows []chunkRow) Run {
	run := Run{ID: r.ID, SweepID: r.SweepID, SweepName: r.SweepName, State: r.State, Trigger: r.Trigger, Addresses: r.Addresses,
		ChunksTotal: r.ChunksTotal, ChunksDone: r.ChunksDone, CancelRequested: r.CancelRequested, Failure: r.Failure,
		Warnings: splitList(r.Warnings), CreatedAt: r.CreatedAt.UTC(), StartedAt: utcPtr(r.StartedAt), FinishedAt: utcPtr(r.FinishedAt), Chunks: []Chunk{}}
	_ = json.Unmarshal([]byte(r.Definition), &run.Definition)
	var sum, remaining float64
	queued := 0
	for _, c := range rows {
		ch := Chunk{Index: c.Idx, Targets: splitList(c.Targets), Addresses: c.Addresses, State: c.State, Percent: c.Percent, HostsUp: c.HostsUp,
			Observations: c.Observations, RemainingSeconds: c.RemainingS, Failure: c.Failure, Args: splitList(c.Args),
			StartedAt: utcPtr(c.StartedAt), FinishedAt: utcPtr(c.FinishedAt)}
		if Terminal(c.State) {
			ch.Percent, ch.RemainingSeconds = 100, 0
		}
		sum += ch.Percent
		run.HostsUp += ch.HostsUp
		run.Observations += ch.Observations
		if c.State == StateRunning && ch.RemainingSeconds > remaining {
			remaining = ch.RemainingSeconds
		}
		if c.State == StateQueued {
			queued++
		}
		run.Chunks = append(run.Chunks, ch)
	}
	if run.ChunksTotal > 0 {
		run.Percent = sum / float64(run.ChunksTotal)
	}
	if Terminal(run.State) {
		if run.State == StateSucceeded {
			run.Percent = 100
		}
		return run
	}
	// Time left: the pace so far over what is left, or nmap's own estimate
	// for the chunks running when nothing has finished yet.
	if run.StartedAt != nil && run.Percent > 0 {
		elapsed := time.Since(*run.StartedAt).Seconds()
		remaining = max(remaining, elapsed*(100-run.Percent)/run.Percent)
	}
	_ = queued
	run.RemainingSeconds = remaining
	return run
}

// StartRun queues a run of a sweep. A sweep never runs twice at once: with
// a run queued or running, it returns ErrActive and that run.
func (s *Service) StartRun(ctx context.Context, idOrName, trigger string) (Run, error) {
	if s.client == nil {
		return Run{}, errors.New("sweeps: the job queue is not set up")
	}
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return Run{}, err
	}
	defer tx.Rollback()
	lock := ""
	if s.opts.Store.Kind == store.Postgres {
		lock = " FOR UPDATE"
	}
	var r sweepRow
	err = tx.GetContext(ctx, &r, tx.Rebind(`SELECT `+sweepCols+` FROM sweeps WHERE id = ? OR name = ?`+lock), idOrName, idOrName)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	if err != nil {
		return Run{}, err
	}
	var activeID string
	err = tx.GetContext(ctx, &activeID, tx.Rebind(`SELECT id FROM sweep_runs WHERE sweep_id = ? AND state IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1`), r.ID)
	if err == nil {
		tx.Rollback()
		run, gerr := s.GetRun(ctx, activeID)
		if gerr != nil {
			return Run{}, gerr
		}
		return run, ErrActive
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Run{}, err
	}
	id, now := newID(), store.Now()
	_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO sweep_runs (id, sweep_id, sweep_name, state, trigger, definition, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		id, r.ID, r.Name, StateQueued, trigger, r.Definition, now)
	if err != nil {
		return Run{}, err
	}
	if _, err := s.client.InsertTx(ctx, tx.Tx, PlanArgs{RunID: id}, nil); err != nil {
		return Run{}, fmt.Errorf("queueing the run: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Run{}, err
	}
	s.log.Info("sweep run queued", "sweep", r.Name, "run", id, "trigger", trigger)
	return s.GetRun(ctx, id)
}

// CancelRun asks a run to stop: queued chunks do not start, running nmap
// processes are stopped, and what they found so far is kept.
func (s *Service) CancelRun(ctx context.Context, id string) (Run, error) {
	run, err := s.GetRun(ctx, id)
	if err != nil {
		return Run{}, err
	}
	if Terminal(run.State) {
		return run, ErrFinished
	}
	if _, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweep_runs SET cancel_requested = ? WHERE id = ?`), true, id); err != nil {
		return Run{}, err
	}
	// A run not yet planned ends here; a planned one ends when its chunks
	// have seen the request.
	if run.State == StateQueued && run.ChunksTotal == 0 {
		if _, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweep_runs SET state = ?, finished_at = ?, failure = ? WHERE id = ? AND chunks_total = 0`),
			StateCanceled, store.Now(), "canceled before it started", id); err != nil {
			return Run{}, err
		}
	}
	s.log.Info("sweep run cancel requested", "run", id, "sweep", run.SweepName)
	return s.GetRun(ctx, id)
}

// keep the river import for InsertTx's options type in one place.
var _ *river.InsertOpts
