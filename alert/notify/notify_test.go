package notify

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

const testSecret = "s3cret-shared-with-the-receiver"

// ---- webhook receiver ----

// receiver is a webhook endpoint that verifies signatures and records the
// notifications it took, by id; respond, when set, may answer a request
// (numbered from 1) with a failure instead.
type receiver struct {
	respond func(n int, w http.ResponseWriter, r *http.Request) bool
	// gate, when set, holds every request until it is closed; entered
	// hears of each request as it arrives.
	gate    chan struct{}
	entered chan struct{}

	mu       sync.Mutex
	requests int
	badSig   int
	seen     map[string]int
	arrivals []time.Time
}

func newReceiver() *receiver {
	return &receiver{seen: map[string]int{}, entered: make(chan struct{}, 1000)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case rc.entered <- struct{}{}:
	default:
	}
	if rc.gate != nil {
		select {
		case <-rc.gate:
		case <-r.Context().Done():
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := Verify(testSecret, r.Header.Get(HeaderTimestamp), string(body), r.Header.Get(HeaderSignature), 5*time.Minute); err != nil {
		rc.mu.Lock()
		rc.badSig++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.arrivals = append(rc.arrivals, time.Now())
	rc.mu.Unlock()
	if rc.respond != nil && rc.respond(n, w, r) {
		return
	}
	var p struct {
		Notifications []Notification `json:"notifications"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, n := range p.Notifications {
		rc.seen[n.ID]++
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) stats() (requests, badSig int, seen map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen = make(map[string]int, len(rc.seen))
	for k, v := range rc.seen {
		seen[k] = v
	}
	return rc.requests, rc.badSig, seen
}

func (rc *receiver) hasAll(ids []string) bool {
	_, _, seen := rc.stats()
	for _, id := range ids {
		if seen[id] == 0 {
			return false
		}
	}
	return true
}

// checkOnce asserts every id arrived, nothing else did, and returns how
// many arrivals were duplicates.
func (rc *receiver) checkOnce(t *testing.T, ids []string) (dupes int) {
	t.Helper()
	_, bad, seen := rc.stats()
	if bad > 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	for _, id := range ids {
		if seen[id] == 0 {
			t.Errorf("notification %s lost", id)
		}
		dupes += max(seen[id]-1, 0)
	}
	for id := range seen {
		if !slices.Contains(ids, id) {
			t.Errorf("unexpected notification %s", id)
		}
	}
	return dupes
}

// serve serves rc on ln until the test ends.
func serve(t *testing.T, ln net.Listener, rc *receiver) {
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// reservePort returns a loopback address nothing listens on (yet).
func reservePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ---- helpers ----

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newDispatcher starts a Dispatcher with quick retries, stopped when the test ends.
func newDispatcher(t *testing.T, st *store.Store, reg *prometheus.Registry, sinks []Sink, edit func(*Options)) *Dispatcher {
	t.Helper()
	opts := Options{
		Store: st, Sinks: sinks,
		BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Jitter: 0.1,
		PollInterval: 20 * time.Millisecond, SendTimeout: 10 * time.Second,
		Logger: testLogger(t),
	}
	if reg != nil {
		opts.Registerer = reg
	}
	if edit != nil {
		edit(&opts)
	}
	d, err := NewDispatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

func notifications(prefix string, n int) []Notification {
	out := make([]Notification, n)
	sev := []string{"info", "low", "medium", "high", "critical"}
	for i := range out {
		out[i] = Notification{
			ID: fmt.Sprintf("%s-%d", prefix, i), Event: "opened", AlertID: fmt.Sprintf("alert-%d", i),
			Kind: "check_failed", Severity: sev[i%len(sev)], AssetID: "asset-1", Title: "TLS 1.0 enabled",
			Condition: "firing", Workflow: "new", Team: "netops",
			Detail: map[string]any{"check": "tls-min-version", "port": 443},
			At:     time.Date(2024, 6, 10, 6, 13, 20, 0, time.UTC),
		}
	}
	return out
}

func idsOf(ns []Notification) []string {
	ids := make([]string, len(ns))
	for i := range ns {
		ids[i] = ns[i].ID
	}
	return ids
}

// enqueue enqueues and logs how long it took (logged, not asserted).
func enqueue(t *testing.T, d *Dispatcher, ns []Notification) {
	t.Helper()
	start := time.Now()
	if err := d.Enqueue(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Logf("Enqueue of %d took %s", len(ns), time.Since(start))
}

type outboxState struct {
	ID        string `db:"id"`
	Sink      string `db:"sink"`
	Attempts  int    `db:"attempts"`
	LastError string `db:"last_error"`
	Delivered bool   `db:"delivered"`
	Failed    bool   `db:"failed"`
}

func outbox(t *testing.T, st *store.Store, sink string) []outboxState {
	t.Helper()
	var rows []outboxState
	err := st.DB.Select(&rows, st.DB.Rebind(`SELECT id, sink, attempts, last_error,
		delivered_at IS NOT NULL AS delivered, failed_at IS NOT NULL AS failed
		FROM notification_outbox WHERE sink = ? ORDER BY id`), sink)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func allRows(t *testing.T, st *store.Store, sink string, n int, cond func(outboxState) bool) func() bool {
	return func() bool {
		rows := outbox(t, st, sink)
		if len(rows) != n {
			return false
		}
		for _, r := range rows {
			if !cond(r) {
				return false
			}
		}
		return true
	}
}

func delivered(r outboxState) bool { return r.Delivered }

// retries is how many attempts beyond the first the rows took.
func retries(rows []outboxState) int {
	n := 0
	for _, r := range rows {
		n += r.Attempts - 1
	}
	return n
}

// counter reads a counter from reg by name and label values.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// ---- webhook ----

func TestVerify(t *testing.T) {
	body := `{"notifications":[{"id":"n-1"}]}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := sign([]byte(testSecret), ts, []byte(body))
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q is not sha256=<64 hex>", sig)
	}
	if err := Verify(testSecret, ts, body, sig, time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	for name, c := range map[string][4]string{
		"tampered body":     {testSecret, ts, strings.Replace(body, "n-1", "n-2", 1), sig},
		"wrong secret":      {"another", ts, body, sig},
		"other timestamp":   {testSecret, strconv.FormatInt(time.Now().Unix()-1, 10), body, sig},
		"stale timestamp":   {testSecret, old, body, sign([]byte(testSecret), old, []byte(body))},
		"no signature":      {testSecret, ts, body, ""},
		"bad timestamp":     {testSecret, "yesterday", body, sig},
		"no secret":         {"", ts, body, sig},
		"uppercase hex sig": {testSecret, ts, body, "sha256=" + strings.ToUpper(sig[7:])},
	} {
		if err := Verify(c[0], c[1], c[2], c[3], time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	// Without maxSkew the age is not checked.
	if err := Verify(testSecret, old, body, sign([]byte(testSecret), old, []byte(body)), 0); err != nil {
		t.Errorf("stale timestamp without maxSkew: %v", err)
	}
}

func TestWebhookSend(t *testing.T) {
	t.Parallel()
	var got struct {
		header http.Header
		body   []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.header = r.Header.Clone()
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	ns := notifications("wh", 2)
	ns[1].Detail = nil
	ns[1].Group, ns[1].Count = "netops/high", 3
	w := &Webhook{URL: srv.URL + "/hook", Secret: []byte(testSecret),
		Headers: map[string]string{"Authorization": "Bearer t0ken", "Content-Type": "text/plain"}}
	if err := w.Send(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if a := got.header.Get("Authorization"); a != "Bearer t0ken" {
		t.Errorf("Authorization %q", a)
	}
	if err := Verify(testSecret, got.header.Get(HeaderTimestamp), string(got.body), got.header.Get(HeaderSignature), time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}
	tampered := strings.Replace(string(got.body), "TLS 1.0", "TLS 1.3", 1)
	if err := Verify(testSecret, got.header.Get(HeaderTimestamp), tampered, got.header.Get(HeaderSignature), time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body verified: %v", err)
	}
	var p struct {
		Notifications []Notification `json:"notifications"`
	}
	if err := json.Unmarshal(got.body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Notifications) != 2 || p.Notifications[0].ID != "wh-0" || p.Notifications[1].Count != 3 ||
		p.Notifications[0].Detail["check"] != "tls-min-version" || !p.Notifications[0].At.Equal(ns[0].At) {
		t.Errorf("payload %s", got.body)
	}
	if strings.Contains(w.Name(), "/hook") || !strings.HasPrefix(w.Name(), "webhook:127.0.0.1:") {
		t.Errorf("Name %q should name the host, not the path", w.Name())
	}

	// Without a secret there is no signature header.
	if err := (&Webhook{URL: srv.URL}).Send(context.Background(), ns[:1]); err != nil {
		t.Fatal(err)
	}
	if s := got.header.Get(HeaderSignature); s != "" || got.header.Get(HeaderTimestamp) == "" {
		t.Errorf("unsigned request: signature %q, timestamp %q", s, got.header.Get(HeaderTimestamp))
	}
}

func TestWebhookErrors(t *testing.T) {
	t.Parallel()
	when := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		status     int
		retryAfter string
		retry      bool
		after      time.Duration // at least
	}{
		{"503 Retry-After seconds", 503, "7", true, 7 * time.Second},
		{"429 Retry-After date", 429, when, true, 60 * time.Second},
		{"408", 408, "", true, 0},
		{"500", 500, "", true, 0},
		{"502 bad Retry-After", 502, "soon", true, 0},
		{"400", 400, "", false, 0},
		{"401", 401, "", false, 0},
		{"404", 404, "", false, 0},
		{"302", 302, "", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				http.Error(w, "nope\nreally", c.status)
			}))
			defer srv.Close()
			err := (&Webhook{URL: srv.URL}).Send(context.Background(), notifications("e", 1))
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrRetryable) != c.retry || errors.Is(err, ErrPermanent) == c.retry {
				t.Fatalf("%v: retryable %v, permanent %v; want retryable %v", err, errors.Is(err, ErrRetryable), errors.Is(err, ErrPermanent), c.retry)
			}
			after, ok := RetryAfter(err)
			if ok != (c.after > 0) || after < c.after || after > c.after+31*time.Second {
				t.Errorf("%v: RetryAfter %s %v, want about %s", err, after, ok, c.after)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(c.status)) {
				t.Errorf("error %q does not say the status", err)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		err := (&Webhook{URL: "http://" + reservePort(t)}).Send(context.Background(), notifications("e", 1))
		if !errors.Is(err, ErrRetryable) {
			t.Errorf("connection refused: %v, want retryable", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Once the body is read the server notices the client leaving.
			_, _ = io.ReadAll(r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}))
		defer srv.Close()
		err := (&Webhook{URL: srv.URL, Timeout: 50 * time.Millisecond}).Send(context.Background(), notifications("e", 1))
		if !errors.Is(err, ErrRetryable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout: %v, want retryable deadline exceeded", err)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		err := (&Webhook{URL: "ftp://example.invalid/x"}).Send(context.Background(), notifications("e", 1))
		if !errors.Is(err, ErrPermanent) {
			t.Errorf("ftp URL: %v, want permanent", err)
		}
	})
}

// ---- dispatcher ----

// A receiver down at first (connection refused), then up: every
// notification arrives, Enqueue never waited, and a syslog sink beside it
// was not held up.
func TestDispatcherReceiverDown(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		addr := reservePort(t)
		rc := newReceiver()
		collector := newTCPCollector(t, nil)
		hook := &Webhook{URL: "http://" + addr + "/hook", Secret: []byte(testSecret), Timeout: 2 * time.Second}
		sl := &Syslog{Network: "tcp", Addr: collector.addr, Hostname: "scanner1"}
		t.Cleanup(func() { sl.Close() })
		d := newDispatcher(t, st, nil, []Sink{hook, sl}, nil)
		var all []Notification
		for i := range 3 {
			ns := notifications(fmt.Sprintf("down%d", i), 4)
			enqueue(t, d, ns)
			all = append(all, ns...)
		}
		ids := idsOf(all)
		waitFor(t, "syslog to get every notification while the webhook is down", func() bool { return collector.hasAll(ids) })
		waitFor(t, "failed webhook attempts", allRows(t, st, hook.Name(), len(ids), func(r outboxState) bool {
			return r.Attempts >= 1 && r.LastError != "" && !r.Delivered
		}))
		for _, r := range outbox(t, st, hook.Name())[:1] {
			if !strings.Contains(r.LastError, "refused") {
				t.Errorf("last_error %q, want connection refused", r.LastError)
			}
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening on the reserved port: %v", err)
		}
		serve(t, ln, rc)
		waitFor(t, "every notification at the webhook", func() bool { return rc.hasAll(ids) })
		waitFor(t, "every row delivered", allRows(t, st, hook.Name(), len(ids), delivered))
		dupes := rc.checkOnce(t, ids)
		rows := outbox(t, st, hook.Name())
		if r := retries(rows); dupes > r {
			t.Errorf("%d duplicates for %d retries", dupes, r)
		}
		t.Logf("webhook: %d retries, %d duplicates", retries(rows), dupes)
		collector.checkOnce(t, ids)
	})
}

// A receiver that answers 503 with Retry-After, then recovers. Enqueue
// returns while the receiver holds the first request unanswered.
func TestDispatcherRetryAfter(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		rc := newReceiver()
		rc.gate = make(chan struct{})
		var t503 time.Time
		rc.respond = func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n > 1 {
				return false
			}
			rc.mu.Lock()
			t503 = time.Now()
			rc.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		hook := &Webhook{URL: srv.URL, Secret: []byte(testSecret), Timeout: 20 * time.Second}
		reg := prometheus.NewRegistry()
		d := newDispatcher(t, st, reg, []Sink{hook}, func(o *Options) { o.SendTimeout = 30 * time.Second })
		ns := notifications("ra", 3)

		done := make(chan time.Duration)
		go func() {
			start := time.Now()
			if err := d.Enqueue(context.Background(), ns); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
		select {
		case took := <-done:
			t.Logf("Enqueue returned in %s", took)
		case <-time.After(30 * time.Second):
			t.Fatal("Enqueue did not return while the receiver held its request")
		}
		select {
		case <-rc.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the receiver never heard from the dispatcher")
		}
		if n, _, seen := rc.stats(); n != 0 || len(seen) != 0 {
			t.Fatalf("the receiver answered %d requests before Enqueue returned", n)
		}
		close(rc.gate)

		ids := idsOf(ns)
		waitFor(t, "every notification", func() bool { return rc.hasAll(ids) })
		waitFor(t, "every row delivered", allRows(t, st, hook.Name(), len(ids), delivered))
		rc.checkOnce(t, ids)
		rc.mu.Lock()
		arrivals, t503 := slices.Clone(rc.arrivals), t503
		rc.mu.Unlock()
		if len(arrivals) != 2 {
			t.Fatalf("%d requests, want a 503 and one retry", len(arrivals))
		}
		// A lower bound only: the retry waited at least the Retry-After
		// (BaseDelay alone would have retried after 20ms).
		if gap := arrivals[1].Sub(t503); gap < time.Second {
			t.Errorf("retried %s after the 503, before its Retry-After of 1s", gap)
		}
		for _, r := range outbox(t, st, hook.Name()) {
			if r.Attempts != 2 || !strings.Contains(r.LastError, "503") {
				t.Errorf("row %+v: want 2 attempts, the last error a 503", r)
			}
		}
		// The counter moves just after the rows are marked: wait for it.
		waitFor(t, "delivered_total 3", func() bool {
			return counter(t, reg, "reckon_notify_delivered_total", map[string]string{"sink": hook.Name()}) == 3
		})
		if v := counter(t, reg, "reckon_notify_send_attempts_total", map[string]string{"outcome": "retry"}); v != 1 {
			t.Errorf("send_attempts_total{outcome=retry} %v, want 1", v)
		}
	})
}

// A receiver slower than the webhook timeout on the first attempt: the
// request times out and is retried.
func TestDispatcherSlowReceiver(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		rc := newReceiver()
		rc.respond = func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				// Slow: answer only after the client gave up (it still
				// processes the batch, as a slow receiver would).
				select {
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
			}
			return false
		}
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		hook := &Webhook{URL: srv.URL, Secret: []byte(testSecret), Timeout: 200 * time.Millisecond}
		d := newDispatcher(t, st, nil, []Sink{hook}, nil)
		ns := notifications("slow", 2)
		enqueue(t, d, ns)
		ids := idsOf(ns)
		waitFor(t, "every row delivered", allRows(t, st, hook.Name(), len(ids), delivered))
		dupes := rc.checkOnce(t, ids)
		rows := outbox(t, st, hook.Name())
		for _, r := range rows {
			if r.Attempts != 2 || !strings.Contains(r.LastError, "deadline exceeded") {
				t.Errorf("row %+v: want 2 attempts, the first timed out", r)
			}
		}
		if r := retries(rows); dupes > r {
			t.Errorf("%d duplicates for %d retries", dupes, r)
		}
	})
}

