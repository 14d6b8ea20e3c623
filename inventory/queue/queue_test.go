package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type echoArgs struct {
	Word string `json:"word"`
}

func (echoArgs) Kind() string { return "test.echo" }

type echoWorker struct {
	river.WorkerDefaults[echoArgs]
	got chan string
}

func (w *echoWorker) Work(ctx context.Context, job *river.Job[echoArgs]) error {
	w.got <- job.Args.Word
	return nil
}

func start(t *testing.T, opts queue.Options) *queue.Queue {
	t.Helper()
	q, err := queue.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestJobInsertedAndWorked(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		w := &echoWorker{got: make(chan string, 1)}
		q := start(t, queue.Options{Store: s, PollInterval: 50 * time.Millisecond,
			Register: func(ws *river.Workers) { river.AddWorker(ws, w) }})
		if err := q.Ready(context.Background()); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		res, err := q.Client.Insert(context.Background(), echoArgs{Word: "hello " + string(s.Kind)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := wait(t, w.got, "the job"); got != "hello "+string(s.Kind) {
			t.Fatalf("worker got %q", got)
		}
		// The row reaches completed once the completer flushes.
		deadline := time.Now().Add(20 * time.Second)
		for {
			row, err := q.Client.JobGet(context.Background(), res.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if row.State == rivertype.JobStateCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job state %s, want completed", row.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

type tickArgs struct{}

func (tickArgs) Kind() string { return "test.tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	n    atomic.Int32
	done chan struct{}
}

func (w *tickWorker) Work(ctx context.Context, job *river.Job[tickArgs]) error {
	if w.n.Add(1) == 2 {
		close(w.done)
	}
	return nil
}

func TestPeriodicJobFires(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		w := &tickWorker{done: make(chan struct{})}
		start(t, queue.Options{Store: s, PollInterval: 50 * time.Millisecond,
			Register: func(ws *river.Workers) { river.AddWorker(ws, w) },
			Periodic: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Second),
				func() (river.JobArgs, *river.InsertOpts) { return tickArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true})},
		})
		// Two runs: the one on start and at least one from the schedule itself.
		wait(t, w.done, "two periodic runs")
	})
}

type slowArgs struct{}

func (slowArgs) Kind() string { return "test.slow" }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	started  chan struct{}
	release  chan struct{}
	finished atomic.Bool
}

func (w *slowWorker) Work(ctx context.Context, job *river.Job[slowArgs]) error {
	w.started <- struct{}{}
	select {
	case <-w.release:
		w.finished.Store(true)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A job running at Stop finishes when it can within the soft-stop time.
func TestStopLetsRunningJobFinish(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		w := &slowWorker{started: make(chan struct{}, 1), release: make(chan struct{})}
		q := start(t, queue.Options{Store: s, PollInterval: 50 * time.Millisecond, SoftStop: 10 * time.Second,
			Register: func(ws *river.Workers) { river.AddWorker(ws, w) }})
		res, err := q.Client.Insert(context.Background(), slowArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, w.started, "the job to start")
		stopped := make(chan error, 1)
		go func() { stopped <- q.Stop(context.Background()) }()
		time.Sleep(200 * time.Millisecond)
		close(w.release)
		if err := wait(t, stopped, "Stop"); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !w.finished.Load() {
			t.Fatal("the running job did not finish")
		}
		row := jobRow(t, s, res.Job.ID)
		if row.State != rivertype.JobStateCompleted {
			t.Fatalf("job state %s after a graceful stop, want completed", row.State)
		}
	})
}

// A job still running when the soft-stop time runs out is cancelled and
// handed back: retryable, to be worked again later.
func TestStopHandsBackJobPastGrace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		w := &slowWorker{started: make(chan struct{}, 1), release: make(chan struct{})}
		q := start(t, queue.Options{Store: s, PollInterval: 50 * time.Millisecond, SoftStop: 300 * time.Millisecond,
			Register: func(ws *river.Workers) { river.AddWorker(ws, w) }})
		res, err := q.Client.Insert(context.Background(), slowArgs{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, w.started, "the job to start")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if w.finished.Load() {
			t.Fatal("the job was not cut off")
		}
		row := jobRow(t, s, res.Job.ID)
		if row.State != rivertype.JobStateRetryable && row.State != rivertype.JobStateAvailable {
			t.Fatalf("job state %s after a hard stop, want retryable or available (handed back)", row.State)
		}
		if err := q.Ready(context.Background()); err == nil {
			t.Fatal("Ready after Stop said the queue runs")
		}
	})
}

// jobRow reads a job through a client that is not started.
func jobRow(t *testing.T, s *store.Store, id int64) *rivertype.JobRow {
	t.Helper()
	c, err := river.NewClient(s.RiverDriver(), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	row, err := c.JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := queue.New(queue.Options{}); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("New without a store = %v, want an error", err)
	}
}
