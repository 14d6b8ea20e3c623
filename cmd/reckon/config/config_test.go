package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reckon.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./reckon-data" || c.Listen != "127.0.0.1:8080" || c.Database.URL != "" {
		t.Fatalf("defaults %+v", c)
	}
	if k, _ := c.Database.Kind(); k != StoreSQLite {
		t.Fatalf("default store %q", k)
	}
	if c.SQLitePath() != filepath.Join("reckon-data", "reckon.db") {
		t.Fatalf("SQLite path %q", c.SQLitePath())
	}
}

func TestUnknownKeyNamedWithLine(t *testing.T) {
	for body, want := range map[string]string{
		"bogus_key: 1\n": `line 1: unknown key "bogus_key"`,
		"listen: 127.0.0.1:9\napi:\n  max_body: 5\n": `line 3: unknown key "api.max_body"`,
		"database:\n  url: ''\n  pasword: x\n":       `line 3: unknown key "database.pasword"`,
	} {
		_, err := Load(write(t, body), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %s", body, err, want)
		}
	}
}

func TestMalformedAndMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(write(t, "listen: [unclosed\n"), nil); err == nil || !strings.Contains(err.Error(), "malformed YAML") {
		t.Errorf("malformed file: %v", err)
	}
	if _, err := Load(write(t, "queue:\n  workers: many\n"), nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := Load(write(t, ""), nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	p := write(t, "listen: 127.0.0.1:9000\nlog:\n  format: json\n")
	c, err := Load(p, []string{
		"RECKON_DATABASE_URL=postgres://reckon:pw@db.internal:5432/reckon",
		"RECKON_DATA_DIR=/var/lib/reckon",
		"RECKON_LISTEN=0.0.0.0:8443",
		"RECKON_SHUTDOWN_GRACE=45s",
		"RECKON_QUEUE_WORKERS=3",
		"RECKON_DATABASE_AUTO_MIGRATE=false",
		"RECKON_TOKEN=not-a-config-key", // CLI clients' variable: ignored here
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:8443" || c.DataDir != "/var/lib/reckon" || c.ShutdownGrace != 45*time.Second ||
		c.Queue.Workers != 3 || c.Database.AutoMigrate || c.Log.Format != "json" {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if k, _ := c.Database.Kind(); k != StorePostgres {
		t.Fatalf("kind %q", k)
	}
}

func TestEnvBadValueNamed(t *testing.T) {
	_, err := Load("", []string{"RECKON_QUEUE_WORKERS=lots"})
	if err == nil || !strings.Contains(err.Error(), "RECKON_QUEUE_WORKERS") || !strings.Contains(err.Error(), "queue.workers") {
		t.Fatalf("error %v does not name the variable and key", err)
	}
	_, err = Load("", []string{"RECKON_SHUTDOWN_GRACE=soon"})
	if err == nil || !strings.Contains(err.Error(), "duration") {
		t.Fatalf("error %v", err)
	}
}

func TestValidationNamesKey(t *testing.T) {
	for env, want := range map[string]string{
		"RECKON_DATABASE_URL=mysql://x/y":    "database.url: unsupported scheme \"mysql\"",
		"RECKON_DATABASE_URL=postgres:///db": "database.url: a postgres:// URL needs a host",
		"RECKON_LISTEN=8080":                 "listen:",
		"RECKON_LOG_FORMAT=xml":              "log.format",
		"RECKON_LOG_LEVEL=loud":              "log.level",
		"RECKON_API_MAX_BODY_BYTES=10":       "api.max_body_bytes",
		"RECKON_QUEUE_WORKERS=0":             "queue.workers",
		"RECKON_DATA_DIR= ":                  "data_dir",
		"RECKON_API_READ_TIMEOUT=0s":         "api.read_timeout",
		"RECKON_MEMORY_LIMIT=lots":           "memory_limit",
	} {
		_, err := Load("", []string{env})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", env, err, want)
		}
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	c, err := Load("", []string{"RECKON_DATABASE_URL=postgres://reckon:hunter2@db:5432/reckon?sslmode=require"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Masked().YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") {
		t.Fatalf("printed config shows the password:\n%s", out)
	}
	if !strings.Contains(string(out), "db:5432") || !strings.Contains(string(out), "shutdown_grace: 20s") {
		t.Fatalf("printed config lost non-secret values:\n%s", out)
	}
	if c.Database.URL != "postgres://reckon:hunter2@db:5432/reckon?sslmode=require" {
		t.Fatal("Masked changed the original")
	}
	// The printed configuration is itself a valid configuration file.
	back, err := Load(write(t, string(out)), nil)
	if err != nil {
		t.Fatalf("printed config does not load back: %v\n%s", err, out)
	}
	if back.ShutdownGrace != c.ShutdownGrace || back.Listen != c.Listen {
		t.Fatalf("round trip changed values")
	}
}

// The example file documents every key: each key of the configuration
// appears in it, and it loads.
func TestExampleDocumentsEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "..", "configs", "reckon.example.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	var c Config
	for _, key := range Keys(&c) {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(raw), leaf+":") {
			t.Errorf("configs/reckon.example.yaml does not document %s", key)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1400MiB": 1400 << 20, "2GiB": 2 << 30, "512MB": 512e6, "1048576": 1 << 20, "10 KiB": 10 << 10} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1.5GiB", "many", "GiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

// FuzzDecodeStrict: any file decodes or fails with an error, never a panic.
func FuzzDecodeStrict(f *testing.F) {
	f.Add("listen: 127.0.0.1:8080\napi:\n  max_body_bytes: 10\n")
	f.Add("bogus: [1, {a: b}]\n")
	f.Add("database: {url: 'postgres://x'}\nshutdown_grace: 5s\n")
	f.Fuzz(func(t *testing.T, in string) {
		c := Default()
		_ = decodeStrict([]byte(in), &c)
	})
}

// The demo configuration loads, and its sensor's capture is found relative
// to the file whatever the working directory.
func TestDemoConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "..", "configs", "demo.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sensors) != 1 {
		t.Fatalf("sensors %+v", cfg.Sensors)
	}
	if _, err := os.Stat(cfg.Sensors[0].Read); err != nil {
		t.Fatalf("the demo capture: %v", err)
	}
}