// A receiver that refuses with 400: failed after one attempt, not retried;
// in a batch, only the refused notification is given up.
func TestDispatcherPermanent(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		var mu sync.Mutex
		var batches [][]string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p struct {
				Notifications []Notification `json:"notifications"`
			}
			_ = json.NewDecoder(r.Body).Decode(&p)
			mu.Lock()
			batches = append(batches, idsOf(p.Notifications))
			mu.Unlock()
			for _, n := range p.Notifications {
				if n.Title == "poison" {
					http.Error(w, "title not allowed", http.StatusBadRequest)
					return
				}
			}
		}))
		t.Cleanup(srv.Close)
		hook := &Webhook{URL: srv.URL, Secret: []byte(testSecret)}
		reg := prometheus.NewRegistry()
		ns := notifications("perm", 3)
		ns[1].Title = "poison"
		d, err := NewDispatcher(Options{Store: st, Sinks: []Sink{hook}, Registerer: reg, Logger: testLogger(t),
			BaseDelay: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		enqueue(t, d, ns) // before Start, so that one batch holds all three
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Stop)
		waitFor(t, "every row finished", allRows(t, st, hook.Name(), 3, func(r outboxState) bool { return r.Delivered || r.Failed }))
		d.Stop()
		for _, r := range outbox(t, st, hook.Name()) {
			switch {
			case r.ID == "perm-1" && (!r.Failed || r.Attempts != 1 || !strings.Contains(r.LastError, "400")):
				t.Errorf("poison row %+v: want failed after 1 attempt with the 400", r)
			case r.ID != "perm-1" && !r.Delivered:
				t.Errorf("row %+v: want delivered", r)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		want := [][]string{{"perm-0", "perm-1", "perm-2"}, {"perm-0"}, {"perm-1"}, {"perm-2"}}
		if fmt.Sprint(batches) != fmt.Sprint(want) {
			t.Errorf("requests %v, want %v (the batch, then each alone)", batches, want)
		}
		waitFor(t, "dropped_total{reason=permanent} 1", func() bool {
			return counter(t, reg, "reckon_notify_dropped_total", map[string]string{"reason": "permanent"}) == 1
		})
	})
}

