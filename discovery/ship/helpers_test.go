package ship

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// obs is the i-th made-up device: a universally administered unicast MAC
// (3c:fd:...) and an IP in 10/8, both derived from i.
func obs(i int) discovery.Observation {
	return discovery.Observation{
		Source: "passive:arp",
		Sensor: "test",
		Time:   time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		MAC:    mac(i),
		IP:     fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff),
	}
}

func mac(i int) string {
	return fmt.Sprintf("3c:fd:%02x:%02x:%02x:%02x", i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
}

// logBuf collects a spooler's log for assertions and shows it on failure.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// open opens a spooler with test defaults (fast retries, a server nobody
// listens on) that opts override; it is closed at the end of the test.
func open(t *testing.T, opts Options) (*Spooler, *logBuf) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Server == "" {
		opts.Server = "http://127.0.0.1:1"
	}
	if opts.Token == "" {
		opts.Token = "rk_test"
	}
	if opts.Sensor == "" {
		opts.Sensor = "test"
	}
	lb := &logBuf{}
	opts.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.retry = retryPolicy{base: 10 * time.Millisecond, max: 50 * time.Millisecond, slow: 30 * time.Millisecond, maxAfter: 5 * time.Second}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("spooler log:\n%s", lb.String())
		}
	})
	return s, lb
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// files lists the names in dir with the suffix, sorted.
func files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// segmentMACs reads the MACs of a segment file's lines.
func segmentMACs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		var o discovery.Observation
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, o.MAC)
	}
	return out
}

// request is one POST the fake server took.
type request struct {
	at      time.Time
	batchID string
	macs    []string
	status  int
}

// fakeServer stands in for the central server where a fault is needed that
// the real one cannot be made to produce. respond picks the answer to the
// n-th request (from 0); a 2xx records the batch, once per batch id.
type fakeServer struct {
	*httptest.Server
	t        *testing.T
	mu       sync.Mutex
	reqs     []request
	accepted map[string][]string
	respond  func(w http.ResponseWriter, r *http.Request, n int, b request) (status int)
}

func newFakeServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int, b request) int) *fakeServer {
	f := &fakeServer{t: t, accepted: map[string][]string{}, respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/observations" || r.Method != http.MethodPost {
		http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer rk_test" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad headers", http.StatusTeapot)
		return
	}
	var body struct {
		BatchID      string                  `json:"batch_id"`
		Observations []discovery.Observation `json:"observations"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "bad body: "+err.Error(), http.StatusTeapot)
		return
	}
	b := request{at: time.Now(), batchID: body.BatchID}
	for _, o := range body.Observations {
		b.macs = append(b.macs, o.MAC)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, b)
	f.mu.Unlock()
	status := http.StatusAccepted
	if f.respond != nil {
		status = f.respond(w, r, n, b)
	}
	f.mu.Lock()
	f.reqs[n].status = status
	f.mu.Unlock()
	if status >= 200 && status < 300 {
		dup := f.accept(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"batch_id":%q,"accepted":%d,"duplicate":%v,"pending":false}`+"\n", b.batchID, len(b.macs), dup)
	}
}

// accept records a batch, saying whether its id was taken before.
func (f *fakeServer) accept(b request) (dup bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.accepted[b.batchID]; ok {
		return true
	}
	f.accepted[b.batchID] = b.macs
	return false
}

func (f *fakeServer) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// acceptedMACs is every MAC the server took, in batch-id order.
func (f *fakeServer) acceptedMACs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.accepted))
	for id := range f.accepted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		out = append(out, f.accepted[id]...)
	}
	return out
}

func problem(w http.ResponseWriter, status int, detail string) int {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"urn:reckon:problem:x","title":%q,"status":%d,"detail":%q}`+"\n", http.StatusText(status), status, detail)
	return status
}

// run runs s.Run until the test ends, failing it if Run errs.
func run(t *testing.T, s *Spooler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return 30 s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func lines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte{'\n'})
}

func join(dir string, name ...string) string { return filepath.Join(append([]string{dir}, name...)...) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
