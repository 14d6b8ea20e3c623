package ship

import (
	"context"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// addSealed adds the observations from..to-1 and seals them as one segment.
func addSealed(t *testing.T, s *Spooler, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Add(obs(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Seal()
}

func macs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, mac(i))
	}
	return out
}

func TestRetryAfterHonoured(t *testing.T) {
	srv := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, n int, _ request) int {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			return problem(w, http.StatusTooManyRequests, "slow down")
		}
		return http.StatusAccepted
	})
	s, _ := open(t, Options{Server: srv.URL})
	addSealed(t, s, 0, 3)
	run(t, s)
	waitFor(t, "the batch shipped", 10*time.Second, func() bool { return s.Stats().Shipped == 3 })
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[0].batchID != reqs[1].batchID {
		t.Fatalf("requests: %+v", reqs)
	}
	// The backoff alone would retry after 10 ms.
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 950*time.Millisecond {
		t.Fatalf("retried %s after a 429 with Retry-After: 1", gap)
	}
	if st := s.Stats(); !strings.Contains(st.LastError, "429") || st.LastSuccess.Before(st.LastErrorTime) {
		t.Fatalf("stats: %+v", st)
	}
}

// 5xx and network failures are retried with backoff, the batch id the same
// every time, until the server takes the batch.
func TestTransientFailuresRetried(t *testing.T) {
	var srv *fakeServer
	srv = newFakeServer(t, func(w http.ResponseWriter, r *http.Request, n int, b request) int {
		switch n {
		case 0:
			return problem(w, http.StatusServiceUnavailable, "the store cannot take the batch now")
		case 1:
			return problem(w, http.StatusBadGateway, "proxy")
		case 2:
			// The connection is reset with no answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return 0
		case 3:
			// Taken, but the answer comes after the client gave up: the
			// resend must be the same batch (the server says duplicate).
			srv.accept(b)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return 0
		}
		return http.StatusAccepted
	})
	s, _ := open(t, Options{Server: srv.URL, RequestTimeout: 300 * time.Millisecond})
	addSealed(t, s, 0, 4)
	addSealed(t, s, 4, 6)
	run(t, s)
	waitFor(t, "both batches shipped", 10*time.Second, func() bool { st := s.Stats(); return st.Shipped == 6 && st.Pending == 0 })
	reqs := srv.requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 4 failures and 2 successes: %+v", len(reqs), reqs)
	}
	for _, r := range reqs[1:5] {
		if r.batchID != reqs[0].batchID {
			t.Fatalf("a retry carried batch id %s, want %s", r.batchID, reqs[0].batchID)
		}
	}
	if reqs[5].batchID == reqs[0].batchID || !slices.Equal(reqs[5].macs, macs(4, 6)) {
		t.Fatalf("the second segment: %+v", reqs[5])
	}
	st := s.Stats()
	if st.BatchesShipped != 2 || st.Duplicates != 1 || st.Pending != 0 || st.LastError == "" {
		t.Fatalf("stats: %+v", st)
	}
	if got := srv.acceptedMACs(); !slices.Equal(got, macs(0, 6)) {
		t.Fatalf("server took %v", got)
	}
}