// Restart durability: enqueued with the receiver down, the Dispatcher
// stopped, a new one over the same store delivers once the receiver is up.
func TestDispatcherRestart(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		addr := reservePort(t)
		url := "http://" + addr + "/hook"
		d1 := newDispatcher(t, st, nil, []Sink{&Webhook{URL: url, Secret: []byte(testSecret)}}, nil)
		ns := notifications("restart", 5)
		enqueue(t, d1, ns)
		name := (&Webhook{URL: url}).Name()
		waitFor(t, "a failed attempt", allRows(t, st, name, 5, func(r outboxState) bool { return r.Attempts >= 1 && r.LastError != "" }))
		d1.Stop()
		for _, r := range outbox(t, st, name) {
			if r.Delivered || r.Failed {
				t.Fatalf("row %+v finished with the receiver down", r)
			}
		}

		rc := newReceiver()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening on the reserved port: %v", err)
		}
		serve(t, ln, rc)
		newDispatcher(t, st, nil, []Sink{&Webhook{URL: url, Secret: []byte(testSecret)}}, nil)
		ids := idsOf(ns)
		waitFor(t, "every row delivered after the restart", allRows(t, st, name, 5, delivered))
		dupes := rc.checkOnce(t, ids)
		if dupes != 0 {
			t.Errorf("%d duplicates", dupes)
		}
	})
}

