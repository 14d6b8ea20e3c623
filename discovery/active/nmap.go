package active

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	nmap "github.com/Ullaakut/nmap/v3"

	"github.com/reckon-dev/reckon/discovery"
)

// ErrNoOutput: nmap ran but left no nmap XML to read (it failed before
// writing any, or was killed first). The error says why it stopped.
var ErrNoOutput = errors.New("nmap produced no XML")

// Spec is one nmap run. Only constants, numbers, canonical port lists and
// file paths reach nmap's argv: the targets go through an -iL file of
// resolved prefixes.
type Spec struct {
	// Targets are resolved and scope-checked (Scope.Resolve, Chunk), all of
	// one family: one nmap run cannot mix IPv4 and IPv6.
	Targets []netip.Prefix
	// Scope, if set, is checked again by Validate: every target inside an
	// Allow and clear of every Exclude.
	Scope *Scope
	Ports PortSpec // zero: nmap's default top 1000 TCP ports
	// Discovery is a subset of "arp" (-PR), "icmp" (-PE), "syn[:PORTS]"
	// (-PS), "ack[:PORTS]" (-PA) and "none" (-Pn, alone); empty is nmap's
	// default. Without privileges arp and icmp are dropped with a warning
	// and syn/ack probes become TCP connects.
	Discovery        []string
	ServiceDetection bool // -sV
	// VersionIntensity is -sV's --version-intensity, 0 (light) to 9; nil:
	// nmap's default (7). A service nmap cannot name is tried with every
	// probe up to the intensity, each waiting for its timeout.
	VersionIntensity *int
	OSDetection      bool // -O, only when privileged (else a warning)
	// Scripts must be on the allowlist (allowedScripts); ScriptArgs keys
	// too (allowedScriptArgs), with plain values.
	Scripts     []string
	ScriptArgs  map[string]string
	Timing      *int          // -T0..-T5; nil: nmap's default (-T3)
	MaxRate     int           // --max-rate packets per second, 0: none
	MinRate     int           // --min-rate packets per second, 0: nmap's own pacing
	HostTimeout time.Duration // --host-timeout, 0: none
	MaxRetries  int           // --max-retries; -1: nmap's default (0 means no retries)
	Timeout     time.Duration // whole-run backstop: nmap is stopped and its XML kept; 0: none
	NoDNS       bool          // -n: no reverse DNS (no dns-ptr hostnames)
	NmapPath    string        // absolute; "": FindNmap
	// WorkDir holds the -iL and -oX files (the caller removes them; with
	// "" Run makes a directory under os.TempDir, the one Result.XMLPath
	// is in).
	WorkDir    string
	Privileged *bool         // nil: Privileges(nmap)
	StatsEvery time.Duration // --stats-every; 0: 2s
	Source     string        // Observation.Source; "": "active:nmap"
	Sensor     string        // Observation.Sensor
}

// allowedScripts are the NSE scripts a run may use: they read what a
// service announces and change nothing. snmp-brute is here only with a
// community list of well-known defaults (the assessment's), and ftp-anon
// only logs in as anonymous.
var allowedScripts = []string{
	"ssh-hostkey", "ssl-cert", "ssl-enum-ciphers", "ssh2-enum-algos", "ssh-auth-methods",
	"http-headers", "http-methods", "http-title", "http-server-header", "http-security-headers",
	"ftp-anon", "banner", "snmp-info", "snmp-sysdescr", "snmp-brute",
	"smb-protocols", "smb2-security-mode", "smb-security-mode",
}

func allowedScript(name string) bool { return slices.Contains(allowedScripts, name) }

// allowedScriptArgs are the --script-args keys a run may pass.
var allowedScriptArgs = []string{"smbport", "ssh_hostkey", "ssh-auth-methods.username", "snmp-brute.communitiesdb", "http.useragent"}

// scriptArgValue: a script argument value that cannot break out of nmap's
// --script-args syntax (no commas, braces, quotes or spaces).
var scriptArgValue = regexp.MustCompile(`^[A-Za-z0-9_./:@+-]{1,256}$`)

