package sweep

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory/store"
)

// PlanArgs plans a run: resolves its targets against the scope and queues
// a job per chunk.
type PlanArgs struct {
	RunID string `json:"run_id"`
}

func (PlanArgs) Kind() string { return "sweep.plan" }

// InsertOpts: planning is quick and belongs to the default queue.
func (PlanArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

// ChunkArgs scans one chunk of a run.
type ChunkArgs struct {
	RunID string `json:"run_id"`
	Index int    `json:"index"`
}

func (ChunkArgs) Kind() string { return "sweep.chunk" }

// InsertOpts: chunks run in the sweeps queue; a chunk whose worker died is
// scanned once more.
func (ChunkArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue, MaxAttempts: 2} }

// TickArgs starts the runs that schedules say are due.
type TickArgs struct{}

func (TickArgs) Kind() string { return "sweep.tick" }

func (TickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Second}}
}

// RegisterJobs adds the sweep workers.
func (s *Service) RegisterJobs(ws *river.Workers) {
	river.AddWorker(ws, &planWorker{s: s})
	river.AddWorker(ws, &chunkWorker{s: s})
	river.AddWorker(ws, &tickWorker{s: s})
}

// PeriodicJobs checks the schedules; River fires it on the elected leader
// only, so a schedule starts one run per cluster.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(s.opts.TickEvery),
		func() (river.JobArgs, *river.InsertOpts) { return TickArgs{}, nil },
		&river.PeriodicJobOpts{ID: "sweep.tick", RunOnStart: true})}
}

type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	s *Service
}

func (w *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) error {
	return w.s.plan(ctx, job.Args.RunID)
}

