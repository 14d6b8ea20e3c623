// Package runner runs CMDB reconciliations: it reads every CI through a
// cmdb.Client, matches the inventory against them (package reconcile),
// records the verdicts on the assets, optionally pushes reckon's view back,
// and keeps each run's state, counts, errors and stale CIs in the store.
//
// A CMDB read that fails in any way (timeout, error status, revoked token,
// unexpected body) fails the run before anything is matched: no verdict
// changes, and no asset turns unmanaged because the CI list was cut short.
package runner

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/reconcile"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

// Run states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StatePartial   = "partial"
	StateFailed    = "failed"
)

// ErrNotFound is returned for a run id that does not exist.
var ErrNotFound = errors.New("reconciliation not found")

// Options configure a Service.
type Options struct {
	Store     *store.Store
	Inventory *inventory.Inventory
	Client    cmdb.Client
	// Pusher, when set, gets reckon's view after each run that is not a
	// dry run; PushDryRun (the default in configuration) only lists the
	// changes a push would make.
	Pusher      cmdb.Pusher
	Push        cmdb.PushOptions
	StaleAfter  time.Duration
	JunkSerials []string
	JunkMACs    []string
	// Timeout bounds one run's CMDB read (default 30 minutes).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Service starts runs and answers for them.
type Service struct {
	opts Options
	log  *slog.Logger
	mu   sync.Mutex // one run at a time
	wg   sync.WaitGroup
	// snap is the CMDB as the last read left it, by CI id, and snapAt
	// when that read began: an incremental run reads only what changed
	// since and merges it in. Guarded by mu.
	snap   map[string]cmdb.CI
	snapAt time.Time
	// base outlives the request that starts a run; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
}

// New returns a Service.
func New(o Options) *Service {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	return &Service{opts: o, log: o.Logger, base: base, cancel: cancel}
}

// Counts are a run's verdict counts.
type Counts struct {
	Managed   int `json:"managed"`
	Unmanaged int `json:"unmanaged"`
	Unknown   int `json:"unknown"`
	Conflict  int `json:"conflict"`
	Stale     int `json:"stale"`
}

// Run is one reconciliation as the API shows it.
type Run struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Trigger string `json:"trigger"`
	DryRun  bool   `json:"dry_run"`
	// Incremental: the run read only what changed in the CMDB since the
	// previous run and reconciled against that run's CIs updated with it.
	Incremental bool          `json:"incremental"`
	CMDB        string        `json:"cmdb"`
	CIs         int64         `json:"cis"`
	Counts      Counts        `json:"counts"`
	Errors      []string      `json:"errors"`
	Changes     []cmdb.Change `json:"changes,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	StartedAt   *time.Time    `json:"started_at,omitempty"`
	FinishedAt  *time.Time    `json:"finished_at,omitempty"`
}

// Item is one line of a reconciliation's outcome: an asset with its
// verdict, or a stale CI.
type Item struct {
	AssetID   string   `json:"asset_id,omitempty"`
	Verdict   string   `json:"verdict"`
	Reason    string   `json:"reason,omitempty"`
	Rung      string   `json:"rung,omitempty"`
	Disagree  []string `json:"disagree,omitempty"`
	Others    []string `json:"others,omitempty"`
	CI        *CIRef   `json:"ci,omitempty"`
	CIs       []CIRef  `json:"cis,omitempty"`
	MACs      []string `json:"macs,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	Hostnames []string `json:"hostnames,omitempty"`
}

// CIRef names a CI.
type CIRef struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Class        string    `json:"class,omitempty"`
	URL          string    `json:"url,omitempty"`
	Site         string    `json:"site,omitempty"`
	BusinessUnit string    `json:"business_unit,omitempty"`
	Owner        string    `json:"owner,omitempty"`
	Status       string    `json:"status,omitempty"`
	LastUpdated  time.Time `json:"last_updated,omitzero"`
}

func ref(c *cmdb.CI) CIRef {
	return CIRef{ID: c.ID, Name: c.Name, Class: c.Class, URL: c.URL, Site: c.Site, BusinessUnit: c.BusinessUnit,
		Owner: c.Owner, Status: c.Status, LastUpdated: c.LastUpdated}
}

// Outcome is what a reconciliation found.
type Outcome struct {
	CIs     int64
	Counts  Counts
	Items   []Item // assets, then stale CIs
	Stale   []CIRef
	Changes []cmdb.Change
	// PushErr is a push that could not go on; verdicts still hold.
	PushErr error
	// Incremental: only the CIs changed since the previous read were read.
	Incremental bool
}

