package report

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Units of a report's figures.
const (
	UnitSeconds = "seconds"
	UnitRatio   = "ratio"
)

// GroupAll is the group of a report's one row when it is not split.
const GroupAll = "all"

// none stands for a missing group value.
const none = "(none)"

// ErrUnknownReport marks a report name that is not one of Names.
var ErrUnknownReport = errors.New("unknown report")

// ErrBadQuery marks a query a report cannot run; the error is a *QueryError.
var ErrBadQuery = errors.New("bad report query")

// QueryError names the field of a Query at fault and says why.
type QueryError struct {
	Field  string // from, to or group_by
	Detail string
}

func (e *QueryError) Error() string        { return e.Field + ": " + e.Detail }
func (e *QueryError) Is(target error) bool { return target == ErrBadQuery }

// Query is what a report covers.
type Query struct {
	// From and To bound the period, [From, To). A zero To is now, a zero
	// From 30 days before To.
	From, To time.Time
	// GroupBy splits the rows; "" is the report's default.
	GroupBy string
}

// DefaultPeriod is how far back a report reaches when From is not given.
const DefaultPeriod = 30 * 24 * time.Hour

// Row is one line of a report, by column name.
type Row map[string]any

// Report is a computed report.
type Report struct {
	Name    string    `json:"name"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	GroupBy string    `json:"group_by"`
	// Unit is the unit of the figures: seconds, or ratio for rates.
	Unit string `json:"unit"`
	// Columns are the rows' keys in the order CSV writes them.
	Columns []string `json:"columns"`
	Rows    []Row    `json:"rows"`
}

// Columns of the duration and rate reports.
var (
	durationColumns = []string{"group", "count", "median_s", "p90_s", "mean_s", "min_s", "max_s", "median", "p90", "mean"}
	fpColumns       = []string{"group", "closed", "false_positives", "rate"}
	regColumns      = []string{"group", "closed", "regressions", "rate"}
)

// Groups every alert report takes; asset reports take assetGroups.
var (
	assetGroups = []string{GroupAll, "week", "device_type", "software", "site", "network", "business_unit", "owner"}
	alertGroups = append(slices.Clone(assetGroups), "kind", "severity", "team", "check")
)

type definition struct {
	unit         string
	columns      []string
	groups       []string
	defaultGroup string
	run          func(ctx context.Context, l *loader, q Query) ([]Row, error)
}

var definitions = map[string]definition{
	"time_to_detect":       {UnitSeconds, durationColumns, alertGroups, GroupAll, timeToDetect},
	"pipeline_latency":     {UnitSeconds, durationColumns, alertGroups, GroupAll, pipelineLatency},
	"new_host_assessment":  {UnitSeconds, durationColumns, assetGroups, GroupAll, newHostAssessment},
	"time_to_acknowledge":  {UnitSeconds, durationColumns, alertGroups, GroupAll, timeToAcknowledge},
	"time_to_resolve":      {UnitSeconds, durationColumns, alertGroups, GroupAll, timeToResolve},
	"time_to_verified_fix": {UnitSeconds, durationColumns, alertGroups, GroupAll, timeToVerifiedFix},
	"false_positive_rate":  {UnitRatio, fpColumns, alertGroups, "check", falsePositiveRate},
	"regression_rate":      {UnitRatio, regColumns, alertGroups, GroupAll, regressionRate},
}

// Names lists the reports, sorted.
func Names() []string {
	out := make([]string, 0, len(definitions))
	for n := range definitions {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Known says whether name is one of Names.
func Known(name string) bool {
	_, ok := definitions[name]
	return ok
}

// Run computes the report name over q. An unknown name wraps
// ErrUnknownReport; a query it cannot run is a *QueryError (ErrBadQuery).
func Run(ctx context.Context, st *store.Store, name string, q Query) (Report, error) {
	def, ok := definitions[name]
	if !ok {
		return Report{}, fmt.Errorf("%w %q: want one of %s", ErrUnknownReport, name, strings.Join(Names(), ", "))
	}
	if q.To.IsZero() {
		q.To = store.Now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultPeriod)
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	if !q.From.Before(q.To) {
		return Report{}, &QueryError{Field: "from", Detail: fmt.Sprintf("%s is not before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))}
	}
	q.GroupBy = strings.TrimSpace(q.GroupBy)
	if q.GroupBy == "" {
		q.GroupBy = def.defaultGroup
	}
	if !slices.Contains(def.groups, q.GroupBy) {
		return Report{}, &QueryError{Field: "group_by", Detail: fmt.Sprintf("%q: %s groups by one of %s", q.GroupBy, name, strings.Join(def.groups, ", "))}
	}
	rows, err := def.run(ctx, &loader{db: st.DB}, q)
	if err != nil {
		return Report{}, fmt.Errorf("report %s: %w", name, err)
	}
	if rows == nil {
		rows = []Row{}
	}
	return Report{Name: name, From: q.From, To: q.To, GroupBy: q.GroupBy, Unit: def.unit, Columns: def.columns, Rows: rows}, nil
}

// WriteCSV writes the report as CSV: a header of its columns, then a line
// per row. Seconds and rates are written in full ("1801.667"), a missing
// value as an empty field.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, c := range r.Columns {
			rec[i] = formatValue(row[c])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// sample is one measured duration and the group it falls in.
type sample struct {
	group string
	d     time.Duration
}

// durationRows aggregates samples by group, rows sorted by group.
func durationRows(samples []sample) []Row {
	by := map[string][]time.Duration{}
	for _, s := range samples {
		by[s.group] = append(by[s.group], s.d)
	}
	rows := make([]Row, 0, len(by))
	for _, g := range sortedGroups(by) {
		rows = append(rows, durationRow(g, by[g]))
	}
	return rows
}

// durationRow is the figures of ds (not empty): see the package doc.
func durationRow(group string, ds []time.Duration) Row {
	slices.Sort(ds)
	n := len(ds)
	var sum float64
	for _, d := range ds {
		sum += d.Seconds()
	}
	mean := sum / float64(n)
	median, p90 := ds[rankIndex(50, n)], ds[rankIndex(90, n)]
	return Row{
		"group": group, "count": n,
		"median_s": seconds(median.Seconds()), "p90_s": seconds(p90.Seconds()), "mean_s": seconds(mean),
		"min_s": seconds(ds[0].Seconds()), "max_s": seconds(ds[n-1].Seconds()),
		"median": Human(median), "p90": Human(p90), "mean": Human(time.Duration(mean * float64(time.Second))),
	}
}

// rankIndex is the 0-based index of the nearest-rank pct-th percentile of
// n sorted values: rank ceil(pct*n/100), counted in integers so that no
// rounding moves it.
func rankIndex(pct, n int) int {
	rank := (pct*n + 99) / 100
	return min(max(rank, 1), n) - 1
}

// seconds rounds to the millisecond.
func seconds(s float64) float64 { return math.Round(s*1000) / 1000 }

// ratio rounds to 4 decimals.
func ratio(part, whole int) float64 {
	return math.Round(float64(part)/float64(whole)*10000) / 10000
}

// Human writes d rounded to the second in its two largest units, the
// second left out when zero: "42s", "30m 2s", "1h", "12h 10m", "13d".
func Human(d time.Duration) string {
	d = d.Round(time.Second)
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	parts := []struct {
		n    int64
		unit string
	}{
		{int64(d / (24 * time.Hour)), "d"},
		{int64(d % (24 * time.Hour) / time.Hour), "h"},
		{int64(d % time.Hour / time.Minute), "m"},
		{int64(d % time.Minute / time.Second), "s"},
	}
	for i, p := range parts {
		if p.n == 0 {
			continue
		}
		s := sign + strconv.FormatInt(p.n, 10) + p.unit
		if i+1 < len(parts) && parts[i+1].n != 0 {
			s += " " + strconv.FormatInt(parts[i+1].n, 10) + parts[i+1].unit
		}
		return s
	}
	return "0s"
}

// sortedGroups returns the keys of by in report order: networks by
// address, anything else as strings.
func sortedGroups[V any](by map[string]V) []string {
	out := make([]string, 0, len(by))
	for g := range by {
		out = append(out, g)
	}
	slices.SortFunc(out, compareGroups)
	return out
}

func compareGroups(a, b string) int {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	if errA == nil && errB == nil {
		if c := pa.Addr().Compare(pb.Addr()); c != 0 {
			return c
		}
		return pa.Bits() - pb.Bits()
	}
	return strings.Compare(a, b)
}

// isoWeek names t's ISO week: "2026-W49".
func isoWeek(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}
