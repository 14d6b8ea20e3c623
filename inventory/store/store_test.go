package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

func TestMigrateTwiceAppliesOnce(t *testing.T) {
	for _, k := range storetest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenEmpty(t, k)
			if err := s.CheckSchema(ctx); !errors.Is(err, store.ErrSchemaBehind) {
				t.Fatalf("CheckSchema on an empty database = %v, want ErrSchemaBehind", err)
			}
			first, err := s.Migrate(ctx)
			if err != nil {
				t.Fatalf("first migrate: %v", err)
			}
			if len(first) != s.LatestVersion() || len(first) == 0 {
				t.Fatalf("first migrate applied %v, want 1..%d", first, s.LatestVersion())
			}
			second, err := s.Migrate(ctx)
			if err != nil {
				t.Fatalf("second migrate: %v", err)
			}
			if len(second) != 0 {
				t.Fatalf("second migrate applied %v, want nothing", second)
			}
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatalf("CheckSchema after migrate: %v", err)
			}
			v, err := s.SchemaVersion(ctx)
			if err != nil || v != s.LatestVersion() {
				t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, s.LatestVersion())
			}
		})
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		future := s.LatestVersion() + 1
		if _, err := s.DB.ExecContext(ctx, s.DB.Rebind(`INSERT INTO reckon_schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', ?)`), future, store.Now()); err != nil {
			t.Fatal(err)
		}
		err := s.CheckSchema(ctx)
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("CheckSchema = %v, want ErrSchemaTooNew", err)
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("message %q does not say the schema is newer", err)
		}
		if _, err := s.Migrate(ctx); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestMigrationsNumbered(t *testing.T) {
	sqlite, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.Migrations(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(sqlite) != len(pg) {
		t.Fatalf("%d SQLite migrations but %d PostgreSQL ones: both stores must keep the same schema", len(sqlite), len(pg))
	}
	for i := range pg {
		if pg[i].Name != sqlite[i].Name {
			t.Errorf("migration %d is %q on PostgreSQL but %q on SQLite", i+1, pg[i].Name, sqlite[i].Name)
		}
	}
}

func TestUnwritableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), store.Options{Kind: store.SQLite, Path: filepath.Join(file, "sub", "reckon.db")})
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("Open under a plain file = %v, want a data directory error", err)
	}
}

func TestUnreachablePostgres(t *testing.T) {
	// Port 1 on loopback: nothing listens there, the connection is refused at once.
	_, err := store.Open(context.Background(), store.Options{Kind: store.Postgres, URL: "postgres://u:secret@127.0.0.1:1/db?sslmode=disable"})
	if !errors.Is(err, store.ErrUnreachable) {
		t.Fatalf("Open = %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q shows the password", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %q does not name the server", err)
	}
}

func TestPingAfterClose(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		s.Close()
		if err := s.Ping(context.Background()); !errors.Is(err, store.ErrUnreachable) {
			t.Fatalf("Ping after Close = %v, want ErrUnreachable", err)
		}
	})
}