// A notification older than MaxAge is given up, logged and counted.
func TestDispatcherMaxAge(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		hook := &Webhook{URL: "http://" + reservePort(t)}
		reg := prometheus.NewRegistry()
		d := newDispatcher(t, st, reg, []Sink{hook}, func(o *Options) { o.MaxAge = 300 * time.Millisecond })
		enqueue(t, d, notifications("old", 1))
		waitFor(t, "the row given up", allRows(t, st, hook.Name(), 1, func(r outboxState) bool { return r.Failed }))
		if r := outbox(t, st, hook.Name())[0]; r.Attempts < 2 || !strings.Contains(r.LastError, "refused") {
			t.Errorf("row %+v: want several attempts, the last refused", r)
		}
		waitFor(t, "dropped_total{reason=expired} 1", func() bool {
			return counter(t, reg, "reckon_notify_dropped_total", map[string]string{"reason": "expired"}) == 1
		})
	})
}

// Enqueue fills missing ids and times, and an id enqueued twice is one row.
func TestEnqueueIdempotent(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		a, b := &Webhook{URL: "http://127.0.0.1:1/a"}, &Webhook{URL: "http://127.0.0.1:1/b"}
		d, err := NewDispatcher(Options{Store: st, Sinks: []Sink{a, b}})
		if err != nil {
			t.Fatal(err)
		}
		ns := notifications("idem", 2)
		ns[1].ID, ns[1].At = "", time.Time{}
		for range 2 {
			if err := d.Enqueue(context.Background(), ns); err != nil {
				t.Fatal(err)
			}
		}
		if ns[1].ID == "" || ns[1].At.IsZero() {
			t.Errorf("Enqueue left ID %q, At %s", ns[1].ID, ns[1].At)
		}
		for _, s := range []Sink{a, b} {
			if rows := outbox(t, st, s.Name()); len(rows) != 2 {
				t.Errorf("%s: %d rows, want 2", s.Name(), len(rows))
			}
		}
		if _, err := NewDispatcher(Options{Store: st, Sinks: []Sink{a, &Webhook{URL: a.URL}}}); err == nil {
			t.Error("two sinks of one name accepted")
		}
	})
}

