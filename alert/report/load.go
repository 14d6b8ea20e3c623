package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/inventory"
)

// inChunk bounds the ids of one IN (...) list, well under both databases'
// limits on bound parameters.
const inChunk = 500

// maxMergeHops bounds how far an alert's asset id is followed through merges.
const maxMergeHops = 8

// loader reads what reports need. Times are compared in SQL only against
// bound parameters, and never aggregated there: SQLite gives aggregates of
// time columns back as text.
type loader struct {
	db *sqlx.DB
}

// alertRec is the part of an alert the reports read.
type alertRec struct {
	ID         string `db:"id"`
	Kind       string `db:"kind"`
	Severity   string `db:"severity"`
	AssetID    string `db:"asset_id"`
	CheckID    string `db:"check_id"`
	Team       string `db:"team"`
	Workflow   string `db:"workflow"`
	Resolution string `db:"resolution"`
	Detail     string `db:"detail"`
	// FirstDetail is the detail of the alert's first firing occurrence.
	FirstDetail   sql.NullString `db:"first_detail"`
	FirstFiredAt  time.Time      `db:"first_fired_at"`
	CreatedAt     time.Time      `db:"created_at"`
	AckedAt       *time.Time     `db:"acked_at"`
	ClosedAt      *time.Time     `db:"closed_at"`
	ClearedAt     *time.Time     `db:"cleared_at"`
	Regression    bool           `db:"regression"`
	ReopenedCount int            `db:"reopened_count"`
}

// raisedBy returns the assessment ids (assessment_id,
// previous_assessment_id) of the observation that raised the alert: its
// first firing occurrence, else its latest detail.
func (r *alertRec) raisedBy() (assessment, previous string, err error) {
	raw := r.Detail
	if r.FirstDetail.Valid && r.FirstDetail.String != "" {
		raw = r.FirstDetail.String
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return "", "", fmt.Errorf("alert %s: detail: %w", r.ID, err)
	}
	str := func(k string) string {
		s, _ := d[k].(string)
		return strings.TrimSpace(s)
	}
	return str("assessment_id"), str("previous_assessment_id"), nil
}

// check is the alert's check, or its kind when it has none.
func (r *alertRec) check() string {
	if r.CheckID != "" {
		return r.CheckID
	}
	return r.Kind
}

