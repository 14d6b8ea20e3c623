package netbox

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/internal/rest"
	"github.com/reckon-dev/reckon/cmdb/netbox/netboxtest"
)

// setup starts an emulator over ds and a client of it; the client's first
// backoff is 10ms so retry tests run fast (Retry-After is still honoured).
func setup(t testing.TB, ds netboxtest.Dataset, eo netboxtest.Options, o Options) (*netboxtest.Server, *Client) {
	t.Helper()
	s := netboxtest.New(t, eo)
	s.Seed(ds)
	o.URL = s.URL
	if o.Token == "" {
		o.Token = netboxtest.DefaultToken
	}
	if eo.TLS && o.CAFile == "" && !o.Insecure {
		o.CAFile = writeCA(t, s)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.rc.SetRetryWaitTime(10 * time.Millisecond)
	return s, c
}

func writeCA(t testing.TB, s *netboxtest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll(t testing.TB, c *Client, since time.Time) ([]cmdb.CI, error) {
	t.Helper()
	var out []cmdb.CI
	err := c.CIs(context.Background(), since, func(ci cmdb.CI) error {
		out = append(out, ci)
		return nil
	})
	return out, err
}

func mustRead(t testing.TB, c *Client, since time.Time) []cmdb.CI {
	t.Helper()
	cis, err := readAll(t, c, since)
	if err != nil {
		t.Fatalf("CIs: %v", err)
	}
	return cis
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func js(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestCIsExample(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{})
	got := mustRead(t, c, time.Time{})
	ts := time.Date(2020, 8, 4, 14, 12, 39, 666885000, time.UTC)
	want := []cmdb.CI{
		{ID: "dcim.device:2230", Class: "device", Name: "router1", URL: s.URL + "/dcim/devices/2230/",
			ReckonID: "r-1", Serial: "FOC1234X", AssetTag: "A-0042",
			MACs: []string{"00:1b:17:00:01:12", "00:1b:17:00:01:13"},
			IPs:  addrs("192.168.0.42", "2001:db8::42"), Static: []bool{true, false},
			Site: "AMS1", BusinessUnit: "Acme", Owner: "netops", Role: "router", Status: "active", LastUpdated: ts},
		{ID: "virtualization.virtualmachine:77", Class: "virtual_machine", Name: "web-01",
			URL: s.URL + "/virtualization/virtual-machines/77/", MACs: []string{"52:54:00:aa:bb:cc"},
			IPs: addrs("192.168.1.10"), Static: []bool{false}, Site: "AMS1", BusinessUnit: "Acme", Role: "web",
			Status: "planned", LastUpdated: ts.Add(time.Hour)},
		{ID: "ipam.ipaddress:2956", Class: "ip_address", Name: "printer.example",
			URL: s.URL + "/ipam/ip-addresses/2956/", IPs: addrs("192.168.0.99"), Static: []bool{true},
			Status: "reserved", LastUpdated: ts.Add(2 * time.Hour)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CIs:\n%s\nwant:\n%s", js(got), js(want))
	}
	// Every list was asked for by id order with the page size.
	for _, r := range s.Requests() {
		if q := r.URL.Query(); q.Get("limit") != "1000" || q.Get("ordering") != "id" {
			t.Errorf("request %s: want limit=1000&ordering=id", r.URL)
		}
	}
}

// checkGenerated checks CIs read from netboxtest.Generate(n): each device
// once, complete.
func checkGenerated(t *testing.T, cis []cmdb.CI, n int) {
	t.Helper()
	if len(cis) != n {
		t.Fatalf("%d CIs, want %d", len(cis), n)
	}
	seen := map[string]bool{}
	for i, ci := range cis {
		id := i + 1
		want := fmt.Sprintf("dcim.device:%d", id)
		if ci.ID != want || seen[ci.ID] {
			t.Fatalf("CI %d is %s (seen before: %v), want %s", i, ci.ID, seen[ci.ID], want)
		}
		seen[ci.ID] = true
		if ci.Name != fmt.Sprintf("dev-%d", id) || ci.Serial != fmt.Sprintf("SN%d", id) ||
			!reflect.DeepEqual(ci.MACs, []string{netboxtest.GeneratedMAC(id)}) ||
			!reflect.DeepEqual(ci.IPs, []netip.Addr{netboxtest.GeneratedIP(id)}) {
			t.Fatalf("CI %s incomplete: %s", ci.ID, js(ci))
		}
	}
}

func TestPaginationSmallPages(t *testing.T) {
	const n = 150
	s, c := setup(t, netboxtest.Generate(n), netboxtest.Options{}, Options{PageSize: 7})
	checkGenerated(t, mustRead(t, c, time.Time{}), n)
	offsets := map[string]map[string]bool{}
	for _, r := range s.Requests() {
		if offsets[r.URL.Path] == nil {
			offsets[r.URL.Path] = map[string]bool{}
		}
		off := r.URL.Query().Get("offset")
		if offsets[r.URL.Path][off] {
			t.Errorf("%s offset %q asked twice", r.URL.Path, off)
		}
		offsets[r.URL.Path][off] = true
	}
	if got, want := len(offsets[netboxtest.PathDevices]), (n+6)/7; got != want {
		t.Errorf("%d device pages, want %d", got, want)
	}
}

// TestPaginationCappedLimit: NetBox caps limit at 1000; a client asking
// for more must page by what it got.
func TestPaginationCappedLimit(t *testing.T) {
	const n = 2345
	_, c := setup(t, netboxtest.Generate(n), netboxtest.Options{NoValidate: true}, Options{PageSize: 5000})
	checkGenerated(t, mustRead(t, c, time.Time{}), n)
}

// TestPaginationNoCount follows next links when there is no count.
func TestPaginationNoCount(t *testing.T) {
	const n = 55
	s, c := setup(t, netboxtest.Generate(n), netboxtest.Options{NoValidate: true, OmitCount: true}, Options{PageSize: 10})
	checkGenerated(t, mustRead(t, c, time.Time{}), n)
	devReqs := 0
	for _, r := range s.Requests() {
		if r.URL.Path == netboxtest.PathDevices {
			devReqs++
		}
	}
	if devReqs != 6 {
		t.Errorf("%d device requests, want 6", devReqs)
	}
}

func TestTokens(t *testing.T) {
	for _, tc := range []struct{ tok, auth string }{
		{netboxtest.DefaultToken, "Token " + netboxtest.DefaultToken},
		{netboxtest.DefaultTokenV2, "Bearer " + netboxtest.DefaultTokenV2},
	} {
		s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Token: tc.tok})
		if cis := mustRead(t, c, time.Time{}); len(cis) != 3 {
			t.Errorf("token %s: %d CIs", tc.tok[:4], len(cis))
		}
		for _, r := range s.Requests() {
			if r.Auth != tc.auth {
				t.Errorf("Authorization %q, want %q", r.Auth, tc.auth)
			}
		}
	}
}

func TestRevokedToken(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{})
	s.RevokeToken(netboxtest.DefaultToken)
	_, err := readAll(t, c, time.Time{})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(err.Error(), s.URL+"/api/") {
		t.Errorf("err %v: want a 403 naming the URL", err)
	}
	// At most the first page of each of the six lists, none retried.
	reqs := s.Requests()
	urls := map[string]bool{}
	for _, r := range reqs {
		if urls[r.URL.String()] {
			t.Errorf("%s retried after a 403", r.URL)
		}
		urls[r.URL.String()] = true
	}
	if len(reqs) > 6 {
		t.Errorf("%d requests after a revoked token, want at most 6", len(reqs))
	}
}

func TestRetryAfter429(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Concurrency: 1})
	s.Inject(1, netboxtest.Fault{Status: 429, RetryAfter: "1"})
	start := time.Now()
	if cis := mustRead(t, c, time.Time{}); len(cis) != 3 {
		t.Fatalf("%d CIs", len(cis))
	}
	reqs := s.Requests()
	if reqs[0].Status != 429 || reqs[1].URL.String() != reqs[0].URL.String() {
		t.Fatalf("first requests: %v %v, want a 429 then the same URL", reqs[0], reqs[1])
	}
	if wait := reqs[1].Start.Sub(reqs[0].Time); wait < 950*time.Millisecond || wait > 3*time.Second {
		t.Errorf("retried after %v, want Retry-After's 1s", wait)
	}
	t.Logf("429 then success in %v", time.Since(start))
}

