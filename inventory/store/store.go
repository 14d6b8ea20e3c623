// Package store opens reckon's database, PostgreSQL or the embedded SQLite
// file, applies the numbered migrations embedded in the binary (reckon's own
// and River's), and refuses to run against a schema newer than it knows.
// Packages that keep data write their own SQL against Store.DB.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver, registered as "postgres"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	_ "modernc.org/sqlite" // pure-Go SQLite driver, registered as "sqlite"
)

// Kind names the database behind a Store.
type Kind string

const (
	Postgres Kind = "postgres"
	SQLite   Kind = "sqlite"
)

// Options say which database to open and how.
type Options struct {
	Kind Kind
	// URL is the postgres:// URL (Postgres only).
	URL string
	// Path is the SQLite file (SQLite only); its folder is created if missing.
	Path string
	// MaxOpenConns bounds PostgreSQL connections; SQLite always uses one.
	MaxOpenConns int
	// ConnectTimeout bounds the first connection.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Store is an open database.
type Store struct {
	DB     *sqlx.DB
	Kind   Kind
	logger *slog.Logger
	where  string // the database, fit to print
}

// ErrUnreachable marks a database that could not be reached.
var ErrUnreachable = errors.New("database unreachable")

// Open opens and pings the database. Errors say which database and why, in one line.
func Open(ctx context.Context, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	s := &Store{Kind: opts.Kind, logger: logger}
	var db *sql.DB
	var err error
	switch opts.Kind {
	case Postgres:
		dsn, where, err := postgresDSN(opts.URL, timeout)
		if err != nil {
			return nil, err
		}
		s.where = where
		if db, err = sql.Open("postgres", dsn); err != nil {
			return nil, fmt.Errorf("PostgreSQL at %s: %w", where, err)
		}
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 20
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
	case SQLite:
		if err := writableDir(filepath.Dir(opts.Path)); err != nil {
			return nil, err
		}
		s.where = opts.Path
		// WAL lets a second process (reckon token, reckon migrate) read and
		// write beside a running server; busy_timeout waits out its locks.
		dsn := "file:" + opts.Path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)" +
			"&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)&_txlock=immediate"
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("SQLite file %s: %w", opts.Path, err)
		}
		// SQLite runs one writer at a time; River requires a single connection.
		db.SetMaxOpenConns(1)
	default:
		return nil, fmt.Errorf("unknown store kind %q", opts.Kind)
	}
	s.DB = sqlx.NewDb(db, string(opts.Kind))
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// postgresDSN checks a postgres:// URL, adds a connect timeout when it has
// none, and returns it with a printable description (host:port/db, no password).
func postgresDSN(raw string, timeout time.Duration) (dsn, where string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", errors.New("database URL is not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", "", fmt.Errorf("database URL scheme %q is not postgres://", u.Scheme)
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		secs := int(timeout.Seconds())
		if secs < 1 {
			secs = 1
		}
		q.Set("connect_timeout", fmt.Sprint(secs))
		u.RawQuery = q.Encode()
	}
	host := u.Host
	if host == "" {
		host = q.Get("host")
	}
	return u.String(), host + u.Path, nil
}

// writableDir creates dir when missing and proves a file can be written there.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: cannot create it: %w", dir, unwrapPathErr(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data directory %s: cannot write to it: %w", dir, unwrapPathErr(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Where describes the database for logs: host:port/db or the SQLite file.
func (s *Store) Where() string { return s.where }

// Ping checks the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.DB.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("%w: %s at %s: %s", ErrUnreachable, s.kindName(), s.where, cleanDriverErr(err))
	}
	return nil
}

func (s *Store) kindName() string {
	if s.Kind == Postgres {
		return "PostgreSQL"
	}
	return "SQLite"
}

// cleanDriverErr keeps driver errors to one line.
func cleanDriverErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// RiverDriver is the River driver over this store's connection pool: both
// drivers work on *sql.Tx, so one client type serves both stores.
func (s *Store) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if s.Kind == Postgres {
		return riverdatabasesql.New(s.DB.DB)
	}
	return riversqlite.New(s.DB.DB)
}

// Now is the database-neutral current time for rows: UTC, microsecond precision.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
