package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// defaultServer is the reckon server a client talks to without --server or
// RECKON_SERVER: the default listen address.
const defaultServer = "http://127.0.0.1:8080"

// listPageSize is how many assets one list request asks for.
const listPageSize = 500

// timelineShown is how many of the latest timeline events show prints.
const timelineShown = 20

func runAssets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want 'reckon assets list|show'", errUsage)
	}
	switch sub, args := args[0], args[1:]; sub {
	case "list":
		return runAssetsList(ctx, args, stdout, stderr)
	case "show":
		return runAssetsShow(ctx, args, stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown assets command %q: want list or show", errUsage, sub)
	}
}

// clientFlags are the flags of every command that talks to a running server.
type clientFlags struct {
	server, tokenFile *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		server:    fs.String("server", "", "URL of the reckon server (env RECKON_SERVER; default "+defaultServer+")"),
		tokenFile: fs.String("token-file", "", "file holding the API token (else env RECKON_TOKEN)"),
	}
}

// client builds the API client from the flags and the environment.
func (f clientFlags) client() (*apiClient, error) {
	base := *f.server
	if base == "" {
		base = os.Getenv("RECKON_SERVER")
	}
	if base == "" {
		base = defaultServer
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: server URL %q: want http://HOST:PORT or https://HOST", errUsage, base)
	}
	var token string
	switch {
	case *f.tokenFile != "":
		raw, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		if token = strings.TrimSpace(string(raw)); token == "" {
			return nil, fmt.Errorf("token file %s is empty", *f.tokenFile)
		}
	default:
		token = strings.TrimSpace(os.Getenv("RECKON_TOKEN"))
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no token: pass --token-file or set RECKON_TOKEN", errUsage)
	}
	return &apiClient{
		base:  strings.TrimRight(base, "/"),
		token: token,
		http: &http.Client{
			Timeout: 60 * time.Second,
			// A 301 for a merged asset is reported, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// apiClient calls the REST API of a running reckon server.
type apiClient struct {
	base, token string
	http        *http.Client
}

// response is a successful (2xx) or redirect (3xx) answer.
type response struct {
	status   int
	location string
	body     []byte
}

// get fetches path (with query) and returns a 2xx or 3xx answer; anything
// else becomes an error of one line.
func (c *apiClient) get(ctx context.Context, pathQuery string) (*response, error) {
	return c.do(ctx, http.MethodGet, pathQuery)
}

// post sends an empty POST to path and returns a 2xx or 3xx answer.
func (c *apiClient) post(ctx context.Context, path string) (*response, error) {
	return c.do(ctx, http.MethodPost, path)
}

// postJSON sends body as JSON to path and returns a 2xx or 3xx answer.
func (c *apiClient) postJSON(ctx context.Context, path string, body any) (*response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, http.MethodPost, path, b)
}

func (c *apiClient) do(ctx context.Context, method, pathQuery string) (*response, error) {
	return c.send(ctx, method, pathQuery, nil)
}

func (c *apiClient) send(ctx context.Context, method, pathQuery string, body []byte) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reckon-cli/"+version)
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the reckon server at %s: %s", c.base, oneLine(err.Error()))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %v", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: answer}, nil
	}
	return nil, httpError(resp, answer)
}

// apiProblem is an application/problem+json body.
type apiProblem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// statusError is an error answer; a 400 is a wrong command line (exit 2),
// since the CLI sends only what it was given.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func (e *statusError) Unwrap() error {
	if e.status == http.StatusBadRequest {
		return errUsage
	}
	return nil
}