// A batch over the server's limit is halved until it fits; the halves have
// ids derived from the segment's, so after a restart the same halves carry
// the same ids and the server takes each once.
func TestTooLargeSplitsStably(t *testing.T) {
	dir := t.TempDir()
	var down, tripped atomic.Bool
	respond := func(w http.ResponseWriter, _ *http.Request, _ int, b request) int {
		if len(b.macs) > 3 {
			return problem(w, http.StatusRequestEntityTooLarge, "send smaller batches")
		}
		if down.Load() {
			return problem(w, http.StatusServiceUnavailable, "down")
		}
		if strings.HasSuffix(b.batchID, ".0.0") && !tripped.Swap(true) {
			down.Store(true) // the first piece in, then an outage
		}
		return http.StatusAccepted
	}
	srv := newFakeServer(t, respond)
	s, _ := open(t, Options{Dir: dir, Server: srv.URL, BatchSize: 10})
	addSealed(t, s, 0, 10)
	id := strings.TrimSuffix(files(t, dir, sealedExt)[0], sealedExt)
	stop := run(t, s)
	waitFor(t, "the outage", 5*time.Second, func() bool { return strings.Contains(s.Stats().LastError, "503") })
	stop()
	s.Close()
	if st := s.Stats(); st.Shipped != 2 {
		t.Fatalf("before the restart: %+v", st)
	}

	firstRun := len(srv.requests())
	down.Store(false)
	s, _ = open(t, Options{Dir: dir, Server: srv.URL, BatchSize: 10})
	run(t, s)
	waitFor(t, "the rest shipped", 5*time.Second, func() bool { return s.Stats().Pending == 0 })
	var ids []string
	for _, r := range srv.requests() {
		ids = append(ids, strings.TrimPrefix(r.batchID, id))
	}
	// The first run: halves until the pieces fit, the first piece in, then
	// .0.1 tried until the stop (the last flush tries once more).
	first := ids[:firstRun]
	if !slices.Equal(first[:4], []string{"", ".0", ".0.0", ".0.1"}) || slices.ContainsFunc(first[4:], func(id string) bool { return id != ".0.1" }) {
		t.Fatalf("first run sent %q", first)
	}
	// After the restart the same halves, the same ids: .0.0 is a duplicate.
	if want := []string{"", ".0", ".0.0", ".0.1", ".1", ".1.0", ".1.1"}; !slices.Equal(ids[firstRun:], want) {
		t.Fatalf("after the restart sent %q, want %q", ids[firstRun:], want)
	}
	if got := srv.acceptedMACs(); !slices.Equal(got, macs(0, 10)) {
		t.Fatalf("server took %v, want each observation once", got)
	}
	if st := s.Stats(); st.Shipped != 10 || st.Duplicates != 1 || st.BatchesShipped != 4 {
		t.Fatalf("after the restart: %+v", st)
	}
}

// A batch the server refuses as invalid goes to rejected/ with the answer,
// and the queue moves on.
func TestInvalidBatchRejected(t *testing.T) {
	srv := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, _ int, b request) int {
		if slices.Contains(b.macs, mac(1)) {
			return problem(w, http.StatusBadRequest, "observations[1].mac: bad")
		}
		return http.StatusAccepted
	})
	s, _ := open(t, Options{Server: srv.URL})
	addSealed(t, s, 0, 3)
	poison := strings.TrimSuffix(files(t, s.opts.Dir, sealedExt)[0], sealedExt)
	addSealed(t, s, 3, 5)
	run(t, s)
	waitFor(t, "the good batch shipped", 5*time.Second, func() bool { st := s.Stats(); return st.Shipped == 2 && st.Pending == 0 })
	st := s.Stats()
	if st.Rejected != 3 || st.Pending != 0 || !strings.Contains(st.LastError, "observations[1].mac") {
		t.Fatalf("stats: %+v", st)
	}
	if got := segmentMACs(t, join(s.opts.Dir, rejectDir, poison+sealedExt)); !slices.Equal(got, macs(0, 3)) {
		t.Fatalf("rejected/ holds %v", got)
	}
	answer, err := os.ReadFile(join(s.opts.Dir, rejectDir, poison+problemExt))
	if err != nil || !strings.Contains(string(answer), "observations[1].mac") {
		t.Fatalf("the server's answer is not kept: %q %v", answer, err)
	}
}

// A rejected token keeps the data and is retried (slowly) until it works.
func TestRejectedTokenKeepsData(t *testing.T) {
	var ok atomic.Bool
	srv := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ request) int {
		if !ok.Load() {
			return problem(w, http.StatusUnauthorized, "the token is unknown or revoked")
		}
		return http.StatusAccepted
	})
	s, lb := open(t, Options{Server: srv.URL})
	addSealed(t, s, 0, 2)
	run(t, s)
	waitFor(t, "three attempts", 5*time.Second, func() bool { return len(srv.requests()) >= 3 })
	st := s.Stats()
	if st.Shipped != 0 || st.Pending != 1 || !strings.Contains(st.LastError, "token rejected") {
		t.Fatalf("while the token is refused: %+v", st)
	}
	if !strings.Contains(lb.String(), "level=ERROR") || !strings.Contains(lb.String(), "RECKON_TOKEN") {
		t.Fatalf("no clear error in the log:\n%s", lb.String())
	}
	if strings.Contains(lb.String(), "rk_test") {
		t.Fatal("the token is in the log")
	}
	ok.Store(true)
	waitFor(t, "the batch shipped", 5*time.Second, func() bool { return s.Stats().Shipped == 2 })
}

