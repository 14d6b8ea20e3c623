package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/inventory/store"
)

// configFlag adds --config to fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("RECKON_CONFIG"), "YAML configuration file (env RECKON_CONFIG); every key can be overridden by RECKON_<KEY>")
}

func loadConfig(path string) (config.Config, error) {
	return config.Load(path, os.Environ())
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens the configured database and brings its schema up to date
// when migrate is true; either way it refuses a schema it does not know.
func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger, migrate bool) (*store.Store, error) {
	opts, err := storeOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	if migrate {
		applied, err := st.Migrate(ctx)
		if err != nil {
			st.Close()
			return nil, err
		}
		if len(applied) > 0 {
			logger.Info("database migrated", "store", st.Kind, "applied", len(applied), "version", st.LatestVersion())
		}
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		if errors.Is(err, store.ErrSchemaBehind) && !migrate {
			return nil, fmt.Errorf("%w (or set database.auto_migrate)", err)
		}
		return nil, err
	}
	return st, nil
}

// storeOptions says which database the configuration selects.
func storeOptions(cfg config.Config, logger *slog.Logger) (store.Options, error) {
	kind, err := cfg.Database.Kind()
	if err != nil {
		return store.Options{}, fmt.Errorf("database.url: %w", err)
	}
	return store.Options{
		Kind:           store.Kind(kind),
		URL:            cfg.Database.URL,
		Path:           cfg.SQLitePath(),
		MaxOpenConns:   cfg.Database.MaxOpenConns,
		ConnectTimeout: cfg.Database.ConnTimeout,
		Logger:         logger,
	}, nil
}
