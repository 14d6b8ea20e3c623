package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/queue"
)

// Asset event kinds written by assessments, for the alert process.
const (
	EventAssessed     = "assessed"      // detail: assessment, score, failed
	EventDrift        = "config_drift"  // detail: assessment, drift kind, port, field, before, after, weaker
	EventCheckFailed  = "check_failed"  // a check fails that did not fail in the previous assessment
	EventCheckCleared = "check_cleared" // a check that failed before passes now
)

type worker struct {
	river.WorkerDefaults[Args]
	s *Service
}

func (w *worker) Timeout(*river.Job[Args]) time.Duration { return w.s.opts.JobTimeout }

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	return w.s.work(ctx, job.ID, job.Attempt, job.Args)
}

type dueWorker struct {
	river.WorkerDefaults[DueArgs]
	s *Service
}

func (w *dueWorker) Work(ctx context.Context, _ *river.Job[DueArgs]) error {
	_, err := w.s.QueueDue(ctx)
	return err
}

func (s *Service) work(ctx context.Context, jobID int64, attempt int, a Args) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.mu.Lock()
	s.running[jobID] = func() { cancel(errCancelled) }
	s.inJob[a.AssetID] = true
	s.mu.Unlock()
	defer s.finished(jobID, a.AssetID)

	_, err := s.Assess(ctx, a.AssetID, a.Trigger, jobID, attempt)
	switch {
	case cancelled(ctx):
		s.mu.Lock()
		delete(s.again, a.AssetID) // a cancelled job is not run again
		s.mu.Unlock()
		return river.JobCancel(errCancelled)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrOutOfScope):
		// Nothing to retry: the asset went, or may not be probed.
		return river.JobCancel(err)
	}
	return err
}

var errCancelled = errors.New("assessment cancelled")

// cancelled: someone cancelled the job, here (Cancel) or through River
// from another process.
func cancelled(ctx context.Context) bool {
	c := context.Cause(ctx)
	return errors.Is(c, errCancelled) || errors.Is(c, river.ErrJobCancelledRemotely)
}

// finished forgets a job, and queues its asset again if it changed while
// the job ran.
func (s *Service) finished(jobID int64, assetID string) {
	s.mu.Lock()
	delete(s.running, jobID)
	delete(s.inJob, assetID)
	p, again := s.again[assetID]
	delete(s.again, assetID)
	s.mu.Unlock()
	if again {
		s.requeueAfter(jobID, assetID, p, TriggerChanged)
	}
}