// httpError turns an error answer into "<status> <title>: <detail>".
func httpError(resp *http.Response, body []byte) error {
	title, detail := http.StatusText(resp.StatusCode), ""
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p apiProblem
	if (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Unmarshal(body, &p) == nil {
		if p.Title != "" {
			title = p.Title
		}
		detail = p.Detail
	} else {
		detail = strings.TrimSpace(string(body))
		if len(detail) > 200 {
			detail = detail[:200] + "…"
		}
	}
	msg := fmt.Sprintf("%d %s", resp.StatusCode, title)
	if detail = oneLine(detail); detail != "" {
		msg += ": " + detail
	}
	return &statusError{status: resp.StatusCode, msg: msg}
}

// oneLine folds s onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// The parts of the asset views the CLI prints. Fields it does not know are
// kept by jsonl and --format json, which print the server's JSON.
type (
	assetSummary struct {
		ID         string    `json:"id"`
		Status     string    `json:"status"`
		Identity   string    `json:"identity"`
		DeviceType string    `json:"device_type"`
		MACs       []string  `json:"macs"`
		IPs        []string  `json:"ips"`
		Hostnames  []string  `json:"hostnames"`
		Vendor     string    `json:"vendor"`
		OS         string    `json:"os"`
		Sources    []string  `json:"sources"`
		FirstSeen  time.Time `json:"first_seen"`
		LastSeen   time.Time `json:"last_seen"`
		Missing    bool      `json:"missing"`
	}
	seen struct {
		FirstSeen time.Time `json:"first_seen"`
		LastSeen  time.Time `json:"last_seen"`
	}
	addressRecord struct {
		Value   string `json:"value"`
		VLAN    int    `json:"vlan"`
		Via     string `json:"via"`
		Source  string `json:"source"`
		Current bool   `json:"current"`
		seen
	}
	assetDetail struct {
		assetSummary
		MACHistory []addressRecord `json:"mac_history"`
		IPHistory  []addressRecord `json:"ip_history"`
		Hostnames  []struct {
			Name string `json:"name"`
			How  string `json:"how"`
			seen
		} `json:"hostname_history"`
		Services []struct {
			Port    int    `json:"port"`
			Proto   string `json:"proto"`
			Name    string `json:"name"`
			Product string `json:"product"`
			Version string `json:"version"`
			Open    bool   `json:"open"`
			seen
		} `json:"service_history"`
		Identifiers []struct {
			Kind  string `json:"kind"`
			Value string `json:"value"`
			seen
		} `json:"identifiers"`
		Sources []struct {
			Source string `json:"source"`
			seen
		} `json:"source_history"`
		Hints []struct {
			Kind       string  `json:"kind"`
			Value      string  `json:"value"`
			Confidence float64 `json:"confidence"`
			Source     string  `json:"source"`
		} `json:"hints"`
		Timeline []struct {
			Time   time.Time         `json:"time"`
			Kind   string            `json:"kind"`
			Detail map[string]string `json:"detail"`
		} `json:"timeline"`
	}
)

var assetColumns = []string{"ID", "STATUS", "IPS", "MACS", "HOSTNAMES", "VENDOR", "OS", "LAST SEEN"}

func runAssetsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("assets list", flag.ContinueOnError)
	cf := addClientFlags(fs)
	status := fs.String("status", "", "only assets of this status: new, managed, unmanaged, unknown or conflict")
	q := fs.String("q", "", "free text over hostnames, IPs, MACs, vendor and OS")
	source := fs.String("source", "", "only assets seen by this source (passive:arp, active:nmap ...)")
	subnet := fs.String("subnet", "", "only assets holding an IP in this CIDR now")
	seenSince := fs.String("seen-since", "", "only assets seen since an RFC 3339 time or a duration back from now (24h)")
	limit := fs.Int("limit", 0, "stop after this many assets (default: all)")
	format := fs.String("format", "table", "table, jsonl or csv")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q (flags come before arguments)", errUsage, fs.Arg(0))
	}
	if *limit < 0 {
		return fmt.Errorf("%w: --limit must be 0 (all) or more", errUsage)
	}
	var out assetWriter
	switch *format {
	case "table":
		out = newTableWriter(stdout, stderr)
	case "jsonl":
		out = &jsonlWriter{w: stdout}
	case "csv":
		out = newCSVWriter(stdout)
	default:
		return fmt.Errorf("%w: --format must be table, jsonl or csv", errUsage)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	query := url.Values{}
	for k, v := range map[string]string{"status": *status, "q": *q, "source": *source, "subnet": *subnet, "seen_since": *seenSince} {
		if v != "" {
			query.Set(k, v)
		}
	}
	got, cursor := 0, ""
	for {
		size := listPageSize
		if *limit > 0 {
			size = min(size, *limit-got)
		}
		query.Set("limit", strconv.Itoa(size))
		if cursor != "" {
			query.Set("cursor", cursor)
		}
		resp, err := c.get(ctx, "/api/v1/assets?"+query.Encode())
		if err != nil {
			return err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if resp.status != http.StatusOK {
			return fmt.Errorf("the server answered %d to the asset list", resp.status)
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return fmt.Errorf("the server's asset list is not JSON: %v", err)
		}
		for _, raw := range page.Items {
			if *limit > 0 && got >= *limit {
				break
			}
			if err := out.write(raw); err != nil {
				return err
			}
			got++
		}
		if page.NextCursor == "" || (*limit > 0 && got >= *limit) {
			break
		}
		if page.NextCursor == cursor {
			return fmt.Errorf("the server gave the same cursor twice; stopped after %d assets", got)
		}
		cursor = page.NextCursor
	}
	return out.close()
}

// assetWriter prints the assets of a list one at a time.
type assetWriter interface {
	write(raw json.RawMessage) error
	close() error
}

type jsonlWriter struct{ w io.Writer }

func (j *jsonlWriter) write(raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return fmt.Errorf("an asset in the server's list is not JSON: %v", err)
	}
	b.WriteByte('\n')
	_, err := j.w.Write(b.Bytes())
	return err
}