// ---- syslog ----

// syslogMsg is a parsed RFC 5424 message carrying CEF.
type syslogMsg struct {
	raw                                  string
	pri, version                         int
	timestamp                            time.Time
	host, app, procID, msgID, sd, cefRaw string
	cef                                  []string          // the 6 header fields after "CEF:0", unescaped
	ext                                  map[string]string // extensions, unescaped; csN keyed by their labels too
}

func parseSyslog(t *testing.T, raw string) syslogMsg {
	t.Helper()
	m := syslogMsg{raw: raw}
	f := strings.SplitN(raw, " ", 8)
	if len(f) != 8 {
		t.Fatalf("not an RFC 5424 message: %q", raw)
	}
	pri, ver, ok := strings.Cut(strings.TrimPrefix(f[0], "<"), ">")
	var err error
	if m.pri, err = strconv.Atoi(pri); !ok || err != nil || !strings.HasPrefix(f[0], "<") {
		t.Fatalf("PRI in %q", f[0])
	}
	m.version, _ = strconv.Atoi(ver)
	if m.timestamp, err = time.Parse(time.RFC3339Nano, f[1]); err != nil {
		t.Fatalf("TIMESTAMP %q: %v", f[1], err)
	}
	m.host, m.app, m.procID, m.msgID, m.sd, m.cefRaw = f[2], f[3], f[4], f[5], f[6], f[7]
	if !strings.HasPrefix(m.cefRaw, "CEF:0|") {
		t.Fatalf("MSG is not CEF: %q", m.cefRaw)
	}
	// Header: split on unescaped pipes, unescaping \| and \\.
	rest := m.cefRaw[len("CEF:0|"):]
	var cur strings.Builder
	i := 0
	for ; i < len(rest) && len(m.cef) < 6; i++ {
		switch c := rest[i]; {
		case c == '\\' && i+1 < len(rest):
			i++
			cur.WriteByte(rest[i])
		case c == '|':
			m.cef = append(m.cef, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(m.cef) != 6 {
		t.Fatalf("CEF header has %d fields: %q", len(m.cef), m.cefRaw)
	}
	m.ext = parseExtensions(t, rest[i:])
	for n := 1; n <= 6; n++ {
		if label, ok := m.ext[fmt.Sprintf("cs%dLabel", n)]; ok {
			m.ext[label] = m.ext[fmt.Sprintf("cs%d", n)]
		}
	}
	return m
}

// parseExtensions reads CEF key=value pairs: a key is a word followed by an
// unescaped "=", a value runs to the space before the next key.
func parseExtensions(t *testing.T, s string) map[string]string {
	t.Helper()
	isKey := func(s string) bool {
		j := 0
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		return j > 0 && j < len(s) && s[j] == '='
	}
	out := map[string]string{}
	for i := 0; i < len(s); {
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 || !isKey(s[i:]) {
			t.Fatalf("CEF extensions %q: no key at %d", s, i)
		}
		key := s[i : i+eq]
		i += eq + 1
		var v strings.Builder
		for i < len(s) {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				switch s[i+1] {
				case 'n':
					v.WriteByte('\n')
				case 'r':
					v.WriteByte('\r')
				default:
					v.WriteByte(s[i+1])
				}
				i += 2
				continue
			}
			if c == '=' {
				t.Fatalf("CEF extensions %q: unescaped = in the value of %s", s, key)
			}
			if c == ' ' && isKey(s[i+1:]) {
				i++
				break
			}
			v.WriteByte(c)
			i++
		}
		out[key] = v.String()
	}
	return out
}

// nasty is a notification whose title and detail need escaping.
func nasty() Notification {
	return Notification{ID: "nasty-1", Event: "updated", AlertID: "alert-9", Kind: "drift", Severity: "high",
		AssetID: "asset-2", Title: `weak | cipher \ suite`, Condition: "firing", Workflow: "triage", Team: "sec ops",
		Detail: map[string]any{"message": "expected a=b\nsaw c=d \\ e"},
		At:     time.Date(2024, 6, 10, 6, 13, 20, 123456000, time.UTC), Group: "g1", Count: 2}
}

func checkNasty(t *testing.T, m syslogMsg) {
	t.Helper()
	if m.cef[3] != "drift:drift" || m.cef[4] != `weak | cipher \ suite` || m.cef[5] != "8" {
		t.Errorf("CEF header %q", m.cef)
	}
	if !strings.Contains(m.cefRaw, `|weak \| cipher \\ suite|`) {
		t.Errorf("title not escaped in %q", m.cefRaw)
	}
	if want := `msg=expected a\=b\nsaw c\=d \\ e`; !strings.Contains(m.cefRaw, want) {
		t.Errorf("msg not escaped in %q, want %q", m.cefRaw, want)
	}
	if strings.ContainsAny(m.raw, "\r\n") {
		t.Errorf("raw line break in %q", m.raw)
	}
	want := map[string]string{
		"msg": "expected a=b\nsaw c=d \\ e", "externalId": "alert-9", "act": "updated", "cat": "drift",
		"asset": "asset-2", "team": "sec ops", "condition": "firing", "workflow": "triage",
		"notification": "nasty-1", "group": "g1", "cnt": "2", "rt": "1718000000123",
	}
	if m.timestamp.UnixMilli() != 1718000000123 {
		t.Errorf("TIMESTAMP %s", m.timestamp)
	}
	for k, v := range want {
		if m.ext[k] != v {
			t.Errorf("extension %s = %q, want %q", k, m.ext[k], v)
		}
	}
}

func TestSyslogUDP(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := &Syslog{Network: "udp", Addr: pc.LocalAddr().String(), Hostname: "scanner 1", Version: "v1.4.0"}
	defer s.Close()
	ns := notifications("udp", 5) // info, low, medium, high, critical
	ns = append(ns, nasty())
	if err := s.Send(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	wantPRI := map[string]int{"critical": 16*8 + 2, "high": 16*8 + 3, "medium": 16*8 + 4, "low": 16*8 + 5, "info": 16*8 + 6}
	wantCEF := map[string]string{"critical": "10", "high": "8", "medium": "5", "low": "3", "info": "1"}
	buf := make([]byte, 65536)
	for i, n := range ns {
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		m := parseSyslog(t, string(buf[:k]))
		if m.pri != wantPRI[n.Severity] || m.version != 1 {
			t.Errorf("%s: PRI %d version %d, want %d 1", n.Severity, m.pri, m.version, wantPRI[n.Severity])
		}
		if m.host != "scanner_1" || m.app != "reckon" || m.procID == "-" || m.msgID != n.Event || m.sd != "-" {
			t.Errorf("header %q %q %q %q %q", m.host, m.app, m.procID, m.msgID, m.sd)
		}
		if !m.timestamp.Equal(n.At) || !strings.HasSuffix(strings.SplitN(m.raw, " ", 3)[1], "Z") {
			t.Errorf("TIMESTAMP in %q, want %s", m.raw, n.At)
		}
		if m.cef[0] != "reckon" || m.cef[1] != "reckon" || m.cef[2] != "v1.4.0" {
			t.Errorf("CEF vendor, product, version %q", m.cef[:3])
		}
		if n.ID == "nasty-1" {
			checkNasty(t, m)
			continue
		}
		if m.cef[3] != "check_failed:tls-min-version" || m.cef[4] != "TLS 1.0 enabled" || m.cef[5] != wantCEF[n.Severity] {
			t.Errorf("CEF header %q", m.cef)
		}
		if m.ext["notification"] != n.ID || m.ext["msg"] != "check=tls-min-version; port=443" || m.ext["rt"] != "1718000000000" {
			t.Errorf("CEF extensions %q", m.ext)
		}
	}
}

// tcpCollector is a syslog collector over TCP (or TLS) that reads
// octet-counted frames and keeps its connections so a test can drop them.
type tcpCollector struct {
	addr string
	mu   sync.Mutex
	msgs []syslogMsg
	conn []net.Conn
	t    *testing.T
}

func newTCPCollector(t *testing.T, cfg *tls.Config) *tcpCollector {
	t.Helper()
	var ln net.Listener
	var err error
	if cfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &tcpCollector{addr: ln.Addr().String(), t: t}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		c.mu.Lock()
		for _, conn := range c.conn {
			conn.Close()
		}
		c.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conn = append(c.conn, conn)
			c.mu.Unlock()
			wg.Go(func() { c.read(conn) })
		}
	})
	return c
}

