package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/collect"
	"github.com/reckon-dev/reckon/assess/policy"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/configs"
	"github.com/reckon-dev/reckon/discovery/active"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

// loadPolicy loads the policy file at path, or the built-in baseline.
func loadPolicy(path string, costLimit uint64) (*policy.Policy, error) {
	opts := policy.Options{CostLimit: costLimit}
	if path == "" {
		return policy.ParseOptions(configs.BaselineName, configs.Baseline, opts)
	}
	return policy.LoadOptions(path, opts)
}

// runPolicy is `reckon policy check FILE...`.
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: want reckon policy check FILE [FILE]", errUsage)
	}
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	costLimit := fs.Uint64("cost-limit", 0, "CEL cost limit per expression (0: the default)")
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: want reckon policy check FILE [FILE]", errUsage)
	}
	var errs []error
	for _, path := range fs.Args() {
		p, err := loadPolicy(path, *costLimit)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		families := map[string]int{}
		for _, c := range p.Checks() {
			families[c.Family]++
		}
		version := p.Version()
		if version == "" {
			version = "sha256:" + p.Digest()[:12]
		}
		fmt.Fprintf(stdout, "%s: ok, %d checks, %d standard builds, %d role rules (version %s)\n",
			path, len(p.Checks()), len(p.Builds()), len(p.RoleRules()), version)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// assessResult is one line of `reckon assess --format jsonl`.
type assessResult struct {
	Target   string        `json:"target"`
	CheckID  string        `json:"check_id"`
	Title    string        `json:"title"`
	Severity string        `json:"severity"`
	Status   assess.Status `json:"status"`
	Evidence any           `json:"evidence"`
	Error    string        `json:"error,omitempty"`
}

// runAssess is `reckon assess --target ADDR`: one host, now, printed.
func runAssess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("assess", flag.ContinueOnError)
	target := fs.String("target", "", "the address to assess (an IP address)")
	asset := fs.String("asset", "", "instead of --target: have a running server assess this asset now (--server, --token-file)")
	wait := fs.Bool("wait", false, "with --asset: wait for the assessment and print its results")
	cf := addClientFlags(fs)
	ports := fs.String("ports", "", "ports to assess: a list or ranges, T:/U: prefixes (default: the configuration's, else nmap's top 1000 TCP)")
	policyPath := fs.String("policy", "", "the policy file (default: the configuration's, else the built-in baseline)")
	format := fs.String("format", "table", "table, jsonl (one check result per line) or json (the whole assessment: facts, results, evidence)")
	cfgPath := configFlag(fs)
	noScripts := fs.Bool("no-scripts", false, "no NSE scripts (nmap -sV and the native probes only)")
	noProbes := fs.Bool("no-probes", false, "no native Go probes")
	failed := fs.Bool("fail", false, "exit 3 when a check fails")
	verbose := fs.Bool("v", false, "log what the collectors do on stderr")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (the host goes in --target)", errUsage, fs.Arg(0))
	}
	if *format != "table" && *format != "jsonl" && *format != "json" {
		return fmt.Errorf("%w: --format must be table, jsonl or json", errUsage)
	}
	if *asset != "" {
		if *target != "" {
			return fmt.Errorf("%w: --asset and --target exclude each other", errUsage)
		}
		return assessOnServer(ctx, cf, *asset, *wait, *format, *failed, stdout, stderr)
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(*target))
	if err != nil {
		return fmt.Errorf("%w: --target must be an IP address, got %q", errUsage, *target)
	}
	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	if *ports == "" {
		*ports = cfg.Assess.Ports
	}
	if *ports != "" {
		if _, err := active.ParsePorts(*ports); err != nil {
			return fmt.Errorf("%w: --ports: %v", errUsage, err)
		}
	}
	if *policyPath == "" {
		*policyPath = cfg.Assess.Policy
	}
	pol, err := loadPolicy(*policyPath, cfg.Assess.CostLimit)
	if err != nil {
		return err
	}
	// Without a configuration the operator's --target is the scope, as for
	// `reckon sweep`; with one, the target must lie in its scopes.
	scopes := []active.Scope{{Name: "command line", Allow: []netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}}}
	if *cfgPath != "" {
		if scopes, err = scopesOf(cfg); err != nil {
			return err
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	work, err := os.MkdirTemp("", "reckon-assess-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	coll := collect.New(collect.Options{Scopes: scopes, Ports: *ports, NmapPath: cfg.Active.Nmap, WorkDir: work,
		PhaseTimeout: cfg.Assess.PhaseTimeout, ProbeTimeout: cfg.Assess.ProbeTimeout, VersionIntensity: cfg.Assess.VersionIntensity,
		NoScripts: *noScripts || cfg.Assess.NoScripts, NoProbes: *noProbes || cfg.Assess.NoProbes, Logger: logger})
	started := time.Now()
	facts, evidence, err := coll.Collect(ctx, runner.Target{Addr: addr})
	if err != nil {
		return err
	}
	facts.Role = pol.Role(&facts)
	results := pol.Evaluate(&facts, time.Now().UTC())
	counts, score := runner.Score(results)
	for _, e := range facts.Errors {
		logger.Warn("collector", "problem", e)
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(map[string]any{"target": addr.String(), "policy": pol.Name(), "policy_version": pol.Version(),
			"score": score, "counts": counts, "facts": facts, "results": results, "evidence": evidence})
	default:
		err = printResults(stdout, *format, addr.String(), results, counts, score, len(facts.Ports), pol.Name(), *verbose, time.Since(started))
	}
	if err != nil {
		return err
	}
	if *failed && counts["fail"] > 0 {
		return errChecksFailed
	}
	return nil
}