func TestRetry500(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Concurrency: 1})
	s.Inject(2, netboxtest.Fault{Status: 500})
	if cis := mustRead(t, c, time.Time{}); len(cis) != 3 {
		t.Fatalf("%d CIs", len(cis))
	}
	reqs := s.Requests()
	if reqs[0].Status != 500 || reqs[1].Status != 500 || reqs[2].Status != 200 ||
		reqs[1].URL.String() != reqs[0].URL.String() || reqs[2].URL.String() != reqs[0].URL.String() {
		t.Errorf("want 500, 500, 200 on one URL, got %v %v %v", reqs[0], reqs[1], reqs[2])
	}
}

func TestRetry500Forever(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Concurrency: 1, MaxRetries: 2})
	s.Inject(1000, netboxtest.Fault{Status: 503})
	_, err := readAll(t, c, time.Time{})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 503 || !strings.Contains(err.Error(), s.URL+"/api/") {
		t.Fatalf("err = %v, want a 503 naming the URL", err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", n)
	}
}

func TestTimeout(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Timeout: 100 * time.Millisecond, MaxRetries: 1})
	s.Inject(1000, netboxtest.Fault{Delay: time.Second})
	start := time.Now()
	_, err := readAll(t, c, time.Time{})
	if err == nil || !strings.Contains(err.Error(), s.URL+"/api/") {
		t.Fatalf("err = %v, want a timeout naming the URL", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("gave up after %v", d)
	}
	t.Log(err)
}

func TestTruncatedJSON(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{}, Options{Concurrency: 1})
	s.Inject(1, netboxtest.Fault{Truncate: true})
	_, err := readAll(t, c, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "not the expected JSON") || !strings.Contains(err.Error(), s.URL) {
		t.Fatalf("err = %v, want a decode error naming the URL", err)
	}
}