// Validate checks a spec without touching the system; Run calls it first.
func (s Spec) Validate() error {
	if len(s.Targets) == 0 {
		return errors.New("spec: no targets")
	}
	for _, p := range s.Targets {
		if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return fmt.Errorf("spec: target %s is not a prefix", p)
		}
		if p.Addr().BitLen() != s.Targets[0].Addr().BitLen() {
			return fmt.Errorf("spec: targets mix IPv4 and IPv6 (%s, %s): one nmap run takes one family; Chunk splits them", s.Targets[0], p)
		}
	}
	if n := Count(s.Targets); n > MaxAddresses {
		return fmt.Errorf("spec: %w: %d addresses, more than %d", ErrTooLarge, n, MaxAddresses)
	}
	if s.Scope != nil {
		if err := s.Scope.contains(s.Targets); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
	}
	if err := s.Ports.check(); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if _, _, err := discoveryOptions(s.Discovery, true); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	for _, sc := range s.Scripts {
		if !allowedScript(sc) {
			return fmt.Errorf("spec: script %q is not allowed (allowed: %s)", sc, strings.Join(allowedScripts, ", "))
		}
	}
	for k, v := range s.ScriptArgs {
		if !slices.Contains(allowedScriptArgs, k) {
			return fmt.Errorf("spec: script argument %q is not allowed (allowed: %s)", k, strings.Join(allowedScriptArgs, ", "))
		}
		if !scriptArgValue.MatchString(v) {
			return fmt.Errorf("spec: script argument %s=%q: only letters, digits and _./:@+- are allowed", k, v)
		}
	}
	switch {
	case s.Timing != nil && (*s.Timing < 0 || *s.Timing > 5):
		return fmt.Errorf("spec: timing %d: want 0 to 5 (-T0..-T5)", *s.Timing)
	case s.VersionIntensity != nil && (*s.VersionIntensity < 0 || *s.VersionIntensity > 9):
		return fmt.Errorf("spec: version intensity %d: want 0 to 9", *s.VersionIntensity)
	case s.MaxRate < 0:
		return fmt.Errorf("spec: max rate %d is negative", s.MaxRate)
	case s.MinRate < 0 || s.MaxRate > 0 && s.MinRate > s.MaxRate:
		return fmt.Errorf("spec: min rate %d: want 0 or more, and at most the max rate", s.MinRate)
	case s.HostTimeout < 0:
		return fmt.Errorf("spec: host timeout %s is negative", s.HostTimeout)
	case s.HostTimeout > 0 && s.HostTimeout < time.Millisecond:
		return fmt.Errorf("spec: host timeout %s is under a millisecond", s.HostTimeout)
	case s.MaxRetries < -1:
		return fmt.Errorf("spec: max retries %d: want -1 (nmap's default) or more", s.MaxRetries)
	case s.Timeout < 0:
		return fmt.Errorf("spec: timeout %s is negative", s.Timeout)
	case s.StatsEvery < 0 || (s.StatsEvery > 0 && s.StatsEvery < 100*time.Millisecond):
		return fmt.Errorf("spec: stats interval %s: want 100ms or more", s.StatsEvery)
	case s.NmapPath != "" && !filepath.IsAbs(s.NmapPath):
		return fmt.Errorf("spec: nmap path %q is not absolute", s.NmapPath)
	}
	return nil
}

// contains checks resolved prefixes against the scope (Validate's second
// look, for specs built without Resolve).
func (s Scope) contains(ps []netip.Prefix) error {
	var allow, exclude []span
	for _, p := range s.Allow {
		allow = append(allow, prefixSpan(p))
	}
	for _, p := range s.Exclude {
		exclude = append(exclude, prefixSpan(p))
	}
	for _, p := range ps {
		sp := prefixSpan(p)
		if len(subtractAll([]span{sp}, allow)) > 0 {
			return &ScopeError{Target: p.String(), Scope: s.Name, Rules: s.Allow}
		}
		for i, e := range exclude {
			if sp.overlaps(e) {
				return &ScopeError{Target: p.String(), Scope: s.Name, Rules: []netip.Prefix{s.Exclude[i]}, Excluded: true}
			}
		}
	}
	return nil
}

