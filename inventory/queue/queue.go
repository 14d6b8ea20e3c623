// Package queue runs reckon's background jobs and schedules on River, over
// the same database as the store (riverdatabasesql on PostgreSQL,
// riversqlite on the embedded store). Packages register their workers and
// periodic jobs before Start; River elects one leader per cluster to run the
// schedules, so several replicas share one PostgreSQL safely.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Client is the River client type on both stores.
type Client = river.Client[*sql.Tx]

// Options configure the queue.
type Options struct {
	Store *store.Store
	// Workers is how many jobs run at once in the default queue.
	Workers int
	// Queues are further named queues and how many jobs each runs at once
	// (sweeps get their own, so that long nmap runs never starve the rest).
	Queues map[string]int
	// PollInterval is how often idle workers look for new jobs (neither
	// driver here has LISTEN/NOTIFY, so this bounds pick-up latency).
	PollInterval time.Duration
	// FetchCooldown is the least time between two fetches of a queue while
	// jobs keep coming (default 10ms): with W workers a queue starts at
	// most W jobs per cooldown. Idle queues still wait for PollInterval.
	FetchCooldown time.Duration
	// SoftStop is how long running jobs get to finish on Stop before their
	// contexts are cancelled and they are handed back for a retry.
	SoftStop time.Duration
	// JobTimeout bounds one job unless its worker says otherwise.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before it counts as
	// held by a dead worker and is retried (River's default: an hour). It
	// must exceed every worker's timeout.
	RescueAfter time.Duration
	// Register adds the workers of every package that has jobs.
	Register func(*river.Workers)
	// Periodic are the schedules, fired by the elected leader only.
	Periodic []*river.PeriodicJob
	// Heartbeat, when positive, schedules a no-op job at that interval whose
	// completion time is exported, so a stuck queue shows in /metrics.
	Heartbeat  time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Queue is the job queue.
type Queue struct {
	Client  *Client
	logger  *slog.Logger
	started atomic.Bool
	stopped atomic.Bool
	metrics *metrics
	cancel  func()
}

// New builds the queue; nothing runs until Start.
func New(opts Options) (*Queue, error) {
	if opts.Store == nil {
		return nil, errors.New("queue: no store")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(opts.Registerer)
	workers := river.NewWorkers()
	river.AddWorker(workers, &heartbeatWorker{metrics: m})
	if opts.Register != nil {
		opts.Register(workers)
	}
	periodic := append([]*river.PeriodicJob(nil), opts.Periodic...)
	if opts.Heartbeat > 0 {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(opts.Heartbeat),
			func() (river.JobArgs, *river.InsertOpts) { return HeartbeatArgs{}, nil },
			&river.PeriodicJobOpts{ID: "heartbeat", RunOnStart: true}))
	}
	n := opts.Workers
	if n < 1 {
		n = 10
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	cooldown := opts.FetchCooldown
	if cooldown <= 0 {
		cooldown = 10 * time.Millisecond
	}
	cooldown = min(cooldown, poll)
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}}
	for name, w := range opts.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: max(w, 1)}
	}
	cfg := &river.Config{
		Logger:               logger.With("component", "queue"),
		Queues:               queues,
		Workers:              workers,
		PeriodicJobs:         periodic,
		FetchPollInterval:    poll,
		FetchCooldown:        cooldown,
		SoftStopTimeout:      opts.SoftStop,
		JobTimeout:           opts.JobTimeout,
		RescueStuckJobsAfter: opts.RescueAfter,
	}
	client, err := river.NewClient(opts.Store.RiverDriver(), cfg)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Queue{Client: client, logger: logger, metrics: m}, nil
}

// Start begins working jobs and firing schedules. Jobs get a context that
// outlives ctx; Stop ends them.
func (q *Queue) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.cancel = cancel
	events, unsubscribe := q.Client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	if err := q.Client.Start(runCtx); err != nil {
		unsubscribe()
		cancel()
		return fmt.Errorf("queue: %w", err)
	}
	go func() {
		defer unsubscribe()
		for {
			select {
			case <-runCtx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				q.metrics.observe(ev)
			}
		}
	}()
	q.started.Store(true)
	return nil
}

// Stop lets running jobs finish within the soft-stop time, then cancels the
// rest (River records them as errored and retries them later) and waits for
// them to return, at most until ctx is done. Safe to call twice.
func (q *Queue) Stop(ctx context.Context) error {
	if !q.started.Load() || q.stopped.Swap(true) {
		return nil
	}
	defer q.cancel()
	err := q.Client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Out of time: cancel what still runs so its rows are released.
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return q.Client.StopAndCancel(hard)
	}
	return err
}

// Ready reports whether the queue runs and can reach its tables.
func (q *Queue) Ready(ctx context.Context) error {
	if !q.started.Load() || q.stopped.Load() {
		return errors.New("job queue not running")
	}
	if _, err := q.Client.QueueList(ctx, river.NewQueueListParams().First(1)); err != nil {
		return fmt.Errorf("job queue cannot reach its tables: %w", err)
	}
	return nil
}

// HeartbeatArgs is the queue's own periodic job: it proves schedules fire
// and jobs get worked.
type HeartbeatArgs struct{}

// Kind is the River job kind.
func (HeartbeatArgs) Kind() string { return "reckon.heartbeat" }

// InsertOpts: a missed heartbeat is not retried; the next one will come.
func (HeartbeatArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type heartbeatWorker struct {
	river.WorkerDefaults[HeartbeatArgs]
	metrics *metrics
}

func (w *heartbeatWorker) Work(ctx context.Context, job *river.Job[HeartbeatArgs]) error {
	w.metrics.heartbeat.SetToCurrentTime()
	return nil
}
