package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reckon-dev/reckon/alert/report"
)

// runReport is `reckon report NAME`: one report of a running server, as a
// table, CSV or JSON.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	cf := addClientFlags(fs)
	from := fs.String("from", "", "start of the period: an RFC 3339 time, or a duration back from now (72h, 30d) (default: 30 days before --to)")
	to := fs.String("to", "", "end of the period, excluded: an RFC 3339 time or a duration back from now (default: now)")
	groupBy := fs.String("group-by", "", "split the rows: all, week, device_type, software, site, network, business_unit, owner, kind, severity, team, check")
	format := fs.String("format", "table", "table, csv or json")
	usage := "want reckon report NAME [flags]; the reports are " + strings.Join(report.Names(), ", ")
	// The name may come before the flags (the usual way) or after them.
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if name == "" {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q: %s", errUsage, rest[0], usage)
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return fmt.Errorf("%w: --format must be table, csv or json", errUsage)
	}
	now := time.Now().UTC()
	query := url.Values{}
	for _, f := range []struct{ flag, param, value string }{{"--from", "from", *from}, {"--to", "to", *to}} {
		if f.value == "" {
			continue
		}
		t, err := parseWhen(f.value, now)
		if err != nil {
			return fmt.Errorf("%w: %s %q: want an RFC 3339 time (2026-11-25T10:00:00Z) or a duration back from now (72h, 30d)", errUsage, f.flag, f.value)
		}
		query.Set(f.param, t.Format(time.RFC3339Nano))
	}
	if *groupBy != "" {
		query.Set("group_by", *groupBy)
	}
	if *format == "csv" {
		query.Set("format", "csv")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/reports/" + url.PathEscape(name)
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	switch *format {
	case "csv":
		_, err := stdout.Write(resp.body)
		return err
	case "json":
		var b bytes.Buffer
		if err := json.Indent(&b, resp.body, "", "  "); err != nil {
			return fmt.Errorf("the server's report is not JSON: %v", err)
		}
		b.WriteByte('\n')
		_, err := stdout.Write(b.Bytes())
		return err
	}
	var rep report.Report
	if err := json.Unmarshal(resp.body, &rep); err != nil {
		return fmt.Errorf("the server's report is not JSON: %v", err)
	}
	return printReport(stdout, rep)
}

// parseWhen reads an RFC 3339 time, or a duration back from now: a Go
// duration (72h) or a number of days (30d).
func parseWhen(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("bad number of days %q", days)
		}
		return now.AddDate(0, 0, -n), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("neither a time nor a duration: %q", v)
	}
	return now.Add(-d), nil
}

// printReport writes a report as a table: durations in their human form,
// rates as percentages.
func printReport(w io.Writer, rep report.Report) error {
	fmt.Fprintf(w, "%s from %s to %s, by %s\n", rep.Name, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), rep.GroupBy)
	if len(rep.Rows) == 0 {
		_, err := fmt.Fprintln(w, "nothing in the period")
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	var cols []string
	if rep.Unit == report.UnitSeconds {
		cols = []string{"group", "count", "median_s", "p90_s", "mean_s", "min_s", "max_s"}
	} else {
		cols = rep.Columns
	}
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = strings.ToUpper(strings.TrimSuffix(c, "_s"))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, row := range rep.Rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(c, row[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cell formats one value of a report row (as decoded from JSON).
func cell(col string, v any) string {
	f, isNum := v.(float64)
	switch {
	case v == nil:
		return "-"
	case isNum && strings.HasSuffix(col, "_s"):
		return report.Human(time.Duration(f * float64(time.Second)))
	case isNum && col == "rate":
		return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
	case isNum:
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