// discoveryOptions maps Spec.Discovery to nmap options, and to arguments
// the library has no option for (-PR); unprivileged, the raw-packet methods
// are left out.
func discoveryOptions(methods []string, privileged bool) ([]nmap.Option, []string, error) {
	var (
		opts  []nmap.Option
		extra []string
	)
	none := false
	for _, m := range methods {
		kind, ports, hasPorts := strings.Cut(m, ":")
		switch kind {
		case "none", "arp", "icmp", "syn", "ack":
		default:
			return nil, nil, fmt.Errorf("discovery %q: want arp, icmp, syn[:PORTS], ack[:PORTS] or none", m)
		}
		if hasPorts && kind != "syn" && kind != "ack" {
			return nil, nil, fmt.Errorf("discovery %q: only syn and ack take ports", m)
		}
		var list string
		if hasPorts {
			tcp, _, err := parsePortList(ports, false)
			if err != nil {
				return nil, nil, fmt.Errorf("discovery %q: %w", m, err)
			}
			list = formatRanges(tcp)
		}
		switch kind {
		case "none":
			none = true
			opts = append(opts, nmap.WithSkipHostDiscovery())
		case "arp", "icmp":
			if !privileged {
				continue
			}
			if kind == "icmp" {
				opts = append(opts, nmap.WithICMPEchoDiscovery())
			} else {
				extra = append(extra, "-PR")
			}
		case "syn":
			opts = append(opts, nmap.WithSYNDiscovery(list))
		case "ack":
			opts = append(opts, nmap.WithACKDiscovery(list))
		}
	}
	if none && len(methods) > 1 {
		return nil, nil, errors.New(`discovery: "none" (-Pn) cannot be combined with probes`)
	}
	return opts, extra, nil
}

// Progress is nmap's own estimate, from the --stats-every lines in its XML,
// and the hosts it has finished so far.
type Progress struct {
	Percent   float64       // of the current phase (Task), 0-100
	HostsUp   int           // hosts reported up so far
	HostsDone int           // hosts reported so far, up or down
	Remaining time.Duration // nmap's estimate for the current phase
	Task      string        // the phase: "Ping Scan", "SYN Stealth Scan", "Service scan", ...
}

// Result is what one nmap run found and how it went.
type Result struct {
	Observations []discovery.Observation // one per host up
	HostsUp      int
	HostsDown    int
	// PortsScanned is the canonical list of TCP ports probed (nmap's
	// <scaninfo services>), also set on every observation (except hosts
	// that hit --host-timeout).
	PortsScanned string
	Partial      bool     // nmap did not finish: Observations hold the hosts its XML had in full
	Failure      string   // why it did not finish; "" on success
	Warnings     []string // privileges fallbacks, nmap's warnings, timed-out hosts
	Args         []string // the argv nmap ran with, program first
	XMLPath      string
	Started      time.Time
	Finished     time.Time
}

// Run runs nmap once over spec.Targets. nmap writes XML to a file (-oX) that
// Run reads while nmap runs, reporting progress to onProgress (may be nil;
// called from one goroutine, never after Run returns). The file is the
// truth: when nmap exits non-zero, is killed, or ctx or spec.Timeout ends it
// (SIGTERM to its process group, SIGKILL 5s later), every complete <host> is
// kept and Result says Partial and Failure, with a nil error. Run returns an
// error when nothing could run (a bad spec, no nmap, no work directory) or
// nmap left no XML at all (ErrNoOutput; Result still holds Args and
// Failure).
func Run(ctx context.Context, spec Spec, onProgress func(Progress)) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	path := spec.NmapPath
	if path == "" {
		p, err := FindNmap()
		if err != nil {
			return Result{}, err
		}
		path = p
	} else if _, err := exec.LookPath(path); err != nil {
		return Result{}, fmt.Errorf("%w (%s: %v)", ErrNmapNotFound, path, err)
	}
	privileged, why := false, "forced off by the spec"
	if spec.Privileged != nil {
		privileged = *spec.Privileged
		if privileged {
			why = "forced on by the spec"
		}
	} else {
		privileged, why = Privileges(path)
	}
	dir := spec.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "reckon-nmap-")
		if err != nil {
			return Result{}, fmt.Errorf("nmap work directory: %w", err)
		}
		dir = d
	}
	targets, err := writeTargets(dir, spec.Targets)
	if err != nil {
		return Result{}, err
	}
	xf, err := os.CreateTemp(dir, "nmap-*.xml")
	if err != nil {
		return Result{}, fmt.Errorf("nmap XML file: %w", err)
	}
	defer xf.Close()
	args, warnings, err := spec.args(path, targets, xf.Name(), privileged, why)
	if err != nil {
		return Result{}, err
	}

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeoutCause(ctx, spec.Timeout, errRunTimeout)
	}
	defer cancel()
	cmd := exec.CommandContext(runCtx, path, args...)
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	cmd.Env = nmapEnv()
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return signalGroup(cmd.Process, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second

	res := Result{Args: append([]string{path}, args...), XMLPath: xf.Name(), Warnings: warnings, Started: time.Now()}
	if err := cmd.Start(); err != nil {
		res.Finished = time.Now()
		res.Failure = "nmap did not start: " + err.Error()
		return res, fmt.Errorf("start %s: %w", path, err)
	}
	exited := make(chan struct{})
	p := newParser(spec.Source, spec.Sensor, onProgress)
	parsed := make(chan error, 1)
	go func() { parsed <- p.parse(&follower{f: xf, done: exited, poll: 100 * time.Millisecond}) }()
	waitErr := cmd.Wait()
	if runCtx.Err() != nil {
		_ = signalGroup(cmd.Process, syscall.SIGKILL) // stragglers in its group
	}
	close(exited)
	parseErr := <-parsed
	res.Finished = time.Now()

	out := p.result()
	res.Observations, res.HostsUp, res.HostsDown, res.PortsScanned = out.Observations, out.HostsUp, out.HostsDown, out.PortsScanned
	res.Warnings = append(res.Warnings, out.Warnings...)
	res.Warnings = append(res.Warnings, stderr.warnings()...)
	for i := range res.Observations {
		if res.Observations[i].Time.IsZero() {
			res.Observations[i].Time = res.Finished.UTC()
		}
	}
	res.Failure = failure(ctx, runCtx, spec.Timeout, waitErr, stderr.tail())
	switch {
	case res.Failure != "" && parseErr != nil:
		res.Warnings = append(res.Warnings, parseErr.Error())
	case res.Failure == "" && parseErr != nil:
		res.Failure = "nmap exited but its XML is incomplete: " + parseErr.Error()
	case res.Failure == "":
		res.Failure = out.Failure
	}
	res.Partial = res.Failure != ""
	if !p.sawRun {
		why := res.Failure
		if why == "" {
			why = parseErr.Error()
		}
		return res, fmt.Errorf("%w: %s", ErrNoOutput, why)
	}
	return res, nil
}