func (j *jsonlWriter) close() error { return nil }

func decodeSummary(raw json.RawMessage) (assetSummary, error) {
	var s assetSummary
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("an asset in the server's list: %v", err)
	}
	return s, nil
}

type tableWriter struct {
	tw     *tabwriter.Writer
	stderr io.Writer
	rows   int
}

func newTableWriter(stdout, stderr io.Writer) *tableWriter {
	return &tableWriter{tw: tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0), stderr: stderr}
}

func (t *tableWriter) write(raw json.RawMessage) error {
	s, err := decodeSummary(raw)
	if err != nil {
		return err
	}
	if t.rows == 0 {
		fmt.Fprintln(t.tw, strings.Join(assetColumns, "\t"))
	}
	t.rows++
	dash := func(v string) string {
		if v == "" {
			return "-"
		}
		return strings.ReplaceAll(v, "\t", " ")
	}
	join := func(v []string) string { return dash(strings.Join(v, ",")) }
	_, err = fmt.Fprintln(t.tw, strings.Join([]string{s.ID, s.Status, join(s.IPs), join(s.MACs), join(s.Hostnames),
		dash(s.Vendor), dash(s.OS), localTime(s.LastSeen)}, "\t"))
	return err
}

func (t *tableWriter) close() error {
	if t.rows == 0 {
		fmt.Fprintln(t.stderr, "no assets")
		return nil
	}
	return t.tw.Flush()
}

type csvWriter struct {
	w      *csv.Writer
	header bool
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (c *csvWriter) writeHeader() {
	if !c.header {
		c.header = true
		_ = c.w.Write(assetColumns)
	}
}

func (c *csvWriter) write(raw json.RawMessage) error {
	s, err := decodeSummary(raw)
	if err != nil {
		return err
	}
	c.writeHeader()
	last := ""
	if !s.LastSeen.IsZero() {
		last = s.LastSeen.UTC().Format(time.RFC3339)
	}
	return c.w.Write([]string{s.ID, s.Status, strings.Join(s.IPs, ","), strings.Join(s.MACs, ","),
		strings.Join(s.Hostnames, ","), s.Vendor, s.OS, last})
}

func (c *csvWriter) close() error {
	c.writeHeader()
	c.w.Flush()
	return c.w.Error()
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func runAssetsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("assets show", flag.ContinueOnError)
	cf := addClientFlags(fs)
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 || strings.TrimSpace(fs.Arg(0)) == "" {
		return fmt.Errorf("%w: want 'reckon assets show [flags] ID'", errUsage)
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format must be text or json", errUsage)
	}
	id := strings.TrimSpace(fs.Arg(0))
	c, err := cf.client()
	if err != nil {
		return err
	}
	resp, err := c.get(ctx, "/api/v1/assets/"+url.PathEscape(id))
	if err != nil {
		return err
	}
	if resp.status == http.StatusMovedPermanently {
		into := path.Base(resp.location)
		if resp.location == "" || into == "/" || into == "." {
			return fmt.Errorf("asset %s was merged into another asset", id)
		}
		if u, err := url.PathUnescape(into); err == nil {
			into = u
		}
		return fmt.Errorf("asset %s was merged into %s: run 'reckon assets show %s'", id, into, into)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("the server answered %d for asset %s", resp.status, id)
	}
	if *format == "json" {
		var b bytes.Buffer
		if err := json.Indent(&b, resp.body, "", "  "); err != nil {
			return fmt.Errorf("the server's answer for asset %s is not JSON: %v", id, err)
		}
		b.WriteByte('\n')
		_, err := stdout.Write(b.Bytes())
		return err
	}
	var d assetDetail
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return fmt.Errorf("the server's answer for asset %s: %v", id, err)
	}
	return printAssetDetail(stdout, &d)
}

