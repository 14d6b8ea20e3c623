package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/reckon-dev/reckon/inventory/store"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	opts, err := storeOptions(cfg, logger)
	if err != nil {
		return err
	}
	opts.MaxOpenConns = 2
	st, err := store.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s at %s: schema up to date at version %d\n", st.Kind, st.Where(), st.LatestVersion())
		return nil
	}
	fmt.Fprintf(stdout, "%s at %s: applied %d migration(s), schema now at version %d\n", st.Kind, st.Where(), len(applied), st.LatestVersion())
	return nil
}
