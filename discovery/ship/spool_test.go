package ship

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSealByCountThenByAge(t *testing.T) {
	s, _ := open(t, Options{BatchSize: 3, FlushInterval: 150 * time.Millisecond})
	start := time.Now()
	for i := range 7 {
		if err := s.Add(obs(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Two full segments are sealed at once, the seventh observation waits
	// for the flush interval.
	waitFor(t, "two sealed segments", 5*time.Second, func() bool { return s.Stats().Pending == 2 })
	if len(files(t, s.opts.Dir, openExt)) != 1 {
		t.Fatalf("want the third segment open: %v", files(t, s.opts.Dir, ""))
	}
	waitFor(t, "the partial segment sealed by age", 5*time.Second, func() bool { return s.Stats().Pending == 3 })
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("the partial segment was sealed after %s, before the flush interval", d)
	}
	sealed := files(t, s.opts.Dir, sealedExt)
	if len(sealed) != 3 || len(files(t, s.opts.Dir, openExt)) != 0 {
		t.Fatalf("files: %v", files(t, s.opts.Dir, ""))
	}
	// Oldest first by name, and the lines in the order added.
	var got []string
	for _, name := range sealed {
		if !strings.HasPrefix(name, "test-") {
			t.Fatalf("segment %s does not carry the sensor name", name)
		}
		got = append(got, segmentMACs(t, join(s.opts.Dir, name))...)
	}
	for i := range 7 {
		if got[i] != mac(i) {
			t.Fatalf("line %d is %s, want %s (all: %v)", i, got[i], mac(i), got)
		}
	}
	st := s.Stats()
	if st.Spooled != 7 || st.Bytes <= 0 || st.Shipped != 0 {
		t.Fatalf("stats: %+v", st)
	}
	s.qmu.Lock()
	counts := []int64{s.queue[0].lines, s.queue[1].lines, s.queue[2].lines}
	s.qmu.Unlock()
	if !slices.Equal(counts, []int64{3, 3, 1}) {
		t.Fatalf("segment line counts %v", counts)
	}
}

func TestConcurrentAdd(t *testing.T) {
	s, _ := open(t, Options{BatchSize: 100, FlushInterval: 20 * time.Millisecond})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Add(obs(w*each + i)); err != nil {
					t.Error(err)
					return
				}
				_ = s.Stats()
			}
		})
	}
	wg.Wait()
	dir := s.opts.Dir
	s.Close()
	if err := s.Add(obs(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	seen := map[string]int{}
	for _, name := range files(t, dir, sealedExt) {
		for _, m := range segmentMACs(t, join(dir, name)) {
			seen[m]++
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct observations on disk, want %d", len(seen), workers*each)
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("%s spooled %d times", m, n)
		}
	}
	if len(files(t, dir, openExt)) != 0 {
		t.Fatal("Close left an unsealed segment")
	}
}

// A crash leaves the segment being written unsealed, its last line maybe
// torn; the next Open seals the whole lines and ships them under the id the
// segment was opened with.
func TestRecoverTornSegment(t *testing.T) {
	dir := t.TempDir()
	id := "test-1763632800000000000-0000abcd"
	line := func(i int) string {
		return fmt.Sprintf(`{"source":"passive:arp","time":"2026-11-20T10:00:00Z","mac":%q}`+"\n", mac(i))
	}
	torn := line(0) + line(1) + `{"source":"passive:arp","ti`
	if err := os.WriteFile(join(dir, id+openExt), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	// A crash before the first write leaves an empty segment: removed.
	if err := os.WriteFile(join(dir, "test-1763632800000000001-00000001"+openExt), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer(t, nil)
	s, _ := open(t, Options{Dir: dir, Server: srv.URL})
	st := s.Stats()
	if st.Corrupt != 1 || st.Pending != 1 {
		t.Fatalf("after recovery: %+v", st)
	}
	if got := files(t, dir, ""); !slices.Equal(got, []string{"lock", id + sealedExt}) {
		t.Fatalf("files after recovery: %v", got)
	}
	if n := lines(t, join(dir, id+sealedExt)); n != 2 {
		t.Fatalf("recovered segment has %d lines, want 2", n)
	}
	run(t, s)
	waitFor(t, "the recovered segment shipped", 5*time.Second, func() bool { return s.Stats().Shipped == 2 })
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].batchID != id || !slices.Equal(reqs[0].macs, []string{mac(0), mac(1)}) {
		t.Fatalf("requests: %+v", reqs)
	}
	waitFor(t, "the shipped segment deleted", 5*time.Second, func() bool { return len(files(t, dir, sealedExt)) == 0 })
}

// A batch id is chosen once, with the segment: sending it again after a
// restart carries the same id, so the server takes it once.
func TestBatchIDStableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, Options{Dir: dir})
	for i := range 5 {
		if err := s.Add(obs(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	sealed := files(t, dir, sealedExt)
	if len(sealed) != 1 {
		t.Fatalf("after Close: %v", files(t, dir, ""))
	}
	id := strings.TrimSuffix(sealed[0], sealedExt)

	// The server answers 503: the batch stays.
	down := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, _ int, _ request) int {
		return problem(w, http.StatusServiceUnavailable, "the store cannot take the batch now")
	})
	s, _ = open(t, Options{Dir: dir, Server: down.URL})
	stop := run(t, s)
	waitFor(t, "two attempts", 5*time.Second, func() bool { return len(down.requests()) >= 2 })
	stop()
	s.Close()

	up := newFakeServer(t, nil)
	s, _ = open(t, Options{Dir: dir, Server: up.URL})
	run(t, s)
	waitFor(t, "the batch shipped", 5*time.Second, func() bool { return s.Stats().Shipped == 5 })
	for _, r := range append(down.requests(), up.requests()...) {
		if r.batchID != id {
			t.Fatalf("a request carried batch id %q, want %q every time", r.batchID, id)
		}
	}
}

func TestByteBoundDropsOldest(t *testing.T) {
	line := int64(len(mustJSON(t, obs(199))) + 1) // the longest line
	const perSeg = 4
	maxBytes := 5 * perSeg * line // room for five segments
	s, lb := open(t, Options{BatchSize: perSeg, MaxBytes: maxBytes, FlushInterval: time.Hour})
	const n = 200
	for i := range n {
		if err := s.Add(obs(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Seal()
	st := s.Stats()
	if st.Bytes > maxBytes || st.Pending < 4 {
		t.Fatalf("spool %d bytes in %d segments, bound %d", st.Bytes, st.Pending, maxBytes)
	}
	// What is left is the newest observations, in one run up to the last;
	// everything else is counted as dropped.
	var kept []string
	for _, name := range files(t, s.opts.Dir, sealedExt) {
		kept = append(kept, segmentMACs(t, join(s.opts.Dir, name))...)
	}
	if int64(len(kept))+st.Dropped != n {
		t.Fatalf("%d kept + %d dropped != %d added", len(kept), st.Dropped, n)
	}
	first := n - len(kept)
	for i, m := range kept {
		if m != mac(first+i) {
			t.Fatalf("kept[%d] = %s, want %s: the oldest must go first", i, m, mac(first+i))
		}
	}
	if !strings.Contains(lb.String(), "spool full") || !strings.Contains(lb.String(), "observations_lost=") {
		t.Fatalf("no loud warning about the drop:\n%s", lb.String())
	}
	// A smaller bound on the next start applies at once.
	dir := s.opts.Dir
	s.Close()
	s, _ = open(t, Options{Dir: dir, MaxBytes: 2 * perSeg * line})
	st = s.Stats()
	left := 0
	for _, name := range files(t, dir, sealedExt) {
		left += lines(t, join(dir, name))
	}
	if st.Bytes > 2*perSeg*line || st.Pending != 2 || int64(left)+st.Dropped != int64(len(kept)) {
		t.Fatalf("after reopening with a smaller bound: %d lines left, %+v", left, st)
	}
}

// A sealed segment with a damaged line ships its good lines and is kept
// aside as .bad; the queue goes on.
func TestCorruptSegmentQuarantined(t *testing.T) {
	dir := t.TempDir()
	bad := "test-1763632800000000000-00000001"
	next := "test-1763632800000000001-00000002"
	good := func(i int) string { return string(mustJSON(t, obs(i))) + "\n" }
	content := good(0) + "\x00\x00\x00garbage\n" + good(1) + `{"truncated":` + "\n"
	if err := os.WriteFile(join(dir, bad+sealedExt), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(join(dir, next+sealedExt), []byte(good(2)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A segment nothing can read at all: a link to a directory.
	unreadable := "test-1763632800000000002-00000003"
	if err := os.Symlink(t.TempDir(), join(dir, unreadable+sealedExt)); err != nil {
		t.Fatal(err)
	}
	srv := newFakeServer(t, nil)
	s, _ := open(t, Options{Dir: dir, Server: srv.URL})
	run(t, s)
	waitFor(t, "both segments shipped", 5*time.Second, func() bool { return s.Stats().Shipped == 3 })
	waitFor(t, "the spool emptied", 5*time.Second, func() bool { return s.Stats().Pending == 0 })
	if got := srv.acceptedMACs(); !slices.Equal(got, []string{mac(0), mac(1), mac(2)}) {
		t.Fatalf("server took %v", got)
	}
	if st := s.Stats(); st.Corrupt != 2 {
		t.Fatalf("corrupt lines %d, want 2", st.Corrupt)
	}
	if _, err := os.Stat(join(dir, rejectDir, bad+badExt)); err != nil {
		t.Fatalf("the damaged segment is not quarantined: %v", err)
	}
	if _, err := os.Lstat(join(dir, rejectDir, unreadable+badExt)); err != nil {
		t.Fatalf("the unreadable segment is not quarantined: %v", err)
	}
	if got := files(t, dir, sealedExt); len(got) != 0 {
		t.Fatalf("left in the queue: %v", got)
	}
}

func TestOpenRefusesASpoolInUse(t *testing.T) {
	s, _ := open(t, Options{})
	_, err := Open(Options{Dir: s.opts.Dir, Server: "http://127.0.0.1:1", Token: "x"})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), s.opts.Dir) {
		t.Fatalf("second Open: %v", err)
	}
	s.Close()
	s.Close() // twice is fine
	s2, err := Open(Options{Dir: s.opts.Dir, Server: "http://127.0.0.1:1", Token: "x"})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Server: "http://x", Token: "t"}, "directory"},
		{Options{Dir: t.TempDir(), Token: "t"}, "server URL"},
		{Options{Dir: t.TempDir(), Server: "reckon:8080", Token: "t"}, "reckon:8080"},
		{Options{Dir: t.TempDir(), Server: "http://x"}, "token"},
		{Options{Dir: t.TempDir(), Server: "http://x", Token: "t", BatchSize: -1}, "negative"},
	} {
		if _, err := Open(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v): %v, want an error naming %q", tc.opts, err, tc.want)
		}
	}
	if u, _ := observationsURL("https://reckon.example/base/"); u != "https://reckon.example/base/api/v1/observations" {
		t.Errorf("endpoint under a base path: %s", u)
	}
	if got := sanitize("sensor-1 / eth1"); got != "sensor_1___eth1" {
		t.Errorf("sanitize: %q", got)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("  rk_secret\n"), 0o600)
	t.Setenv("RECKON_TOKEN", "rk_from_env")
	if tok, err := LoadToken(file); err != nil || tok != "rk_secret" {
		t.Fatalf("from a file: %q %v", tok, err)
	}
	if tok, err := LoadToken(""); err != nil || tok != "rk_from_env" {
		t.Fatalf("from the environment: %q %v", tok, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n \n"), 0o600)
	two := filepath.Join(dir, "two")
	os.WriteFile(two, []byte("rk_a\nrk_b\n"), 0o600)
	for _, f := range []string{empty, two, filepath.Join(dir, "missing")} {
		if _, err := LoadToken(f); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("LoadToken(%s): %v, want an error naming the file", f, err)
		}
	}
	t.Setenv("RECKON_TOKEN", " ")
	if _, err := LoadToken(""); err == nil || !strings.Contains(err.Error(), "RECKON_TOKEN") {
		t.Errorf("no token anywhere: %v", err)
	}
}
