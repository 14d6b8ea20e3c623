package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/reckon-dev/reckon/alert"
	"github.com/reckon-dev/reckon/api"
	assessrunner "github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/discovery/active/sweep"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	printConfig := fs.Bool("print-config", false, "print the effective configuration (secrets masked) and exit")
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations on start (refuse to start if any are pending)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *printConfig {
		out, err := cfg.Masked().YAML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	logger := newLogger(cfg, stderr)
	started := time.Now()
	if limit, _ := config.ParseBytes(cfg.MemoryLimit); limit > 0 {
		debug.SetMemoryLimit(limit)
	}

	// Take the port first: a port in use fails before any work is done.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: cannot listen on %s: %w", cfg.Listen, errors.Unwrap(err))
	}
	defer ln.Close()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: cannot create it: %w", cfg.DataDir, errors.Unwrap(err))
	}
	st, err := openStore(ctx, cfg, logger, cfg.Database.AutoMigrate && !*noMigrate)
	if err != nil {
		return err
	}
	defer st.Close()

	if err := bootstrapAdminToken(ctx, st, cfg.DataDir, logger); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reckon_build_info", Help: "Always 1; labels say the version and the store in use.",
	}, []string{"version", "store"})
	buildInfo.WithLabelValues(version, string(st.Kind)).Set(1)
	reg.MustRegister(buildInfo)

	inv, err := openInventory(ctx, cfg, st, logger, reg)
	if err != nil {
		return err
	}
	inv.Start(ctx)
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+10*time.Second)
		defer cancel()
		if err := inv.Stop(stopCtx); err != nil {
			logger.Warn("inventory changes not written at shutdown; the batches will be replayed on start", "err", err)
		}
	}()

	sweeps, err := newSweepService(cfg, st, inv, logger)
	if err != nil {
		return err
	}
	recon, err := newReconciler(cfg, st, inv, logger)
	if err != nil {
		return err
	}
	defer recon.Close()
	assessing, err := newAssessor(cfg, st, inv, logger)
	if err != nil {
		return err
	}
	periodic := append(inv.PeriodicJobs(cfg.Inventory.MaintainEvery), sweeps.PeriodicJobs()...)
	if assessing != nil {
		periodic = append(periodic, assessing.svc.PeriodicJobs()...)
	}
	q, err := queue.New(queue.Options{
		Store:        st,
		Workers:      cfg.Queue.Workers,
		Queues:       map[string]int{sweep.Queue: cfg.Active.Workers, assessrunner.Queue: cfg.Assess.Workers},
		PollInterval: cfg.Queue.PollInterval,
		SoftStop:     cfg.ShutdownGrace,
		RescueAfter:  rescueAfter(cfg),
		Heartbeat:    time.Minute,
		Register: func(ws *river.Workers) {
			inv.RegisterJobs(ws)
			sweeps.RegisterJobs(ws)
			if assessing != nil {
				assessing.svc.RegisterJobs(ws)
			}
		},
		Periodic:   periodic,
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	if assessing != nil {
		assessing.svc.SetClient(q.Client)
		defer assessing.svc.Close()
	}
	sweeps.SetClient(q.Client)
	if err := sweeps.SyncConfig(ctx, sweepDefinitions(cfg)); err != nil {
		return fmt.Errorf("sweeps: %w", err)
	}

	srv, err := api.New(api.Options{
		Store: st,
		Checks: []api.Check{
			{Name: "store", Func: st.Ping},
			{Name: "queue", Func: q.Ready},
		},
		MaxBodyBytes:      cfg.API.MaxBodyBytes,
		Version:           versionString(),
		Logger:            logger,
		Registerer:        reg,
		Gatherer:          reg,
		ReadHeaderTimeout: cfg.API.ReadHeaderTimeout,
		ReadTimeout:       cfg.API.ReadTimeout,
		WriteTimeout:      cfg.API.WriteTimeout,
		IdleTimeout:       cfg.API.IdleTimeout,
	})
	if err != nil {
		return err
	}
	srv.RegisterInventory(inv, api.InventoryOptions{MaxBatch: cfg.Inventory.MaxBatch,
		SensorsSeen: sensorsSeen(st)})
	srv.RegisterSweeps(sweeps)
	srv.RegisterReconciliations(recon, inv)
	var assessSvc *assessrunner.Service
	if assessing != nil {
		srv.RegisterAssessments(assessing.svc, assessing.pol, assessing.name, cfg.Assess.CostLimit)
		assessSvc = assessing.svc
	}
	alerts := alert.New(alert.Options{Store: st, Logger: logger.With("component", "alerts")})
	alerting, err := newAlerting(cfg, st, alerts, inv, logger, reg)
	if err != nil {
		return err
	}
	srv.RegisterAlerts(alerts, inv, assessSvc)
	srv.RegisterSilences(alerting.silences)
	srv.RegisterReports(st)

	if err := q.Start(ctx); err != nil {
		return err
	}
	sensorCtx, stopSensors := context.WithCancel(ctx)
	defer stopSensors()
	waitSensors, sensorWatches, err := startSensors(sensorCtx, cfg.Sensors, inv, reg, logger)
	if err != nil {
		return err
	}
	go recon.Schedule(sensorCtx, cfg.CMDB.Every, cfg.CMDB.IncrementalEvery)
	waitAlerting, err := alerting.start(sensorCtx, alerts)
	if err != nil {
		return err
	}
	feeder := alert.NewFeeder(alert.FeederOptions{Store: st, Alerts: alerts, Logger: logger.With("component", "alerts"),
		OnChanges: func(ch []alert.Change) { alerting.router.Handle(sensorCtx, ch) }})
	feedDone, watchDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(feedDone); feeder.Run(sensorCtx) }()
	go func() {
		defer close(watchDone)
		alerting.watchSources(sensorCtx, cfg, st, alerts, recon, sensorWatches, logger)
	}()
	defer func() { stopSensors(); <-feedDone; <-watchDone; waitAlerting() }()
	logger.Info("reckon serving", "version", versionString(), "listen", ln.Addr().String(),
		"store", st.Kind, "database", st.Where(), "startup", time.Since(started).Round(time.Millisecond))

	runErr := srv.Run(ctx, ln, cfg.ShutdownGrace)
	stopSensors()
	waitSensors()
	logger.Info("shutting down: waiting for running jobs", "grace", cfg.ShutdownGrace)
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace+10*time.Second)
	defer cancel()
	if err := q.Stop(stopCtx); err != nil {
		logger.Warn("job queue did not stop cleanly", "err", err)
	}
	logger.Info("reckon stopped")
	return runErr
}

// bootstrapAdminToken creates an admin token when none is active and writes
// it, readable by the owner only, to <data dir>/admin.token. The token itself
// is never logged.
func bootstrapAdminToken(ctx context.Context, st *store.Store, dataDir string, logger *slog.Logger) error {
	tokens := api.NewTokens(st)
	n, err := tokens.CountActive(ctx)
	if err != nil {
		return fmt.Errorf("checking for tokens: %w", err)
	}
	if n > 0 {
		return nil
	}
	secret, tok, err := tokens.Create(ctx, "admin", api.RoleAdmin, "bootstrap")
	if err != nil {
		return fmt.Errorf("creating the first admin token: %w", err)
	}
	path := filepath.Join(dataDir, "admin.token")
	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		// Without the file nobody could use the token: take it back.
		_, _ = tokens.Revoke(ctx, fmt.Sprint(tok.ID))
		return fmt.Errorf("data_dir: writing the admin token: %w", err)
	}
	logger.Warn("no API token existed: created an admin token", "path", path, "token_id", tok.ID)
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
