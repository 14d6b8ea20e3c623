// Package collect gathers an assessment's facts about one host over the
// network, agentless:
//
//  1. nmap service detection (-sV) over the configured ports;
//  2. the NSE scripts that fit what is open, on those ports only
//     (ssl-enum-ciphers and ssl-cert on TLS, ssh2-enum-algos, ssh-hostkey
//     and ssh-auth-methods on SSH, http-headers and http-methods on HTTP,
//     ftp-anon on FTP, the SMB protocol and signing scripts on SMB, and on
//     SNMP snmp-info with snmp-brute limited to well-known default
//     communities);
//  3. at the same time, native Go probes, faster or more exact where they
//     can be: TLS versions by one handshake pinned to each version and the
//     whole certificate chain, the SSH banner, KEXINIT lists and host keys,
//     the HTTP response headers, TRACE and the HTTP->HTTPS redirect.
//
// Both nmap runs' XML and the probes' results are kept as evidence. Every
// target is checked against the allowed scopes before anything is sent.
package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/nmapfacts"
	"github.com/reckon-dev/reckon/assess/probe"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery/active"
)

// DefaultCommunities are the only SNMP communities ever tried: the
// well-known defaults, never a dictionary.
var DefaultCommunities = []string{"public", "private", "community", "snmp", "manager", "admin", "cisco", "default"}

// Options configure a Collector.
type Options struct {
	// Scopes: a target outside all of them is refused (none: everything
	// is refused).
	Scopes []active.Scope
	// Ports is the default port list ("" nmap's top 1000 TCP ports).
	Ports    string
	NmapPath string // "": found on PATH
	// WorkDir holds nmap's files while it runs ("": the system's temp dir).
	WorkDir string
	// PhaseTimeout bounds each nmap run (default 5 minutes: ssl-enum-ciphers
	// takes close to a minute for a few ports).
	PhaseTimeout time.Duration
	// ProbeTimeout bounds each probe connection (default 5s).
	ProbeTimeout time.Duration
	// VersionIntensity is nmap's --version-intensity (0-9); nil: nmap's
	// default, 7. Lower is faster on services nmap cannot name.
	VersionIntensity *int
	// NoProbes leaves the native probes out; NoScripts the NSE phase.
	NoProbes  bool
	NoScripts bool
	Logger    *slog.Logger
}

// Collector is the network collector; it is safe for concurrent use.
type Collector struct {
	opts Options
	log  *slog.Logger
}

