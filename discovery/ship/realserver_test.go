package ship

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/reckon-dev/reckon/discovery"
)

// The real reckon serve, run as an operator would (helpers after
// cmd/reckon/main_test.go): built once, on SQLite, killed and restarted on
// the same data directory.

// buildReckon builds cmd/reckon into a temporary folder.
func buildReckon(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go is not on PATH: cannot build reckon")
		}
		t.Skip("go is not on PATH: cannot build reckon")
	}
	bin := filepath.Join(t.TempDir(), "reckon")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/reckon-dev/reckon/cmd/reckon").CombinedOutput()
	if err != nil {
		t.Fatalf("building reckon: %v\n%s", err, out)
	}
	return bin
}

type realServer struct {
	t       *testing.T
	bin     string
	config  string
	dataDir string
	url     string

	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// newRealServer writes a config for a data dir and a free port, and starts
// reckon serve on it. The process is killed when the test ends.
func newRealServer(t *testing.T, bin string, extraConfig string) *realServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	s := &realServer{t: t, bin: bin, dataDir: filepath.Join(dir, "data"), url: "http://" + addr, config: filepath.Join(dir, "reckon.yaml")}
	cfg := fmt.Sprintf("data_dir: %s\nlisten: %s\nqueue:\n  poll_interval: 50ms\n%s", s.dataDir, addr, extraConfig)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("reckon serve log:\n%s", s.logs())
		}
	})
	s.start()
	return s
}

// start runs reckon serve and waits until /readyz answers 200.
func (s *realServer) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.bin, "serve", "--config", s.config)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RECKON_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); pw.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := s.get("/readyz", ""); code == http.StatusOK {
			return
		}
		select {
		case <-done:
			t.Fatalf("reckon serve exited:\n%s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("reckon serve not ready in 30 s:\n%s", s.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL: no graceful shutdown, as in a crash.
func (s *realServer) kill() { s.signal(syscall.SIGKILL) }

// stop ends the server with SIGTERM and waits for it.
func (s *realServer) stop() { s.signal(syscall.SIGTERM) }

func (s *realServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("reckon serve did not exit within 60 s of %v", sig)
	}
}

func (s *realServer) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *realServer) get(path, token string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// adminToken is the token serve writes to <data dir>/admin.token on its
// first start.
func (s *realServer) adminToken() string {
	raw, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		s.t.Fatalf("no admin.token: %v", err)
	}
	return strings.TrimSpace(string(raw))
}