var errRunTimeout = errors.New("spec timeout")

// failure says why nmap stopped, or "" if it exited 0 on its own.
func failure(ctx, runCtx context.Context, timeout time.Duration, waitErr error, stderrTail string) string {
	if runCtx.Err() != nil {
		switch {
		case context.Cause(runCtx) == errRunTimeout:
			return fmt.Sprintf("timed out after %s", timeout)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return "timed out: the caller's deadline passed"
		default:
			return fmt.Sprintf("cancelled: %v", context.Cause(ctx))
		}
	}
	if waitErr == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			msg := fmt.Sprintf("nmap was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
			if stderrTail != "" {
				msg += ": " + stderrTail
			}
			return msg
		}
		msg := fmt.Sprintf("exit status %d", ee.ExitCode())
		if stderrTail != "" {
			msg += ": " + stderrTail
		}
		return msg
	}
	return waitErr.Error()
}

// args builds nmap's argv (without the program) with the library's
// options, and says what the privileges took away.
func (s Spec) args(path, targets, xmlPath string, privileged bool, why string) ([]string, []string, error) {
	opts := []nmap.Option{nmap.WithBinaryPath(path), nmap.WithTargetInput(targets)}
	var lost []string
	if privileged {
		opts = append(opts, nmap.WithSYNScan())
	} else {
		opts = append(opts, nmap.WithConnectScan())
		lost = append(lost, "TCP connect scan instead of SYN")
	}
	switch {
	case s.Ports.Top > 0:
		opts = append(opts, nmap.WithMostCommonPorts(s.Ports.Top))
	case s.Ports.List != "":
		tcp, udp := s.Ports.split()
		list := s.Ports.List
		if udp != "" {
			if privileged {
				opts = append(opts, nmap.WithUDPScan())
			} else {
				if tcp == "" {
					return nil, nil, fmt.Errorf("ports %q: UDP scans need raw packets and nmap is not privileged (%s)", s.Ports.List, why)
				}
				list = tcp
				lost = append(lost, "no UDP ports ("+udp+")")
			}
		}
		opts = append(opts, nmap.WithPorts(list))
	}
	disc, extra, err := discoveryOptions(s.Discovery, privileged)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, disc...)
	if !privileged {
		for _, m := range s.Discovery {
			if m == "arp" || m == "icmp" {
				lost = append(lost, "no "+m+" discovery")
			}
		}
	}
	if s.ServiceDetection {
		opts = append(opts, nmap.WithServiceInfo())
		if s.VersionIntensity != nil {
			opts = append(opts, nmap.WithVersionIntensity(int16(*s.VersionIntensity)))
		}
	}
	if s.OSDetection {
		if privileged {
			opts = append(opts, nmap.WithOSDetection())
		} else {
			lost = append(lost, "no OS detection")
		}
	}
	if len(s.Scripts) > 0 {
		opts = append(opts, nmap.WithScripts(s.Scripts...))
	}
	if len(s.ScriptArgs) > 0 {
		opts = append(opts, nmap.WithScriptArguments(maps.Clone(s.ScriptArgs)))
	}
	if s.Timing != nil {
		opts = append(opts, nmap.WithTimingTemplate(nmap.Timing(*s.Timing)))
	}
	if s.MinRate > 0 {
		opts = append(opts, nmap.WithMinRate(s.MinRate))
	}
	if s.MaxRate > 0 {
		opts = append(opts, nmap.WithMaxRate(s.MaxRate))
	}
	if s.HostTimeout > 0 {
		opts = append(opts, nmap.WithHostTimeout(s.HostTimeout))
	}
	if s.MaxRetries >= 0 {
		opts = append(opts, nmap.WithMaxRetries(s.MaxRetries))
	}
	if s.NoDNS {
		opts = append(opts, nmap.WithDisabledDNSResolution())
	}
	if s.Targets[0].Addr().Is6() {
		opts = append(opts, nmap.WithIPv6Scanning())
	}
	switch {
	case !privileged:
		opts = append(opts, nmap.WithUnprivileged())
	case os.Geteuid() != 0:
		opts = append(opts, nmap.WithPrivileged())
	}
	every := s.StatsEvery
	if every == 0 {
		every = 2 * time.Second
	}
	// --stats-every is why the XML carries <taskprogress>; note that
	// --noninteractive would silence it (nmap checks the interval in its
	// keyboard loop), so it is not passed.
	opts = append(opts, nmap.WithStatsEvery(strconv.FormatInt(every.Milliseconds(), 10)+"ms"), nmap.WithNoStylesheet())
	scanner, err := nmap.NewScanner(context.Background(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nmap options: %w", err)
	}
	args := append(append(slices.Clone(scanner.Args()), extra...), "-oX", xmlPath)
	var warnings []string
	if len(lost) > 0 {
		warnings = append(warnings, fmt.Sprintf("not privileged (%s): %s", why, strings.Join(lost, ", ")))
	}
	return args, warnings, nil
}