// Reconcile reads the whole CMDB, matches the inventory against it and,
// unless dryRun, records the verdicts and pushes. An error means the CMDB
// read failed and nothing was changed. Runs started with Start go one at
// a time; Reconcile itself is for a process that runs no server (the CLI).
func (s *Service) Reconcile(ctx context.Context, dryRun bool) (Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconcile(ctx, dryRun, false)
}

// skew is how far before the previous read an incremental read starts, so
// that a record changed while that read ran (or a CMDB clock a little
// behind ours) is not missed.
const skew = 2 * time.Minute

// readCIs reads the CMDB: all of it, or (incremental, with a previous
// read to build on) what changed since that read, merged into it.
func (s *Service) readCIs(ctx context.Context, incremental bool) ([]cmdb.CI, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	incremental = incremental && s.snap != nil
	var since time.Time
	if incremental {
		since = s.snapAt.Add(-skew)
	}
	began := time.Now()
	changed := map[string]cmdb.CI{}
	err := s.opts.Client.CIs(rctx, since, func(c cmdb.CI) error {
		changed[c.ID] = c
		return nil
	})
	if err != nil {
		return nil, incremental, fmt.Errorf("reading the %s CMDB: %w", s.opts.Client.Kind(), err)
	}
	if incremental {
		for id, c := range s.snap {
			if _, ok := changed[id]; !ok {
				changed[id] = c
			}
		}
	}
	s.snap, s.snapAt = changed, began
	cis := make([]cmdb.CI, 0, len(changed))
	for _, c := range changed {
		cis = append(cis, c)
	}
	slices.SortFunc(cis, func(a, b cmdb.CI) int { return strings.Compare(a.ID, b.ID) })
	return cis, incremental, nil
}

func (s *Service) reconcile(ctx context.Context, dryRun, incremental bool) (Outcome, error) {
	var out Outcome
	if s.opts.Client == nil {
		return out, errors.New("no CMDB configured (the cmdb: section of the configuration)")
	}
	cis, inc, err := s.readCIs(ctx, incremental)
	out.Incremental = inc
	if err != nil {
		return out, err
	}
	out.CIs = int64(len(cis))

	var assets []reconcile.Asset
	var views []inventory.Summary
	s.opts.Inventory.EachAsset(func(a *inventory.Asset) {
		sum := a.Summary()
		ra := reconcile.Asset{ID: sum.ID, MACs: sum.MACs, Hostnames: sum.Hostnames, LastSeen: sum.LastSeen,
			Ambiguous: sum.Identity == inventory.IdentityAmbiguous, Gateway: a.AssetExtra != nil && len(a.Gateways) > 0}
		for _, ip := range a.IPHistory {
			if ip.Current {
				ra.IPs = append(ra.IPs, ip.Value.IP())
			}
		}
		for _, id := range a.Idents {
			if k := id.Kind.String(); k == "serial" || k == "asset_tag" {
				ra.Serials = append(ra.Serials, id.Value)
			}
		}
		assets = append(assets, ra)
		views = append(views, sum)
	})
	rep := reconcile.Reconcile(assets, cis, reconcile.Options{StaleAfter: s.opts.StaleAfter,
		JunkSerials: s.opts.JunkSerials, JunkMACs: s.opts.JunkMACs})

	verdicts := make([]inventory.Verdict, 0, len(rep.Results))
	var push []cmdb.Asset
	for i, r := range rep.Results {
		it := Item{AssetID: r.AssetID, Verdict: r.Verdict, Reason: r.Reason, Rung: r.Rung, Disagree: r.Disagree,
			Others: r.Others, MACs: views[i].MACs, IPs: views[i].IPs, Hostnames: views[i].Hostnames}
		link := inventory.CMDBLink{Rung: r.Rung, Reason: r.Reason, Disagree: r.Disagree, Others: r.Others}
		switch {
		case len(r.CIs) == 1:
			c := &cis[r.CIs[0]]
			cr := ref(c)
			it.CI = &cr
			link.CIID, link.CIName, link.URL, link.Site = c.ID, c.Name, c.URL, c.Site
			link.BusinessUnit, link.Owner, link.Role = c.BusinessUnit, c.Owner, c.Role
		case len(r.CIs) > 1:
			for _, ci := range r.CIs {
				it.CIs = append(it.CIs, ref(&cis[ci]))
				link.CIs = append(link.CIs, cis[ci].ID)
			}
		}
		out.Items = append(out.Items, it)
		verdicts = append(verdicts, inventory.Verdict{AssetID: r.AssetID, Status: r.Verdict, Link: link})
		switch r.Verdict {
		case reconcile.Managed:
			out.Counts.Managed++
		case reconcile.Unmanaged:
			out.Counts.Unmanaged++
		case reconcile.Unknown:
			out.Counts.Unknown++
		case reconcile.Conflict:
			out.Counts.Conflict++
		}
		if s.opts.Pusher != nil && (r.Verdict == reconcile.Managed || r.Verdict == reconcile.Unmanaged) {
			pa := cmdb.Asset{ID: r.AssetID, Verdict: r.Verdict, MACs: views[i].MACs, IPs: assets[i].IPs,
				Vendor: views[i].Vendor, OS: views[i].OS, DeviceType: views[i].DeviceType,
				FirstSeen: views[i].FirstSeen, LastSeen: views[i].LastSeen}
			if it.CI != nil {
				pa.CIID = it.CI.ID
			}
			if len(views[i].Hostnames) > 0 {
				pa.Name = views[i].Hostnames[0]
			}
			if len(assets[i].Serials) > 0 {
				pa.Serial = assets[i].Serials[0]
			}
			push = append(push, pa)
		}
	}
	for _, ci := range rep.Stale {
		cr := ref(&cis[ci])
		out.Stale = append(out.Stale, cr)
		out.Items = append(out.Items, Item{Verdict: reconcile.Stale, CI: &cr,
			Reason: "no source has seen it within " + s.opts.StaleAfter.String()})
	}
	out.Counts.Stale = len(rep.Stale)
	if dryRun {
		return out, nil
	}
	if _, err := s.opts.Inventory.SetVerdicts(ctx, verdicts); err != nil {
		return out, fmt.Errorf("storing verdicts: %w", err)
	}
	if s.opts.Pusher != nil && len(push) > 0 {
		out.Changes, out.PushErr = s.opts.Pusher.Push(ctx, push, s.opts.Push)
	}
	return out, nil
}