// New returns a Collector.
func New(o Options) *Collector {
	if o.PhaseTimeout <= 0 {
		o.PhaseTimeout = 5 * time.Minute
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{opts: o, log: o.Logger}
}

var _ runner.Collector = (*Collector)(nil)

// ErrOutOfScope: the target is outside every allowed scope.
var ErrOutOfScope = errors.New("target outside the allowed scopes")

func (c *Collector) inScope(a netip.Addr) (*active.Scope, bool) {
	for i := range c.opts.Scopes {
		if c.opts.Scopes[i].Contains(a) {
			return &c.opts.Scopes[i], true
		}
	}
	return nil, false
}

// Collect assesses one target. It returns what it learned, with the
// problems it met in Facts.Errors, and an error only when nothing usable
// came back (nmap could not run, the host did not answer at all).
func (c *Collector) Collect(ctx context.Context, t runner.Target) (assess.Facts, []assess.Evidence, error) {
	sc, ok := c.inScope(t.Addr)
	if !ok {
		return assess.Facts{}, nil, fmt.Errorf("%w: %s", ErrOutOfScope, t.Addr)
	}
	ports := t.Ports
	if ports == "" {
		ports = c.opts.Ports
	}
	var evidence []assess.Evidence
	facts := assess.Facts{Target: t.Addr.String(), AssetID: t.AssetID}

	// Phase 1: what is open, and what runs there.
	ps := active.PortSpec{}
	if ports != "" {
		var err error
		if ps, err = active.ParsePorts(ports); err != nil {
			return facts, nil, err
		}
	}
	f1, ev, err := c.nmap(ctx, sc, t.Addr, ps, nil, nil, "nmap -sV")
	evidence = append(evidence, ev...)
	if err != nil {
		return facts, evidence, err
	}
	facts = f1
	facts.Target, facts.AssetID = t.Addr.String(), t.AssetID

	// Phase 2 (nmap scripts) and 3 (probes) together.
	scripts, args, scriptPorts := plan(facts.Ports)
	var wg sync.WaitGroup
	var f2 assess.Facts
	var ev2 []assess.Evidence
	var err2 error
	if !c.opts.NoScripts && len(scripts) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sps, perr := active.ParsePorts(scriptPorts)
			if perr != nil {
				err2 = perr
				return
			}
			var cleanup func()
			args, cleanup, perr = c.communities(args, scripts)
			if perr != nil {
				err2 = perr
				return
			}
			defer cleanup()
			f2, ev2, err2 = c.nmap(ctx, sc, t.Addr, sps, scripts, args, "nmap -sV --script "+strings.Join(scripts, ","))
		}()
	}
	var pr probeResults
	if !c.opts.NoProbes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr = c.probe(ctx, t, facts.Ports)
		}()
	}
	wg.Wait()
	evidence = append(evidence, ev2...)
	if err2 != nil {
		facts.Errors = append(facts.Errors, "nmap scripts: "+err2.Error())
	} else if len(scripts) > 0 && !c.opts.NoScripts {
		nmapfacts.Merge(&facts, f2)
	}
	pr.mergeInto(&facts)
	if pr.transcript != nil {
		b, _ := json.MarshalIndent(pr.transcript, "", "  ")
		evidence = append(evidence, assess.Evidence{Kind: "probe", Name: "native probes " + t.Addr.String(), Body: string(b)})
	}
	facts.Collected = time.Now().UTC()
	facts.Normalize()
	return facts, evidence, nil
}

// nmap runs one nmap over one address and parses its XML.
func (c *Collector) nmap(ctx context.Context, sc *active.Scope, addr netip.Addr, ports active.PortSpec, scripts []string, args map[string]string, name string) (assess.Facts, []assess.Evidence, error) {
	dir, err := os.MkdirTemp(c.opts.WorkDir, "assess-*")
	if err != nil {
		return assess.Facts{}, nil, err
	}
	defer os.RemoveAll(dir)
	spec := active.Spec{
		Targets: []netip.Prefix{netip.PrefixFrom(addr, addr.BitLen())}, Scope: sc, Ports: ports,
		Discovery: []string{"none"}, ServiceDetection: true, VersionIntensity: c.opts.VersionIntensity, Scripts: scripts, ScriptArgs: args,
		NoDNS: true, MaxRetries: 1, Timeout: c.opts.PhaseTimeout, HostTimeout: c.opts.PhaseTimeout,
		NmapPath: c.opts.NmapPath, WorkDir: dir, Source: "assess",
	}
	res, runErr := active.Run(ctx, spec, nil)
	for _, w := range res.Warnings {
		c.log.Warn("nmap", "target", addr, "warning", w)
	}
	xmlBytes, readErr := os.ReadFile(res.XMLPath)
	if res.XMLPath == "" || readErr != nil {
		if runErr == nil {
			runErr = fmt.Errorf("%s: no XML written", name)
		}
		return assess.Facts{}, nil, fmt.Errorf("%s: %w", name, runErr)
	}
	ev := []assess.Evidence{{Kind: "nmap-xml", Name: name, Body: string(xmlBytes)}}
	hosts, perr := nmapfacts.Parse(bytes.NewReader(xmlBytes))
	if len(hosts) == 0 {
		return assess.Facts{}, ev, fmt.Errorf("%s: %w", name, errors.Join(runErr, perr, errors.New("no host in the output")))
	}
	f := hosts[0]
	if runErr != nil {
		f.Errors = append(f.Errors, name+": "+runErr.Error())
	}
	if perr != nil {
		f.Errors = append(f.Errors, name+": "+perr.Error())
	}
	return f, ev, nil
}

