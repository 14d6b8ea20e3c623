package runner

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

func (s *Service) db() *sqlx.DB { return s.opts.Store.DB }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// rowInsert is the statement (with ? placeholders) and arguments that store
// an ended assessment, whole. Rows are written once, when the assessment
// ends: a running one shows as its job (PendingFor).
func rowInsert(as *Assessment) (string, []any) {
	var job any
	if as.JobID != 0 {
		job = as.JobID
	}
	facts := "{}"
	if as.Facts != nil {
		facts = mustJSON(as.Facts)
	}
	results, drift, evidence := "[]", "[]", "[]"
	if as.Results != nil {
		results = mustJSON(as.Results)
	}
	if as.Drift != nil {
		drift = mustJSON(as.Drift)
	}
	if as.Evidence != nil {
		evidence = mustJSON(as.Evidence)
	}
	return `INSERT INTO assessments
		(id, asset_id, target, trigger, state, job_id, attempt, policy, policy_version, role, score, counts, facts,
		 results, drift, evidence, error, previous_id, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		[]any{as.ID, as.AssetID, as.Target, as.Trigger, as.State, job, as.Attempt, as.Policy, as.PolicyVersion, as.Role, as.Score,
			mustJSON(as.Counts), facts, results, drift, evidence, as.Error, as.PreviousID, as.CreatedAt, as.StartedAt, as.FinishedAt}
}

// save stores an ended assessment without events.
func (s *Service) save(ctx context.Context, q sqlx.ExecerContext, as *Assessment) error {
	query, args := rowInsert(as)
	if _, err := q.ExecContext(ctx, s.db().Rebind(query), args...); err != nil {
		return fmt.Errorf("storing assessment: %w", err)
	}
	return nil
}

// finish stores a finished assessment and its events together: on
// PostgreSQL in one statement (the row inserted in a WITH clause), on
// SQLite in one transaction.
func (s *Service) finish(ctx context.Context, as *Assessment, events []inventory.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	row, args := rowInsert(as)
	var evq strings.Builder
	var evArgs []any
	if len(events) > 0 {
		evq.WriteString(`INSERT INTO asset_events (asset_id, at, kind, detail) VALUES `)
		for i, ev := range events {
			if i > 0 {
				evq.WriteString(", ")
			}
			evq.WriteString("(?, ?, ?, ?)")
			evArgs = append(evArgs, ev.AssetID, ev.Time, ev.Kind, mustJSON(ev.Detail))
		}
	}
	if s.opts.Store.Kind == store.Postgres || len(events) == 0 {
		query := row
		if len(events) > 0 {
			query = "WITH a AS (" + row + ") " + evq.String()
			args = append(args, evArgs...)
		}
		if _, err := s.db().ExecContext(ctx, s.db().Rebind(query), args...); err != nil {
			return fmt.Errorf("storing assessment: %w", err)
		}
		return nil
	}
	tx, err := s.db().BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storing assessment: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, s.db().Rebind(row), args...); err != nil {
		return fmt.Errorf("storing assessment: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.db().Rebind(evq.String()), evArgs...); err != nil {
		return fmt.Errorf("storing assessment events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storing assessment: %w", err)
	}
	return nil
}

// lost records the earlier attempts of a job that left no assessment: their
// worker died (or was killed) before it could write one.
func (s *Service) lost(ctx context.Context, as Assessment) error {
	var have []int
	if err := s.db().SelectContext(ctx, &have, s.db().Rebind(`SELECT attempt FROM assessments WHERE job_id = ?`), as.JobID); err != nil {
		return fmt.Errorf("reading earlier attempts: %w", err)
	}
	for a := 1; a < as.Attempt; a++ {
		if slices.Contains(have, a) {
			continue
		}
		l := as
		l.ID, l.Attempt, l.State = uuid.NewString(), a, "failed"
		l.Error = fmt.Sprintf("worker lost; the job was taken up again as attempt %d", as.Attempt)
		// When it began is not known; it ended before this attempt did.
		l.CreatedAt = as.CreatedAt.Add(-time.Duration(as.Attempt-a) * time.Microsecond)
		l.StartedAt, l.FinishedAt = nil, &as.CreatedAt
		if err := s.save(ctx, s.db(), &l); err != nil {
			return err
		}
	}
	return nil
}

type row struct {
	ID            string          `db:"id"`
	AssetID       string          `db:"asset_id"`
	Target        string          `db:"target"`
	Trigger       string          `db:"trigger"`
	State         string          `db:"state"`
	JobID         sql.NullInt64   `db:"job_id"`
	Attempt       int             `db:"attempt"`
	Policy        string          `db:"policy"`
	PolicyVersion string          `db:"policy_version"`
	Role          string          `db:"role"`
	Score         sql.NullFloat64 `db:"score"`
	Counts        string          `db:"counts"`
	Facts         string          `db:"facts"`
	Results       string          `db:"results"`
	Drift         string          `db:"drift"`
	Evidence      string          `db:"evidence"`
	Error         string          `db:"error"`
	PreviousID    string          `db:"previous_id"`
	CreatedAt     time.Time       `db:"created_at"`
	StartedAt     sql.NullTime    `db:"started_at"`
	FinishedAt    sql.NullTime    `db:"finished_at"`
}

const summaryCols = `id, asset_id, target, trigger, state, job_id, attempt, policy, policy_version, role, score, counts, drift, error, previous_id, created_at, started_at, finished_at`
const allCols = summaryCols + `, facts, results, evidence`

// compareCols are what drift needs of the previous assessment: its facts
// and results, not its evidence (the nmap XML, the bulk of a row).
const compareCols = summaryCols + `, facts, results, '[]' AS evidence`

func (r row) assessment(full bool) (Assessment, error) {
	as := Assessment{ID: r.ID, AssetID: r.AssetID, Target: r.Target, Trigger: r.Trigger, State: r.State, JobID: r.JobID.Int64,
		Attempt: r.Attempt, Policy: r.Policy, PolicyVersion: r.PolicyVersion, Role: r.Role, Error: r.Error, PreviousID: r.PreviousID,
		CreatedAt: r.CreatedAt.UTC(), Counts: map[string]int{}, Drift: []assess.DriftEntry{}}
	if r.Score.Valid {
		v := r.Score.Float64
		as.Score = &v
	}
	if r.StartedAt.Valid {
		t := r.StartedAt.Time.UTC()
		as.StartedAt = &t
	}
	if r.FinishedAt.Valid {
		t := r.FinishedAt.Time.UTC()
		as.FinishedAt = &t
	}
	errs := []error{json.Unmarshal([]byte(r.Counts), &as.Counts), json.Unmarshal([]byte(r.Drift), &as.Drift)}
	if full {
		if r.Facts != "{}" && r.Facts != "" {
			as.Facts = &assess.Facts{}
			errs = append(errs, json.Unmarshal([]byte(r.Facts), as.Facts))
			as.Facts.Normalize()
		}
		as.Results, as.Evidence = []assess.Result{}, []assess.Evidence{}
		errs = append(errs, json.Unmarshal([]byte(r.Results), &as.Results), json.Unmarshal([]byte(r.Evidence), &as.Evidence))
	}
	if err := errors.Join(errs...); err != nil {
		return as, fmt.Errorf("stored assessment %s: %w", r.ID, err)
	}
	return as, nil
}

// Get returns one assessment with its facts, results, drift and evidence.
func (s *Service) Get(ctx context.Context, id string) (Assessment, error) {
	var r row
	err := s.db().GetContext(ctx, &r, s.db().Rebind(`SELECT `+allCols+` FROM assessments WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Assessment{}, fmt.Errorf("%w: assessment %s", ErrNotFound, id)
	}
	if err != nil {
		return Assessment{}, err
	}
	return r.assessment(true)
}

