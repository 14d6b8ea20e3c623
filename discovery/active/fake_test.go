//go:build unix

package active

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNmap writes a shell script that plays nmap at the binary boundary: it
// records its argv, finds the -oX path it was given and writes the first
// `cut` bytes of fixture there (all of it if cut < 0), then does `then`
// ("exit 0", "kill -9 $$", "sleep 30", ...; "$rest" names a file with the
// bytes after the cut). It returns the script's path and the file its argv
// lands in.
func fakeNmap(t *testing.T, fixtureName string, cut int, then string) (path, argvFile string) {
	t.Helper()
	dir := t.TempDir()
	data := fixture(t, fixtureName)
	if cut < 0 {
		cut = len(data)
	}
	xmlFile, restFile := filepath.Join(dir, "recorded.xml"), filepath.Join(dir, "rest.xml")
	if err := os.WriteFile(xmlFile, data[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(restFile, data[cut:], 0o644); err != nil {
		t.Fatal(err)
	}
	argvFile = filepath.Join(dir, "argv")
	script := fmt.Sprintf(`#!/bin/sh
rest='%s'
printf '%%s\n' "$@" > '%s'
out=""
prev=""
for a in "$@"; do
	if [ "$prev" = "-oX" ]; then out="$a"; fi
	prev="$a"
done
[ -n "$out" ] || { echo "fake nmap: no -oX" >&2; exit 2; }
cat '%s' > "$out"
%s
`, restFile, argvFile, xmlFile, then)
	path = filepath.Join(dir, "nmap")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, argvFile
}

func readArgv(t *testing.T, argvFile string) []string {
	t.Helper()
	b, err := os.ReadFile(argvFile)
	if err != nil {
		t.Fatalf("the fake nmap did not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func argAfter(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// loopbackSpec resolves user strings the way the server will, in a
// loopback-only scope.
func loopbackSpec(t *testing.T, nmapPath string, raws ...string) Spec {
	t.Helper()
	scope, err := ParseScope("lab", []string{"127.0.0.0/8"}, []string{"127.0.0.9/32"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := scope.Resolve(context.Background(), targets(t, raws...), nil)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := ParsePorts("22,18022,18080")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	return Spec{Targets: ps, Scope: &scope, Ports: ports, NmapPath: nmapPath, WorkDir: t.TempDir(), Privileged: &no, MaxRetries: -1, Sensor: "fake"}
}

func TestRunFakeNmap(t *testing.T) {
	t.Parallel()
	full := fixture(t, "loopback-multi.xml")
	ends := hostEnds(full)
	// Half-way: two hosts complete, the third cut in its middle.
	half := ends[1] + (ends[2]-ends[1])/2

	t.Run("exit 0", func(t *testing.T) {
		t.Parallel()
		path, argvFile := fakeNmap(t, "loopback-multi.xml", -1, "exit 0")
		spec := loopbackSpec(t, path, "127.0.0.1-3")
		res, err := Run(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Partial || res.Failure != "" || len(res.Observations) != 3 || res.HostsUp != 3 {
			t.Fatalf("result %+v", res)
		}
		if res.PortsScanned != "22,18022,18080" || res.Observations[1].PortsScanned != "22,18022,18080" || res.Observations[1].Sensor != "fake" {
			t.Errorf("ports scanned %q, observation %+v", res.PortsScanned, res.Observations[1])
		}
		args := readArgv(t, argvFile)
		if !slices.Equal(res.Args[1:], args) || res.Args[0] != path {
			t.Errorf("Result.Args %q, the fake got %q", res.Args, args)
		}
		// Targets reach nmap through -iL only, as resolved prefixes.
		il := argAfter(args, "-iL")
		got, err := os.ReadFile(il)
		if err != nil || string(got) != "127.0.0.1\n127.0.0.2/31\n" {
			t.Errorf("-iL %q holds %q, %v", il, got, err)
		}
		if ox := argAfter(args, "-oX"); ox != res.XMLPath || filepath.Dir(ox) != spec.WorkDir {
			t.Errorf("-oX %q, XMLPath %q, WorkDir %q", ox, res.XMLPath, spec.WorkDir)
		}
		for _, a := range args {
			if strings.Contains(a, "127.0.0") {
				t.Errorf("a target in argv: %q", a)
			}
		}
		for _, want := range []string{"-sT", "--unprivileged", "-p", "22,18022,18080", "--stats-every", "2000ms", "--no-stylesheet"} {
			if !slices.Contains(args, want) {
				t.Errorf("argv %q lacks %q", args, want)
			}
		}
		if len(res.Warnings) == 0 || !strings.HasPrefix(res.Warnings[0], "not privileged (forced off by the spec): TCP connect scan instead of SYN") {
			t.Errorf("warnings %q", res.Warnings)
		}
	})

	t.Run("killed half-way", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", half, "kill -9 $$")
		res, err := Run(context.Background(), loopbackSpec(t, path, "127.0.0.1-3"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Partial || !strings.HasPrefix(res.Failure, "nmap was killed by signal 9") {
			t.Errorf("partial %v failure %q", res.Partial, res.Failure)
		}
		if len(res.Observations) != 2 || res.Observations[0].IP != "127.0.0.1" || res.Observations[1].IP != "127.0.0.2" || res.HostsUp != 2 {
			t.Errorf("kept %d observations (%d up), want the 2 complete hosts", len(res.Observations), res.HostsUp)
		}
		if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "after 2 complete hosts") }) {
			t.Errorf("warnings %q do not say where the XML stopped", res.Warnings)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", half, "sleep 30")
		spec := loopbackSpec(t, path, "127.0.0.1-3")
		spec.Timeout = time.Second
		start := time.Now()
		res, err := Run(context.Background(), spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("took %s: the process group was not stopped", took)
		}
		if !res.Partial || res.Failure != "timed out after 1s" || len(res.Observations) != 2 {
			t.Errorf("partial %v failure %q, %d observations", res.Partial, res.Failure, len(res.Observations))
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", half, "sleep 30")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		res, err := Run(ctx, loopbackSpec(t, path, "127.0.0.1-3"), nil)
		if err != nil || !res.Partial || res.Failure != "cancelled: context canceled" || len(res.Observations) != 2 {
			t.Errorf("%v: partial %v failure %q, %d observations", err, res.Partial, res.Failure, len(res.Observations))
		}
	})

	t.Run("exit 1 with stderr", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", ends[0]+10, `echo "Warning: something odd" >&2; echo "nmap: fatal thing" >&2; exit 1`)
		res, err := Run(context.Background(), loopbackSpec(t, path, "127.0.0.1-3"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Failure != "exit status 1: Warning: something odd | nmap: fatal thing" || len(res.Observations) != 1 {
			t.Errorf("failure %q, %d observations", res.Failure, len(res.Observations))
		}
		if !slices.Contains(res.Warnings, "nmap: Warning: something odd") {
			t.Errorf("warnings %q", res.Warnings)
		}
	})

	t.Run("exit 0 with a cut file", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", half, "exit 0")
		res, err := Run(context.Background(), loopbackSpec(t, path, "127.0.0.1-3"), nil)
		if err != nil || !res.Partial || !strings.HasPrefix(res.Failure, "nmap exited but its XML is incomplete: nmap XML is cut off") {
			t.Errorf("%v: partial %v failure %q", err, res.Partial, res.Failure)
		}
	})

	t.Run("no XML at all", func(t *testing.T) {
		t.Parallel()
		path, _ := fakeNmap(t, "loopback-multi.xml", 0, `echo "nmap: bad things" >&2; exit 1`)
		res, err := Run(context.Background(), loopbackSpec(t, path, "127.0.0.1-3"), nil)
		if !errors.Is(err, ErrNoOutput) || !strings.Contains(err.Error(), "exit status 1: nmap: bad things") || res.Failure == "" || len(res.Args) == 0 {
			t.Errorf("error %v, result %+v", err, res)
		}
	})

	t.Run("progress while it writes", func(t *testing.T) {
		t.Parallel()
		// The fake writes the head (with <taskprogress>) and one host, waits,
		// then the rest: Run reads the file as it grows.
		path, _ := fakeNmap(t, "loopback-multi.xml", ends[0], `sleep 0.5; cat "$rest" >> "$out"`)
		var mu sync.Mutex
		var seen []Progress
		res, err := Run(context.Background(), loopbackSpec(t, path, "127.0.0.1-3"), func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, p)
		})
		if err != nil || res.Partial || len(res.Observations) != 3 {
			t.Fatalf("%v: %+v", err, res)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 4 || seen[0] != (Progress{Percent: 50, Remaining: 6 * time.Second, Task: "Service scan"}) || seen[len(seen)-1].HostsUp != 3 {
			t.Errorf("progress %+v", seen)
		}
	})
}

// TestHostileInputNeverRuns feeds hostile strings through the path the
// server takes (ParseTarget, Resolve, ParsePorts, Validate) with a fake nmap
// that records whether it ran: it must not.
func TestHostileInputNeverRuns(t *testing.T) {
	t.Parallel()
	path, argvFile := fakeNmap(t, "loopback-multi.xml", -1, "exit 0")
	scope, err := ParseScope("lab", []string{"127.0.0.0/8"}, []string{"127.0.0.9/32"})
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(raws []string, ports string) error {
		var ts []Target
		for _, r := range raws {
			tg, err := ParseTarget(r)
			if err != nil {
				return err
			}
			ts = append(ts, tg)
		}
		ps, err := scope.Resolve(context.Background(), ts, nil)
		if err != nil {
			return err
		}
		p, err := ParsePorts(ports)
		if err != nil {
			return err
		}
		_, err = Run(context.Background(), Spec{Targets: ps, Ports: p, NmapPath: path, WorkDir: t.TempDir(), MaxRetries: -1}, nil)
		return err
	}
	for _, c := range []struct {
		targets []string
		ports   string
	}{
		{[]string{"-oN/tmp/x"}, "22"},
		{[]string{"--script=broadcast"}, "22"},
		{[]string{"127.0.0.1 -oN /tmp/x"}, "22"},
		{[]string{"127.0.0.1", "-iR"}, "22"},
		{[]string{"10.0.0.0/8"}, "22"},
		{[]string{"127.0.0.9"}, "22"},
		{[]string{"$(reboot)"}, "22"},
		{[]string{";ls"}, "22"},
		{[]string{"a..b"}, "22"},
		{[]string{"1.2.3.4/33"}, "22"},
		{[]string{"127.0.0.1"}, "22 -oN /tmp/x"},
		{[]string{"127.0.0.1"}, "--script=broadcast"},
		{[]string{"127.0.0.1"}, "top:10 -sU"},
	} {
		err := sweep(c.targets, c.ports)
		t.Logf("%q %q: %v", c.targets, c.ports, err)
		if err == nil {
			t.Errorf("targets %q ports %q: accepted", c.targets, c.ports)
		}
	}
	// Specs built by hand are checked too.
	one := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	timing := 9
	for i, spec := range []Spec{
		{},
		{Targets: one, Ports: PortSpec{List: "-oN /tmp/x"}},
		{Targets: one, Scripts: []string{"broadcast-dhcp-discover"}},
		{Targets: one, Scripts: []string{"ssh-hostkey,vuln"}},
		{Targets: one, Discovery: []string{"syn:22 -oN"}},
		{Targets: one, Discovery: []string{"udp:53"}},
		{Targets: one, Discovery: []string{"none", "icmp"}},
		{Targets: one, Timing: &timing},
		{Targets: one, MaxRetries: -2},
		{Targets: one, NmapPath: "nmap"},
		{Targets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}},
		{Targets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Scope: &scope},
		{Targets: []netip.Prefix{netip.MustParsePrefix("127.0.0.8/30")}, Scope: &scope},
	} {
		spec.NmapPath, spec.WorkDir = orDefault(spec.NmapPath, path), t.TempDir()
		_, err := Run(context.Background(), spec, nil)
		t.Logf("spec %d: %v", i, err)
		if err == nil {
			t.Errorf("spec %d %+v: accepted", i, spec)
		}
	}
	if _, err := os.Stat(argvFile); err == nil {
		t.Fatalf("the fake nmap ran: %q", readArgv(t, argvFile))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestMissingNmap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := FindNmap()
	if !errors.Is(err, ErrNmapNotFound) || err.Error() != "nmap not found: install Debian's nmap package (apt-get install nmap)" {
		t.Errorf("FindNmap: %v", err)
	}
	spec := Spec{Targets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxRetries: -1, WorkDir: t.TempDir()}
	if _, err := Run(context.Background(), spec, nil); !errors.Is(err, ErrNmapNotFound) {
		t.Errorf("Run without nmap: %v", err)
	}
	spec.NmapPath = "/nonexistent/nmap"
	if _, err := Run(context.Background(), spec, nil); !errors.Is(err, ErrNmapNotFound) || !strings.Contains(err.Error(), "/nonexistent/nmap") {
		t.Errorf("Run with a missing NmapPath: %v", err)
	}
}