// Start queues a full run and runs it in the background.
func (s *Service) Start(ctx context.Context, trigger string, dryRun bool) (Run, error) {
	return s.start(ctx, trigger, dryRun, false)
}

func (s *Service) start(ctx context.Context, trigger string, dryRun, incremental bool) (Run, error) {
	kind := ""
	if s.opts.Client != nil {
		kind = s.opts.Client.Kind()
	}
	r := Run{ID: uuid.Must(uuid.NewV7()).String(), State: StateQueued, Trigger: trigger, DryRun: dryRun, CMDB: kind,
		CreatedAt: store.Now().UTC(), Errors: []string{}}
	if _, err := s.db().ExecContext(ctx, s.db().Rebind(`INSERT INTO reconciliations (id, state, trigger, dry_run, cmdb, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		r.ID, r.State, r.Trigger, r.DryRun, r.CMDB, r.CreatedAt); err != nil {
		return r, fmt.Errorf("queueing reconciliation: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.execute(s.base, r, incremental)
	}()
	return r, nil
}

// Wait waits for the runs started so far.
func (s *Service) Wait() { s.wg.Wait() }

// Close cancels the runs in progress (they end failed) and waits for them.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Service) execute(ctx context.Context, r Run, incremental bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The run's own bookkeeping is written even when the run is cancelled
	// (shutdown), so that no run stays "running" for ever.
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	started := store.Now().UTC()
	if _, err := s.db().ExecContext(dbctx, s.db().Rebind(`UPDATE reconciliations SET state = ?, started_at = ? WHERE id = ?`), StateRunning, started, r.ID); err != nil {
		s.log.Error("reconciliation", "run", r.ID, "err", err)
	}
	out, err := s.reconcile(ctx, r.DryRun, incremental)
	state, errs := StateSucceeded, []string{}
	switch {
	case err != nil:
		state, errs = StateFailed, append(errs, err.Error())
	case out.PushErr != nil:
		state, errs = StatePartial, append(errs, "push: "+out.PushErr.Error())
	}
	for _, c := range out.Changes {
		if c.Error != "" {
			state = StatePartial
			errs = append(errs, fmt.Sprintf("push %s %s for asset %s: %s", c.Action, c.Object, c.AssetID, c.Error))
		}
	}
	counts, _ := json.Marshal(out.Counts)
	ej, _ := json.Marshal(errs)
	stale, _ := json.Marshal(orEmpty(out.Stale))
	changes, _ := json.Marshal(orEmpty(out.Changes))
	if err != nil {
		counts, stale = []byte("{}"), []byte("[]")
	}
	if _, err := s.db().ExecContext(dbctx, s.db().Rebind(`UPDATE reconciliations SET state = ?, incremental = ?, cis = ?, counts = ?, errors = ?, stale = ?, changes = ?, finished_at = ? WHERE id = ?`),
		state, out.Incremental, out.CIs, string(counts), string(ej), string(stale), string(changes), store.Now().UTC(), r.ID); err != nil {
		s.log.Error("reconciliation: recording the outcome", "run", r.ID, "err", err)
	}
	s.log.Info("reconciliation", "run", r.ID, "state", state, "cis", out.CIs, "managed", out.Counts.Managed,
		"unmanaged", out.Counts.Unmanaged, "unknown", out.Counts.Unknown, "conflict", out.Counts.Conflict,
		"stale", out.Counts.Stale, "errors", errs)
}

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Service) db() *sqlx.DB { return s.opts.Store.DB }

type runRow struct {
	ID         string     `db:"id"`
	State      string     `db:"state"`
	Trigger    string     `db:"trigger"`
	DryRun     bool       `db:"dry_run"`
	Incr       bool       `db:"incremental"`
	CMDB       string     `db:"cmdb"`
	CIs        int64      `db:"cis"`
	Counts     string     `db:"counts"`
	Errors     string     `db:"errors"`
	Stale      string     `db:"stale"`
	Changes    string     `db:"changes"`
	CreatedAt  time.Time  `db:"created_at"`
	StartedAt  *time.Time `db:"started_at"`
	FinishedAt *time.Time `db:"finished_at"`
}

const runCols = `id, state, trigger, dry_run, incremental, cmdb, cis, counts, errors, stale, changes, created_at, started_at, finished_at`

func (rr runRow) run() Run {
	r := Run{ID: rr.ID, State: rr.State, Trigger: rr.Trigger, DryRun: rr.DryRun, Incremental: rr.Incr, CMDB: rr.CMDB, CIs: rr.CIs,
		CreatedAt: rr.CreatedAt.UTC(), StartedAt: utc(rr.StartedAt), FinishedAt: utc(rr.FinishedAt)}
	_ = json.Unmarshal([]byte(rr.Counts), &r.Counts)
	_ = json.Unmarshal([]byte(rr.Errors), &r.Errors)
	_ = json.Unmarshal([]byte(rr.Changes), &r.Changes)
	if r.Errors == nil {
		r.Errors = []string{}
	}
	return r
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Get returns a run.
func (s *Service) Get(ctx context.Context, id string) (Run, error) {
	var rr runRow
	err := s.db().GetContext(ctx, &rr, s.db().Rebind(`SELECT `+runCols+` FROM reconciliations WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	if err != nil {
		return Run{}, err
	}
	return rr.run(), nil
}

// Stale returns the CIs the latest finished run that read the whole CMDB
// found stale, and that run; no run yet gives ErrNotFound.
func (s *Service) Stale(ctx context.Context) ([]CIRef, Run, error) {
	var rr runRow
	err := s.db().GetContext(ctx, &rr, `SELECT `+runCols+` FROM reconciliations WHERE state IN ('succeeded', 'partial') ORDER BY created_at DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return []CIRef{}, Run{}, ErrNotFound
	}
	if err != nil {
		return nil, Run{}, err
	}
	var out []CIRef
	if err := json.Unmarshal([]byte(rr.Stale), &out); err != nil {
		return nil, Run{}, fmt.Errorf("reconciliation %s: stored stale list: %w", rr.ID, err)
	}
	return orEmpty(out), rr.run(), nil
}

// Schedule starts a full run every interval and, every check interval
// between them, an incremental run when the inventory has changed since
// the last run began, until ctx ends. Zero switches either off.
func (s *Service) Schedule(ctx context.Context, every, check time.Duration) {
	if s.opts.Client == nil || (every <= 0 && check <= 0) {
		return
	}
	tick := func(d time.Duration) <-chan time.Time {
		if d <= 0 {
			return nil
		}
		t := time.NewTicker(d)
		context.AfterFunc(ctx, t.Stop)
		return t.C
	}
	full, inc := tick(every), tick(check)
	var seen int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-full:
			seen = s.opts.Inventory.Applied()
			if _, err := s.start(ctx, "schedule", false, false); err != nil {
				s.log.Error("scheduled reconciliation", "err", err)
			}
		case <-inc:
			now := s.opts.Inventory.Applied()
			if now == seen {
				continue
			}
			seen = now
			if _, err := s.start(ctx, "inventory_changed", false, true); err != nil {
				s.log.Error("incremental reconciliation", "err", err)
			}
		}
	}
}