// communities writes the default community list for snmp-brute.
func (c *Collector) communities(args map[string]string, scripts []string) (map[string]string, func(), error) {
	if !slices.Contains(scripts, "snmp-brute") {
		return args, func() {}, nil
	}
	f, err := os.CreateTemp(c.opts.WorkDir, "communities-*.txt")
	if err != nil {
		return args, func() {}, err
	}
	_, err = f.WriteString(strings.Join(DefaultCommunities, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return args, func() {}, err
	}
	out := map[string]string{"snmp-brute.communitiesdb": f.Name()}
	for k, v := range args {
		out[k] = v
	}
	return out, func() { os.Remove(f.Name()) }, nil
}

// Families of services, by nmap's service name.
func isTLS(p assess.Port) bool {
	return p.Tunnel == "ssl" || p.Service == "https" || p.Service == "ssl" || p.Service == "imaps" || p.Service == "pop3s" || p.Service == "ldaps"
}
func isHTTP(p assess.Port) bool {
	return p.Protocol == "tcp" && (p.Service == "http" || p.Service == "https" || p.Service == "http-proxy" || p.Service == "http-alt" || strings.HasPrefix(p.Service, "http-"))
}
func isSMB(p assess.Port) bool { return p.Service == "microsoft-ds" || p.Service == "netbios-ssn" }

// plan picks the NSE scripts that fit the open ports, the ports to run
// them on, and their arguments.
func plan(ports []assess.Port) (scripts []string, args map[string]string, portList string) {
	set := map[string]bool{}
	args = map[string]string{}
	var tcp, udp []int
	for _, p := range ports {
		var s []string
		switch {
		case p.Protocol == "udp" && p.Service == "snmp":
			s = []string{"snmp-info", "snmp-sysdescr", "snmp-brute"}
		case p.Protocol != "tcp":
		case p.Service == "ssh":
			s = []string{"ssh2-enum-algos", "ssh-hostkey", "ssh-auth-methods"}
			args["ssh_hostkey"] = "full"
		case p.Service == "ftp":
			s = []string{"ftp-anon", "banner"}
		case isSMB(p):
			s = []string{"smb-protocols", "smb2-security-mode", "smb-security-mode"}
			if p.Port != 445 && p.Port != 139 {
				args["smbport"] = strconv.Itoa(p.Port)
			}
		}
		if p.Protocol == "tcp" && isTLS(p) {
			s = append(s, "ssl-enum-ciphers", "ssl-cert")
		}
		if isHTTP(p) {
			s = append(s, "http-headers", "http-methods", "http-title", "http-server-header")
		}
		if len(s) == 0 {
			continue
		}
		for _, x := range s {
			set[x] = true
		}
		if p.Protocol == "udp" {
			udp = append(udp, p.Port)
		} else {
			tcp = append(tcp, p.Port)
		}
	}
	for s := range set {
		scripts = append(scripts, s)
	}
	sort.Strings(scripts)
	var parts []string
	if len(tcp) > 0 {
		parts = append(parts, "T:"+joinInts(tcp))
	}
	if len(udp) > 0 {
		parts = append(parts, "U:"+joinInts(udp))
	}
	return scripts, args, strings.Join(parts, ",")
}

func joinInts(xs []int) string {
	slices.Sort(xs)
	xs = slices.Compact(xs)
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// probeResults are the native probes' findings, by port.
type probeResults struct {
	tls        map[int]assess.TLS
	ssh        map[int]assess.SSH
	http       map[int]assess.HTTP
	named      map[int]assess.Port // unnamed TCP ports the probes identified
	errs       []string
	transcript map[string]any
}

func (c *Collector) probe(ctx context.Context, t runner.Target, ports []assess.Port) probeResults {
	pr := probeResults{tls: map[int]assess.TLS{}, ssh: map[int]assess.SSH{}, http: map[int]assess.HTTP{}, named: map[int]assess.Port{}, transcript: map[string]any{}}
	o := probe.Options{Timeout: c.opts.ProbeTimeout}
	if len(t.Hostnames) > 0 {
		o.ServerName = t.Hostnames[0]
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	do := func(name string, fn func() (any, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := fn()
			mu.Lock()
			defer mu.Unlock()
			if v == nil && err == nil {
				return
			}
			if err != nil {
				pr.errs = append(pr.errs, name+": "+err.Error())
				pr.transcript[name] = map[string]string{"error": err.Error()}
				return
			}
			pr.transcript[name] = v
		}()
	}
	for _, p := range ports {
		if p.Protocol != "tcp" {
			continue
		}
		ap := netip.AddrPortFrom(t.Addr, uint16(p.Port))
		tls := isTLS(p)
		if tls {
			do(fmt.Sprintf("tls %s", ap), func() (any, error) {
				return keep(&mu, pr.tls, p.Port)(probe.TLS(ctx, ap, o))
			})
		}
		if p.Service == "ssh" {
			do(fmt.Sprintf("ssh %s", ap), func() (any, error) {
				return keep(&mu, pr.ssh, p.Port)(probe.SSH(ctx, ap, o))
			})
		}
		if isHTTP(p) {
			do(fmt.Sprintf("http %s", ap), func() (any, error) {
				return keep(&mu, pr.http, p.Port)(probe.HTTP(ctx, ap, tls, o))
			})
		}
		// A service nmap could not name (or at a low version intensity
		// did not try to) may still speak TLS or HTTP: ask it.
		if p.Service == "" || p.Service == "unknown" || p.Service == "ssl" && !isHTTP(p) {
			do(fmt.Sprintf("identify %s", ap), func() (any, error) {
				return c.identify(ctx, ap, p, o, &mu, &pr), nil
			})
		}
	}
	wg.Wait()
	sort.Strings(pr.errs)
	if len(pr.transcript) == 0 {
		pr.transcript = nil
	}
	return pr
}

// keep returns a function that files a probe's result under its port when
// it is usable (complete, or incomplete and saying so) and passes both on.
func keep[T any](mu *sync.Mutex, into map[int]T, port int) func(T, error) (any, error) {
	return func(r T, err error) (any, error) {
		if err == nil || errors.Is(err, probe.ErrIncomplete) {
			mu.Lock()
			into[port] = r
			mu.Unlock()
		}
		return r, err
	}
}

// identify probes an unnamed service: TLS first (unless nmap already saw
// it), then HTTP inside or without it. What it learns names the port.
func (c *Collector) identify(ctx context.Context, ap netip.AddrPort, p assess.Port, o probe.Options, mu *sync.Mutex, pr *probeResults) any {
	tlsOn := p.Tunnel == "ssl"
	var out []string
	if !tlsOn {
		if r, err := probe.TLS(ctx, ap, o); err == nil {
			tlsOn = true
			out = append(out, "tls")
			mu.Lock()
			pr.tls[p.Port] = r
			mu.Unlock()
		}
	}
	if r, err := probe.HTTP(ctx, ap, tlsOn, o); err == nil && r.Status > 0 {
		out = append(out, "http")
		mu.Lock()
		pr.http[p.Port] = r
		mu.Unlock()
	}
	if len(out) == 0 {
		return nil
	}
	named := p
	named.Service = "unknown"
	if tlsOn {
		named.Tunnel = "ssl"
	}
	if slices.Contains(out, "http") {
		named.Service = "http"
	}
	mu.Lock()
	pr.named[p.Port] = named
	mu.Unlock()
	return map[string]any{"found": out}
}

// mergeInto folds the probes' findings into nmap's. nmap's cipher grades
// and script output stay; the probes add what nmap does not see (the
// chain, its verification, TLS versions nmap's scripts missed, the SSH
// banner and host key fingerprints, the HTTP status, TRACE, redirects).
func (pr probeResults) mergeInto(f *assess.Facts) {
	f.Errors = append(f.Errors, pr.errs...)
	for i, p := range f.Ports {
		if n, ok := pr.named[p.Port]; ok && p.Protocol == "tcp" {
			f.Ports[i].Service, f.Ports[i].Tunnel = n.Service, n.Tunnel
		}
	}
	for port, p := range pr.tls {
		i := slices.IndexFunc(f.TLS, func(t assess.TLS) bool { return t.Port == port })
		if i < 0 {
			f.TLS = append(f.TLS, p)
			continue
		}
		t := &f.TLS[i]
		for _, v := range p.Versions {
			if !slices.Contains(t.Versions, v) {
				t.Versions = append(t.Versions, v)
			}
		}
		sortVersions(t.Versions)
		if len(t.Ciphers) == 0 {
			t.Ciphers = p.Ciphers
		}
		if len(p.Chain) > 0 {
			t.Chain = p.Chain
		}
		if t.Cert.SHA256 == "" || t.Cert.SHA256 == p.Cert.SHA256 {
			verified, verr := p.Cert.Verified, p.Cert.VerifyError
			if t.Cert.SHA256 == "" {
				t.Cert = p.Cert
			}
			t.Cert.Verified, t.Cert.VerifyError = verified, verr
		}
		t.Source = mergeSource(t.Source, "probe")
	}
	for port, p := range pr.ssh {
		i := slices.IndexFunc(f.SSH, func(s assess.SSH) bool { return s.Port == port })
		if i < 0 {
			f.SSH = append(f.SSH, p)
			continue
		}
		s := &f.SSH[i]
		s.Banner = p.Banner
		if p.Protocol != "" {
			s.Protocol = p.Protocol
		}
		if p.Software != "" {
			s.Software = p.Software
		}
		fill := func(dst *[]string, src []string) {
			if len(*dst) == 0 {
				*dst = src
			}
		}
		fill(&s.Kex, p.Kex)
		fill(&s.HostKeyAlgorithms, p.HostKeyAlgorithms)
		fill(&s.Ciphers, p.Ciphers)
		fill(&s.MACs, p.MACs)
		fill(&s.Compression, p.Compression)
		fill(&s.AuthMethods, p.AuthMethods)
		for _, k := range p.HostKeys {
			j := slices.IndexFunc(s.HostKeys, func(h assess.HostKey) bool { return h.Type == k.Type })
			if j < 0 {
				s.HostKeys = append(s.HostKeys, k)
			} else {
				s.HostKeys[j] = k // SHA256 fingerprints, as ssh-keygen prints them
			}
		}
	}
	for port, p := range pr.http {
		i := slices.IndexFunc(f.HTTP, func(h assess.HTTP) bool { return h.Port == port })
		if i < 0 {
			f.HTTP = append(f.HTTP, p)
			continue
		}
		h := &f.HTTP[i]
		h.Status = p.Status
		h.TLS = h.TLS || p.TLS
		if len(p.Headers) > 0 {
			h.Headers = p.Headers
		}
		if p.Server != "" {
			h.Server = p.Server
		}
		for _, m := range p.Methods {
			if !slices.Contains(h.Methods, m) {
				h.Methods = append(h.Methods, m)
			}
		}
		h.RedirectsToHTTPS = h.RedirectsToHTTPS || p.RedirectsToHTTPS
		if p.Location != "" {
			h.Location = p.Location
		}
		if h.Title == "" {
			h.Title = p.Title
		}
	}
	slices.SortFunc(f.TLS, func(a, b assess.TLS) int { return a.Port - b.Port })
	slices.SortFunc(f.SSH, func(a, b assess.SSH) int { return a.Port - b.Port })
	slices.SortFunc(f.HTTP, func(a, b assess.HTTP) int { return a.Port - b.Port })
}

var versionOrder = []string{"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

func sortVersions(vs []string) {
	slices.SortFunc(vs, func(a, b string) int { return slices.Index(versionOrder, a) - slices.Index(versionOrder, b) })
}

func mergeSource(a, b string) string {
	switch {
	case a == "" || a == b:
		return b
	case strings.Contains(a, b):
		return a
	}
	return a + "+" + b
}

// WorkDirFor returns (and creates) the collector's work directory under a
// data directory.
func WorkDirFor(dataDir string) (string, error) {
	d := filepath.Join(dataDir, "assess")
	return d, os.MkdirAll(d, 0o700)
}
