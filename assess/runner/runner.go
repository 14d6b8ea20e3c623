// Package runner is the assessment queue and its workers. Inventory events
// become River jobs, one pending job per asset at most: a new host the CMDB
// does not know first, then a new managed host, then a changed one, then the
// periodic reassessments. A worker picks the asset's address inside the
// allowed scopes, collects facts over the network, evaluates the policy,
// compares the facts with the asset's previous assessment (drift) and keeps
// all of it, with the raw evidence, in the assessments table. Drift entries
// and checks that start or stop failing become asset events for alerts.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
)

// Queue is the River queue assessments run on; its worker count is the
// configuration's assess.workers.
const Queue = "assess"

// Job priorities (River's 1 is worked first).
const (
	PriorityNewUnmanaged = 1 // a new host the CMDB does not (yet) know; also manual runs
	PriorityNewManaged   = 2
	PriorityChanged      = 3
	PriorityPeriodic     = 4
)

// Triggers: why an assessment ran.
const (
	TriggerNew      = "new"
	TriggerChanged  = "changed"
	TriggerPeriodic = "periodic"
	TriggerManual   = "manual"
)

// Target is what a collector assesses.
type Target struct {
	AssetID   string
	Addr      netip.Addr
	Ports     string // nmap port list; "" the collector's default
	Hostnames []string
}

// Collector gathers facts about one target over the network. It returns
// what it could (with problems in Facts.Errors) and an error only when it
// learned nothing usable.
type Collector interface {
	Collect(ctx context.Context, t Target) (assess.Facts, []assess.Evidence, error)
}

// Policy evaluates facts; *policy.Policy is one.
type Policy interface {
	Evaluate(f *assess.Facts, now time.Time) []assess.Result
	Role(f *assess.Facts) string
	Version() string
	Digest() string
}

// Options configure a Service.
type Options struct {
	Store     *store.Store
	Inventory *inventory.Inventory
	Collector Collector
	Policy    Policy
	// PolicyName is shown with each assessment (the file's name).
	PolicyName string
	// Scopes: an asset is assessed at its first address inside one of
	// them; an asset with none is not probed at all.
	Scopes []active.Scope
	// Ports is the port list collectors scan ("" their default).
	Ports string
	// Every is how often a host is reassessed (default 24h); EveryByRole
	// and EveryByScope override it (the shortest that applies wins).
	Every        time.Duration
	EveryByRole  map[string]time.Duration
	EveryByScope map[string]time.Duration
	// DueEvery is how often the periodic job looks for hosts due (default
	// 10 minutes).
	DueEvery time.Duration
	// JobTimeout bounds one assessment (default 15 minutes); MaxAttempts
	// counts tries, with River's backoff between them (default 3).
	JobTimeout  time.Duration
	MaxAttempts int
	// AutoQueue: inventory events queue assessments (serve sets it).
	AutoQueue bool
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service queues and runs assessments.
type Service struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	client *queue.Client
	// running maps a job working here to its cancel func; again holds
	// assets that changed while their job ran (River's unique jobs keep a
	// running job's asset from being queued twice), queued once it ends.
	running map[int64]context.CancelFunc
	inJob   map[string]bool
	again   map[string]int

	events chan []inventory.Event
	stop   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup // requeueAfter's waiters
}

// New returns a Service; SetClient must follow before jobs are queued.
func New(o Options) *Service {
	if o.Every <= 0 {
		o.Every = 24 * time.Hour
	}
	if o.DueEvery <= 0 {
		o.DueEvery = 10 * time.Minute
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 15 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = store.Now
	}
	return &Service{opts: o, log: o.Logger, running: map[int64]context.CancelFunc{}, inJob: map[string]bool{}, again: map[string]int{},
		events: make(chan []inventory.Event, 1024), stop: make(chan struct{}), done: make(chan struct{})}
}

// Args is an assessment job: one per asset while pending or running.
type Args struct {
	AssetID string `json:"asset_id" river:"unique"`
	Trigger string `json:"trigger"`
}

// Kind is the River job kind.
func (Args) Kind() string { return "assess.host" }

// uniqueStates: a pending, scheduled, retrying or running job stops a
// second one for the same asset; a finished one does not.
var uniqueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable}