// printAssetDetail prints the readable view of one asset.
func printAssetDetail(w io.Writer, d *assetDetail) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	span := func(s seen) string { return "first " + localTime(s.FirstSeen) + "\tlast " + localTime(s.LastSeen) }
	fmt.Fprintf(tw, "asset\t%s\n", d.ID)
	fmt.Fprintf(tw, "status\t%s\n", or(d.Status, "-"))
	fmt.Fprintf(tw, "identity\t%s\n", or(d.Identity, "-"))
	if d.DeviceType != "" {
		fmt.Fprintf(tw, "device type\t%s\n", d.DeviceType)
	}
	fmt.Fprintf(tw, "vendor\t%s\n", or(d.Vendor, "-"))
	fmt.Fprintf(tw, "os\t%s\n", or(d.OS, "-"))
	fmt.Fprintf(tw, "first seen\t%s\n", localTime(d.FirstSeen))
	last := localTime(d.LastSeen)
	if d.Missing {
		last += " (missing: no longer seen)"
	}
	fmt.Fprintf(tw, "last seen\t%s\n", last)
	if err := tw.Flush(); err != nil {
		return err
	}

	section := func(title string, n int) {
		fmt.Fprintf(tw, "\n%s:\n", title)
		if n == 0 {
			fmt.Fprintln(tw, "  none")
		}
	}
	section("identifiers", len(d.Identifiers))
	for _, i := range d.Identifiers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", i.Kind, i.Value, span(i.seen))
	}
	addresses := func(title string, recs []addressRecord) {
		section(title, len(recs))
		recs = append([]addressRecord(nil), recs...)
		sort.SliceStable(recs, func(i, j int) bool {
			if recs[i].Current != recs[j].Current {
				return recs[i].Current
			}
			return recs[i].LastSeen.After(recs[j].LastSeen)
		})
		for _, a := range recs {
			state := "past"
			if a.Current {
				state = "current"
			}
			var extra []string
			if a.VLAN != 0 {
				extra = append(extra, fmt.Sprintf("vlan %d", a.VLAN))
			}
			if a.Via != "" {
				extra = append(extra, "via "+a.Via)
			}
			if a.Source != "" {
				extra = append(extra, a.Source)
			}
			row(tw, a.Value, state, span(a.seen), strings.Join(extra, ", "))
		}
	}
	addresses("MACs", d.MACHistory)
	addresses("IPs", d.IPHistory)
	section("hostnames", len(d.Hostnames))
	for _, h := range d.Hostnames {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", h.Name, or(h.How, "-"), span(h.seen))
	}
	open, closed := 0, 0
	for _, s := range d.Services {
		if s.Open {
			open++
		} else {
			closed++
		}
	}
	section("open services", open)
	for _, s := range d.Services {
		if !s.Open {
			continue
		}
		what := strings.TrimSpace(strings.Join([]string{s.Name, s.Product, s.Version}, " "))
		fmt.Fprintf(tw, "  %d/%s\t%s\t%s\n", s.Port, or(s.Proto, "tcp"), or(oneLine(what), "-"), span(s.seen))
	}
	if closed > 0 {
		fmt.Fprintf(tw, "  (%d closed since; --format json shows them)\n", closed)
	}
	section("sources", len(d.Sources))
	for _, s := range d.Sources {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Source, span(s.seen))
	}
	if len(d.Hints) > 0 {
		section("hints", len(d.Hints))
		for _, h := range d.Hints {
			row(tw, h.Kind, h.Value, fmt.Sprintf("%.2f", h.Confidence), h.Source)
		}
	}
	events := d.Timeline
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	title := "timeline"
	if len(events) > timelineShown {
		title = fmt.Sprintf("timeline (last %d of %d)", timelineShown, len(events))
		events = events[len(events)-timelineShown:]
	}
	section(title, len(events))
	for _, e := range events {
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + oneLine(e.Detail[k])
		}
		row(tw, localTime(e.Time), e.Kind, strings.Join(parts, " "))
	}
	return tw.Flush()
}

// row prints an indented line of cells, without trailing empty ones.
func row(w io.Writer, cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	fmt.Fprintln(w, "  "+strings.Join(cells, "\t"))
}
