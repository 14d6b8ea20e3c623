package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/servicenow/servicenowtest"
)

var _ cmdb.Client = (*Client)(nil)
var _ cmdb.Pusher = (*Client)(nil)

const (
	computers = "/api/now/table/cmdb_ci_computer"
	hardware  = "/api/now/table/cmdb_ci_hardware"
	adapters  = "/api/now/table/cmdb_ci_network_adapter"
	ire       = "/api/now/identifyreconcile"
)

func setup(t *testing.T, mod func(*Options)) (*servicenowtest.Server, *Client) {
	t.Helper()
	s := servicenowtest.New(servicenowtest.Seed())
	t.Cleanup(s.Close)
	o := Options{URL: s.URL, Token: s.Token, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	// Keep backoff short in tests; Retry-After still rules when sent.
	c.rc.SetRetryWaitTime(time.Millisecond).SetRetryMaxWaitTime(5 * time.Second)
	return s, c
}

func readAll(ctx context.Context, c *Client, since time.Time) ([]cmdb.CI, error) {
	var out []cmdb.CI
	err := c.CIs(ctx, since, func(ci cmdb.CI) error { out = append(out, ci); return nil })
	return out, err
}

func byID(cis []cmdb.CI) map[string]cmdb.CI {
	m := map[string]cmdb.CI{}
	for _, ci := range cis {
		m[ci.ID] = ci
	}
	return m
}

func count(s *servicenowtest.Server, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestFullRead(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.ReckonIDField = "u_reckon_asset_id" })
	cis, err := readAll(context.Background(), c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ci := range cis {
		ids = append(ids, ci.ID)
	}
	// DB1 (a linux server) comes from both computer and hardware; APP1 is
	// in no table read; the order is by sys_id.
	want := []string{servicenowtest.WS1, servicenowtest.DB1, servicenowtest.SW1, servicenowtest.UPS1, servicenowtest.PRN1}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if count(s, hardware) != 1 || count(s, computers) != 1 || count(s, adapters) != 1 {
		t.Fatalf("requests %+v", s.Requests())
	}
	m := byID(cis)

	ws := m[servicenowtest.WS1]
	wantWS := cmdb.CI{ID: servicenowtest.WS1, Class: "cmdb_ci_computer", Name: "ws-0001",
		URL:    s.URL + "/nav_to.do?uri=cmdb_ci_computer.do?sys_id=" + servicenowtest.WS1,
		Serial: "SN-WS-0001", AssetTag: "P000101",
		MACs: []string{"00:50:56:aa:bb:01", "a4:5e:60:c1:d2:e3"}, IPs: ips("10.0.0.11"), Static: []bool{false},
		Site: "AMS1", BusinessUnit: "Engineering", Owner: "Alice Adams", Role: "computer", Status: "active",
		LastUpdated: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}
	if g, w := fmt.Sprintf("%+v", ws), fmt.Sprintf("%+v", wantWS); g != w {
		t.Errorf("WS1\n got %s\nwant %s", g, w)
	}
	db := m[servicenowtest.DB1]
	if db.Class != "cmdb_ci_linux_server" || db.Name != "db-01.acme.example" || db.BusinessUnit != "Acme" || db.Owner != "Bob Brown" ||
		db.Status != "retired" || db.Role != "linux server" || db.Site != "FRA1" ||
		!slices.Equal(db.MACs, []string{"52:54:00:12:34:56", "52:54:00:12:34:57"}) || !slices.Equal(db.IPs, ips("10.0.1.20")) ||
		!strings.Contains(db.URL, "uri=cmdb_ci_linux_server.do?sys_id=") {
		t.Errorf("DB1 %+v", db)
	}
	sw := m[servicenowtest.SW1]
	if sw.ReckonID != "a-sw1" || sw.Role != "ip switch" || !slices.Equal(sw.MACs, []string{"00:1b:54:00:00:01"}) ||
		!sw.LastUpdated.Equal(time.Date(2024, 5, 12, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("SW1 %+v", sw)
	}
	if ups := m[servicenowtest.UPS1]; ups.Status != "inventory" || ups.MACs != nil || ups.IPs != nil || ups.AssetTag != "P000777" {
		t.Errorf("UPS1 %+v", ups)
	}
	if p := m[servicenowtest.PRN1]; p.Status != "stolen" || !slices.Equal(p.IPs, ips("10.0.3.15")) ||
		!slices.Equal(p.MACs, []string{"00:1b:a9:44:10:3f"}) || p.Class != "cmdb_ci_ip_device" {
		t.Errorf("PRN1 %+v", p)
	}

	// What was asked for: all display values, no links, ordered by sys_id.
	for _, r := range s.Requests() {
		q := r.Query
		if q.Get("sysparm_display_value") != "all" || q.Get("sysparm_exclude_reference_link") != "true" ||
			!strings.HasSuffix(q.Get("sysparm_query"), "ORDERBYsys_id") || q.Get("sysparm_limit") != "1000" {
			t.Errorf("%s %v", r.Path, q)
		}
		if r.Auth != "Bearer "+s.Token {
			t.Errorf("auth %q", r.Auth)
		}
	}
}

func TestRoleFieldAndBasicAuth(t *testing.T) {
	s := servicenowtest.New(servicenowtest.Seed())
	defer s.Close()
	s.User = "svc_reckon"
	c, err := New(Options{URL: s.URL, User: "svc_reckon", Token: s.Token, RoleField: "u_role", Query: "install_status=1"})
	if err != nil {
		t.Fatal(err)
	}
	cis, err := readAll(context.Background(), c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	m := byID(cis)
	// install_status=1 is AND-ed: only WS1 and SW1 are installed.
	if len(cis) != 2 || m[servicenowtest.SW1].Role != "core switch" || m[servicenowtest.WS1].Role != "" {
		t.Fatalf("%+v", cis)
	}
}

// Small pages, with Link headers and without: each CI once.
func TestPagination(t *testing.T) {
	for _, noLink := range []bool{false, true} {
		t.Run(fmt.Sprint("noLink=", noLink), func(t *testing.T) {
			s, c := setup(t, func(o *Options) { o.PageSize = 2 })
			s.NoLinkHeader = noLink
			s.AddCIs(25, time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
			cis, err := readAll(context.Background(), c, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, ci := range cis {
				seen[ci.ID]++
				if strings.HasPrefix(ci.Name, "host-") && len(ci.MACs) != 1 {
					t.Errorf("%s: MACs %v", ci.Name, ci.MACs)
				}
			}
			if len(cis) != 30 || len(seen) != 30 {
				t.Fatalf("%d CIs, %d distinct", len(cis), len(seen))
			}
			// 27 computers in pages of 2: 14 requests, whichever way.
			if n := count(s, computers); n != 14 {
				t.Fatalf("%d computer pages", n)
			}
		})
	}
}

func TestIncremental(t *testing.T) {
	s, c := setup(t, nil)
	cis, err := readAll(context.Background(), c, time.Date(2024, 5, 1, 2, 0, 0, 0, time.FixedZone("CEST", 2*3600)))
	if err != nil {
		t.Fatal(err)
	}
	m := byID(cis)
	if len(cis) != 2 || m[servicenowtest.DB1].ID == "" || m[servicenowtest.SW1].ID == "" || len(m[servicenowtest.DB1].MACs) != 2 {
		t.Fatalf("%+v", cis)
	}
	for _, r := range s.Requests() {
		q := r.Query.Get("sysparm_query")
		want := "sys_updated_on>=2024-05-01 00:00:00^ORDERBYsys_id" // since in UTC
		if r.Path == adapters {
			want = "cmdb_ci." + want
		}
		if q != want {
			t.Errorf("%s: query %q, want %q", r.Path, q, want)
		}
	}

	s.Touch(servicenowtest.WS1, time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC), map[string]string{"name": "WS-0001-renamed"})
	cis, err = readAll(context.Background(), c, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(cis) != 1 || cis[0].Name != "ws-0001-renamed" || len(cis[0].MACs) != 2 {
		t.Fatalf("%+v", cis)
	}
}

func TestRetryAfter(t *testing.T) {
	s, c := setup(t, nil)
	s.Inject(servicenowtest.Fault{Path: computers, Status: 429, RetryAfter: "1", Times: 1})
	start := time.Now()
	cis, err := readAll(context.Background(), c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %v, Retry-After said 1s", d)
	}
	if len(cis) != 5 || count(s, computers) != 2 {
		t.Fatalf("%d CIs, %d requests", len(cis), count(s, computers))
	}
}

func TestServerErrorsRetried(t *testing.T) {
	s, c := setup(t, nil)
	s.Inject(servicenowtest.Fault{Path: hardware, Status: 503, Times: 2})
	cis, err := readAll(context.Background(), c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cis) != 5 || count(s, hardware) != 3 {
		t.Fatalf("%d CIs, %d requests", len(cis), count(s, hardware))
	}
}

func TestServerErrorForever(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.MaxRetries = 2 })
	s.Inject(servicenowtest.Fault{Path: hardware, Status: 500, Body: []byte(`{"error":{"message":"Database down","detail":"try later"},"status":"failure"}`)})
	_, err := readAll(context.Background(), c, time.Time{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Message != "Database down" {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), s.URL+hardware) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("error does not name URL and status: %v", err)
	}
	if n := count(s, hardware); n != 3 {
		t.Fatalf("%d requests, want 1 + 2 retries", n)
	}
}

func TestTimeout(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.Timeout = 100 * time.Millisecond; o.MaxRetries = 1 })
	s.Inject(servicenowtest.Fault{Path: adapters, Delay: 3 * time.Second})
	start := time.Now()
	_, err := readAll(context.Background(), c, time.Time{})
	if err == nil || !strings.Contains(err.Error(), adapters) {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestTruncated(t *testing.T) {
	s, c := setup(t, nil)
	s.Inject(servicenowtest.Fault{Path: computers, Truncate: true})
	_, err := readAll(context.Background(), c, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "not a Table API answer") || !strings.Contains(err.Error(), computers) {
		t.Fatalf("%v", err)
	}
}

func TestUnauthorised(t *testing.T) {
	s, c := setup(t, nil)
	s.Revoke()
	_, err := readAll(context.Background(), c, time.Time{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "User Not Authenticated") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("%v", err)
	}
	if n := len(s.Requests()); n > 4 { // one per table at most, no retries
		t.Fatalf("%d requests", n)
	}
	_, err = c.Push(context.Background(), []cmdb.Asset{{ID: "a-1", Name: "x"}}, cmdb.PushOptions{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("push: %v", err)
	}
}

func TestCancel(t *testing.T) {
	s, c := setup(t, nil)
	s.Inject(servicenowtest.Fault{Delay: 4 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := readAll(ctx, c, time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRateLimit(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.RateLimit = 10 })
	start := time.Now()
	if _, err := readAll(context.Background(), c, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// 4 requests at 10/s with a burst of 1: at least 300ms.
	if d := time.Since(start); len(s.Requests()) != 4 || d < 300*time.Millisecond {
		t.Fatalf("%d requests in %v", len(s.Requests()), d)
	}
}

func ireRequests(s *servicenowtest.Server) []servicenowtest.Request {
	var out []servicenowtest.Request
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, ire) {
			out = append(out, r)
		}
	}
	return out
}

func TestPushDryRun(t *testing.T) {
	s, c := setup(t, nil)
	assets := []cmdb.Asset{
		{ID: "a-new", Name: "laptop-9", Serial: "SN9", MACs: []string{"02:00:00:00:00:09"}, IPs: ips("fe80::1", "10.0.9.9"),
			OS: "Windows 11", LastSeen: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)},
		{ID: "a-ws1", CIID: servicenowtest.WS1, Name: "ws-0001", IPs: ips("10.0.0.99")},
	}
	ch, err := c.Push(context.Background(), assets, cmdb.PushOptions{DryRun: true, Owns: []string{"ip_address"}, Message: "reckon run 7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Writes()) != 0 {
		t.Fatalf("dry run wrote %+v", s.Writes())
	}
	reqs := ireRequests(s)
	if len(reqs) != 1 || reqs[0].Path != ire+"/query" {
		t.Fatalf("%+v", reqs)
	}
	if len(ch) != 2 {
		t.Fatalf("%+v", ch)
	}
	if n := ch[0]; n.AssetID != "a-new" || n.Action != "create" || n.ID != "" || n.Object != "cmdb_ci_computer" ||
		n.Fields["ip_address"] != "10.0.9.9" || n.Fields["os"] != "Windows 11" || n.Message != "reckon run 7" || n.Error != "" {
		t.Errorf("%+v", n)
	}
	// A managed CI: only the owned field is sent, by sys_id.
	if u := ch[1]; u.Action != "update" || u.ID != servicenowtest.WS1 || len(u.Fields) != 1 || u.Fields["ip_address"] != "10.0.0.99" || u.Message != "reckon run 7" {
		t.Errorf("%+v", u)
	}
	var body struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	var src map[string]string
	json.Unmarshal(body.Items[0]["sys_object_source_info"], &src)
	if src["source_name"] != "reckon" || src["source_native_key"] != "a-new" || src["source_recency_timestamp"] != "2024-07-01 12:00:00" {
		t.Errorf("%v", src)
	}
	var vals map[string]string
	json.Unmarshal(body.Items[1]["values"], &vals)
	if len(vals) != 2 || vals["sys_id"] != servicenowtest.WS1 {
		t.Errorf("managed values %v", vals)
	}
}

func TestPushCommit(t *testing.T) {
	s, c := setup(t, nil)
	assets := []cmdb.Asset{
		{ID: "a-sw", Name: "sw-edge-2", Serial: "FOC999", DeviceType: "switch", MACs: []string{"00:1b:54:00:00:02"}},
		{ID: "a-ws1", CIID: servicenowtest.WS1, Name: "ws-0001"}, // owns nothing: nothing to change
		{ID: "a-sw"}, // a duplicate: sent once
	}
	ch, err := c.Push(context.Background(), assets, cmdb.PushOptions{Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Writes()
	if len(ch) != 1 || ch[0].Action != "create" || ch[0].Object != "cmdb_ci_ip_device" || ch[0].ID == "" || ch[0].ID == "Unknown" {
		t.Fatalf("%+v", ch)
	}
	if len(w) != 1 || w[0].SysID != ch[0].ID || w[0].Values["serial_number"] != "FOC999" || w[0].DataSource != "ServiceNow" {
		t.Fatalf("%+v", w)
	}
	// Pushed again, it is identified by reckon's source key: no change.
	ch, err = c.Push(context.Background(), assets[:1], cmdb.PushOptions{Message: "m"})
	if err != nil || len(ch) != 0 || len(s.Writes()) != 1 {
		t.Fatalf("%+v %v %+v", ch, err, s.Writes())
	}
	// And the new CI reads back.
	cis, err := readAll(context.Background(), c, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ci := byID(cis)[w[0].SysID]; ci.Name != "sw-edge-2" || !slices.Equal(ci.MACs, []string{"00:1b:54:00:00:02"}) {
		t.Fatalf("%+v", ci)
	}
}

func TestPushBatches(t *testing.T) {
	s, c := setup(t, nil)
	var assets []cmdb.Asset
	for i := range 1201 {
		assets = append(assets, cmdb.Asset{ID: fmt.Sprintf("a-%d", i), Name: fmt.Sprintf("n-%d", i)})
	}
	s.FailItem("a-700", "INVALID_INPUT_DATA", "name is reserved")
	ch, err := c.Push(context.Background(), assets, cmdb.PushOptions{Message: "bulk"})
	if err != nil {
		t.Fatal(err)
	}
	reqs := ireRequests(s)
	var sizes []int
	for _, r := range reqs {
		var b struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b.Items))
	}
	if !slices.Equal(sizes, []int{500, 500, 201}) {
		t.Fatalf("payload sizes %v", sizes)
	}
	if len(ch) != 1201 || len(s.Writes()) != 1200 {
		t.Fatalf("%d changes, %d writes", len(ch), len(s.Writes()))
	}
	for _, x := range ch {
		if x.AssetID == "a-700" {
			if x.Error != "INVALID_INPUT_DATA: name is reserved" || x.Action != "create" {
				t.Errorf("%+v", x)
			}
		} else if x.Error != "" || x.Action != "create" || x.ID == "" || x.Message != "bulk" {
			t.Errorf("%+v", x)
		}
	}
}

func TestPushDataSource(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.DataSource = "SCCM"; o.SourceName = "reckon-lab" })
	if _, err := c.Push(context.Background(), []cmdb.Asset{{ID: "a-1", Name: "x"}}, cmdb.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range ireRequests(s) {
		if r.Query.Get("sysparm_data_source") != "SCCM" || !strings.Contains(string(r.Body), `"source_name":"reckon-lab"`) {
			t.Fatalf("%v %s", r.Query, r.Body)
		}
	}
	if w := s.Writes(); len(w) != 1 || w[0].DataSource != "SCCM" {
		t.Fatalf("%+v", w)
	}

	_, c2 := setup(t, func(o *Options) { o.DataSource = "Nope" })
	_, err := c2.Push(context.Background(), []cmdb.Asset{{ID: "a-1", Name: "x"}}, cmdb.PushOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "Invalid data source") {
		t.Fatalf("%v", err)
	}
}

// A payload refused as a whole ends the push, with the earlier payloads'
// changes returned.
func TestPushAborts(t *testing.T) {
	s, c := setup(t, func(o *Options) { o.MaxRetries = 1 })
	var assets []cmdb.Asset
	for i := range 600 {
		assets = append(assets, cmdb.Asset{ID: fmt.Sprintf("a-%d", i), Name: fmt.Sprintf("n-%d", i)})
	}
	// The first payload goes through (the fault skips it); the second
	// fails for good: 1 + 1 retry.
	s.Inject(servicenowtest.Fault{Path: ire, Times: 1})
	s.Inject(servicenowtest.Fault{Path: ire, Status: 502})
	ch, err := c.Push(context.Background(), assets, cmdb.PushOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || len(ch) != 500 {
		t.Fatalf("%d changes, %v", len(ch), err)
	}
	if n := len(ireRequests(s)); n != 1+2 {
		t.Fatalf("%d IRE requests", n)
	}
	if n := len(s.Writes()); n != 500 {
		t.Fatalf("%d writes", n)
	}
}

func TestLinkNext(t *testing.T) {
	h := `<https://i.service-now.com/api/now/table/t?sysparm_limit=2&sysparm_offset=0&sysparm_fields=a,b>;rel="first",` +
		`<https://i.service-now.com/api/now/table/t?sysparm_limit=2&sysparm_offset=2&sysparm_fields=a,b>;rel="next",` +
		`<https://i.service-now.com/api/now/table/t?sysparm_limit=2&sysparm_offset=8>;rel="last"`
	u, ok := linkNext(h)
	if !ok || u != "https://i.service-now.com/api/now/table/t?sysparm_limit=2&sysparm_offset=2&sysparm_fields=a,b" {
		t.Fatalf("%q %v", u, ok)
	}
	if _, ok := linkNext(`<https://i/x>;rel="last"`); ok {
		t.Fatal("found a next that is not there")
	}
}

func TestNewChecks(t *testing.T) {
	for _, o := range []Options{
		{Token: "t"},
		{URL: "ftp://x", Token: "t"},
		{URL: "https://x"},
		{URL: "https://x", Token: "t", Query: "a=1^NQb=2"},
		{URL: "https://x", Token: "t", Tables: []string{"cmdb_ci&x=1"}},
		{URL: "https://x", Token: "t", CAFile: "/nonexistent"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
