// Package sweep runs nmap sweeps as jobs: definitions from the
// configuration or the API, runs planned into chunks that queue workers scan
// in parallel, progress kept per chunk, results handed to the inventory as
// each chunk finishes, cron schedules fired once per cluster, cancellation.
// The scanning itself is discovery/active's.
package sweep

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory/store"
)

// Queue is the River queue chunk jobs run in; its worker count is how many
// nmap processes run at once.
const Queue = "sweeps"

// Definition is what a sweep does. Its JSON names are the API's.
type Definition struct {
	Name             string   `json:"name"`
	Scope            string   `json:"scope"`
	Targets          []string `json:"targets"`
	Ports            string   `json:"ports,omitempty"`
	Discovery        []string `json:"discovery,omitempty"`
	ServiceDetection bool     `json:"service_detection"`
	OSDetection      bool     `json:"os_detection"`
	// NoDNS skips reverse DNS (nmap -n): no names, and no queries to the
	// resolver from where nmap runs.
	NoDNS   bool     `json:"no_dns,omitempty"`
	Scripts []string `json:"scripts,omitempty"`
	// Timing is nmap's -T0..-T5; nil keeps nmap's default.
	Timing      *int     `json:"timing,omitempty"`
	MaxRate     int      `json:"max_rate,omitempty"`
	MinRate     int      `json:"min_rate,omitempty"`
	HostTimeout Duration `json:"host_timeout,omitempty"`
	// Schedule is five-field cron or a descriptor (@daily, @every 6h);
	// empty runs on demand only.
	Schedule   string `json:"schedule,omitempty"`
	InitialRun bool   `json:"initial_run,omitempty"`
	ChunkSize  int    `json:"chunk_size,omitempty"`
	Enabled    bool   `json:"enabled"`
}

// Duration is a time.Duration written as "5m" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration such as \"5m\"")
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as \"5m\"", s)
	}
	*d = Duration(v)
	return nil
}

// Sweep is a stored definition.
type Sweep struct {
	ID     string `json:"id"`
	Origin string `json:"origin"` // config or api
	Definition
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
}

// Run states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCanceled  = "canceled"
)

// Run is one execution of a sweep, with its progress.
type Run struct {
	ID        string `json:"id"`
	SweepID   string `json:"sweep_id"`
	SweepName string `json:"sweep_name"`
	State     string `json:"state"`
	Trigger   string `json:"trigger"`
	// Percent done, from nmap's periodic statistics and finished chunks.
	Percent float64 `json:"percent"`
	HostsUp int     `json:"hosts_up"`
	// RemainingSeconds estimates the time left (0 when unknown or done).
	RemainingSeconds float64    `json:"remaining_seconds"`
	Addresses        int64      `json:"addresses"`
	ChunksTotal      int        `json:"chunks_total"`
	ChunksDone       int        `json:"chunks_done"`
	Observations     int        `json:"observations"`
	CancelRequested  bool       `json:"cancel_requested"`
	Failure          string     `json:"failure,omitempty"`
	Warnings         []string   `json:"warnings"`
	Definition       Definition `json:"definition"`
	CreatedAt        time.Time  `json:"created_at"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	Chunks           []Chunk    `json:"chunks"`
}

// Chunk is the part of a run one nmap process scans.
type Chunk struct {
	Index            int        `json:"index"`
	Targets          []string   `json:"targets"`
	Addresses        int64      `json:"addresses"`
	State            string     `json:"state"`
	Percent          float64    `json:"percent"`
	HostsUp          int        `json:"hosts_up"`
	Observations     int        `json:"observations"`
	RemainingSeconds float64    `json:"remaining_seconds"`
	Failure          string     `json:"failure,omitempty"`
	Args             []string   `json:"args"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
}

// Terminal says whether a state is final.
func Terminal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCanceled
}

// Errors the API maps to status codes.
var (
	ErrNotFound    = errors.New("no such sweep")
	ErrRunNotFound = errors.New("no such sweep run")
	ErrActive      = errors.New("the sweep already has a run queued or running")
	ErrConfigOwned = errors.New("the sweep is defined in the configuration file: change it there")
	ErrExists      = errors.New("a sweep with that name exists")
	ErrFinished    = errors.New("the run has already finished")
)

// FieldError names a bad field of a definition.
type FieldError struct{ Field, Detail string }

// Invalid is a definition's problems, each naming its field.
type Invalid []FieldError

func (v Invalid) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Field + ": " + e.Detail
	}
	return "invalid sweep: " + strings.Join(parts, "; ")
}