// assessOnServer queues an asset's assessment on a running server and,
// with wait, prints its results once it ends.
func assessOnServer(ctx context.Context, cf clientFlags, assetID string, wait bool, format string, failed bool, stdout, stderr io.Writer) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/api/v1/assets/" + url.PathEscape(assetID) + "/assessments"
	type list struct {
		Items []runner.Assessment `json:"items"`
	}
	latest := func() (list, error) {
		var l list
		resp, err := c.get(ctx, path+"?limit=20")
		if err != nil {
			return l, err
		}
		if err := json.Unmarshal(resp.body, &l); err != nil {
			return l, fmt.Errorf("the server's answer is not JSON: %v", err)
		}
		return l, nil
	}
	// The newest assessment before the request: the one to wait for comes
	// after it (a job already running when asked is followed by another).
	before, err := latest()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range before.Items {
		seen[a.ID] = true
	}
	resp, err := c.post(ctx, path)
	if err != nil {
		return err
	}
	var q runner.Queued
	if err := json.Unmarshal(resp.body, &q); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	how := "queued"
	if q.Duplicate {
		how = "already queued"
	}
	fmt.Fprintf(stderr, "asset %s: assessment %s as job %d\n", assetID, how, q.JobID)
	if !wait {
		return nil
	}
	var done *runner.Assessment
	for done == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		l, err := latest()
		if err != nil {
			return err
		}
		for i, a := range l.Items {
			if !seen[a.ID] && a.State != "running" && (a.JobID >= q.JobID || a.JobID == 0) {
				done = &l.Items[i]
				break
			}
		}
	}
	resp, err = c.get(ctx, "/api/v1/assessments/"+url.PathEscape(done.ID))
	if err != nil {
		return err
	}
	var as runner.Assessment
	if err := json.Unmarshal(resp.body, &as); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	if as.State != "succeeded" {
		return fmt.Errorf("assessment %s %s: %s", as.ID, as.State, as.Error)
	}
	if format == "json" {
		_, err := stdout.Write(resp.body)
		return err
	}
	printResults(stdout, format, as.Target, as.Results, as.Counts, as.Score, len(as.Facts.Ports), as.Policy, false, 0)
	if failed && as.Counts["fail"] > 0 {
		return errChecksFailed
	}
	return nil
}