func (s *Service) plan(ctx context.Context, runID string) error {
	run, err := s.GetRun(ctx, runID)
	if errors.Is(err, ErrRunNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if Terminal(run.State) || run.ChunksTotal > 0 {
		return nil // planned already (a retry after a crash)
	}
	if run.CancelRequested {
		return s.finish(ctx, runID, StateCanceled, "canceled before it started")
	}
	d := run.Definition
	scope, ok := s.scopes[d.Scope]
	if !ok {
		return s.finish(ctx, runID, StateFailed, fmt.Sprintf("scope %q is no longer configured", d.Scope))
	}
	targets := make([]active.Target, 0, len(d.Targets))
	for _, raw := range d.Targets {
		t, err := active.ParseTarget(raw)
		if err != nil {
			return s.finish(ctx, runID, StateFailed, err.Error())
		}
		targets = append(targets, t)
	}
	// Checked again now: a hostname may resolve elsewhere than it did.
	prefixes, err := scope.Resolve(ctx, targets, s.opts.Resolver)
	if err != nil {
		return s.finish(ctx, runID, StateFailed, "refused before nmap started: "+err.Error())
	}
	size := d.ChunkSize
	if size <= 0 {
		size = s.opts.ChunkSize
	}
	chunks := active.Chunk(prefixes, size)
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := store.Now()
	jobs := make([]river.InsertManyParams, 0, len(chunks))
	for i, c := range chunks {
		parts := make([]string, len(c))
		for j, p := range c {
			parts[j] = p.String()
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO sweep_chunks (run_id, idx, targets, addresses, state) VALUES (?, ?, ?, ?, ?)`),
			runID, i, strings.Join(parts, "\n"), int64(active.Count(c)), StateQueued); err != nil {
			return err
		}
		jobs = append(jobs, river.InsertManyParams{Args: ChunkArgs{RunID: runID, Index: i}})
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE sweep_runs SET state = ?, started_at = ?, addresses = ?, chunks_total = ? WHERE id = ?`),
		StateRunning, now, int64(active.Count(prefixes)), len(chunks), runID); err != nil {
		return err
	}
	if len(jobs) > 0 {
		if _, err := s.client.InsertManyTx(ctx, tx.Tx, jobs); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("sweep run planned", "sweep", run.SweepName, "run", runID, "addresses", active.Count(prefixes), "chunks", len(chunks))
	if len(chunks) == 0 {
		return s.finish(ctx, runID, StateSucceeded, "")
	}
	return nil
}

// finish sets a run's final state unless it already has one.
func (s *Service) finish(ctx context.Context, runID, state, failure string) error {
	_, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweep_runs SET state = ?, failure = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'running')`),
		state, failure, store.Now(), runID)
	if err == nil {
		s.log.Info("sweep run finished", "run", runID, "state", state, "failure", failure)
	}
	return err
}

type chunkWorker struct {
	river.WorkerDefaults[ChunkArgs]
	s *Service
}

// Timeout: the worker bounds nmap itself (and keeps what it wrote); River's
// own timeout is a later backstop.
func (w *chunkWorker) Timeout(*river.Job[ChunkArgs]) time.Duration {
	return w.s.opts.ChunkTimeout + 2*time.Minute
}

func (w *chunkWorker) Work(ctx context.Context, job *river.Job[ChunkArgs]) error {
	return w.s.scanChunk(ctx, job.Args.RunID, job.Args.Index, job.Attempt)
}

func (s *Service) scanChunk(ctx context.Context, runID string, idx, attempt int) error {
	run, err := s.GetRun(ctx, runID)
	if errors.Is(err, ErrRunNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if idx < 0 || idx >= len(run.Chunks) {
		return nil
	}
	ch := run.Chunks[idx]
	if Terminal(ch.State) {
		return nil
	}
	if run.CancelRequested || Terminal(run.State) {
		return s.endChunk(ctx, runID, idx, StateCanceled, active.Result{}, "canceled before it started")
	}
	spec, err := s.spec(run.Definition, ch.Targets)
	if err != nil {
		return s.endChunk(ctx, runID, idx, StateFailed, active.Result{}, err.Error())
	}
	dir, err := os.MkdirTemp(s.opts.WorkDir, "chunk-")
	if err != nil {
		return s.endChunk(ctx, runID, idx, StateFailed, active.Result{}, "no work directory: "+err.Error())
	}
	defer os.RemoveAll(dir)
	spec.WorkDir = dir
	if _, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweep_chunks SET state = ?, started_at = ?, percent = 0 WHERE run_id = ? AND idx = ?`),
		StateRunning, store.Now(), runID, idx); err != nil {
		return err
	}
	scanCtx, cancel := context.WithTimeout(ctx, s.opts.ChunkTimeout)
	defer cancel()
	canceled := s.watchCancel(scanCtx, runID, cancel)
	var mu sync.Mutex
	last := time.Time{}
	res, runErr := active.Run(scanCtx, spec, func(p active.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		_, _ = s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweep_chunks SET percent = ?, hosts_up = ?, remaining_s = ? WHERE run_id = ? AND idx = ?`),
			min(p.Percent, 99.9), p.HostsUp, p.Remaining.Seconds(), runID, idx)
	})
	if runErr != nil {
		return s.endChunk(ctx, runID, idx, StateFailed, res, runErr.Error())
	}
	// What nmap found reaches the inventory now, whatever happens to the
	// chunks after this one.
	if len(res.Observations) > 0 {
		batch := fmt.Sprintf("sweep:%s:%d:%d", runID, idx, attempt)
		var ierr error
		for try := 0; try < 5; try++ {
			if ierr = s.opts.Ingest(ctx, batch, "sweep:"+run.SweepName, res.Observations); ierr == nil {
				break
			}
			s.log.Warn("sweep results not ingested; retrying", "run", runID, "chunk", idx, "err", ierr)
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(try+1) * time.Second):
			}
		}
		if ierr != nil {
			return s.endChunk(ctx, runID, idx, StateFailed, res, "results not stored: "+ierr.Error())
		}
	}
	switch {
	case canceled():
		return s.endChunk(ctx, runID, idx, StateCanceled, res, "canceled")
	case res.Partial:
		return s.endChunk(ctx, runID, idx, StateFailed, res, res.Failure)
	}
	return s.endChunk(ctx, runID, idx, StateSucceeded, res, "")
}

// watchCancel polls the run's cancel flag while nmap runs and stops it when
// set; the returned function says whether it did.
func (s *Service) watchCancel(ctx context.Context, runID string, cancel func()) func() bool {
	var hit sync.Once
	var done bool
	var mu sync.Mutex
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var flag bool
			if err := s.db().GetContext(ctx, &flag, s.db().Rebind(`SELECT cancel_requested FROM sweep_runs WHERE id = ?`), runID); err == nil && flag {
				hit.Do(func() {
					mu.Lock()
					done = true
					mu.Unlock()
					cancel()
				})
				return
			}
		}
	}()
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done
	}
}

// endChunk records a chunk's outcome and, for the last chunk of a run, the
// run's: failed if any chunk failed, canceled if asked, else succeeded.
func (s *Service) endChunk(ctx context.Context, runID string, idx int, state string, res active.Result, failure string) error {
	ctx = context.WithoutCancel(ctx)
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := store.Now()
	res2, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE sweep_chunks SET state = ?, failure = ?, finished_at = ?, observations = ?, hosts_up = ?, args = ?,
		percent = CASE WHEN ? THEN 100 ELSE percent END, remaining_s = 0 WHERE run_id = ? AND idx = ? AND state IN ('queued', 'running')`),
		state, failure, now, len(res.Observations), res.HostsUp, strings.Join(res.Args, "\n"), state == StateSucceeded, runID, idx)
	if err != nil {
		return err
	}
	if n, _ := res2.RowsAffected(); n == 0 {
		return tx.Commit() // already ended (a retry)
	}
	var counts struct {
		Done  int `db:"chunks_done"`
		Total int `db:"chunks_total"`
	}
	if err := tx.GetContext(ctx, &counts, tx.Rebind(`UPDATE sweep_runs SET chunks_done = chunks_done + 1 WHERE id = ? RETURNING chunks_done, chunks_total`), runID); err != nil {
		return err
	}
	if len(res.Warnings) > 0 {
		var cur string
		_ = tx.GetContext(ctx, &cur, tx.Rebind(`SELECT warnings FROM sweep_runs WHERE id = ?`), runID)
		ws := splitList(cur)
		for _, w := range res.Warnings {
			if !slices.Contains(ws, w) {
				ws = append(ws, w)
			}
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE sweep_runs SET warnings = ? WHERE id = ?`), strings.Join(ws, "\n"), runID); err != nil {
			return err
		}
	}
	if counts.Done >= counts.Total {
		var rows []chunkRow
		if err := tx.SelectContext(ctx, &rows, tx.Rebind(`SELECT `+chunkCols+` FROM sweep_chunks WHERE run_id = ? ORDER BY idx`), runID); err != nil {
			return err
		}
		var cancelRequested bool
		if err := tx.GetContext(ctx, &cancelRequested, tx.Rebind(`SELECT cancel_requested FROM sweep_runs WHERE id = ?`), runID); err != nil {
			return err
		}
		final, why := StateSucceeded, []string{}
		for _, c := range rows {
			if c.State == StateFailed {
				final = StateFailed
				first, _, _ := strings.Cut(c.Targets, "\n")
				why = append(why, fmt.Sprintf("chunk %d (%s): %s", c.Idx, first, c.Failure))
			}
		}
		if cancelRequested && final == StateSucceeded {
			final = StateCanceled
			why = append(why, "canceled")
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE sweep_runs SET state = ?, failure = ?, finished_at = ? WHERE id = ?`),
			final, strings.Join(why, "; "), now, runID); err != nil {
			return err
		}
		defer s.log.Info("sweep run finished", "run", runID, "state", final, "failure", strings.Join(why, "; "))
	}
	return tx.Commit()
}

