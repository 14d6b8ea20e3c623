package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/reckon-dev/reckon/alert"
)

// runAlerts is `reckon alerts list|show|ack|escalate|close`, against a
// running server.
func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want reckon alerts list|show|ack|escalate|close", errUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return runAlertsList(ctx, args, stdout, stderr)
	case "show":
		return runAlertsShow(ctx, args, stdout, stderr)
	case "ack", "escalate", "close":
		return runAlertsMove(ctx, sub, args, stdout, stderr)
	}
	return fmt.Errorf("%w: unknown alerts command %q: want list, show, ack, escalate or close", errUsage, sub)
}

func runAlertsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alerts list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	state := fs.String("state", "", "workflow states, comma-separated: new, triage, escalated, closed (default: all)")
	severity := fs.String("severity", "", "severities, comma-separated")
	kind := fs.String("kind", "", "kinds, comma-separated: unmanaged, drift, check_failed, stale, conflict, health")
	team := fs.String("team", "", "teams, comma-separated")
	asset := fs.String("asset", "", "one asset's alerts")
	limit := fs.Int("limit", 100, "at most this many alerts")
	format := fs.String("format", "table", "table or jsonl")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *format != "table" && *format != "jsonl" {
		return fmt.Errorf("%w: --format must be table or jsonl", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"state": *state, "severity": *severity, "kind": *kind, "team": *team, "asset": *asset} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var items []json.RawMessage
	cursor := ""
	for len(items) < *limit {
		page := min(*limit-len(items), alert.MaxLimit)
		q.Set("limit", fmt.Sprint(page))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		resp, err := c.get(ctx, "/api/v1/alerts?"+q.Encode())
		if err != nil {
			return err
		}
		var l struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if err := json.Unmarshal(resp.body, &l); err != nil {
			return fmt.Errorf("the server's alert list is not JSON: %v", err)
		}
		items = append(items, l.Items...)
		if l.Next == "" || len(l.Items) == 0 {
			break
		}
		cursor = l.Next
	}
	if *format == "jsonl" {
		for _, it := range items {
			fmt.Fprintf(stdout, "%s\n", it)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tKIND\tWORKFLOW\tCONDITION\tTEAM\tASSET\tTITLE\tCREATED")
	for _, raw := range items {
		var a alert.Alert
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("an alert in the server's list: %v", err)
		}
		wf := string(a.Workflow)
		if a.Resolution != "" {
			wf += " (" + string(a.Resolution) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Severity, a.Kind, wf, a.Condition, a.Team, a.AssetID,
			a.Title, a.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runAlertsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alerts show", flag.ContinueOnError)
	cf := addClientFlags(fs)
	format := fs.String("format", "text", "text, or json (the whole context: alert, asset, assessments, history, notes)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want reckon alerts show [flags] ID", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	resp, err := c.get(ctx, "/api/v1/alerts/"+url.PathEscape(fs.Arg(0))+"/context")
	if err != nil {
		return err
	}
	if *format == "json" {
		_, err := stdout.Write(append(resp.body, '\n'))
		return err
	}
	var cx struct {
		Alert   alert.Alert        `json:"alert"`
		History []alert.Alert      `json:"history"`
		Notes   []alert.Transition `json:"notes"`
	}
	if err := json.Unmarshal(resp.body, &cx); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	a := cx.Alert
	fmt.Fprintf(stdout, "%s  %s %s: %s\n", a.ID, a.Severity, a.Kind, a.Title)
	fmt.Fprintf(stdout, "asset %s, team %q, workflow %s, condition %s, fired %d times (first %s, last %s)\n",
		a.AssetID, a.Team, a.Workflow, a.Condition, a.FireCount, a.FirstFiredAt.Format(time.RFC3339), a.LastFiredAt.Format(time.RFC3339))
	if a.Resolution != "" {
		fmt.Fprintf(stdout, "closed as %s %s\n", a.Resolution, a.ChangeRef)
	}
	if len(a.Detail) > 0 {
		b, _ := json.Marshal(a.Detail)
		fmt.Fprintf(stdout, "detail: %s\n", b)
	}
	for _, n := range cx.Notes {
		fmt.Fprintf(stdout, "  %s %s: %s -> %s %s %s\n", n.At.Format(time.RFC3339), n.By, n.From, n.To, n.Resolution, n.Note)
	}
	if len(cx.History) > 0 {
		fmt.Fprintf(stdout, "other alerts on this asset: %d\n", len(cx.History))
	}
	return nil
}

func runAlertsMove(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alerts "+verb, flag.ContinueOnError)
	cf := addClientFlags(fs)
	note := fs.String("note", "", "a note for the record")
	var resolution, changeRef, expires *string
	var baseline *bool
	if verb == "close" {
		resolution = fs.String("resolution", "", "false_positive, authorized_change, fixed, true_positive, duplicate or accepted_risk (required)")
		changeRef = fs.String("change-ref", "", "the change reference (authorized_change)")
		expires = fs.String("expires", "", "when an accepted risk ends: RFC 3339 time or a duration such as 720h (accepted_risk)")
		baseline = fs.Bool("accept-baseline", false, "take an authorized change as the host's new baseline")
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want reckon alerts %s [flags] ID", errUsage, verb)
	}
	req := alert.TransitionRequest{Note: *note}
	switch verb {
	case "ack":
		req.To = alert.StateTriage
	case "escalate":
		req.To = alert.StateEscalated
	case "close":
		req.To = alert.StateClosed
		if *resolution == "" {
			return fmt.Errorf("%w: close needs --resolution", errUsage)
		}
		req.Resolution, req.ChangeRef, req.AcceptBaseline = alert.Resolution(*resolution), *changeRef, *baseline
		if *expires != "" {
			t, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				d, derr := time.ParseDuration(*expires)
				if derr != nil {
					return fmt.Errorf("%w: --expires: want an RFC 3339 time or a duration", errUsage)
				}
				t = time.Now().Add(d)
			}
			t = t.UTC()
			req.ExpiresAt = &t
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	resp, err := c.postJSON(ctx, "/api/v1/alerts/"+url.PathEscape(fs.Arg(0))+"/transitions", req)
	if err != nil {
		return err
	}
	var a alert.Alert
	if err := json.Unmarshal(resp.body, &a); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	res := ""
	if a.Resolution != "" {
		res = " (" + string(a.Resolution) + ")"
	}
	fmt.Fprintf(stdout, "%s: %s%s\n", a.ID, a.Workflow, res)
	return nil
}