// printResults prints check results as a table or jsonl lines.
func printResults(w io.Writer, format, target string, results []assess.Result, counts map[string]int, score *float64, ports int, policyName string, verbose bool, took time.Duration) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, r := range results {
			if err := enc.Encode(assessResult{Target: target, CheckID: r.CheckID, Title: r.Title, Severity: r.Severity,
				Status: r.Status, Evidence: r.Evidence, Error: r.Error}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSEVERITY\tSTATUS\tTITLE\tEVIDENCE")
	for _, r := range results {
		if r.Status == assess.NotApplicable && !verbose {
			continue
		}
		ev := ""
		if r.Evidence != nil {
			b, _ := json.Marshal(r.Evidence)
			ev = string(b)
		}
		if r.Error != "" {
			ev = r.Error
		}
		if len(ev) > 80 {
			ev = ev[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.CheckID, r.Severity, r.Status, r.Title, ev)
	}
	tw.Flush()
	sc := "n/a"
	if score != nil {
		sc = fmt.Sprintf("%.1f", *score)
	}
	tail := policyName
	if took > 0 {
		tail += ", " + took.Round(100*time.Millisecond).String()
	}
	_, err := fmt.Fprintf(w, "\n%s: %d open ports, score %s: %d pass, %d fail, %d error, %d not applicable (%s)\n",
		target, ports, sc, counts["pass"], counts["fail"], counts["error"], counts["not_applicable"], tail)
	return err
}

// errChecksFailed: `reckon assess --fail` found a failing check (exit 3).
var errChecksFailed = errors.New("checks failed")

// assessor is the assessment service serve runs and the policy in force.
type assessor struct {
	svc  *runner.Service
	pol  *policy.Policy
	name string
}

// newAssessor builds the assessment service serve runs, or nil when
// assessment is off.
func newAssessor(cfg config.Config, st *store.Store, inv *inventory.Inventory, logger *slog.Logger) (*assessor, error) {
	if !cfg.AssessEnabled() {
		return nil, nil
	}
	pol, err := loadPolicy(cfg.Assess.Policy, cfg.Assess.CostLimit)
	if err != nil {
		return nil, fmt.Errorf("assess.policy: %w", err)
	}
	if cfg.Assess.Ports != "" {
		if _, err := active.ParsePorts(cfg.Assess.Ports); err != nil {
			return nil, fmt.Errorf("assess.ports: %w", err)
		}
	}
	scopes, err := scopesOf(cfg)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(cfg.DataDir, "assess")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("assess: %w", err)
	}
	name := cfg.Assess.Policy
	if name == "" {
		name = configs.BaselineName
	}
	log := logger.With("component", "assess")
	coll := collect.New(collect.Options{Scopes: scopes, Ports: cfg.Assess.Ports, NmapPath: cfg.Active.Nmap, WorkDir: work,
		PhaseTimeout: cfg.Assess.PhaseTimeout, ProbeTimeout: cfg.Assess.ProbeTimeout, VersionIntensity: cfg.Assess.VersionIntensity,
		NoScripts: cfg.Assess.NoScripts, NoProbes: cfg.Assess.NoProbes, Logger: log})
	log.Info("assessment policy loaded", "policy", name, "checks", len(pol.Checks()), "version", pol.Version())
	svc := runner.New(runner.Options{Store: st, Inventory: inv, Collector: coll, Policy: pol, PolicyName: name, Scopes: scopes,
		Ports: cfg.Assess.Ports, Every: cfg.Assess.Every, EveryByRole: cfg.Assess.EveryByRole, EveryByScope: cfg.Assess.EveryByScope,
		DueEvery: cfg.Assess.DueEvery, JobTimeout: cfg.Assess.JobTimeout, MaxAttempts: cfg.Assess.MaxAttempts,
		AutoQueue: true, Logger: log})
	return &assessor{svc: svc, pol: pol, name: name}, nil
}

// rescueAfter is when a running job counts as lost: past the longest job
// any worker runs (an assessment, a sweep chunk), so a slow job is never
// taken up twice.
func rescueAfter(cfg config.Config) time.Duration {
	r := cfg.Assess.RescueAfter
	if r == 0 {
		r = cfg.Assess.JobTimeout + 5*time.Minute
	}
	return max(r, cfg.Active.ChunkTimeout+5*time.Minute)
}
