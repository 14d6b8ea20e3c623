package inventory

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// MaintainArgs is the periodic job that flags assets not seen for the
// missing window and prunes raw observation batches past their retention.
type MaintainArgs struct{}

// Kind is the River job kind.
func (MaintainArgs) Kind() string { return "inventory.maintain" }

// InsertOpts: one attempt; the next period tries again.
func (MaintainArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type maintainWorker struct {
	river.WorkerDefaults[MaintainArgs]
	inv *Inventory
}

func (w *maintainWorker) Work(ctx context.Context, job *river.Job[MaintainArgs]) error {
	return w.inv.Maintain(ctx, time.Now())
}

// RegisterJobs adds the inventory's workers.
func (inv *Inventory) RegisterJobs(ws *river.Workers) {
	river.AddWorker(ws, &maintainWorker{inv: inv})
}

// PeriodicJobs are the inventory's schedules.
func (inv *Inventory) PeriodicJobs(every time.Duration) []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return MaintainArgs{}, nil },
		&river.PeriodicJobOpts{ID: "inventory.maintain", RunOnStart: true})}
}