func (s *Service) insertOpts(priority int) *river.InsertOpts {
	return &river.InsertOpts{Queue: Queue, Priority: priority, MaxAttempts: s.opts.MaxAttempts,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// DueArgs is the periodic job that queues the hosts due for reassessment.
type DueArgs struct{}

// Kind is the River job kind.
func (DueArgs) Kind() string { return "assess.due" }

// InsertOpts: one at a time; a missed one is not retried.
func (DueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// RegisterJobs adds the assessment workers.
func (s *Service) RegisterJobs(ws *river.Workers) {
	river.AddWorker(ws, &worker{s: s})
	river.AddWorker(ws, &dueWorker{s: s})
}

// PeriodicJobs returns the schedule that queues reassessments.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(s.opts.DueEvery),
		func() (river.JobArgs, *river.InsertOpts) { return DueArgs{}, nil },
		&river.PeriodicJobOpts{ID: "assess-due"})}
}

// SetClient gives the service the River client to queue jobs with, and
// starts taking inventory events when AutoQueue is set.
func (s *Service) SetClient(c *queue.Client) {
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	if s.opts.AutoQueue && s.opts.Inventory != nil {
		s.opts.Inventory.SetOnEvents(s.onEvents)
		go s.eventLoop()
	} else {
		close(s.done)
	}
}

// Close stops taking inventory events and cancels running assessments
// (River hands them back for a retry).
func (s *Service) Close() {
	if s.opts.AutoQueue && s.opts.Inventory != nil {
		s.opts.Inventory.SetOnEvents(nil)
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.wg.Wait()
}

// onEvents runs in the inventory's writer: it only hands the events on.
func (s *Service) onEvents(evs []inventory.Event) {
	select {
	case s.events <- evs:
	default:
		s.log.Warn("assessment queue is behind: inventory events dropped; the periodic job will catch up", "events", len(evs))
	}
}

// triggering are the asset changes that call for a new assessment.
var triggering = map[string]bool{"new_service": true, "closed_service": true, "service_version": true,
	"new_ip": true, "ip_moved": true, "os": true, "new_identifier": true, "seen_again": true}

func (s *Service) eventLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case evs := <-s.events:
			// Take whatever else is waiting too: one insert for all.
			for more := true; more; {
				select {
				case e := <-s.events:
					evs = append(evs, e...)
				default:
					more = false
				}
			}
			s.queueEvents(evs)
		}
	}
}

func (s *Service) queueEvents(evs []inventory.Event) {
	want := map[string]Args{}
	prio := map[string]int{}
	for _, ev := range evs {
		var a Args
		var p int
		switch {
		case ev.Kind == inventory.EventCreated:
			a, p = Args{AssetID: ev.AssetID, Trigger: TriggerNew}, PriorityNewUnmanaged
			if sum, ok := s.opts.Inventory.Lookup(ev.AssetID); ok && sum.Status == "managed" {
				p = PriorityNewManaged
			}
		case ev.Kind == inventory.EventChanged && triggering[ev.Detail["change"]],
			ev.Kind == inventory.EventMerged:
			a, p = Args{AssetID: ev.AssetID, Trigger: TriggerChanged}, PriorityChanged
		default:
			continue
		}
		// Only hosts with an address inside a scope are ever assessed.
		if sum, ok := s.opts.Inventory.Lookup(ev.AssetID); !ok {
			continue
		} else if _, _, err := s.pickAddr(sum); err != nil {
			continue
		}
		if old, ok := prio[a.AssetID]; !ok || p < old {
			want[a.AssetID], prio[a.AssetID] = a, p
		}
	}
	if len(want) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.enqueue(ctx, want, prio); err != nil {
		s.log.Error("queueing assessments failed; the periodic job will catch up", "assets", len(want), "err", err)
	}
}

// enqueue inserts one job per asset; an asset whose job is running now is
// remembered and queued again when that job ends.
func (s *Service) enqueue(ctx context.Context, want map[string]Args, prio map[string]int) ([]*rivertype.JobInsertResult, error) {
	s.mu.Lock()
	c := s.client
	for id := range want {
		if s.inJob[id] {
			if p, ok := s.again[id]; !ok || prio[id] < p {
				s.again[id] = prio[id]
			}
		}
	}
	s.mu.Unlock()
	if c == nil {
		return nil, errors.New("assessment queue not started")
	}
	params := make([]river.InsertManyParams, 0, len(want))
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		params = append(params, river.InsertManyParams{Args: want[id], InsertOpts: s.insertOpts(prio[id])})
	}
	res, err := c.InsertMany(ctx, params)
	if err != nil {
		return res, err
	}
	// A job that runs holds its asset's slot: what arrives meanwhile is
	// queued once it ends. A job running here does that itself (again);
	// one that just ended here, or runs elsewhere, is waited for.
	for i, r := range res {
		if !r.UniqueSkippedAsDuplicate || r.Job.State != rivertype.JobStateRunning {
			continue
		}
		id := ids[i]
		s.mu.Lock()
		here := s.inJob[id]
		s.mu.Unlock()
		if !here {
			s.requeueAfter(r.Job.ID, id, prio[id], want[id].Trigger)
		}
	}
	return res, nil
}