// List returns an asset's assessments, newest first, without facts,
// results and evidence.
func (s *Service) List(ctx context.Context, assetID string, limit int) ([]Assessment, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var rows []row
	err := s.db().SelectContext(ctx, &rows, s.db().Rebind(`SELECT `+summaryCols+` FROM assessments WHERE asset_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`), assetID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Assessment, 0, len(rows))
	for _, r := range rows {
		as, err := r.assessment(false)
		if err != nil {
			return nil, err
		}
		out = append(out, as)
	}
	return out, nil
}

// previous is the asset's latest succeeded assessment other than id.
func (s *Service) previous(ctx context.Context, assetID, id string) (*Assessment, error) {
	var r row
	err := s.db().GetContext(ctx, &r, s.db().Rebind(`SELECT `+compareCols+` FROM assessments
		WHERE asset_id = ? AND state = 'succeeded' AND id <> ? ORDER BY created_at DESC, id DESC LIMIT 1`), assetID, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the previous assessment: %w", err)
	}
	as, err := r.assessment(true)
	return &as, err
}

// Pending is an asset's job waiting or running, if any.
type Pending struct {
	JobID       int64     `json:"job_id"`
	State       string    `json:"state"`
	Trigger     string    `json:"trigger"`
	Priority    int       `json:"priority"`
	Attempt     int       `json:"attempt"`
	ScheduledAt time.Time `json:"scheduled_at"`
}