// read reads "LEN SP MSG" frames until the connection ends.
func (c *tcpCollector) read(conn net.Conn) {
	r := bufio.NewReader(conn)
	for {
		lenText, err := r.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
		if err != nil || n <= 0 {
			c.t.Errorf("bad frame length %q", lenText)
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			c.t.Errorf("frame of %d bytes cut short: %v", n, err)
			return
		}
		m := parseSyslog(c.t, string(msg))
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	}
}

func (c *tcpCollector) messages() []syslogMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

func (c *tcpCollector) hasAll(ids []string) bool {
	seen := map[string]bool{}
	for _, m := range c.messages() {
		seen[m.ext["notification"]] = true
	}
	for _, id := range ids {
		if !seen[id] {
			return false
		}
	}
	return true
}

func (c *tcpCollector) checkOnce(t *testing.T, ids []string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range c.messages() {
		seen[m.ext["notification"]]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("syslog: notification %s arrived %d times", id, seen[id])
		}
	}
}

// dropConnections closes the collector's side of every connection.
func (c *tcpCollector) dropConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conn {
		conn.Close()
	}
}

func (c *tcpCollector) connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conn)
}

func TestSyslogTCP(t *testing.T) {
	t.Parallel()
	c := newTCPCollector(t, nil)
	s := &Syslog{Network: "tcp", Addr: c.addr, AppName: "reckon-test", Hostname: "scanner1", Facility: 20}
	defer s.Close()
	ns := append(notifications("tcp", 5), nasty())
	if err := s.Send(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "six frames", func() bool { return len(c.messages()) == 6 })
	for i, m := range c.messages() {
		if want := 20*8 + syslogSeverity(ns[i].Severity); m.pri != want {
			t.Errorf("%s: PRI %d, want %d", ns[i].Severity, m.pri, want)
		}
		if m.app != "reckon-test" || m.host != "scanner1" || m.ext["notification"] != ns[i].ID {
			t.Errorf("message %d: %q", i, m.raw)
		}
		if ns[i].ID == "nasty-1" {
			checkNasty(t, m)
		}
	}

	// The collector drops the connection: the next Send reconnects.
	c.dropConnections()
	more := notifications("tcp-again", 2)
	if err := s.Send(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "frames after reconnecting", func() bool { return c.hasAll(idsOf(more)) })
	if n := c.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	c.checkOnce(t, append(idsOf(ns), idsOf(more)...))

	// Nobody listening: a retryable error.
	down := &Syslog{Network: "tcp", Addr: reservePort(t)}
	if err := down.Send(context.Background(), ns[:1]); !errors.Is(err, ErrRetryable) {
		t.Errorf("collector down: %v, want retryable", err)
	}
	if err := (&Syslog{Network: "sctp", Addr: c.addr}).Send(context.Background(), ns[:1]); !errors.Is(err, ErrPermanent) {
		t.Errorf("unknown network: %v, want permanent", err)
	}
}

func TestSyslogTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	c := newTCPCollector(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	s := &Syslog{Network: "tls", Addr: c.addr, TLSConfig: &tls.Config{RootCAs: pool}}
	defer s.Close()
	ns := append(notifications("tls", 2), nasty())
	if err := s.Send(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three frames over TLS", func() bool { return c.hasAll(idsOf(ns)) })
	c.checkOnce(t, idsOf(ns))

	// An untrusted certificate is retried (it may be fixed), never sent in clear.
	bad := &Syslog{Network: "tls", Addr: c.addr}
	if err := bad.Send(context.Background(), ns[:1]); !errors.Is(err, ErrRetryable) {
		t.Errorf("untrusted certificate: %v", err)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestCEFEscaping(t *testing.T) {
	n := Notification{Kind: "check_failed", Severity: "bogus", Title: "a\nb|c",
		Detail: map[string]any{"check_id": "ssh|weak", "note": "x=y\r\nz", "n": 3, "list": []string{"a", "b"}}}
	got := formatCEF(&n, `1|2\3`)
	if !strings.HasPrefix(got, `CEF:0|reckon|reckon|1\|2\\3|check_failed:ssh\|weak|a b\|c|5|`) {
		t.Errorf("header: %q", got)
	}
	if !strings.HasSuffix(got, `msg=check_id\=ssh|weak; list\=["a","b"]; n\=3; note\=x\=y\r\nz`) {
		t.Errorf("extensions: %q", got)
	}
	if got := truncate("héllo", 2); got != "h" {
		t.Errorf("truncate split a rune: %q", got)
	}
}