// Enqueue queues assessments of many assets in one insert (at most one
// job per asset, as always) and says how many were new.
func (s *Service) Enqueue(ctx context.Context, assetIDs []string, trigger string, priority int) (int, error) {
	want := make(map[string]Args, len(assetIDs))
	prio := make(map[string]int, len(assetIDs))
	for _, id := range assetIDs {
		want[id], prio[id] = Args{AssetID: id, Trigger: trigger}, priority
	}
	res, err := s.enqueue(ctx, want, prio)
	n := 0
	for _, r := range res {
		if !r.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, err
}

// Queued is the answer to a run request.
type Queued struct {
	JobID   int64  `json:"job_id"`
	AssetID string `json:"asset_id"`
	// Duplicate: a job for the asset was already pending or running;
	// JobID is that job.
	Duplicate bool   `json:"duplicate"`
	State     string `json:"state"`
}

// ErrNotFound: no such asset or assessment.
var ErrNotFound = errors.New("not found")

// ErrOutOfScope: the asset has no address inside the allowed scopes.
var ErrOutOfScope = errors.New("no address inside the allowed scopes")

// RunNow queues an assessment of an asset ahead of the automatic ones.
func (s *Service) RunNow(ctx context.Context, assetID string) (Queued, error) {
	sum, ok := s.opts.Inventory.Lookup(assetID)
	if !ok {
		return Queued{}, fmt.Errorf("%w: asset %s", ErrNotFound, assetID)
	}
	if _, _, err := s.pickAddr(sum); err != nil {
		return Queued{}, err
	}
	res, err := s.enqueue(ctx, map[string]Args{assetID: {AssetID: assetID, Trigger: TriggerManual}}, map[string]int{assetID: PriorityNewUnmanaged})
	if err != nil {
		return Queued{}, err
	}
	r := res[0]
	return Queued{JobID: r.Job.ID, AssetID: assetID, Duplicate: r.UniqueSkippedAsDuplicate, State: string(r.Job.State)}, nil
}

// pickAddr gives the asset's first current address inside a scope.
func (s *Service) pickAddr(sum inventory.Summary) (netip.Addr, string, error) {
	for _, raw := range sum.IPs {
		a, err := netip.ParseAddr(raw)
		if err != nil {
			continue
		}
		for _, sc := range s.opts.Scopes {
			if sc.Contains(a) {
				return a, sc.Name, nil
			}
		}
	}
	return netip.Addr{}, "", fmt.Errorf("%w: asset %s has addresses %s", ErrOutOfScope, sum.ID, strings.Join(sum.IPs, ", "))
}

// every is the reassessment interval for an asset of role in scope.
func (s *Service) every(role, scope string) time.Duration {
	d := s.opts.Every
	if r, ok := s.opts.EveryByRole[role]; ok && r > 0 && r < d {
		d = r
	}
	if r, ok := s.opts.EveryByScope[scope]; ok && r > 0 && r < d {
		d = r
	}
	return d
}

// Cancel cancels a pending or running assessment job.
func (s *Service) Cancel(ctx context.Context, jobID int64) (string, error) {
	s.mu.Lock()
	c := s.client
	cancel := s.running[jobID]
	s.mu.Unlock()
	if c == nil {
		return "", errors.New("assessment queue not started")
	}
	job, err := c.JobGet(ctx, jobID)
	if errors.Is(err, river.ErrNotFound) || err == nil && job.Kind != (Args{}).Kind() {
		return "", fmt.Errorf("%w: job %d", ErrNotFound, jobID)
	}
	if err != nil {
		return "", err
	}
	job, err = c.JobCancel(ctx, jobID)
	if err != nil {
		return "", err
	}
	if cancel != nil {
		cancel()
	}
	return string(job.State), nil
}
