package report_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert/report"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// The seeded history covers two ISO weeks, 2026-W49 (Monday 30 November)
// and 2026-W50, the period [from, to).
var (
	from = ts("2026-11-30T00:00:00Z")
	to   = ts("2026-12-14T00:00:00Z")
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// tp is ts as a pointer, nil for "".
func tp(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := ts(s)
	return &t
}

type seeder struct {
	t  *testing.T
	st *store.Store
}

func (s seeder) exec(query string, args ...any) {
	s.t.Helper()
	if _, err := s.st.DB.ExecContext(context.Background(), s.st.DB.Rebind(query), args...); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
}

func (s seeder) asset(id, firstSeen string, sum inventory.Summary) {
	s.t.Helper()
	sum.ID, sum.Status, sum.Identity, sum.FirstSeen, sum.LastSeen = id, "managed", "strong", ts(firstSeen), ts(firstSeen)
	b, err := json.Marshal(sum)
	if err != nil {
		s.t.Fatal(err)
	}
	s.exec(`INSERT INTO assets (id, status, identity, missing, first_seen, last_seen, search, sources, summary, doc)
		VALUES (?, 'managed', 'strong', ?, ?, ?, '', '', ?, '{}')`, id, false, ts(firstSeen), ts(firstSeen), string(b))
}

func (s seeder) assessment(id, asset, previous, state, created, started, finished string) {
	s.t.Helper()
	s.exec(`INSERT INTO assessments (id, asset_id, target, trigger, state, previous_id, created_at, started_at, finished_at)
		VALUES (?, ?, 'host', 'test', ?, ?, ?, ?, ?)`, id, asset, state, previous, ts(created), tp(started), tp(finished))
}

type alertSeed struct {
	id, kind, severity, asset, check, team, workflow, resolution string
	detail                                                       map[string]any
	firstFired, created, acked, closed, cleared                  string
	regression                                                   bool
	reopened                                                     int
}

func (s seeder) alert(a alertSeed) {
	s.t.Helper()
	detail, _ := json.Marshal(a.detail)
	if a.detail == nil {
		detail = []byte("{}")
	}
	if a.firstFired == "" {
		a.firstFired = a.created
	}
	cond := "firing"
	if a.cleared != "" {
		cond = "cleared"
	}
	s.exec(`INSERT INTO alerts (id, fingerprint, kind, severity, asset_id, check_id, condition, workflow, resolution, team,
		detail, first_fired_at, last_fired_at, cleared_at, regression, reopened_count, created_at, updated_at, closed_at, acked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.id, "fp-"+a.id, a.kind, a.severity, a.asset, a.check, cond, a.workflow, a.resolution, a.team,
		string(detail), ts(a.firstFired), ts(a.firstFired), tp(a.cleared), a.regression, a.reopened,
		ts(a.created), ts(a.created), tp(a.closed), tp(a.acked))
}

func (s seeder) occurrence(alertID, at, condition string, detail map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(detail)
	s.exec(`INSERT INTO alert_occurrences (alert_id, at, condition, detail) VALUES (?, ?, ?, ?)`, alertID, ts(at), condition, string(b))
}

func cmdb(site, bu, owner string) *inventory.CMDBLink {
	return &inventory.CMDBLink{CIID: "ci-" + owner, Site: site, BusinessUnit: bu, Owner: owner}
}

// seed writes the history whose figures the tests state.
//
// Assets: a1 (server, Linux, 10.1.2.7, paris/retail/alice), a2 (switch, no
// OS, OpenSSH on 22 and nginx on 443, fe80::1 then 10.1.3.9, lyon/retail/
// bob), a3 (server, Windows, 10.1.2.20, no CMDB; a3old was merged into
// it), a4 (router, 192.168.5.4, paris/ops/carol, first seen before the
// period), a5 (first seen in the period, never assessed).
//
// First assessments: a1 started 12m after first seen (720s), a2 created
// 30m after (1800s, never started), a3 started 5m30s after (330s).
func seed(t *testing.T, st *store.Store) {
	s := seeder{t, st}
	s.asset("a1", "2026-11-30T08:00:00Z", inventory.Summary{DeviceType: "server", OS: "Linux", IPs: []string{"10.1.2.7"},
		CMDB: cmdb("paris", "retail", "alice")})
	s.asset("a2", "2026-12-01T09:00:00Z", inventory.Summary{DeviceType: "switch", IPs: []string{"fe80::1", "10.1.3.9"},
		Services: []inventory.Service{{Port: 443, Proto: "tcp", Product: "nginx"}, {Port: 22, Proto: "tcp", Product: "OpenSSH"}, {Port: 23, Proto: "tcp"}},
		CMDB:     cmdb("lyon", "retail", "bob")})
	s.asset("a3", "2026-12-08T10:00:00Z", inventory.Summary{DeviceType: "server", OS: "Windows", IPs: []string{"10.1.2.20"}})
	s.asset("a4", "2026-11-20T00:00:00Z", inventory.Summary{DeviceType: "router", IPs: []string{"192.168.5.4"},
		CMDB: cmdb("paris", "ops", "carol")})
	s.asset("a5", "2026-12-09T00:00:00Z", inventory.Summary{})
	s.exec(`INSERT INTO asset_merges (from_id, into_id, merged_at) VALUES ('a3old', 'a3', ?)`, ts("2026-12-09T00:00:00Z"))

	s.assessment("s1", "a1", "", "succeeded", "2026-11-30T08:10:00Z", "2026-11-30T08:12:00Z", "2026-11-30T08:20:00Z")
	s.assessment("s2", "a1", "s1", "succeeded", "2026-11-30T20:00:00Z", "2026-11-30T20:00:00Z", "2026-11-30T20:30:00Z")
	s.assessment("s3", "a2", "", "cancelled", "2026-12-01T09:30:00Z", "", "")
	s.assessment("s4", "a2", "", "succeeded", "2026-12-01T12:00:00Z", "2026-12-01T12:00:00Z", "2026-12-01T12:10:00Z")
	s.assessment("s5", "a2", "s4", "succeeded", "2026-12-02T12:00:00Z", "2026-12-02T12:00:00Z", "2026-12-02T12:15:00Z")
	s.assessment("s6", "a3", "", "succeeded", "2026-12-08T10:05:00Z", "2026-12-08T10:05:30Z", "2026-12-08T10:20:00Z")
	s.assessment("s7", "a3", "s6", "succeeded", "2026-12-09T10:00:00Z", "2026-12-09T10:00:00Z", "2026-12-09T10:30:00Z")
	s.assessment("s0", "a4", "", "succeeded", "2026-11-20T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-20T00:05:00Z")
	s.assessment("s8", "a4", "s0", "succeeded", "2026-12-03T00:00:00Z", "2026-12-03T00:00:00Z", "2026-12-03T00:10:00Z")

	// al1: drift on a1 seen by s2 against s1: detected 12h10m after s1
	// (43800s), raised 60s after s2 finished; acked 30m, closed as fixed
	// after a day, cleared 12h after it was raised.
	s.alert(alertSeed{id: "al1", kind: "drift", severity: "high", asset: "a1", team: "net", workflow: "closed", resolution: "fixed",
		detail:     map[string]any{"assessment_id": "s2", "previous_assessment_id": "s1"},
		firstFired: "2026-11-30T20:30:00Z", created: "2026-11-30T20:31:00Z", acked: "2026-11-30T21:01:00Z",
		closed: "2026-12-01T20:31:00Z", cleared: "2026-12-01T08:31:00Z"})
	// al2: a check failing on a2 in s5, whose previous is s4: 24h05m
	// (86700s), raised 120s after; acked 1h, a false positive after 6h.
	s.alert(alertSeed{id: "al2", kind: "check_failed", severity: "medium", asset: "a2", check: "ssh-weak-cipher", team: "sec",
		workflow: "closed", resolution: "false_positive", detail: map[string]any{"assessment_id": "s5"},
		firstFired: "2026-12-02T12:15:00Z", created: "2026-12-02T12:17:00Z", acked: "2026-12-02T13:17:00Z", closed: "2026-12-02T18:17:00Z"})
	// al3: the same check on a4 in s8 against s0, 13 days before: 1123500s,
	// raised 30s after; acked 1h, closed a true positive after a day; a
	// regression. It cleared, but was not closed as fixed.
	s.alert(alertSeed{id: "al3", kind: "check_failed", severity: "high", asset: "a4", check: "ssh-weak-cipher", team: "sec",
		workflow: "closed", resolution: "true_positive", detail: map[string]any{"assessment_id": "s8"},
		firstFired: "2026-12-03T00:10:00Z", created: "2026-12-03T00:10:30Z", acked: "2026-12-03T01:10:30Z",
		closed: "2026-12-04T00:10:30Z", cleared: "2026-12-03T12:00:00Z", regression: true, reopened: 1})
	// al4: drift on a3 (by its merged id) raised by s7 against s6: 24h10m
	// (87000s), raised 60s after. Its latest detail names a later
	// assessment; the first occurrence is what counts.
	s.alert(alertSeed{id: "al4", kind: "drift", severity: "low", asset: "a3old", team: "net", workflow: "new",
		detail:     map[string]any{"assessment_id": "s-late", "previous_assessment_id": "s7"},
		firstFired: "2026-12-09T10:30:00Z", created: "2026-12-09T10:31:00Z"})
	s.occurrence("al4", "2026-12-09T10:30:00Z", "firing", map[string]any{"assessment_id": "s7", "previous_assessment_id": "s6"})
	s.occurrence("al4", "2026-12-10T10:30:00Z", "cleared", map[string]any{})
	s.occurrence("al4", "2026-12-11T10:30:00Z", "firing", map[string]any{"assessment_id": "s-late", "previous_assessment_id": "s7"})
	// al5: a5 unmanaged: acked 10m, a false positive after 1h; reopened twice.
	s.alert(alertSeed{id: "al5", kind: "unmanaged", severity: "high", asset: "a5", workflow: "closed", resolution: "false_positive",
		created: "2026-12-10T00:00:00Z", acked: "2026-12-10T00:10:00Z", closed: "2026-12-10T01:00:00Z", regression: true, reopened: 2})
	// al6: reckon's own health, on no asset, open.
	s.alert(alertSeed{id: "al6", kind: "health", severity: "critical", workflow: "new", created: "2026-12-13T23:59:59Z"})
	// al7: at the very start of the period: acked in 5s, a duplicate in 10s.
	s.alert(alertSeed{id: "al7", kind: "stale", severity: "info", asset: "a4", workflow: "closed", resolution: "duplicate",
		created: "2026-11-30T00:00:00Z", acked: "2026-11-30T00:00:05Z", closed: "2026-11-30T00:00:10Z"})
	// al8: at the very end (outside), al9 before the start: never counted.
	s.alert(alertSeed{id: "al8", kind: "drift", severity: "high", asset: "a1", workflow: "closed", resolution: "true_positive",
		detail:  map[string]any{"assessment_id": "s2", "previous_assessment_id": "s1"},
		created: "2026-12-14T00:00:00Z", acked: "2026-12-14T00:00:01Z", closed: "2026-12-14T00:00:02Z"})
	s.alert(alertSeed{id: "al9", kind: "check_failed", severity: "high", asset: "a1", check: "ssh-weak-cipher", workflow: "closed",
		resolution: "false_positive", detail: map[string]any{"assessment_id": "s2"},
		created: "2026-11-29T23:59:59Z", acked: "2026-11-30T00:00:01Z", closed: "2026-11-30T00:00:02Z"})
	// al10: a check on a1 that came back after a close and is open again;
	// its detail names no assessment.
	s.alert(alertSeed{id: "al10", kind: "check_failed", severity: "medium", asset: "a1", check: "tls-old", team: "sec", workflow: "new",
		created: "2026-12-05T00:00:00Z", regression: true, reopened: 1})
}

// figures prints a report's rows as "group: col=value ...", for the
// columns of its unit.
func figures(r report.Report) []string {
	cols := []string{"count", "median_s", "p90_s", "mean_s", "min_s", "max_s"}
	if r.Unit == report.UnitRatio {
		cols = r.Columns[1:]
	}
	out := make([]string, len(r.Rows))
	for i, row := range r.Rows {
		parts := []string{fmt.Sprint(row["group"]) + ":"}
		for _, c := range cols {
			parts = append(parts, fmt.Sprintf("%s=%v", c, row[c]))
		}
		out[i] = strings.Join(parts, " ")
	}
	return out
}

func TestReports(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		seed(t, st)
		cases := []struct {
			name, group string
			want        []string
		}{
			// 43800, 86700, 87000, 1123500: the median is the 2nd, p90 the 4th.
			{"time_to_detect", "", []string{"all: count=4 median_s=86700 p90_s=1.1235e+06 mean_s=335250 min_s=43800 max_s=1.1235e+06"}},
			{"time_to_detect", "week", []string{
				"2026-W49: count=3 median_s=86700 p90_s=1.1235e+06 mean_s=418000 min_s=43800 max_s=1.1235e+06",
				"2026-W50: count=1 median_s=87000 p90_s=87000 mean_s=87000 min_s=87000 max_s=87000"}},
			// al4's asset a3old was merged into a3, a server.
			{"time_to_detect", "device_type", []string{
				"router: count=1 median_s=1.1235e+06 p90_s=1.1235e+06 mean_s=1.1235e+06 min_s=1.1235e+06 max_s=1.1235e+06",
				"server: count=2 median_s=43800 p90_s=87000 mean_s=65400 min_s=43800 max_s=87000",
				"switch: count=1 median_s=86700 p90_s=86700 mean_s=86700 min_s=86700 max_s=86700"}},
			{"pipeline_latency", "", []string{"all: count=4 median_s=60 p90_s=120 mean_s=67.5 min_s=30 max_s=120"}},
			{"pipeline_latency", "network", []string{
				"10.1.2.0/24: count=2 median_s=60 p90_s=60 mean_s=60 min_s=60 max_s=60",
				"10.1.3.0/24: count=1 median_s=120 p90_s=120 mean_s=120 min_s=120 max_s=120",
				"192.168.5.0/24: count=1 median_s=30 p90_s=30 mean_s=30 min_s=30 max_s=30"}},
			// 330, 720, 1800; a5 has no assessment, a4 was first seen before.
			{"new_host_assessment", "", []string{"all: count=3 median_s=720 p90_s=1800 mean_s=950 min_s=330 max_s=1800"}},
			{"new_host_assessment", "week", []string{
				"2026-W49: count=2 median_s=720 p90_s=1800 mean_s=1260 min_s=720 max_s=1800",
				"2026-W50: count=1 median_s=330 p90_s=330 mean_s=330 min_s=330 max_s=330"}},
			{"new_host_assessment", "software", []string{
				"Linux: count=1 median_s=720 p90_s=720 mean_s=720 min_s=720 max_s=720",
				"OpenSSH: count=1 median_s=1800 p90_s=1800 mean_s=1800 min_s=1800 max_s=1800",
				"Windows: count=1 median_s=330 p90_s=330 mean_s=330 min_s=330 max_s=330"}},
			// 5, 600, 1800, 3600, 3600: the median is the 3rd, p90 the 5th.
			{"time_to_acknowledge", "", []string{"all: count=5 median_s=1800 p90_s=3600 mean_s=1921 min_s=5 max_s=3600"}},
			{"time_to_acknowledge", "site", []string{
				"(none): count=1 median_s=600 p90_s=600 mean_s=600 min_s=600 max_s=600",
				"lyon: count=1 median_s=3600 p90_s=3600 mean_s=3600 min_s=3600 max_s=3600",
				"paris: count=3 median_s=1800 p90_s=3600 mean_s=1801.667 min_s=5 max_s=3600"}},
			{"time_to_resolve", "", []string{"all: count=5 median_s=21600 p90_s=86400 mean_s=39602 min_s=10 max_s=86400"}},
			{"time_to_resolve", "business_unit", []string{
				"(none): count=1 median_s=3600 p90_s=3600 mean_s=3600 min_s=3600 max_s=3600",
				"ops: count=2 median_s=10 p90_s=86400 mean_s=43205 min_s=10 max_s=86400",
				"retail: count=2 median_s=21600 p90_s=86400 mean_s=54000 min_s=21600 max_s=86400"}},
			{"time_to_resolve", "owner", []string{
				"(none): count=1 median_s=3600 p90_s=3600 mean_s=3600 min_s=3600 max_s=3600",
				"alice: count=1 median_s=86400 p90_s=86400 mean_s=86400 min_s=86400 max_s=86400",
				"bob: count=1 median_s=21600 p90_s=21600 mean_s=21600 min_s=21600 max_s=21600",
				"carol: count=2 median_s=10 p90_s=86400 mean_s=43205 min_s=10 max_s=86400"}},
			{"time_to_verified_fix", "", []string{"all: count=1 median_s=43200 p90_s=43200 mean_s=43200 min_s=43200 max_s=43200"}},
			// By check by default: al2 and al3 share ssh-weak-cipher.
			{"false_positive_rate", "", []string{
				"drift: closed=1 false_positives=0 rate=0",
				"ssh-weak-cipher: closed=2 false_positives=1 rate=0.5",
				"stale: closed=1 false_positives=0 rate=0",
				"unmanaged: closed=1 false_positives=1 rate=1"}},
			{"false_positive_rate", "all", []string{"all: closed=5 false_positives=2 rate=0.4"}},
			{"false_positive_rate", "team", []string{
				"(none): closed=2 false_positives=1 rate=0.5",
				"net: closed=1 false_positives=0 rate=0",
				"sec: closed=2 false_positives=1 rate=0.5"}},
			// Closed at least once: al1, al2, al3, al5, al7 and al10 (reopened).
			{"regression_rate", "", []string{"all: closed=6 regressions=3 rate=0.5"}},
			{"regression_rate", "week", []string{
				"2026-W49: closed=5 regressions=2 rate=0.4",
				"2026-W50: closed=1 regressions=1 rate=1"}},
			{"regression_rate", "severity", []string{
				"high: closed=3 regressions=2 rate=0.6667",
				"info: closed=1 regressions=0 rate=0",
				"medium: closed=2 regressions=1 rate=0.5"}},
		}
		for _, c := range cases {
			r, err := report.Run(context.Background(), st, c.name, report.Query{From: from, To: to, GroupBy: c.group})
			if err != nil {
				t.Fatalf("%s by %q: %v", c.name, c.group, err)
			}
			if got := figures(r); !slices.Equal(got, c.want) {
				t.Errorf("%s by %q:\n got %s\nwant %s", c.name, c.group, strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
			}
		}
	})
}

func TestReportCSVAndJSON(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		seed(t, st)
		r, err := report.Run(context.Background(), st, "time_to_acknowledge", report.Query{From: from, To: to, GroupBy: "site"})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := r.WriteCSV(&b); err != nil {
			t.Fatal(err)
		}
		want := `group,count,median_s,p90_s,mean_s,min_s,max_s,median,p90,mean
(none),1,600,600,600,600,600,10m,10m,10m
lyon,1,3600,3600,3600,3600,3600,1h,1h,1h
paris,3,1800,3600,1801.667,5,3600,30m,1h,30m 2s
`
		if b.String() != want {
			t.Errorf("CSV:\n%s\nwant:\n%s", b.String(), want)
		}

		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Name, GroupBy, Unit string
			From, To            time.Time
			Columns             []string
			Rows                []map[string]any
		}
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatal(err)
		}
		if back.Name != "time_to_acknowledge" || !back.From.Equal(from) || !back.To.Equal(to) || back.Unit != "seconds" ||
			len(back.Rows) != 3 || back.Rows[2]["mean_s"] != 1801.667 || back.Rows[2]["p90"] != "1h" {
			t.Errorf("JSON: %s", j)
		}
		if !strings.Contains(string(j), `"group_by":"site"`) {
			t.Errorf("JSON has no group_by: %s", j)
		}

		r, err = report.Run(context.Background(), st, "regression_rate", report.Query{From: from, To: to, GroupBy: "severity"})
		if err != nil {
			t.Fatal(err)
		}
		b.Reset()
		if err := r.WriteCSV(&b); err != nil {
			t.Fatal(err)
		}
		if want := "group,closed,regressions,rate\nhigh,3,2,0.6667\ninfo,1,0,0\nmedium,2,1,0.5\n"; b.String() != want {
			t.Errorf("CSV:\n%s\nwant:\n%s", b.String(), want)
		}
	})
}

// An empty period gives no rows (and [] in JSON), not an error.
func TestReportEmpty(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	r, err := report.Run(context.Background(), st, "time_to_resolve", report.Query{GroupBy: "network"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows == nil || len(r.Rows) != 0 || !r.To.After(r.From) || r.To.Sub(r.From) != report.DefaultPeriod {
		t.Fatalf("empty report: %+v", r)
	}
	j, _ := json.Marshal(r)
	if !strings.Contains(string(j), `"rows":[]`) {
		t.Fatalf("JSON: %s", j)
	}
}

func TestReportQueryErrors(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	_, err := report.Run(ctx, st, "bogus", report.Query{})
	if !errors.Is(err, report.ErrUnknownReport) || !strings.Contains(err.Error(), "time_to_detect") {
		t.Errorf("unknown report: %v", err)
	}
	var qe *report.QueryError
	_, err = report.Run(ctx, st, "time_to_detect", report.Query{GroupBy: "colour"})
	if !errors.Is(err, report.ErrBadQuery) || !errors.As(err, &qe) || qe.Field != "group_by" ||
		!strings.Contains(qe.Detail, "business_unit") || !strings.Contains(qe.Detail, "check") {
		t.Errorf("unknown group_by: %v", err)
	}
	// An asset has no kind, severity, team or check.
	_, err = report.Run(ctx, st, "new_host_assessment", report.Query{GroupBy: "kind"})
	if !errors.As(err, &qe) || qe.Field != "group_by" || strings.Contains(qe.Detail, "severity") {
		t.Errorf("new_host_assessment by kind: %v", err)
	}
	_, err = report.Run(ctx, st, "time_to_detect", report.Query{From: to, To: from})
	if !errors.As(err, &qe) || qe.Field != "from" {
		t.Errorf("from after to: %v", err)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 400 * time.Millisecond: "0s", 42 * time.Second: "42s", 67500 * time.Millisecond: "1m 8s",
		time.Hour: "1h", 12*time.Hour + 10*time.Minute: "12h 10m", 13*24*time.Hour + 5*time.Minute: "13d",
		25 * time.Hour: "1d 1h", -90 * time.Second: "-1m 30s",
	} {
		if got := report.Human(d); got != want {
			t.Errorf("Human(%v) = %q, want %q", d, got, want)
		}
	}
}
