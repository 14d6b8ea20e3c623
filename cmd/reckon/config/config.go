// Package config loads reckon's configuration: a YAML file decoded strictly,
// then overridden key by key from RECKON_* environment variables, then
// validated. Only cmd/reckon reads it; it hands each part to the packages it
// wires as their own option structs.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of reckon's configuration. Every key can be set in the
// YAML file or overridden by its environment variable: RECKON_ followed by the
// key's path in upper case, joined by underscores (database.url is
// RECKON_DATABASE_URL).
type Config struct {
	// DataDir holds the embedded SQLite store, the admin token and spools.
	DataDir  string   `yaml:"data_dir"`
	Listen   string   `yaml:"listen"`
	Database Database `yaml:"database"`
	Log      Log      `yaml:"log"`
	API      API      `yaml:"api"`
	Queue    Queue    `yaml:"queue"`
	// Inventory tunes identity resolution and the asset store.
	Inventory Inventory `yaml:"inventory"`
	// Sensors are passive sensors serve runs in-process, each feeding the
	// inventory directly (a remote sensor ships with reckon sensor --server).
	Sensors []Sensor `yaml:"sensors"`
	// Scopes are the networks active probes may reach, by name; every
	// target of a sweep or an assessment must lie inside one.
	Scopes []Scope `yaml:"scopes"`
	// Sweeps are scheduled nmap sweeps (more can be made through the API).
	Sweeps []Sweep `yaml:"sweeps"`
	// Active tunes how sweeps run.
	Active Active `yaml:"active"`
	// CMDB is the CMDB reckon reconciles the inventory with.
	CMDB CMDB `yaml:"cmdb"`
	// Assess configures configuration assessment: the queue of hosts to
	// assess, the collectors and the policy.
	Assess Assess `yaml:"assess"`
	// Alerts configures who gets which alert (the routing tree) and how
	// they are told (receivers: webhooks, syslog).
	Alerts Alerts `yaml:"alerts"`
	// MemoryLimit is a soft limit on the process's memory (1400MiB, 2GiB):
	// the Go runtime collects garbage harder as it nears it. Empty: none
	// (unless GOMEMLIMIT is set).
	MemoryLimit string `yaml:"memory_limit"`
	// ShutdownGrace bounds how long in-flight requests and jobs get to finish
	// on SIGINT/SIGTERM before they are cut off (jobs are handed back).
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Database selects and tunes the store.
type Database struct {
	// URL is a postgres:// URL for PostgreSQL, or empty for the embedded
	// SQLite file in the data directory (sqlite:///path/file.db names another file).
	URL          string        `yaml:"url" secret:"url"`
	MaxOpenConns int           `yaml:"max_open_conns"`
	ConnTimeout  time.Duration `yaml:"connect_timeout"`
	// AutoMigrate applies pending migrations when serve starts.
	AutoMigrate bool `yaml:"auto_migrate"`
}

// Log chooses the log format and level.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// API tunes the HTTP server.
type API struct {
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

// Inventory tunes identity resolution and how observations are kept.
type Inventory struct {
	// LeaseWindow: an IP-only observation joins the device that held the IP
	// most recently, if that was within this window.
	LeaseWindow time.Duration `yaml:"lease_window"`
	// GatewayIPs: a MAC seen with more IPs than this is a router.
	GatewayIPs int `yaml:"gateway_ips"`
	// MissingAfter: an asset no source has seen for this long is flagged.
	MissingAfter time.Duration `yaml:"missing_after"`
	// RawRetention: how long raw observation batches are kept.
	RawRetention time.Duration `yaml:"raw_retention"`
	// FlushInterval: how long changes may wait to be written together.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxBatch: the most observations one POST may carry.
	MaxBatch int `yaml:"max_batch"`
	// MaintainEvery: how often missing assets are flagged and raw batches pruned.
	MaintainEvery time.Duration `yaml:"maintain_every"`
	// ExtraJunkSerials are serials to ignore besides the built-in list.
	ExtraJunkSerials []string `yaml:"extra_junk_serials"`
}

// Sensor is one in-process passive sensor: a live interface, or a capture
// file read once or replayed (for a demo or a lab).
type Sensor struct {
	Name string `yaml:"name"`
	// Interface to capture from (AF_PACKET; root or CAP_NET_RAW), or Read, a
	// pcap/pcapng file.
	Interface string `yaml:"interface"`
	Read      string `yaml:"read"`
	// Replay paces a file by its timestamps; Repeat reads it again this long
	// after it ended (0: once).
	Replay bool          `yaml:"replay"`
	Repeat time.Duration `yaml:"repeat"`
	// BPF is a tcpdump filter expression; Workers the fanout sockets (0: one a CPU).
	BPF     string `yaml:"bpf"`
	Workers int    `yaml:"workers"`
	// LocalNetworks are on-link prefixes (more are learned from DHCP, ARP
	// and router advertisements); Networks the organisation's address space
	// (default: the private ranges).
	LocalNetworks []string `yaml:"local_networks"`
	Networks      []string `yaml:"networks"`
	// Signatures are extra signature files or directories; BuiltinSignatures
	// false replaces the built-in set with them.
	Signatures        []string `yaml:"signatures"`
	BuiltinSignatures *bool    `yaml:"builtin_signatures"`
	// Resight: a fact is reported again after this long (default 5m).
	Resight time.Duration `yaml:"resight"`
}

// Scope is a named set of allowed networks with exclusions.
type Scope struct {
	Name    string   `yaml:"name"`
	Allow   []string `yaml:"allow"`
	Exclude []string `yaml:"exclude"`
}

// Sweep is a scheduled nmap sweep of targets inside a scope.
type Sweep struct {
	Name  string `yaml:"name"`
	Scope string `yaml:"scope"`
	// Targets: IPs, CIDRs, ranges (10.0.0.1-20) and hostnames.
	Targets []string `yaml:"targets"`
	// Ports: top:N, a list, ranges (22,80,8000-8100), T:/U: prefixes.
	Ports string `yaml:"ports"`
	// Discovery: host discovery probes: arp, icmp, syn:PORTS, ack:PORTS, none.
	Discovery        []string `yaml:"discovery"`
	ServiceDetection bool     `yaml:"service_detection"`
	OSDetection      bool     `yaml:"os_detection"`
	// NoDNS skips reverse DNS lookups (nmap -n).
	NoDNS       bool          `yaml:"no_dns"`
	Scripts     []string      `yaml:"scripts"`
	Timing      *int          `yaml:"timing"`
	MaxRate     int           `yaml:"max_rate"`
	MinRate     int           `yaml:"min_rate"`
	HostTimeout time.Duration `yaml:"host_timeout"`
	// Schedule: five-field cron or @every DURATION; empty runs on demand only.
	Schedule string `yaml:"schedule"`
	// InitialRun runs the sweep once as soon as it is defined.
	InitialRun bool `yaml:"initial_run"`
	// ChunkSize: addresses per nmap process (default active.chunk_size).
	ChunkSize int   `yaml:"chunk_size"`
	Enabled   *bool `yaml:"enabled"`
}

// Active tunes how sweeps run.
type Active struct {
	// Workers: chunks scanned at once on this server.
	Workers int `yaml:"workers"`
	// ChunkSize: addresses per chunk unless a sweep says otherwise.
	ChunkSize int `yaml:"chunk_size"`
	// ChunkTimeout bounds one nmap process; what it wrote is kept.
	ChunkTimeout time.Duration `yaml:"chunk_timeout"`
	// Nmap is the nmap binary; empty finds it on PATH.
	Nmap string `yaml:"nmap"`
}

// Alerts configures alert routing and notification.
type Alerts struct {
	Route     AlertRoute      `yaml:"route"`
	Receivers []AlertReceiver `yaml:"receivers"`
	// SensorSilence: a remote sensor that ships nothing for this long
	// raises a health alert.
	SensorSilence time.Duration `yaml:"sensor_silence"`
}

// AlertRoute is a node of the routing tree: alerts matching Match go to
// the first child that matches too (and later ones with continue), else
// to this node's team and receivers; children inherit what they leave empty.
type AlertRoute struct {
	Match          AlertMatch    `yaml:"match"`
	Team           string        `yaml:"team"`
	Receivers      []string      `yaml:"receivers"`
	Continue       bool          `yaml:"continue"`
	GroupBy        []string      `yaml:"group_by"`
	GroupWait      time.Duration `yaml:"group_wait"`
	GroupInterval  time.Duration `yaml:"group_interval"`
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	Routes         []AlertRoute  `yaml:"routes"`
}

// AlertMatch: every field given must hold; values within a field are
// alternatives.
type AlertMatch struct {
	Severity     []string `yaml:"severity"`
	Kind         []string `yaml:"kind"`
	Family       []string `yaml:"family"`
	CheckID      []string `yaml:"check_id"`
	Site         []string `yaml:"site"`
	Network      []string `yaml:"network"`
	BusinessUnit []string `yaml:"business_unit"`
	Owner        []string `yaml:"owner"`
	DeviceType   []string `yaml:"device_type"`
}

// AlertReceiver is where notifications go: a webhook (JSON, signed with
// HMAC-SHA256 when secret_file is set) or syslog (RFC 5424 with a CEF
// payload, for a SIEM).
type AlertReceiver struct {
	Name    string        `yaml:"name"`
	Webhook *AlertWebhook `yaml:"webhook"`
	Syslog  *AlertSyslog  `yaml:"syslog"`
}

// AlertWebhook is a webhook receiver.
type AlertWebhook struct {
	URL        string        `yaml:"url"`
	SecretFile string        `yaml:"secret_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

// AlertSyslog is a syslog receiver.
type AlertSyslog struct {
	Network  string `yaml:"network"` // udp, tcp or tls
	Addr     string `yaml:"addr"`    // host:port
	Facility int    `yaml:"facility"`
}

// Assess configures configuration assessment.
type Assess struct {
	// Enabled: new and changed hosts inside the scopes are assessed at
	// once, and all of them again on schedule (default true; with no
	// scopes nothing is probed anyway).
	Enabled *bool `yaml:"enabled"`
	// Policy is the policy file, relative to this file; empty: the
	// baseline built into the binary (configs/policies/baseline.yaml).
	Policy string `yaml:"policy"`
	// Workers is how many hosts are assessed at once.
	Workers int `yaml:"workers"`
	// Ports are the ports assessed (nmap syntax, T:/U: prefixes; empty:
	// nmap's top 1000 TCP ports).
	Ports string `yaml:"ports"`
	// Every is how often each host is reassessed; EveryByRole and
	// EveryByScope override it by the host's role or scope (the shortest
	// that applies wins). DueEvery is how often reckon looks for hosts due.
	Every        time.Duration            `yaml:"every"`
	EveryByRole  map[string]time.Duration `yaml:"every_by_role"`
	EveryByScope map[string]time.Duration `yaml:"every_by_scope"`
	DueEvery     time.Duration            `yaml:"due_every"`
	// JobTimeout bounds one host's assessment; MaxAttempts counts tries
	// (with backoff between them); RescueAfter is when a job still
	// running counts as held by a dead worker and is taken up again
	// (default: job_timeout + 5m).
	JobTimeout  time.Duration `yaml:"job_timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
	RescueAfter time.Duration `yaml:"rescue_after"`
	// PhaseTimeout bounds each nmap run of an assessment; ProbeTimeout
	// each native probe connection.
	PhaseTimeout time.Duration `yaml:"phase_timeout"`
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// VersionIntensity is nmap's --version-intensity, 0 to 9 (nil: nmap's
	// 7). Services nmap cannot name cost a timeout per probe up to it.
	VersionIntensity *int `yaml:"version_intensity"`
	// NoScripts and NoProbes leave out the NSE scripts or the native Go
	// probes (nmap -sV alone still runs).
	NoScripts bool `yaml:"no_scripts"`
	NoProbes  bool `yaml:"no_probes"`
	// CostLimit bounds one CEL expression's evaluation cost.
	CostLimit uint64 `yaml:"cost_limit"`
	// BacklogLimit: more hosts than this waiting for assessment raise a
	// health alert.
	BacklogLimit int `yaml:"backlog_limit"`
}

// AssessEnabled says whether assessment runs.
func (c Config) AssessEnabled() bool { return c.Assess.Enabled == nil || *c.Assess.Enabled }

// CMDB configures reconciliation with a CMDB.
type CMDB struct {
	// Kind is netbox, servicenow or file; empty means no CMDB.
	Kind string `yaml:"kind"`
	// URL is the CMDB's base URL (netbox, servicenow).
	URL string `yaml:"url"`
	// TokenFile holds the API token (else RECKON_CMDB_TOKEN).
	TokenFile string `yaml:"token_file"`
	// User, with the token as password, selects ServiceNow basic auth.
	User string `yaml:"user"`
	// Path is the CSV or JSON export for kind file, relative to this file.
	Path string `yaml:"path"`
	// StaleAfter: a CI no source has seen for this long is stale.
	StaleAfter time.Duration `yaml:"stale_after"`
	// Every runs a full reconciliation this often (0: only on demand).
	Every time.Duration `yaml:"every"`
	// IncrementalEvery checks this often whether the inventory changed
	// and, if so, runs an incremental reconciliation (0: never).
	IncrementalEvery time.Duration `yaml:"incremental_every"`
	// Timeout bounds one request; RunTimeout one whole read.
	Timeout    time.Duration `yaml:"timeout"`
	RunTimeout time.Duration `yaml:"run_timeout"`
	// PageSize, Concurrency and RateLimit (requests per second, 0 none)
	// tune the reads.
	PageSize    int     `yaml:"page_size"`
	Concurrency int     `yaml:"concurrency"`
	RateLimit   float64 `yaml:"rate_limit"`
	// CAFile adds a CA bundle; Insecure skips TLS verification (warned).
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`
	// ReckonIDField is the CMDB field that holds reckon's asset id.
	ReckonIDField string `yaml:"reckon_id_field"`
	// Tables are the ServiceNow CI tables to read.
	Tables []string `yaml:"tables"`
	// JunkSerials and JunkMACs extend the built-in lists of values that
	// identify no device.
	JunkSerials []string `yaml:"junk_serials"`
	JunkMACs    []string `yaml:"junk_macs"`
	Push        Push     `yaml:"push"`
}

// Push configures writing reckon's view back to the CMDB.
type Push struct {
	Enabled bool `yaml:"enabled"`
	// DryRun (default true) only lists what a push would change.
	DryRun *bool `yaml:"dry_run"`
	// Owns lists fields reckon may overwrite; it fills others only when empty.
	Owns []string `yaml:"owns"`
	// Message is the change message on every write.
	Message string `yaml:"message"`
	// DeviceRole, DeviceType and Site are NetBox slugs for devices reckon
	// creates; Tag marks reckon's records.
	DeviceRole string `yaml:"device_role"`
	DeviceType string `yaml:"device_type"`
	Site       string `yaml:"site"`
	Tag        string `yaml:"tag"`
	// DataSource is ServiceNow's sysparm_data_source for IRE.
	DataSource string `yaml:"data_source"`
}

// Queue tunes the River job queue.
type Queue struct {
	Workers      int           `yaml:"workers"`
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Default returns the configuration used where neither the file nor the
// environment says otherwise.
func Default() Config {
	return Config{
		DataDir: "./reckon-data",
		Listen:  "127.0.0.1:8080",
		Database: Database{
			MaxOpenConns: 20,
			ConnTimeout:  5 * time.Second,
			AutoMigrate:  true,
		},
		Log: Log{Format: "text", Level: "info"},
		API: API{
			MaxBodyBytes:      16 << 20,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
		Queue: Queue{Workers: 10, PollInterval: 200 * time.Millisecond},
		Inventory: Inventory{LeaseWindow: 24 * time.Hour, GatewayIPs: 8, MissingAfter: 7 * 24 * time.Hour,
			RawRetention: 30 * 24 * time.Hour, FlushInterval: 200 * time.Millisecond, MaxBatch: 50000, MaintainEvery: time.Hour},
		ShutdownGrace: 20 * time.Second,
		Active:        Active{Workers: 2, ChunkSize: 256, ChunkTimeout: 2 * time.Hour},
		Alerts:        Alerts{SensorSilence: 15 * time.Minute},
		Assess: Assess{Workers: 2, BacklogLimit: 1000, Every: 24 * time.Hour, DueEvery: 10 * time.Minute, JobTimeout: 15 * time.Minute, MaxAttempts: 3,
			PhaseTimeout: 5 * time.Minute, ProbeTimeout: 5 * time.Second},
		CMDB: CMDB{StaleAfter: 30 * 24 * time.Hour, Every: 24 * time.Hour, IncrementalEvery: 5 * time.Minute, RunTimeout: 30 * time.Minute, Push: Push{Message: "reckon: discovered on the network"}},
	}
}

// Load reads the file at path (none when path is empty), applies the
// environment overrides from env (os.Environ() form) and validates the result.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		if err := decodeStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
		// A sensor's capture and signature files are named relative to the
		// file that names them, so a config works from any directory.
		dir := filepath.Dir(path)
		for i := range cfg.Sensors {
			sn := &cfg.Sensors[i]
			sn.Read = relativeTo(dir, sn.Read)
			for j := range sn.Signatures {
				sn.Signatures[j] = relativeTo(dir, sn.Signatures[j])
			}
		}
		cfg.CMDB.Path = relativeTo(dir, cfg.CMDB.Path)
		cfg.CMDB.TokenFile = relativeTo(dir, cfg.CMDB.TokenFile)
		cfg.CMDB.CAFile = relativeTo(dir, cfg.CMDB.CAFile)
		cfg.Assess.Policy = relativeTo(dir, cfg.Assess.Policy)
		for i := range cfg.Alerts.Receivers {
			if w := cfg.Alerts.Receivers[i].Webhook; w != nil {
				w.SecretFile = relativeTo(dir, w.SecretFile)
			}
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// decodeStrict decodes YAML into out, rejecting keys out does not have. The
// error names every unknown key with its full path and line.
func decodeStrict(data []byte, out any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil // an empty file is all defaults
	}
	if unknown := unknownKeys(root.Content[0], typeOf(out), ""); len(unknown) > 0 {
		return errors.New(strings.Join(unknown, "; "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s", tidyYAMLError(err))
	}
	return nil
}

// tidyYAMLError turns yaml.v3's multi-line type errors into one line.
func tidyYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = strings.ReplaceAll(m, "!!", "")
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Validate checks every key and reports all problems at once, each naming its key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (%v)", c.Listen, err)
	} else if port == "" {
		bad("listen", "%q has no port", c.Listen)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		bad("listen", "%q: host must be an IP address or localhost", c.Listen)
	}
	if _, err := c.Database.Kind(); err != nil {
		bad("database.url", "%v", err)
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.max_open_conns", "must be at least 1, got %d", c.Database.MaxOpenConns)
	}
	if c.Database.ConnTimeout <= 0 {
		bad("database.connect_timeout", "must be positive, got %s", c.Database.ConnTimeout)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.API.MaxBodyBytes < 1024 {
		bad("api.max_body_bytes", "must be at least 1024, got %d", c.API.MaxBodyBytes)
	}
	for key, d := range map[string]time.Duration{
		"api.read_header_timeout": c.API.ReadHeaderTimeout, "api.read_timeout": c.API.ReadTimeout,
		"api.write_timeout": c.API.WriteTimeout, "api.idle_timeout": c.API.IdleTimeout,
		"queue.poll_interval":    c.Queue.PollInterval,
		"inventory.lease_window": c.Inventory.LeaseWindow, "inventory.missing_after": c.Inventory.MissingAfter,
		"inventory.raw_retention": c.Inventory.RawRetention, "inventory.flush_interval": c.Inventory.FlushInterval,
		"inventory.maintain_every": c.Inventory.MaintainEvery,
	} {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	if _, err := ParseBytes(c.MemoryLimit); err != nil {
		bad("memory_limit", "%v", err)
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	if c.Inventory.GatewayIPs < 1 {
		bad("inventory.gateway_ips", "must be at least 1, got %d", c.Inventory.GatewayIPs)
	}
	if c.Inventory.MaxBatch < 1 || c.Inventory.MaxBatch > 1000000 {
		bad("inventory.max_batch", "must be between 1 and 1000000, got %d", c.Inventory.MaxBatch)
	}
	if c.Queue.Workers < 1 || c.Queue.Workers > 10000 {
		bad("queue.workers", "must be between 1 and 10000, got %d", c.Queue.Workers)
	}
	switch c.CMDB.Kind {
	case "":
	case "netbox", "servicenow":
		if u, err := url.Parse(c.CMDB.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("cmdb.url", "%q is not an http(s) URL", c.CMDB.URL)
		}
	case "file":
		if c.CMDB.Path == "" {
			bad("cmdb.path", "required for kind file: the CSV or JSON export")
		}
	default:
		bad("cmdb.kind", "must be netbox, servicenow or file, got %q", c.CMDB.Kind)
	}
	if c.CMDB.StaleAfter <= 0 {
		bad("cmdb.stale_after", "must be positive, got %s", c.CMDB.StaleAfter)
	}
	if c.CMDB.Every < 0 || c.CMDB.IncrementalEvery < 0 || c.CMDB.Timeout < 0 || c.CMDB.RunTimeout < 0 {
		bad("cmdb", "every, incremental_every, timeout and run_timeout must not be negative")
	}
	if c.CMDB.PageSize < 0 || c.CMDB.PageSize > 10000 {
		bad("cmdb.page_size", "must be between 0 (default) and 10000, got %d", c.CMDB.PageSize)
	}
	if c.CMDB.Concurrency < 0 || c.CMDB.RateLimit < 0 {
		bad("cmdb", "concurrency and rate_limit must not be negative")
	}
	a := c.Assess
	if a.Workers < 1 || a.Workers > 1000 {
		bad("assess.workers", "must be between 1 and 1000, got %d", a.Workers)
	}
	for key, d := range map[string]time.Duration{"assess.every": a.Every, "assess.due_every": a.DueEvery,
		"assess.job_timeout": a.JobTimeout, "assess.phase_timeout": a.PhaseTimeout, "assess.probe_timeout": a.ProbeTimeout} {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	for role, d := range a.EveryByRole {
		if d <= 0 {
			bad("assess.every_by_role."+role, "must be positive, got %s", d)
		}
	}
	for sc, d := range a.EveryByScope {
		if d <= 0 {
			bad("assess.every_by_scope."+sc, "must be positive, got %s", d)
		}
	}
	if a.VersionIntensity != nil && (*a.VersionIntensity < 0 || *a.VersionIntensity > 9) {
		bad("assess.version_intensity", "must be between 0 and 9, got %d", *a.VersionIntensity)
	}
	if a.MaxAttempts < 1 || a.MaxAttempts > 25 {
		bad("assess.max_attempts", "must be between 1 and 25, got %d", a.MaxAttempts)
	}
	if a.RescueAfter != 0 && a.RescueAfter <= a.JobTimeout {
		bad("assess.rescue_after", "must exceed assess.job_timeout (%s), got %s", a.JobTimeout, a.RescueAfter)
	}
	receivers := map[string]bool{}
	for i, r := range c.Alerts.Receivers {
		key := fmt.Sprintf("alerts.receivers[%d]", i)
		switch {
		case r.Name == "":
			bad(key+".name", "required")
		case receivers[r.Name]:
			bad(key+".name", "%q names two receivers", r.Name)
		case (r.Webhook == nil) == (r.Syslog == nil):
			bad(key, "give one of webhook or syslog")
		case r.Webhook != nil:
			if u, err := url.Parse(r.Webhook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(key+".webhook.url", "%q is not an http(s) URL", r.Webhook.URL)
			}
		case r.Syslog != nil:
			if r.Syslog.Network != "udp" && r.Syslog.Network != "tcp" && r.Syslog.Network != "tls" {
				bad(key+".syslog.network", "must be udp, tcp or tls, got %q", r.Syslog.Network)
			}
			if _, _, err := net.SplitHostPort(r.Syslog.Addr); err != nil {
				bad(key+".syslog.addr", "want host:port, got %q", r.Syslog.Addr)
			}
		}
		receivers[r.Name] = true
	}
	var checkRoute func(path string, r AlertRoute)
	checkRoute = func(path string, r AlertRoute) {
		for _, n := range r.Receivers {
			if !receivers[n] {
				bad(path+".receivers", "%q is not a receiver under alerts.receivers", n)
			}
		}
		for j, n := range r.Match.Network {
			if _, err := netipParsePrefix(n); err != nil {
				bad(fmt.Sprintf("%s.match.network[%d]", path, j), "%q is not a CIDR prefix", n)
			}
		}
		if r.GroupWait < 0 || r.GroupInterval < 0 || r.RepeatInterval < 0 {
			bad(path, "group_wait, group_interval and repeat_interval must not be negative")
		}
		for j, c := range r.Routes {
			checkRoute(fmt.Sprintf("%s.routes[%d]", path, j), c)
		}
	}
	checkRoute("alerts.route", c.Alerts.Route)
	if c.Alerts.SensorSilence <= 0 {
		bad("alerts.sensor_silence", "must be positive, got %s", c.Alerts.SensorSilence)
	}
	scopes := map[string]bool{}
	for i, sc := range c.Scopes {
		key := fmt.Sprintf("scopes[%d]", i)
		if sc.Name == "" {
			bad(key+".name", "required")
		} else if scopes[sc.Name] {
			bad(key+".name", "%q names two scopes", sc.Name)
		}
		scopes[sc.Name] = true
		if len(sc.Allow) == 0 {
			bad(key+".allow", "required: the networks the scope allows")
		}
		for j, n := range sc.Allow {
			if _, err := netipParsePrefix(n); err != nil {
				bad(fmt.Sprintf("%s.allow[%d]", key, j), "%q is not a CIDR prefix", n)
			}
		}
		for j, n := range sc.Exclude {
			if _, err := netipParsePrefix(n); err != nil {
				bad(fmt.Sprintf("%s.exclude[%d]", key, j), "%q is not a CIDR prefix", n)
			}
		}
	}
	sweeps := map[string]bool{}
	for i, sw := range c.Sweeps {
		key := fmt.Sprintf("sweeps[%d]", i)
		if sw.Name == "" {
			bad(key+".name", "required")
		} else if sweeps[sw.Name] {
			bad(key+".name", "%q names two sweeps", sw.Name)
		}
		sweeps[sw.Name] = true
		if !scopes[sw.Scope] {
			bad(key+".scope", "%q is not a scope defined under scopes", sw.Scope)
		}
		if len(sw.Targets) == 0 {
			bad(key+".targets", "required")
		}
		if sw.Timing != nil && (*sw.Timing < 0 || *sw.Timing > 5) {
			bad(key+".timing", "must be 0-5 (nmap -T0..-T5), got %d", *sw.Timing)
		}
		if sw.ChunkSize < 0 || sw.MaxRate < 0 || sw.MinRate < 0 || sw.HostTimeout < 0 {
			bad(key, "chunk_size, max_rate, min_rate and host_timeout must not be negative")
		}
	}
	if c.Active.Workers < 1 || c.Active.Workers > 64 {
		bad("active.workers", "must be between 1 and 64, got %d", c.Active.Workers)
	}
	if c.Active.ChunkSize < 1 {
		bad("active.chunk_size", "must be at least 1, got %d", c.Active.ChunkSize)
	}
	if c.Active.ChunkTimeout <= 0 {
		bad("active.chunk_timeout", "must be positive, got %s", c.Active.ChunkTimeout)
	}
	names := map[string]bool{}
	for i, sn := range c.Sensors {
		key := fmt.Sprintf("sensors[%d]", i)
		if sn.Name == "" {
			bad(key+".name", "required")
		} else if names[sn.Name] {
			bad(key+".name", "%q names two sensors", sn.Name)
		}
		names[sn.Name] = true
		if (sn.Interface == "") == (sn.Read == "") {
			bad(key, "give exactly one of interface or read")
		}
		if sn.Interface != "" && (sn.Replay || sn.Repeat != 0) {
			bad(key, "replay and repeat apply to read, not interface")
		}
		if sn.Repeat < 0 || sn.Resight < 0 || sn.Workers < 0 {
			bad(key, "repeat, resight and workers must not be negative")
		}
		for j, n := range append(slices.Clone(sn.LocalNetworks), sn.Networks...) {
			if _, err := netipParsePrefix(n); err != nil {
				field := fmt.Sprintf("%s.local_networks[%d]", key, j)
				if j >= len(sn.LocalNetworks) {
					field = fmt.Sprintf("%s.networks[%d]", key, j-len(sn.LocalNetworks))
				}
				bad(field, "%q is not a CIDR prefix", n)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// Map iteration above is unordered; keep messages stable for people and tests.
	slices.Sort(errs)
	return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
}

func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func netipParsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(strings.TrimSpace(s)) }

// StoreKind says which store a database URL selects.
type StoreKind string

const (
	StorePostgres StoreKind = "postgres"
	StoreSQLite   StoreKind = "sqlite"
)

// Kind says which store the URL selects, or why it selects none.
func (d Database) Kind() (StoreKind, error) {
	if d.URL == "" {
		return StoreSQLite, nil
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", redactErr(err, d.URL))
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		if u.Host == "" && u.Query().Get("host") == "" {
			return "", errors.New("a postgres:// URL needs a host")
		}
		return StorePostgres, nil
	case "sqlite":
		if u.Path == "" && u.Opaque == "" {
			return "", errors.New("a sqlite: URL needs a file path (sqlite:///var/lib/reckon/reckon.db)")
		}
		return StoreSQLite, nil
	default:
		return "", fmt.Errorf("unsupported scheme %q: want postgres://, sqlite:// or empty for the embedded SQLite store", u.Scheme)
	}
}

// SQLitePath is the SQLite file the configuration selects.
func (c *Config) SQLitePath() string {
	if c.Database.URL != "" {
		if u, err := url.Parse(c.Database.URL); err == nil && u.Scheme == "sqlite" {
			if u.Opaque != "" {
				return u.Opaque
			}
			return u.Path
		}
	}
	return filepath.Join(c.DataDir, "reckon.db")
}

// redactErr keeps a URL parse error from echoing a password.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil {
		return strings.ReplaceAll(msg, raw, u.Redacted())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return msg
}

// Masked returns a copy fit to print: secrets replaced, URLs without passwords.
func (c Config) Masked() Config {
	maskSecrets(&c)
	return c
}

// YAML renders the configuration as YAML.
func (c Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseBytes reads a size such as 1400MiB, 2GiB, 512MB or 1048576 (bytes);
// empty is 0.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 1400MiB or 2GiB", s)
	}
	return n * mult, nil
}