// alerts returns the alerts created in q's period, of the given kinds (all
// when none), oldest first; withFirst fills in FirstDetail.
func (l *loader) alerts(ctx context.Context, q Query, withFirst bool, kinds ...string) ([]alertRec, error) {
	cols := `a.id, a.kind, a.severity, a.asset_id, a.check_id, a.team, a.workflow, a.resolution, a.detail,
		a.first_fired_at, a.created_at, a.acked_at, a.closed_at, a.cleared_at, a.regression, a.reopened_count`
	if withFirst {
		cols += `, (SELECT o.detail FROM alert_occurrences o WHERE o.alert_id = a.id AND o.condition = 'firing'
			ORDER BY o.id LIMIT 1) AS first_detail`
	}
	query := `SELECT ` + cols + ` FROM alerts a WHERE a.created_at >= ? AND a.created_at < ?`
	args := []any{q.From, q.To}
	if len(kinds) > 0 {
		query += ` AND a.kind IN (?` + strings.Repeat(`, ?`, len(kinds)-1) + `)`
		for _, k := range kinds {
			args = append(args, k)
		}
	}
	query += ` ORDER BY a.created_at, a.id`
	var out []alertRec
	if err := l.db.SelectContext(ctx, &out, l.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("reading alerts: %w", err)
	}
	for i := range out {
		r := &out[i]
		r.FirstFiredAt, r.CreatedAt = r.FirstFiredAt.UTC(), r.CreatedAt.UTC()
		r.AckedAt, r.ClosedAt, r.ClearedAt = utc(r.AckedAt), utc(r.ClosedAt), utc(r.ClearedAt)
	}
	return out, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// asset is the part of an asset the groups read.
type asset struct {
	ID        string
	FirstSeen time.Time
	inventory.Summary
}

type assetRow struct {
	ID        string    `db:"id"`
	FirstSeen time.Time `db:"first_seen"`
	Summary   string    `db:"summary"`
}

func (r assetRow) asset() (*asset, error) {
	a := &asset{ID: r.ID, FirstSeen: r.FirstSeen.UTC()}
	if err := json.Unmarshal([]byte(r.Summary), &a.Summary); err != nil {
		return nil, fmt.Errorf("asset %s: summary: %w", r.ID, err)
	}
	return a, nil
}

// newAssets returns the assets first seen in q's period.
func (l *loader) newAssets(ctx context.Context, q Query) ([]*asset, error) {
	var rows []assetRow
	err := l.db.SelectContext(ctx, &rows, l.db.Rebind(`SELECT id, first_seen, summary FROM assets
		WHERE first_seen >= ? AND first_seen < ? ORDER BY id`), q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("reading assets: %w", err)
	}
	out := make([]*asset, len(rows))
	for i, r := range rows {
		if out[i], err = r.asset(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// assetsByID returns the assets of ids, by id; an id merged into another
// asset maps to the asset it is part of now. Ids of no asset are absent.
func (l *loader) assetsByID(ctx context.Context, ids []string) (map[string]*asset, error) {
	out := map[string]*asset{}
	// pending: an id to look up -> the ids asked for that lead to it
	pending := map[string][]string{}
	for _, id := range ids {
		if id != "" && !slices.Contains(pending[id], id) {
			pending[id] = append(pending[id], id)
		}
	}
	for hop := 0; len(pending) > 0 && hop <= maxMergeHops; hop++ {
		rows, err := selectIn[assetRow](ctx, l.db, `SELECT id, first_seen, summary FROM assets WHERE id IN (?)`, keys(pending))
		if err != nil {
			return nil, fmt.Errorf("reading assets: %w", err)
		}
		for _, r := range rows {
			a, err := r.asset()
			if err != nil {
				return nil, err
			}
			for _, asked := range pending[r.ID] {
				out[asked] = a
			}
			delete(pending, r.ID)
		}
		if len(pending) == 0 {
			break
		}
		type merge struct {
			From string `db:"from_id"`
			Into string `db:"into_id"`
		}
		merges, err := selectIn[merge](ctx, l.db, `SELECT from_id, into_id FROM asset_merges WHERE from_id IN (?)`, keys(pending))
		if err != nil {
			return nil, fmt.Errorf("reading asset merges: %w", err)
		}
		next := map[string][]string{}
		for _, m := range merges {
			next[m.Into] = append(next[m.Into], pending[m.From]...)
		}
		pending = next
	}
	return out, nil
}

// assessmentRec is the part of an assessment the reports read.
type assessmentRec struct {
	ID         string     `db:"id"`
	AssetID    string     `db:"asset_id"`
	PreviousID string     `db:"previous_id"`
	CreatedAt  time.Time  `db:"created_at"`
	StartedAt  *time.Time `db:"started_at"`
	FinishedAt *time.Time `db:"finished_at"`
}

const assessmentCols = `a.id, a.asset_id, a.previous_id, a.created_at, a.started_at, a.finished_at`

func (r *assessmentRec) fix() {
	r.CreatedAt, r.StartedAt, r.FinishedAt = r.CreatedAt.UTC(), utc(r.StartedAt), utc(r.FinishedAt)
}

// assessments adds to into the assessments of ids it lacks.
func (l *loader) assessments(ctx context.Context, ids []string, into map[string]*assessmentRec) error {
	missing := map[string]bool{}
	for _, id := range ids {
		if _, ok := into[id]; !ok && id != "" {
			missing[id] = true
		}
	}
	rows, err := selectIn[assessmentRec](ctx, l.db, `SELECT `+assessmentCols+` FROM assessments a WHERE a.id IN (?)`, keys(missing))
	if err != nil {
		return fmt.Errorf("reading assessments: %w", err)
	}
	for i := range rows {
		rows[i].fix()
		into[rows[i].ID] = &rows[i]
	}
	return nil
}

// firstAssessments returns the first assessment (earliest created_at, then
// id) of each of the assets, by asset id.
func (l *loader) firstAssessments(ctx context.Context, assetIDs []string) (map[string]*assessmentRec, error) {
	rows, err := selectIn[assessmentRec](ctx, l.db, `SELECT `+assessmentCols+` FROM assessments a
		WHERE a.asset_id IN (?) AND NOT EXISTS (SELECT 1 FROM assessments b WHERE b.asset_id = a.asset_id
			AND (b.created_at < a.created_at OR (b.created_at = a.created_at AND b.id < a.id)))`, assetIDs)
	if err != nil {
		return nil, fmt.Errorf("reading assessments: %w", err)
	}
	out := make(map[string]*assessmentRec, len(rows))
	for i := range rows {
		rows[i].fix()
		out[rows[i].AssetID] = &rows[i]
	}
	return out, nil
}

// selectIn runs query, whose one bind parameter is an IN (?) list, over ids
// in chunks, and returns all the rows.
func selectIn[T any](ctx context.Context, db *sqlx.DB, query string, ids []string) ([]T, error) {
	var out []T
	for chunk := range slices.Chunk(ids, inChunk) {
		q, args, err := sqlx.In(query, chunk)
		if err != nil {
			return nil, err
		}
		var part []T
		if err := db.SelectContext(ctx, &part, db.Rebind(q), args...); err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
