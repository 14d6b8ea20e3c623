package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one numbered schema step of reckon's own.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ErrSchemaTooNew means the database was migrated by a newer reckon.
var ErrSchemaTooNew = errors.New("database schema is newer than this reckon")

// ErrSchemaBehind means migrations are pending and were not applied.
var ErrSchemaBehind = errors.New("database schema is behind this reckon")

// pgMigrationLock is the advisory lock key that serialises migrations across
// replicas ("reckon" in ASCII).
const pgMigrationLock = 0x7265636b6f6e

// Migrations lists reckon's migrations for a store kind, in order.
func Migrations(kind Kind) ([]Migration, error) {
	dir := path.Join("migrations", string(kind))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", kind, err)
	}
	var out []Migration
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations for %s: version %d is missing", kind, i+1)
		}
	}
	return out, nil
}

// LatestVersion is the newest schema version this binary knows.
func (s *Store) LatestVersion() int {
	ms, _ := Migrations(s.Kind)
	return len(ms)
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS reckon_schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL
)`

// SchemaVersion is the newest migration applied to the database, 0 for none.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	var err error
	if s.Kind == Postgres {
		err = s.DB.GetContext(ctx, &exists, `SELECT to_regclass('reckon_schema_migrations') IS NOT NULL`)
	} else {
		err = s.DB.GetContext(ctx, &exists, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'reckon_schema_migrations'`)
	}
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v sql.NullInt64
	if err := s.DB.GetContext(ctx, &v, `SELECT max(version) FROM reckon_schema_migrations`); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}

// CheckSchema says whether the database has exactly the schema this binary
// knows: ErrSchemaTooNew when a newer reckon migrated it, ErrSchemaBehind
// when migrations are pending (reckon's own or River's).
func (s *Store) CheckSchema(ctx context.Context) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := s.LatestVersion()
	if v > latest {
		return fmt.Errorf("%w: the database is at version %d, this reckon knows up to %d; run a newer reckon or point it at another database", ErrSchemaTooNew, v, latest)
	}
	if v < latest {
		return fmt.Errorf("%w: the database is at version %d, this reckon needs %d; run 'reckon migrate'", ErrSchemaBehind, v, latest)
	}
	rm, err := rivermigrate.New(s.RiverDriver(), &rivermigrate.Config{Logger: s.quietLogger()})
	if err != nil {
		return err
	}
	existing, err := rm.ExistingVersions(ctx)
	if err != nil {
		return fmt.Errorf("reading job queue schema: %w", err)
	}
	if len(existing) < len(rm.AllVersions()) {
		return fmt.Errorf("%w: job queue schema is at version %d of %d; run 'reckon migrate'", ErrSchemaBehind, len(existing), len(rm.AllVersions()))
	}
	return nil
}

// Migrate applies every pending migration, River's first, then reckon's own,
// each in its own transaction. It returns the versions of reckon's own that it
// applied; applying twice applies nothing the second time.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := Migrations(s.Kind)
	if err != nil {
		return nil, err
	}
	if v > len(ms) {
		return nil, fmt.Errorf("%w: the database is at version %d, this reckon knows up to %d", ErrSchemaTooNew, v, len(ms))
	}
	rm, err := rivermigrate.New(s.RiverDriver(), &rivermigrate.Config{Logger: s.quietLogger()})
	if err != nil {
		return nil, err
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := s.DB.ExecContext(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("creating the migrations table: %w", err)
	}
	var applied []int
	for _, m := range ms {
		done, err := s.applyOne(ctx, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
			s.logger.Info("migration applied", "version", m.Version, "name", m.Name)
		}
	}
	return applied, nil
}

// applyOne applies m unless it is already there, under a lock so that two
// replicas migrating at once apply it once.
func (s *Store) applyOne(ctx context.Context, m Migration) (bool, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migration %d: %w", m.Version, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.Kind == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return false, fmt.Errorf("migration %d: taking the migration lock: %w", m.Version, err)
		}
	}
	var n int
	if err := tx.GetContext(ctx, &n, s.DB.Rebind(`SELECT count(*) FROM reckon_schema_migrations WHERE version = ?`), m.Version); err != nil {
		return false, fmt.Errorf("migration %d: %w", m.Version, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, s.DB.Rebind(`INSERT INTO reckon_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.Version, m.Name, Now()); err != nil {
		return false, fmt.Errorf("migration %d: recording it: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d: %w", m.Version, err)
	}
	return true, nil
}

// quietLogger is the store's logger at warning level and above, for River's
// migrator, which logs every step at info.
func (s *Store) quietLogger() *slog.Logger {
	return slog.New(minLevel{s.logger.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