// When Run's context ends it seals what was added and sends it, within the
// grace period; what cannot be sent stays on disk for the next start.
func TestFinalFlushOnCancel(t *testing.T) {
	t.Run("server up", func(t *testing.T) {
		srv := newFakeServer(t, nil)
		s, _ := open(t, Options{Server: srv.URL, FlushInterval: time.Hour})
		stop := run(t, s)
		for i := range 5 {
			s.Add(obs(i))
		}
		stop()
		if st := s.Stats(); st.Shipped != 5 || st.Pending != 0 || st.Bytes != 0 {
			t.Fatalf("after the last flush: %+v", st)
		}
	})
	t.Run("server down", func(t *testing.T) {
		srv := newFakeServer(t, nil)
		srv.Close() // nothing listens: connection refused
		s, _ := open(t, Options{Server: srv.URL, FlushInterval: time.Hour, Grace: 300 * time.Millisecond})
		stop := run(t, s)
		for i := range 5 {
			s.Add(obs(i))
		}
		start := time.Now()
		stop()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Run took %s to stop with a 300 ms grace", d)
		}
		dir := s.opts.Dir
		s.Close()
		sealed := files(t, dir, sealedExt)
		if len(sealed) != 1 || lines(t, join(dir, sealed[0])) != 5 {
			t.Fatalf("left on disk: %v", files(t, dir, ""))
		}
		s, _ = open(t, Options{Dir: dir})
		if st := s.Stats(); st.Pending != 1 {
			t.Fatalf("on the next start: %+v", st)
		}
	})
}

func TestRunTwiceAndAfterClose(t *testing.T) {
	srv := newFakeServer(t, nil)
	s, _ := open(t, Options{Server: srv.URL})
	run(t, s)
	waitFor(t, "Run to start", time.Second, s.running.Load)
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second Run: %v", err)
	}
	s.Close()
	if err := s.Run(context.Background()); err != ErrClosed {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	h := http.Header{}
	for v, want := range map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "soon": 0} {
		h.Set("Retry-After", v)
		if got := retryAfter(h); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if got := retryAfter(h); got < 59*time.Minute || got > time.Hour {
		t.Errorf("Retry-After as a date: %s", got)
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	s := &Spooler{retry: retryPolicy{base: 500 * time.Millisecond, max: 30 * time.Second, slow: time.Minute, maxAfter: 10 * time.Minute}}
	for attempt, want := range map[int]time.Duration{1: 500 * time.Millisecond, 3: 2 * time.Second, 7: 30 * time.Second, 100: 30 * time.Second} {
		for range 20 {
			if d := s.delay(&failure{}, attempt); d < want/2 || d > want {
				t.Fatalf("attempt %d: %s, want in [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
	if d := s.delay(&failure{slow: true}, 1); d < 30*time.Second {
		t.Fatalf("a rejected token retried after %s", d)
	}
	if d := s.delay(&failure{after: time.Hour}, 1); d != 10*time.Minute {
		t.Fatalf("Retry-After of an hour: %s", d)
	}
}

// A wrong server URL (here: one that redirects) keeps the data and says
// what is wrong.
func TestUnexpectedAnswerKeepsData(t *testing.T) {
	redirect := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ request) int {
		w.Header().Set("Location", "https://reckon.example/")
		w.WriteHeader(http.StatusMovedPermanently)
		return http.StatusMovedPermanently
	})
	s, lb := open(t, Options{Server: redirect.URL})
	addSealed(t, s, 0, 1)
	run(t, s)
	waitFor(t, "two attempts", 5*time.Second, func() bool { return len(redirect.requests()) >= 2 })
	if st := s.Stats(); st.Pending != 1 || !strings.Contains(st.LastError, "redirected to https://reckon.example/") {
		t.Fatalf("stats: %+v", st)
	}
	if !strings.Contains(lb.String(), "level=ERROR") {
		t.Fatalf("no error logged:\n%s", lb.String())
	}
}