// requeueAfter queues the asset again once job jobID is finished: until
// River marks it so (just after Work returns) it holds the asset's unique
// slot, and an insert would be skipped as a duplicate.
func (s *Service) requeueAfter(jobID int64, assetID string, priority int, trigger string) {
	c := s.clientNow()
	if c == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.JobTimeout+time.Minute)
		defer cancel()
		for {
			job, err := c.JobGet(ctx, jobID)
			if err != nil && !errors.Is(err, river.ErrNotFound) {
				select {
				case <-ctx.Done():
					s.log.Warn("queueing an asset again failed", "asset", assetID, "err", err)
					return
				case <-s.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			if err == nil && job.FinalizedAt == nil {
				select {
				case <-ctx.Done():
					s.log.Warn("queueing an asset again: its job did not end", "asset", assetID, "job", jobID)
					return
				case <-s.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			if _, err := c.Insert(ctx, Args{AssetID: assetID, Trigger: trigger}, s.insertOpts(priority)); err != nil {
				s.log.Warn("queueing an asset again failed", "asset", assetID, "err", err)
			}
			return
		}
	}()
}

func (s *Service) clientNow() *queue.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// Assessment is one stored assessment.
type Assessment struct {
	ID            string              `json:"id"`
	AssetID       string              `json:"asset_id"`
	Target        string              `json:"target"`
	Trigger       string              `json:"trigger"`
	State         string              `json:"state"` // running, succeeded, failed, cancelled
	JobID         int64               `json:"job_id,omitempty"`
	Attempt       int                 `json:"attempt"`
	Policy        string              `json:"policy"`
	PolicyVersion string              `json:"policy_version"`
	Role          string              `json:"role"`
	Score         *float64            `json:"score"`
	Counts        map[string]int      `json:"counts"`
	Facts         *assess.Facts       `json:"facts,omitempty"`
	Results       []assess.Result     `json:"results,omitempty"`
	Drift         []assess.DriftEntry `json:"drift"`
	Evidence      []assess.Evidence   `json:"evidence,omitempty"`
	Error         string              `json:"error,omitempty"`
	PreviousID    string              `json:"previous_id,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	StartedAt     *time.Time          `json:"started_at"`
	FinishedAt    *time.Time          `json:"finished_at"`
}

// Assess assesses one asset now, in the caller's goroutine, and stores the
// assessment. Jobs call it; so can tests and tools.
func (s *Service) Assess(ctx context.Context, assetID, trigger string, jobID int64, attempt int) (Assessment, error) {
	sum, ok := s.opts.Inventory.Lookup(assetID)
	if !ok {
		return Assessment{}, fmt.Errorf("%w: asset %s", ErrNotFound, assetID)
	}
	now := s.opts.Now()
	as := Assessment{ID: uuid.NewString(), AssetID: assetID, Trigger: trigger, State: "running", JobID: jobID, Attempt: attempt,
		Policy: s.opts.PolicyName, PolicyVersion: policyVersion(s.opts.Policy), CreatedAt: now, StartedAt: &now, Counts: map[string]int{}}
	addr, _, err := s.pickAddr(sum)
	if err != nil {
		as.State, as.Error, as.FinishedAt = "failed", err.Error(), &now
		if werr := s.save(ctx, s.db(), &as); werr != nil {
			return as, werr
		}
		return as, err
	}
	as.Target = addr.String()
	if jobID != 0 && attempt > 1 {
		if err := s.lost(ctx, as); err != nil {
			return as, err
		}
	}

	facts, evidence, cerr := s.opts.Collector.Collect(ctx, Target{AssetID: assetID, Addr: addr, Ports: s.opts.Ports, Hostnames: sum.Hostnames})
	as.Evidence = evidence
	end := s.opts.Now()
	as.FinishedAt = &end
	if cerr != nil {
		as.State, as.Error = "failed", cerr.Error()
		if cancelled(ctx) {
			as.State, as.Error = "cancelled", "cancelled by request"
		}
		// The row must be written even though ctx may be done.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.save(wctx, s.db(), &as); err != nil {
			return as, errors.Join(cerr, err)
		}
		return as, cerr
	}

	facts.Target, facts.AssetID = as.Target, assetID
	facts.Hostnames = append([]string(nil), sum.Hostnames...)
	facts.Managed = sum.Status == "managed"
	if sum.CMDB != nil && sum.CMDB.Role != "" {
		facts.Role = sum.CMDB.Role
	}
	facts.Normalize()
	if facts.Role == "" && s.opts.Policy != nil {
		facts.Role = s.opts.Policy.Role(&facts)
	}
	as.Role = facts.Role
	as.Facts = &facts
	if s.opts.Policy != nil {
		as.Results = s.opts.Policy.Evaluate(&facts, end)
	}
	as.Counts, as.Score = Score(as.Results)

	prev, err := s.previous(ctx, assetID, as.ID)
	if err != nil {
		return as, err
	}
	if prev != nil && prev.Facts != nil {
		as.PreviousID = prev.ID
		as.Drift = assess.Drift(prev.Facts, &facts)
	}
	events := changeEvents(&as, prev, end)
	as.State = "succeeded"
	events = append(events, inventory.Event{AssetID: assetID, Time: end, Kind: EventAssessed, Detail: map[string]string{
		"assessment": as.ID, "score": scoreString(as.Score), "failed": strings.Join(failedIDs(as.Results), ","),
		"drift": fmt.Sprint(len(as.Drift)), "trigger": trigger}})
	if err := s.finish(ctx, &as, events); err != nil {
		return as, err
	}
	s.log.Info("host assessed", "asset", assetID, "target", as.Target, "trigger", trigger, "score", scoreString(as.Score),
		"failed", as.Counts[string(assess.Fail)], "drift", len(as.Drift), "took", end.Sub(now).Round(time.Millisecond))
	return as, nil
}

func policyVersion(p Policy) string {
	if p == nil {
		return ""
	}
	if v := p.Version(); v != "" {
		return v
	}
	if d := p.Digest(); len(d) > 12 {
		return "sha256:" + d[:12]
	}
	return p.Digest()
}

// severityWeight weighs a check in the score.
var severityWeight = map[string]float64{"info": 0, "low": 1, "medium": 2, "high": 4, "critical": 8}

// Score counts results by status and scores them: the severity-weighted
// share of passing checks among those that passed or failed, 0 to 100
// (nil when no check applied). Errors count as failures.
func Score(rs []assess.Result) (map[string]int, *float64) {
	counts := map[string]int{}
	var pass, total float64
	for _, r := range rs {
		counts[string(r.Status)]++
		w, ok := severityWeight[r.Severity]
		if !ok {
			w = 1
		}
		switch r.Status {
		case assess.Pass:
			pass += w
			total += w
		case assess.Fail, assess.Error:
			total += w
		}
	}
	if total == 0 {
		return counts, nil
	}
	sc := float64(int(1000*pass/total+0.5)) / 10
	return counts, &sc
}

func scoreString(s *float64) string {
	if s == nil {
		return ""
	}
	return fmt.Sprint(*s)
}

func failedIDs(rs []assess.Result) []string {
	var out []string
	for _, r := range rs {
		if r.Status == assess.Fail {
			out = append(out, r.CheckID)
		}
	}
	return out
}

// changeEvents are the drift entries and the checks that started or
// stopped failing since prev (with no prev, every failing check).
func changeEvents(as *Assessment, prev *Assessment, at time.Time) []inventory.Event {
	var evs []inventory.Event
	was := map[string]assess.Status{}
	if prev == nil {
		prev = &Assessment{}
	}
	for _, r := range prev.Results {
		was[r.CheckID] = r.Status
	}
	for _, d := range as.Drift {
		before, _ := json.Marshal(d.Before)
		after, _ := json.Marshal(d.After)
		evs = append(evs, inventory.Event{AssetID: as.AssetID, Time: at, Kind: EventDrift, Detail: map[string]string{
			"assessment": as.ID, "previous": prev.ID, "drift": d.Kind, "port": fmt.Sprint(d.Port), "protocol": d.Protocol,
			"field": d.Field, "before": string(before), "after": string(after), "weaker": fmt.Sprint(d.Weaker)}})
	}
	for _, r := range as.Results {
		switch {
		case r.Status == assess.Fail && was[r.CheckID] != assess.Fail:
			ev, _ := json.Marshal(r.Evidence)
			evs = append(evs, inventory.Event{AssetID: as.AssetID, Time: at, Kind: EventCheckFailed, Detail: map[string]string{
				"assessment": as.ID, "check": r.CheckID, "title": r.Title, "severity": r.Severity, "evidence": string(ev)}})
		case r.Status == assess.Pass && was[r.CheckID] == assess.Fail:
			evs = append(evs, inventory.Event{AssetID: as.AssetID, Time: at, Kind: EventCheckCleared, Detail: map[string]string{
				"assessment": as.ID, "check": r.CheckID, "title": r.Title, "severity": r.Severity}})
		}
	}
	return evs
}