// Ingester is where a chunk's observations go.
type Ingester func(ctx context.Context, batchID, by string, obs []discovery.Observation) error

// Options configure the service.
type Options struct {
	Store  *store.Store
	Ingest Ingester
	Scopes []active.Scope
	// ChunkSize is the default addresses per chunk; ChunkTimeout bounds one
	// nmap process.
	ChunkSize    int
	ChunkTimeout time.Duration
	Nmap         string
	// WorkDir holds each chunk's target list and XML while it runs.
	WorkDir  string
	Resolver *net.Resolver
	// TickEvery is how often schedules are checked (default 30 s).
	TickEvery time.Duration
	Logger    *slog.Logger
}

// Service keeps sweeps and runs them.
type Service struct {
	opts   Options
	scopes map[string]active.Scope
	client *river.Client[*sql.Tx]
	log    *slog.Logger
}

// New returns the service; SetClient must be called before runs start.
func New(opts Options) *Service {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 256
	}
	if opts.ChunkTimeout <= 0 {
		opts.ChunkTimeout = 2 * time.Hour
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: opts, scopes: map[string]active.Scope{}, log: opts.Logger}
	for _, sc := range opts.Scopes {
		s.scopes[sc.Name] = sc
	}
	return s
}

// SetClient gives the service the queue to put its jobs in.
func (s *Service) SetClient(c *river.Client[*sql.Tx]) { s.client = c }

// Scope returns the named scope.
func (s *Service) Scope(name string) (active.Scope, bool) {
	sc, ok := s.scopes[name]
	return sc, ok
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks a definition without resolving hostnames; every problem
// names its field. Addresses and prefixes are checked against the scope
// now; hostnames again at run time.
func (s *Service) Validate(ctx context.Context, d *Definition) error {
	var errs Invalid
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	d.Name = strings.TrimSpace(d.Name)
	switch {
	case d.Name == "":
		bad("name", "required")
	case len(d.Name) > 100 || strings.ContainsAny(d.Name, "/\\ \t\n"):
		bad("name", "at most 100 characters, no spaces or slashes")
	}
	scope, ok := s.scopes[d.Scope]
	if !ok {
		names := make([]string, 0, len(s.scopes))
		for n := range s.scopes {
			names = append(names, n)
		}
		slices.Sort(names)
		bad("scope", "%q is not a configured scope (have: %s)", d.Scope, strings.Join(names, ", "))
	}
	if len(d.Targets) == 0 {
		bad("targets", "required: IPs, CIDRs, ranges or hostnames")
	}
	if len(d.Targets) > 1000 {
		bad("targets", "at most 1000 entries")
	}
	var literal []active.Target
	for i, raw := range d.Targets {
		t, err := active.ParseTarget(raw)
		if err != nil {
			bad(fmt.Sprintf("targets[%d]", i), "%v", err)
			continue
		}
		if t.Kind != "hostname" {
			literal = append(literal, t)
		}
	}
	if ok && len(literal) > 0 && len(errs) == 0 {
		if _, err := scope.Resolve(ctx, literal, s.opts.Resolver); err != nil {
			bad("targets", "%v", err)
		}
	}
	if d.Ports != "" {
		if _, err := active.ParsePorts(d.Ports); err != nil {
			bad("ports", "%v", err)
		}
	}
	if d.Timing != nil && (*d.Timing < 0 || *d.Timing > 5) {
		bad("timing", "must be 0-5 (nmap -T0..-T5)")
	}
	if d.MaxRate < 0 {
		bad("max_rate", "must not be negative")
	}
	if d.MinRate < 0 || d.MaxRate > 0 && d.MinRate > d.MaxRate {
		bad("min_rate", "must not be negative nor above max_rate")
	}
	if d.ChunkSize < 0 || d.ChunkSize > 1<<20 {
		bad("chunk_size", "must be between 0 (the default) and 1048576")
	}
	if d.Schedule != "" {
		if _, err := cronParser.Parse(d.Schedule); err != nil {
			bad("schedule", "%q: %v (five-field cron such as \"0 3 * * *\", or @daily, @every 6h)", d.Schedule, err)
		}
	}
	spec := active.Spec{Discovery: d.Discovery, Scripts: d.Scripts, ServiceDetection: d.ServiceDetection, OSDetection: d.OSDetection}
	if d.Ports != "" {
		spec.Ports, _ = active.ParsePorts(d.Ports)
	}
	spec.Targets = scope.Allow // for the spec's own checks of discovery and scripts
	if err := spec.Validate(); err != nil {
		bad("definition", "%v", err)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
