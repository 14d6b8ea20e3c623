package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// binary is reckon built once for the tests that run it as an operator would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reckon-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "reckon")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building reckon: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the environment without RECKON_ variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RECKON_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	code           int
	stdout, stderr string
}

func reckon(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// wantOneLineError checks a failure gives a non-zero exit and one clear line.
func wantOneLineError(t *testing.T, r result, has ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want a failure; stderr %q", r.stderr)
	}
	msg := strings.TrimSpace(r.stderr)
	if strings.Count(msg, "\n") > 0 || strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
		t.Fatalf("want one line on stderr, got:\n%s", r.stderr)
	}
	for _, h := range has {
		if !strings.Contains(msg, h) {
			t.Fatalf("error %q does not mention %q", msg, h)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	dataDir string
	mu      sync.Mutex
	log     bytes.Buffer
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// serve starts reckon serve and waits until /readyz answers 200.
func serve(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "data")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "RECKON_DATA_DIR="); ok {
			dataDir = v
		}
	}
	addr := freePort(t)
	s := &server{t: t, url: "http://" + addr, dataDir: dataDir, done: make(chan struct{})}
	s.cmd = exec.Command(binary, append([]string{"serve"}, args...)...)
	s.cmd.Env = append(env, "RECKON_DATA_DIR="+dataDir, "RECKON_LISTEN="+addr, "RECKON_QUEUE_POLL_INTERVAL=50ms")
	s.cmd.Dir = t.TempDir()
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); pw.Close(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := s.get("/readyz", ""); code == 200 {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited (%v):\n%s", s.waitErr, s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready in 30 s:\n%s", s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *server) get(path, token string) (int, string) {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (s *server) adminToken() string {
	s.t.Helper()
	path := filepath.Join(s.dataDir, "admin.token")
	fi, err := os.Stat(path)
	if err != nil {
		s.t.Fatalf("no admin.token: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		s.t.Fatalf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	return strings.TrimSpace(string(raw))
}

func (s *server) stop() error {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.waitErr
	case <-time.After(60 * time.Second):
		s.t.Fatalf("serve did not stop within 60 s of SIGTERM:\n%s", s.logs())
		return nil
	}
}

func TestServeSQLite(t *testing.T) {
	s := serve(t, cleanEnv())
	tok := s.adminToken()
	if strings.Contains(s.logs(), tok) {
		t.Fatal("the admin token is in the log")
	}
	if !strings.Contains(s.logs(), "admin.token") {
		t.Fatal("the log does not say where the admin token is")
	}
	if code, body := s.get("/api/v1/status", tok); code != 200 || !strings.Contains(body, `"store":"sqlite"`) {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, _ := s.get("/api/v1/status", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, body := s.get("/metrics", ""); code != 200 || !strings.Contains(body, "reckon_build_info") {
		t.Fatalf("metrics: %d", code)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve exit after SIGTERM: %v\n%s", err, s.logs())
	}
	if !strings.Contains(s.logs(), "reckon stopped") {
		t.Fatalf("no clean stop in the log:\n%s", s.logs())
	}
}

func TestTokenCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	env := cleanEnv("RECKON_DATA_DIR=" + dataDir)
	r := reckon(t, env, "token", "create", "--name", "sensor-1", "--role", "operator")
	if r.code != 0 {
		t.Fatalf("token create: %d %s", r.code, r.stderr)
	}
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "rk_") {
		t.Fatalf("token create printed %q", r.stdout)
	}
	// A token exists, so serve creates no admin token.
	s := serve(t, env)
	if _, err := os.Stat(filepath.Join(dataDir, "admin.token")); err == nil {
		t.Fatal("serve wrote admin.token although a token existed")
	}
	if code, body := s.get("/api/v1/status", secret); code != 200 || !strings.Contains(body, `"role":"operator"`) {
		t.Fatalf("status with the CLI token: %d %s", code, body)
	}
	r = reckon(t, env, "token", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "sensor-1") || strings.Contains(r.stdout, secret) {
		t.Fatalf("token list: %d %q", r.code, r.stdout)
	}
	if r = reckon(t, env, "token", "revoke", "sensor-1"); r.code != 0 {
		t.Fatalf("token revoke: %d %s", r.code, r.stderr)
	}
	// Revocation takes effect on the running server at once.
	if code, _ := s.get("/api/v1/status", secret); code != 401 {
		t.Fatalf("revoked token answered %d, want 401", code)
	}
	wantOneLineError(t, reckon(t, env, "token", "revoke", "sensor-1"), "no active token")
	r = reckon(t, env, "token", "create", "--name", "x", "--role", "root")
	if r.code != 2 || !strings.Contains(r.stderr, "root") {
		t.Fatalf("bad role: %d %s", r.code, r.stderr)
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nbogus_key: 1\n"), 0o600)
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATA_DIR="+dir), "serve", "--config", bad), "bogus_key", "line 2")

	wantOneLineError(t, reckon(t, cleanEnv(), "serve", "--config", filepath.Join(dir, "missing.yaml")), "missing.yaml", "no such file")

	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("listen: [\n"), 0o600)
	wantOneLineError(t, reckon(t, cleanEnv(), "serve", "--config", broken), "malformed YAML")

	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATABASE_URL=mysql://db/reckon"), "serve"), "database.url", "mysql")

	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATA_DIR="+dir, "RECKON_DATABASE_URL=postgres://reckon:s3cret@127.0.0.1:1/reckon?sslmode=disable"), "serve"),
		"PostgreSQL", "127.0.0.1:1")

	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o600)
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATA_DIR="+filepath.Join(plain, "data")), "serve"), "data")

	// The listen address in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATA_DIR="+dir, "RECKON_LISTEN="+ln.Addr().String()), "serve"), "listen", ln.Addr().String())

	if r := reckon(t, cleanEnv(), "frobnicate"); r.code != 2 {
		t.Fatalf("unknown command: exit %d", r.code)
	}
	if r := reckon(t, cleanEnv(), "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "reckon ") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	r := reckon(t, cleanEnv("RECKON_DATABASE_URL=postgres://reckon:hunter2@db.example:5432/reckon", "RECKON_LISTEN=127.0.0.1:9999"), "serve", "--print-config")
	if r.code != 0 {
		t.Fatalf("print-config: %d %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "hunter2") || !strings.Contains(r.stdout, "127.0.0.1:9999") || !strings.Contains(r.stdout, "db.example:5432") {
		t.Fatalf("print-config:\n%s", r.stdout)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	env := cleanEnv("RECKON_DATA_DIR=" + dataDir)
	if r := reckon(t, env, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	st, err := store.Open(context.Background(), store.Options{Kind: store.SQLite, Path: filepath.Join(dataDir, "reckon.db")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.DB.Exec(`INSERT INTO reckon_schema_migrations (version, name, applied_at) VALUES (999, 'future', ?)`, store.Now())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantOneLineError(t, reckon(t, env, "serve"), "newer", "999")
	wantOneLineError(t, reckon(t, env, "migrate"), "newer")
}

func TestNoMigrateRefusesPendingSchema(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	wantOneLineError(t, reckon(t, cleanEnv("RECKON_DATA_DIR="+dataDir), "serve", "--no-migrate"), "reckon migrate")
}

// On PostgreSQL: migrate twice, serve, and follow the database through an
// outage: /readyz says 503 naming the store while it is down and 200 once
// it is back, with no restart of reckon.
func TestServePostgresOutage(t *testing.T) {
	pg := storetest.NewPGServer(t)
	env := cleanEnv("RECKON_DATABASE_URL=" + pg.URL)
	for i := range 2 {
		if r := reckon(t, env, "migrate"); r.code != 0 {
			t.Fatalf("migrate %d: %d %s", i+1, r.code, r.stderr)
		} else if i == 1 && !strings.Contains(r.stdout, "up to date") {
			t.Fatalf("second migrate said %q", r.stdout)
		}
	}
	s := serve(t, env, "--no-migrate")
	tok := s.adminToken()
	if code, body := s.get("/api/v1/status", tok); code != 200 || !strings.Contains(body, `"store":"postgres"`) {
		t.Fatalf("status: %d %s", code, body)
	}
	pg.Stop()
	waitFor(t, s, func(code int, body string) bool {
		return code == 503 && strings.Contains(body, "store:") && strings.Contains(body, "PostgreSQL")
	}, "/readyz to say 503 naming the store")
	if code, _ := s.get("/api/v1/status", tok); code != 503 {
		t.Fatalf("an API call while the store is down answered %d, want 503", code)
	}
	pg.Start()
	waitFor(t, s, func(code int, body string) bool { return code == 200 }, "/readyz to recover")
	if code, body := s.get("/api/v1/status", tok); code != 200 {
		t.Fatalf("status after recovery: %d %s", code, body)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, s.logs())
	}
}

func waitFor(t *testing.T, s *server, ok func(int, string) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if code, body = s.get("/readyz", ""); ok(code, body) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last %d %s", what, code, body)
}
