// Package storetest gives tests a fresh, migrated store of each kind:
// SQLite in a temporary folder always, and PostgreSQL (a new database per
// test on the server at RECKON_TEST_DATABASE_URL). Without that variable the
// PostgreSQL half is skipped, except under CI=true, where it fails.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/inventory/store"
)

// EnvURL names the variable holding the admin URL of a test PostgreSQL.
const EnvURL = "RECKON_TEST_DATABASE_URL"

// Kinds lists the store kinds every store test runs against.
var Kinds = []store.Kind{store.SQLite, store.Postgres}

// RequireIntegration skips a test that needs what is missing, or fails it
// under CI=true: in CI nothing is skipped in silence.
func RequireIntegration(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("integration test cannot run under CI: %s", msg)
	}
	t.Skipf("skipped: %s (set it up, or run scripts/test.sh which does)", msg)
}

// ForEach runs fn as a subtest against a fresh migrated store of each kind.
func ForEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, k := range Kinds {
		t.Run(string(k), func(t *testing.T) {
			fn(t, Open(t, k))
		})
	}
}

// Open returns a fresh, migrated store of kind k, closed and dropped when the test ends.
func Open(t testing.TB, k store.Kind) *store.Store {
	t.Helper()
	s := OpenEmpty(t, k)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", k, err)
	}
	return s
}

// OpenEmpty returns a fresh store of kind k with no schema.
func OpenEmpty(t testing.TB, k store.Kind) *store.Store {
	t.Helper()
	opts := Options(t, k)
	s, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", k, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Options returns the options of a fresh, empty database of kind k: for
// PostgreSQL a new database, dropped when the test ends.
func Options(t testing.TB, k store.Kind) store.Options {
	t.Helper()
	switch k {
	case store.SQLite:
		return store.Options{Kind: store.SQLite, Path: filepath.Join(t.TempDir(), "reckon.db")}
	case store.Postgres:
		return store.Options{Kind: store.Postgres, URL: NewPostgresDB(t), MaxOpenConns: 10}
	}
	t.Fatalf("unknown store kind %q", k)
	return store.Options{}
}

// NewPostgresDB creates an empty database on the test server and returns its URL.
func NewPostgresDB(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		RequireIntegration(t, "%s is not set, so there is no PostgreSQL to test against", EnvURL)
	}
	db, err := sqlx.Open("postgres", admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		RequireIntegration(t, "PostgreSQL at %s does not answer: %v", EnvURL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "reckon_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sqlx.Open("postgres", admin)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}
