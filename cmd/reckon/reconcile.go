package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/file"
	"github.com/reckon-dev/reckon/cmdb/netbox"
	"github.com/reckon-dev/reckon/cmdb/runner"
	"github.com/reckon-dev/reckon/cmdb/servicenow"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

// openInventory opens the inventory over st with the configured identity rules.
func openInventory(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, reg prometheus.Registerer) (*inventory.Inventory, error) {
	return inventory.Open(ctx, inventory.ServiceOptions{
		Store: st,
		Identity: inventory.Options{
			LeaseWindow:  cfg.Inventory.LeaseWindow,
			GatewayIPs:   cfg.Inventory.GatewayIPs,
			MissingAfter: cfg.Inventory.MissingAfter,
			JunkSerials:  append(slices.Clone(inventory.DefaultJunkSerials), cfg.Inventory.ExtraJunkSerials...),
		},
		FlushInterval: cfg.Inventory.FlushInterval,
		RawRetention:  cfg.Inventory.RawRetention,
		Logger:        logger,
		Registerer:    reg,
	})
}

// cmdbToken reads the CMDB token from cmdb.token_file, else RECKON_CMDB_TOKEN.
func cmdbToken(c config.CMDB) (string, error) {
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("cmdb.token_file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("cmdb.token_file %s is empty", c.TokenFile)
	}
	if t := strings.TrimSpace(os.Getenv("RECKON_CMDB_TOKEN")); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("cmdb: no token: set cmdb.token_file or RECKON_CMDB_TOKEN")
}

// newCMDB builds the configured CMDB client and, when push is enabled, its
// pusher; no cmdb.kind gives nil, nil.
func newCMDB(cfg config.Config, logger *slog.Logger) (cmdb.Client, cmdb.Pusher, error) {
	c := cfg.CMDB
	var cl cmdb.Client
	switch c.Kind {
	case "":
		return nil, nil, nil
	case "file":
		f, err := file.New(c.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("cmdb.path: %w", err)
		}
		if c.Push.Enabled {
			return nil, nil, fmt.Errorf("cmdb.push: a file CMDB cannot be written to")
		}
		return f, nil, nil
	case "netbox":
		tok, err := cmdbToken(c)
		if err != nil {
			return nil, nil, err
		}
		nb, err := netbox.New(netbox.Options{URL: c.URL, Token: tok, Timeout: c.Timeout, PageSize: c.PageSize,
			Concurrency: c.Concurrency, RateLimit: c.RateLimit, CAFile: c.CAFile, Insecure: c.Insecure,
			ReckonIDField: c.ReckonIDField, Logger: logger, DeviceRole: c.Push.DeviceRole,
			DeviceType: c.Push.DeviceType, Site: c.Push.Site, Tag: c.Push.Tag})
		if err != nil {
			return nil, nil, fmt.Errorf("cmdb: %w", err)
		}
		cl = nb
	case "servicenow":
		tok, err := cmdbToken(c)
		if err != nil {
			return nil, nil, err
		}
		sn, err := servicenow.New(servicenow.Options{URL: c.URL, Token: tok, User: c.User, Timeout: c.Timeout,
			PageSize: c.PageSize, Concurrency: c.Concurrency, RateLimit: c.RateLimit, CAFile: c.CAFile,
			Insecure: c.Insecure, Tables: c.Tables, ReckonIDField: c.ReckonIDField, DataSource: c.Push.DataSource,
			Logger: logger})
		if err != nil {
			return nil, nil, fmt.Errorf("cmdb: %w", err)
		}
		cl = sn
	default:
		return nil, nil, fmt.Errorf("cmdb.kind %q", c.Kind)
	}
	if !c.Push.Enabled {
		return cl, nil, nil
	}
	return cl, cl.(cmdb.Pusher), nil
}

// newReconciler builds the reconciliation service from the configuration.
func newReconciler(cfg config.Config, st *store.Store, inv *inventory.Inventory, logger *slog.Logger) (*runner.Service, error) {
	cl, pusher, err := newCMDB(cfg, logger)
	if err != nil {
		return nil, err
	}
	dry := cfg.CMDB.Push.DryRun == nil || *cfg.CMDB.Push.DryRun
	return runner.New(runner.Options{Store: st, Inventory: inv, Client: cl, Pusher: pusher,
		Push:       cmdb.PushOptions{DryRun: dry, Owns: cfg.CMDB.Push.Owns, Message: cfg.CMDB.Push.Message},
		StaleAfter: cfg.CMDB.StaleAfter, JunkSerials: cfg.CMDB.JunkSerials, JunkMACs: cfg.CMDB.JunkMACs,
		Timeout: cfg.CMDB.RunTimeout, Logger: logger}), nil
}

// runReconcile reconciles the stored inventory with the configured CMDB
// once and prints each asset's verdict and each stale CI.
func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs)
	dryRun := fs.Bool("dry-run", false, "show the verdicts without recording them or pushing")
	format := fs.String("format", "table", "table, jsonl (one object per asset and per stale CI) or csv")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch *format {
	case "table", "jsonl", "csv":
	default:
		return fmt.Errorf("%w: --format must be table, jsonl or csv, got %q", errUsage, *format)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.CMDB.Kind == "" {
		return fmt.Errorf("%w: no CMDB configured: set cmdb.kind (netbox, servicenow or file) in the configuration (--config)", errUsage)
	}
	logger := newLogger(cfg, stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	st, err := openStore(ctx, cfg, logger, cfg.Database.AutoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	inv, err := openInventory(ctx, cfg, st, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	svc, err := newReconciler(cfg, st, inv, logger)
	if err != nil {
		return err
	}
	out, err := svc.Reconcile(ctx, *dryRun)
	if err != nil {
		return err
	}
	if err := printReconcile(stdout, *format, out); err != nil {
		return err
	}
	c := out.Counts
	fmt.Fprintf(stderr, "%d CIs: %d managed, %d unmanaged, %d unknown, %d conflict, %d stale CIs%s\n", out.CIs,
		c.Managed, c.Unmanaged, c.Unknown, c.Conflict, c.Stale, map[bool]string{true: " (dry run: nothing recorded)", false: ""}[*dryRun])
	if out.PushErr != nil {
		return fmt.Errorf("push: %w", out.PushErr)
	}
	return nil
}

func printReconcile(w io.Writer, format string, out runner.Outcome) error {
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		for _, it := range out.Items {
			if err := enc.Encode(it); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"asset_id", "verdict", "reason", "ci_id", "ci_name", "macs", "ips", "hostnames"})
		for _, it := range out.Items {
			id, name := ciCols(it)
			_ = cw.Write([]string{it.AssetID, it.Verdict, it.Reason, id, name, strings.Join(it.MACs, " "),
				strings.Join(it.IPs, " "), strings.Join(it.Hostnames, " ")})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ASSET\tVERDICT\tCI\tMACS\tIPS\tHOSTNAMES\tREASON")
	for _, it := range out.Items {
		_, name := ciCols(it)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(it.AssetID), it.Verdict, orDash(name),
			orDash(strings.Join(it.MACs, ",")), orDash(strings.Join(it.IPs, ",")), orDash(strings.Join(it.Hostnames, ",")), it.Reason)
	}
	return tw.Flush()
}

func ciCols(it runner.Item) (id, name string) {
	if it.CI != nil {
		return it.CI.ID, it.CI.Name
	}
	var ids, names []string
	for _, c := range it.CIs {
		ids, names = append(ids, c.ID), append(names, c.Name)
	}
	return strings.Join(ids, " "), strings.Join(names, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