// assetMACs pages through GET /api/v1/assets and returns, for every asset
// holding a MAC with the prefix, its MACs.
func (s *realServer) assetMACs(token, prefix string) [][]string {
	t := s.t
	t.Helper()
	var out [][]string
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, body := s.get("/api/v1/assets?"+q.Encode(), token)
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/assets: %d %s", code, body)
		}
		var page struct {
			Items []struct {
				MACs []string `json:"macs"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Items {
			if slices.ContainsFunc(a.MACs, func(m string) bool { return strings.HasPrefix(m, prefix) }) {
				out = append(out, a.MACs)
			}
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// The acceptance test: observations added at a steady rate while
// the central server is SIGKILLed and restarted all arrive, exactly once.
func TestShipThroughServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs reckon serve")
	}
	bin := buildReckon(t)
	// A server batch limit under the sensor's batch size: full segments are
	// refused with 413 and sent in halves, through the outage too.
	srv := newRealServer(t, bin, "inventory:\n  max_batch: 150\n")
	token := srv.adminToken()

	lb := &logBuf{}
	dir := t.TempDir()
	s, err := Open(Options{
		Dir: dir, Server: srv.url, Token: token, Sensor: "outage",
		BatchSize: 200, FlushInterval: 250 * time.Millisecond, RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(lb, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.retry = retryPolicy{base: 50 * time.Millisecond, max: 500 * time.Millisecond, slow: time.Second, maxAfter: 5 * time.Second}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("spooler log:\n%s", lb.String())
		}
	})
	stopRun := run(t, s)

	// About 1000 observations a second, 10 every 10 ms, for 5 s.
	const n = 5000
	added := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := range n {
			if i%10 == 0 {
				<-tick.C
			}
			if err := s.Add(obs(i)); err != nil {
				added <- err
				return
			}
		}
		added <- nil
	}()

	waitFor(t, "a third of the observations added", 30*time.Second, func() bool { return s.Stats().Spooled >= n/3 })
	shippedBefore := s.Stats().Shipped
	if shippedBefore == 0 {
		t.Fatal("nothing shipped before the outage")
	}
	srv.kill()
	killedAt := time.Now()
	time.Sleep(2 * time.Second)
	st := s.Stats()
	if st.LastErrorTime.Before(killedAt) || st.Spooled <= n/3+500 {
		t.Fatalf("during the outage: %+v", st)
	}
	t.Logf("outage: %d observations shipped before, %d added meanwhile; last error %q", shippedBefore, st.Spooled-n/3, st.LastError)
	srv.start()

	if err := <-added; err != nil {
		t.Fatalf("Add: %v", err)
	}
	waitFor(t, "the spool to drain", 60*time.Second, func() bool {
		st := s.Stats()
		return st.Shipped == n && st.Pending == 0
	})
	st = s.Stats()
	if st.Spooled != n || st.Shipped != n || st.Dropped != 0 || st.Rejected != 0 || st.Corrupt != 0 || st.LastSuccess.Before(st.LastErrorTime) {
		t.Fatalf("after the drain: %+v", st)
	}
	if left := files(t, dir, sealedExt); len(left) != 0 || len(files(t, dir, openExt)) != 0 {
		t.Fatalf("segments left in the spool: %v", files(t, dir, ""))
	}
	stopRun()
	t.Logf("spooler: %d batches acknowledged, %d of them duplicates", st.BatchesShipped, st.Duplicates)

	// Every device is an asset, once, with its one MAC. The server writes
	// assets within its flush interval (202 pending): wait for them.
	var assets [][]string
	deadline := time.Now().Add(20 * time.Second)
	for {
		assets = srv.assetMACs(token, "3c:fd:")
		if len(assets) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, macs := range assets {
		if len(macs) != 1 {
			t.Fatalf("an asset holds MACs %v, want one", macs)
		}
		seen[macs[0]]++
	}
	if len(assets) != n || len(seen) != n {
		t.Fatalf("%d assets with %d distinct MACs, want %d", len(assets), len(seen), n)
	}
	for i := range n {
		if seen[mac(i)] != 1 {
			t.Fatalf("MAC %s is in %d assets", mac(i), seen[mac(i)])
		}
	}

	t.Run("rejected token keeps the data", func(t *testing.T) {
		dir := t.TempDir()
		bad, _ := open(t, Options{Dir: dir, Server: srv.url, Token: "rk_not_a_token", Sensor: "badtoken"})
		addSealed(t, bad, 100000, 100003)
		stop := run(t, bad)
		waitFor(t, "the token refused", 10*time.Second, func() bool {
			return strings.Contains(bad.Stats().LastError, "token rejected by the central server (401")
		})
		stop()
		bad.Close()
		if st := bad.Stats(); st.Shipped != 0 || st.Pending != 1 {
			t.Fatalf("with a bad token: %+v", st)
		}
		good, _ := open(t, Options{Dir: dir, Server: srv.url, Token: token, Sensor: "badtoken"})
		run(t, good)
		waitFor(t, "the kept batch shipped with a good token", 10*time.Second, func() bool { return good.Stats().Shipped == 3 })
	})

	// The answer lost after the server took the batch (a connection cut on
	// the way back): the resend carries the same batch id and the server
	// takes it once. Checked in the stored batches below.
	var lost Stats
	t.Run("answers lost", func(t *testing.T) {
		proxy := lossyProxy(t, srv.url, 3)
		l, _ := open(t, Options{Server: proxy.URL, Token: token, Sensor: "lost", BatchSize: 50})
		for i := range lostN {
			if err := l.Add(obs(300000 + i)); err != nil {
				t.Fatal(err)
			}
		}
		l.Seal()
		run(t, l)
		waitFor(t, "every batch acknowledged", 20*time.Second, func() bool { return l.Stats().Shipped == lostN && l.Stats().Pending == 0 })
		lost = l.Stats()
		if lost.Duplicates < 3 {
			t.Fatalf("%d duplicates: the lost answers were not resent: %+v", lost.Duplicates, lost)
		}
	})

	t.Run("invalid observation rejected", func(t *testing.T) {
		p, _ := open(t, Options{Server: srv.url, Token: token, Sensor: "poison"})
		broadcast := obs(200000)
		broadcast.MAC = "ff:ff:ff:ff:ff:ff"
		if err := p.Add(broadcast); err != nil {
			t.Fatal(err)
		}
		p.Seal()
		id := strings.TrimSuffix(files(t, p.opts.Dir, sealedExt)[0], sealedExt)
		addSealed(t, p, 200001, 200002)
		run(t, p)
		waitFor(t, "the valid batch shipped after the invalid one", 10*time.Second, func() bool { st := p.Stats(); return st.Shipped == 1 && st.Pending == 0 })
		if st := p.Stats(); st.Rejected != 1 || st.Pending != 0 {
			t.Fatalf("stats: %+v", st)
		}
		answer, err := os.ReadFile(join(p.opts.Dir, rejectDir, id+problemExt))
		if err != nil || !strings.Contains(string(answer), "observations[0].mac") {
			t.Fatalf("the server's problem is not kept next to the batch: %s %v", answer, err)
		}
	})

	// No double ingest, in the server's own records.
	srv.stop()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dataDir, "reckon.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	batches, halves := checkStored(t, db, "outage-", n, 0, st)
	if halves == 0 {
		t.Fatal("no batch was split after a 413: the test did not exercise it")
	}
	t.Logf("server: %d batches (%d halves after 413) holding %d observations", batches, halves, n)
	if lost.Shipped == lostN {
		checkStored(t, db, "lost-", lostN, 300000, lost)
	}
}

// lostN observations are shipped through a proxy losing answers.
const lostN = 600

// checkStored checks the server's raw batch log (observation_batches, one
// row per batch id it took) holds obs(first) to obs(first+n-1) from the
// batches whose id starts with prefix, each exactly once, in as many
// batches as the spooler had acknowledged. It returns how many
// batches, and how many of them were halves after a 413.
func checkStored(t *testing.T, db *sql.DB, prefix string, n, first int, st Stats) (batches, halves int) {
	t.Helper()
	rows, err := db.Query(`SELECT batch_id, count, body FROM observation_batches WHERE batch_id LIKE ?`, prefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string]int{}
	total := 0
	for rows.Next() {
		var id, body string
		var count int
		if err := rows.Scan(&id, &count, &body); err != nil {
			t.Fatal(err)
		}
		var got []discovery.Observation
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != count {
			t.Fatalf("batch %s: count %d, body of %d", id, count, len(got))
		}
		for _, o := range got {
			stored[o.MAC]++
		}
		batches++
		total += count
		if strings.HasSuffix(id, ".0") || strings.HasSuffix(id, ".1") {
			halves++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if total != n || len(stored) != n {
		t.Fatalf("%s*: the server stored %d observations (%d distinct MACs) in %d batches, want %d once each", prefix, total, len(stored), batches, n)
	}
	for i := first; i < first+n; i++ {
		if c := stored[mac(i)]; c != 1 {
			t.Fatalf("%s*: MAC %s stored %d times", prefix, mac(i), c)
		}
	}
	// Each batch id acknowledged once, a resend answered as a duplicate.
	if int64(batches) != st.BatchesShipped {
		t.Fatalf("%s*: the server stored %d batches; the spooler had %d acknowledged (%d of them as duplicates)",
			prefix, batches, st.BatchesShipped, st.Duplicates)
	}
	return batches, halves
}

// lossyProxy forwards requests to the real server and, for every nth answer
// that is a success, cuts the connection instead of passing it on: the
// batch is in, the sensor does not know.
func lossyProxy(t *testing.T, backend string, nth int64) *httptest.Server {
	var count atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cut := func() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.RequestURI(), r.Body)
		if err != nil {
			cut()
			return
		}
		req.Header = r.Header.Clone()
		req.ContentLength = r.ContentLength
		resp, err := client.Do(req)
		if err != nil {
			cut()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 == 2 && count.Add(1)%nth == 0 {
			cut()
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(p.Close)
	return p
}
