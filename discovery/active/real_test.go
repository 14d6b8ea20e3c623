//go:build unix

package active

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// requireNmap skips without Debian's nmap.
func requireNmap(t *testing.T) string {
	t.Helper()
	p, err := FindNmap()
	if err != nil {
		t.Skipf("%v", err)
	}
	return p
}

// loopbackServices starts an HTTP server (net/http) and a TCP listener that
// greets like OpenSSH, on random ports of 127.0.0.1. The HTTP server
// answers "/" with Go's own 404 page, which nmap 7.93's probes know (a 200
// from a bare handler leaves it guessing for over a minute).
func loopbackServices(t *testing.T) (httpPort, sshPort int) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "reckon test") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
				_, _ = c.Read(make([]byte, 256))
			}()
		}
	}()
	return srv.Listener.Addr().(*net.TCPAddr).Port, ln.Addr().(*net.TCPAddr).Port
}

func TestRealNmapLoopback(t *testing.T) {
	t.Parallel()
	nmapPath := requireNmap(t)
	httpPort, sshPort := loopbackServices(t)
	ports, err := ParsePorts(fmt.Sprintf("%d,%d", httpPort, sshPort))
	if err != nil {
		t.Fatal(err)
	}
	base := Spec{
		Targets:          []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Ports:            ports,
		ServiceDetection: true,
		OSDetection:      true,
		MaxRetries:       -1,
		Timeout:          45 * time.Second,
		NoDNS:            true,
	}
	check := func(t *testing.T, res Result) discovery.Observation {
		t.Helper()
		if res.Partial || res.Failure != "" || len(res.Observations) != 1 || res.HostsUp != 1 {
			xml, _ := os.ReadFile(res.XMLPath)
			t.Fatalf("result %+v\nXML:\n%s", res, xml)
		}
		o := res.Observations[0]
		if o.IP != "127.0.0.1" || o.Source != "active:nmap" || o.PortsScanned != ports.List || res.PortsScanned != ports.List {
			t.Errorf("observation %+v, scanned %q", o, res.PortsScanned)
		}
		if errs := o.Normalize(); len(errs) > 0 {
			t.Errorf("Normalize: %v", errs)
		}
		h := service(t, o, httpPort)
		if h.Proto != "tcp" || h.Name != "http" || h.Product != "Golang net/http server" || !strings.HasPrefix(h.CPE, "cpe:/a:") {
			t.Errorf("HTTP service %+v", h)
		}
		s := service(t, o, sshPort)
		if s.Name != "ssh" || s.Product != "OpenSSH" || !strings.HasPrefix(s.Version, "9.2p1") {
			t.Errorf("SSH service %+v", s)
		}
		return o
	}

	t.Run("privileged", func(t *testing.T) {
		t.Parallel()
		if ok, why := Privileges(nmapPath); !ok {
			t.Skipf("not privileged: %s", why)
		}
		spec := base
		spec.WorkDir = t.TempDir()
		res, err := Run(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("privileged run: %s, %q", res.Finished.Sub(res.Started), res.Args)
		o := check(t, res)
		for _, want := range []string{"-sS", "-sV", "-O"} {
			if !slices.Contains(res.Args, want) {
				t.Errorf("argv %q lacks %s", res.Args, want)
			}
		}
		if slices.Contains(res.Args, "--unprivileged") || len(res.Warnings) > 0 && strings.HasPrefix(res.Warnings[0], "not privileged") {
			t.Errorf("argv %q warnings %q", res.Args, res.Warnings)
		}
		// OS detection on loopback: nmap guesses some Linux, or says it
		// cannot tell (too many matches); either way no bogus confidence.
		for _, h := range o.Hints {
			if h.Confidence <= 0 || h.Confidence > 1 {
				t.Errorf("hint %+v", h)
			}
		}
		t.Logf("OS %q hints %+v", o.OS, o.Hints)
	})

	t.Run("unprivileged", func(t *testing.T) {
		t.Parallel()
		spec := base
		spec.WorkDir = t.TempDir()
		no := false
		spec.Privileged = &no
		res, err := Run(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("unprivileged run: %s, %q", res.Finished.Sub(res.Started), res.Args)
		check(t, res)
		if !slices.Contains(res.Args, "-sT") || !slices.Contains(res.Args, "--unprivileged") || slices.Contains(res.Args, "-O") || slices.Contains(res.Args, "-sS") {
			t.Errorf("argv %q", res.Args)
		}
		if len(res.Warnings) == 0 || res.Warnings[0] != "not privileged (forced off by the spec): TCP connect scan instead of SYN, no OS detection" {
			t.Errorf("warnings %q", res.Warnings)
		}
	})
}

// TestRealNmapProgress runs a rate-limited scan of a few thousand loopback
// ports with --stats-every 1s and expects nmap's own percentages.
func TestRealNmapProgress(t *testing.T) {
	t.Parallel()
	requireNmap(t)
	ports, err := ParsePorts("1-6000")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Targets:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Ports:      ports,
		MaxRate:    2000,
		MaxRetries: -1,
		StatsEvery: time.Second,
		Timeout:    30 * time.Second,
		NoDNS:      true,
		WorkDir:    t.TempDir(),
	}
	var (
		mu   sync.Mutex
		seen []Progress
	)
	res, err := Run(context.Background(), spec, func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, progress %+v", res.Finished.Sub(res.Started), seen)
	if res.Partial || len(res.Observations) != 1 || res.PortsScanned != "1-6000" {
		t.Fatalf("result %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(seen, func(p Progress) bool { return p.Percent > 0 && p.Percent < 100 && p.Task != "" }) {
		t.Errorf("no percentage from nmap in %+v", seen)
	}
	if last := seen[len(seen)-1]; last.HostsUp != 1 || last.HostsDone != 1 {
		t.Errorf("last progress %+v", last)
	}
	if data, err := os.ReadFile(res.XMLPath); err != nil || !strings.Contains(string(data), "<taskprogress") {
		t.Errorf("the XML at %s has no <taskprogress>: %v", res.XMLPath, err)
	}
}