// spec turns a definition and a chunk's targets into what nmap runs.
func (s *Service) spec(d Definition, targets []string) (active.Spec, error) {
	sp := active.Spec{Discovery: d.Discovery, ServiceDetection: d.ServiceDetection, OSDetection: d.OSDetection, NoDNS: d.NoDNS, Scripts: d.Scripts,
		Timing: d.Timing, MaxRate: d.MaxRate, MinRate: d.MinRate, HostTimeout: time.Duration(d.HostTimeout), MaxRetries: -1, NmapPath: s.opts.Nmap,
		Source: "active:nmap", Sensor: d.Name}
	if d.Ports != "" {
		p, err := active.ParsePorts(d.Ports)
		if err != nil {
			return sp, err
		}
		sp.Ports = p
	}
	for _, t := range targets {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return sp, err
		}
		sp.Targets = append(sp.Targets, p)
	}
	return sp, sp.Validate()
}

type tickWorker struct {
	river.WorkerDefaults[TickArgs]
	s *Service
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error { return w.s.Tick(ctx) }

// Tick starts every enabled sweep whose next run time has come, and moves
// that time on by its schedule. A sweep still running is not started again;
// its turn is skipped.
func (s *Service) Tick(ctx context.Context) error {
	var rows []sweepRow
	now := store.Now()
	if err := s.db().SelectContext(ctx, &rows, s.db().Rebind(`SELECT `+sweepCols+` FROM sweeps WHERE enabled = ? AND next_run_at IS NOT NULL AND next_run_at <= ?`), true, now); err != nil {
		return err
	}
	for _, r := range rows {
		sw, err := r.sweep()
		if err != nil {
			s.log.Error("sweep schedule", "err", err)
			continue
		}
		var next *time.Time
		if sw.Schedule != "" {
			if sched, err := cronParser.Parse(sw.Schedule); err == nil {
				t := sched.Next(now)
				next = &t
			}
		}
		if _, err := s.db().ExecContext(ctx, s.db().Rebind(`UPDATE sweeps SET next_run_at = ? WHERE id = ?`), next, sw.ID); err != nil {
			return err
		}
		if _, err := s.StartRun(ctx, sw.ID, "schedule"); errors.Is(err, ErrActive) {
			s.log.Warn("sweep still running at its next scheduled time; this turn is skipped", "sweep", sw.Name)
		} else if err != nil {
			s.log.Error("scheduled sweep not started", "sweep", sw.Name, "err", err)
		}
	}
	return nil
}