func TestContextCancel(t *testing.T) {
	s, c := setup(t, netboxtest.Generate(200), netboxtest.Options{NoValidate: true}, Options{PageSize: 10})
	s.SetLatency(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.CIs(ctx, time.Time{}, func(cmdb.CI) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("stopped after %v", d)
	}
}

func TestConcurrencyBound(t *testing.T) {
	s, c := setup(t, netboxtest.Generate(1500), netboxtest.Options{NoValidate: true}, Options{PageSize: 50, Concurrency: 3})
	s.SetLatency(5 * time.Millisecond)
	checkGenerated(t, mustRead(t, c, time.Time{}), 1500)
	if m := s.MaxInFlight(); m > 3 || m < 2 {
		t.Errorf("max in flight %d, want 2..3", m)
	}
}

func TestRateLimit(t *testing.T) {
	s, c := setup(t, netboxtest.Generate(40), netboxtest.Options{NoValidate: true}, Options{PageSize: 10, RateLimit: 40})
	start := time.Now()
	checkGenerated(t, mustRead(t, c, time.Time{}), 40)
	n := len(s.Requests()) // 4 lists of 4 pages, 2 empty lists
	if d, min := time.Since(start), time.Duration(n-2)*time.Second/40; d < min {
		t.Errorf("%d requests in %v at 40/s, want >= %v", n, d, min)
	}
}

func TestIncremental(t *testing.T) {
	ds := netboxtest.Generate(50)
	later := netboxtest.Epoch.Add(time.Hour)
	ds.Devices[9].LastUpdated = later     // device 10 itself
	ds.MACs[19].LastUpdated = later       // device 20 through its MAC
	ds.IPs[29].LastUpdated = later        // device 30 through its address
	ds.Interfaces[39].LastUpdated = later // device 40 through its interface
	ds.IPs = append(ds.IPs, netboxtest.IPAddress{ID: 9999, Address: "192.0.2.7/24", DNSName: "Lone.Example", LastUpdated: later},
		netboxtest.IPAddress{ID: 9998, Address: "192.0.2.8/24", LastUpdated: netboxtest.Epoch})
	s, c := setup(t, ds, netboxtest.Options{}, Options{})
	got := mustRead(t, c, netboxtest.Epoch.Add(time.Minute))
	var ids []string
	for _, ci := range got {
		ids = append(ids, ci.ID)
	}
	want := []string{"dcim.device:10", "dcim.device:20", "dcim.device:30", "dcim.device:40", "ipam.ipaddress:9999"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("changed CIs %v, want %v", ids, want)
	}
	for _, ci := range got[:4] {
		var id int
		fmt.Sscanf(ci.ID, "dcim.device:%d", &id)
		if ci.Name != fmt.Sprintf("dev-%d", id) || !reflect.DeepEqual(ci.MACs, []string{netboxtest.GeneratedMAC(id)}) ||
			!reflect.DeepEqual(ci.IPs, []netip.Addr{netboxtest.GeneratedIP(id)}) || !ci.LastUpdated.Equal(later) {
			t.Errorf("incremental CI incomplete: %s", js(ci))
		}
	}
	if lone := got[4]; lone.Name != "lone.example" || lone.IPs[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("lone address CI %s", js(lone))
	}
	sawID := false
	for _, r := range s.Requests() {
		q := r.URL.Query()
		if q.Get("last_updated__gte") == "" && len(q["id"]) == 0 && len(q["device_id"]) == 0 && len(q["virtual_machine_id"]) == 0 {
			t.Errorf("incremental read asked for everything: %s", r.URL)
		}
		if r.URL.Path == netboxtest.PathDevices && len(q["id"]) == 4 {
			sawID = true
		}
	}
	if !sawID {
		t.Error("no devices?id=...&id=... request")
	}
}

func TestCAFile(t *testing.T) {
	s, c := setup(t, netboxtest.Example(), netboxtest.Options{TLS: true}, Options{})
	if cis := mustRead(t, c, time.Time{}); len(cis) != 3 {
		t.Fatalf("%d CIs over TLS with the CA file", len(cis))
	}
	c2, err := New(Options{URL: s.URL, Token: netboxtest.DefaultToken, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, c2, time.Time{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA file: %v, want a certificate error", err)
	}
	if _, err := New(Options{URL: s.URL, Token: "x", CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("New accepted a missing CA file")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"1": time.Second, "0": 0, "": 0, "junk": 0, "3600": maxRetryWait,
		now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):    0,
	} {
		if got := rest.ParseRetryAfter(v, now, maxRetryWait); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	for _, o := range []Options{{}, {URL: "ftp://x", Token: "t"}, {URL: "http://x"}, {URL: "http://x", Token: "t", RateLimit: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	c, err := New(Options{URL: "https://netbox.example.com/", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if c.o.PageSize != 1000 || c.o.Concurrency != 4 || c.o.MaxRetries != 5 || c.o.Timeout != 30*time.Second ||
		c.o.ReckonIDField != "reckon_asset_id" || c.o.Tag != "reckon" || c.Kind() != "netbox" {
		t.Errorf("defaults %+v", c.o)
	}
}
