package storetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// PGServer is a PostgreSQL server of a test's own, for tests that stop and
// start the database under a running reckon.
type PGServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// URL reaches the server's postgres database.
	URL string
}

// NewPGServer initialises and starts a PostgreSQL server from Debian's
// binaries (/usr/lib/postgresql/*/bin) in a temporary folder on a free
// loopback port; it is stopped and removed when the test ends.
func NewPGServer(t testing.TB) *PGServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		RequireIntegration(t, "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	sort.Strings(bins)
	dir, err := os.MkdirTemp("", "reckon-pgserver-")
	if err != nil {
		t.Fatal(err)
	}
	s := &PGServer{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			RequireIntegration(t, "running as root with no postgres user to run PostgreSQL as")
		}
		if out, err := exec.Command("chown", u.Username, dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	t.Cleanup(func() {
		_ = s.pgctl("-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	if out, err := s.cmd("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	s.Start()
	return s
}

func (s *PGServer) cmd(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (s *PGServer) pgctl(args ...string) error {
	base := []string{"-D", filepath.Join(s.dir, "data"), "-w"}
	out, err := s.cmd("pg_ctl", append(base, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start starts the server (again).
func (s *PGServer) Start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.port, s.dir)
	if err := s.pgctl("-o", opts, "-l", filepath.Join(s.dir, "log"), "start"); err != nil {
		s.t.Fatal(err)
	}
}

// Stop stops the server at once, as a crash or an outage would.
func (s *PGServer) Stop() {
	s.t.Helper()
	if err := s.pgctl("-m", "immediate", "stop"); err != nil {
		s.t.Fatal(err)
	}
}