// PendingFor returns the asset's pending or running job, nil if none.
func (s *Service) PendingFor(ctx context.Context, assetID string) (*Pending, error) {
	c := s.clientNow()
	if c == nil {
		return nil, nil
	}
	// River's job list has no filter by arguments on every driver; the
	// queue of pending assessments is short, so scan it.
	params := river.NewJobListParams().Kinds(Args{}.Kind()).States(uniqueStates...).First(10000)
	res, err := c.JobList(ctx, params)
	if err != nil {
		return nil, err
	}
	for _, j := range res.Jobs {
		var a Args
		if json.Unmarshal(j.EncodedArgs, &a) == nil && a.AssetID == assetID {
			return &Pending{JobID: j.ID, State: string(j.State), Trigger: a.Trigger, Priority: j.Priority, Attempt: j.Attempt, ScheduledAt: j.ScheduledAt.UTC()}, nil
		}
	}
	return nil, nil
}

// QueueDue queues every asset whose last assessment is older than its
// reassessment interval (or that was never assessed), at periodic priority.
func (s *Service) QueueDue(ctx context.Context) (int, error) {
	type last struct {
		AssetID string    `db:"asset_id"`
		At      time.Time `db:"at"`
	}
	var rows []last
	if err := s.db().SelectContext(ctx, &rows, `SELECT a.asset_id, a.created_at AS at FROM assessments a
		WHERE a.asset_id <> '' AND a.created_at = (SELECT MAX(b.created_at) FROM assessments b WHERE b.asset_id = a.asset_id)`); err != nil {
		return 0, fmt.Errorf("reading assessment times: %w", err)
	}
	lastAt := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		if r.At.After(lastAt[r.AssetID]) {
			lastAt[r.AssetID] = r.At
		}
	}
	now := s.opts.Now()
	want := map[string]Args{}
	prio := map[string]int{}
	s.opts.Inventory.EachAsset(func(a *inventory.Asset) {
		if len(want) >= 10000 {
			return // the rest next time
		}
		sum := a.Summary()
		if sum.Missing {
			return
		}
		_, scope, err := s.pickAddr(sum)
		if err != nil {
			return
		}
		role := ""
		if sum.CMDB != nil {
			role = sum.CMDB.Role
		}
		if at, ok := lastAt[sum.ID]; ok && now.Sub(at) < s.every(role, scope) {
			return
		}
		want[sum.ID] = Args{AssetID: sum.ID, Trigger: TriggerPeriodic}
		prio[sum.ID] = PriorityPeriodic
	})
	if len(want) == 0 {
		return 0, nil
	}
	res, err := s.enqueue(ctx, want, prio)
	n := 0
	for _, r := range res {
		if !r.UniqueSkippedAsDuplicate {
			n++
		}
	}
	if n > 0 {
		s.log.Info("hosts queued for periodic reassessment", "queued", n)
	}
	return n, err
}