// writeTargets writes the prefixes nmap reads with -iL, one per line.
func writeTargets(dir string, ps []netip.Prefix) (string, error) {
	f, err := os.CreateTemp(dir, "targets-*.txt")
	if err != nil {
		return "", fmt.Errorf("nmap target file: %w", err)
	}
	var b strings.Builder
	for _, p := range ps {
		p = p.Masked()
		if p.IsSingleIP() {
			b.WriteString(p.Addr().String())
		} else {
			b.WriteString(p.String())
		}
		b.WriteByte('\n')
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return "", fmt.Errorf("nmap target file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("nmap target file: %w", err)
	}
	return f.Name(), nil
}

// nmapEnv is this process's environment without the variables that switch
// nmap's privilege mode behind Run's back.
func nmapEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NMAP_PRIVILEGED=") || strings.HasPrefix(kv, "NMAP_UNPRIVILEGED=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// follower reads a file that nmap is still writing: at its end it waits for
// more until nmap has exited, then reports EOF.
type follower struct {
	f    *os.File
	done <-chan struct{}
	poll time.Duration
}

func (r *follower) Read(b []byte) (int, error) {
	for {
		exited := false
		select {
		case <-r.done:
			exited = true
		default:
		}
		n, err := r.f.Read(b)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if exited {
			return 0, io.EOF
		}
		t := time.NewTimer(r.poll)
		select {
		case <-r.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// tailBuffer keeps the last max bytes written to it: nmap's stderr.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for l := range strings.SplitSeq(string(t.b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// tail is the last few lines of stderr, for a failure message.
func (t *tailBuffer) tail() string {
	ls := t.lines()
	if len(ls) > 3 {
		ls = ls[len(ls)-3:]
	}
	s := strings.Join(ls, " | ")
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}

// warnings are nmap's own "Warning:" lines, at most 10.
func (t *tailBuffer) warnings() []string {
	var out []string
	for _, l := range t.lines() {
		if strings.HasPrefix(l, "Warning:") && len(out) < 10 {
			out = append(out, "nmap: "+l)
		}
	}
	return out
}
