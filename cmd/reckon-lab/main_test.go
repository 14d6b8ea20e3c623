//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// TestUpStatusDown runs reckon-lab as a person would, each command a
// process of its own: up builds the lab and exits leaving it running, a
// second up leaves it alone, up rebuilds a broken one (a stray namespace,
// a killed program) and cleans up after itself when it fails, down removes
// everything, twice without complaint.
func TestUpStatusDown(t *testing.T) {
	lab.Require(t, "ip", "tc", "dnsmasq", "dhclient", "ssh-keygen", "nginx", "snmpd", "vsftpd")
	bin := filepath.Join(t.TempDir(), "reckon-lab")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("building reckon-lab: %v\n%s", err, out)
	}
	name := fmt.Sprintf("t%08x", rand.Uint32())
	state := t.TempDir()
	cli := func(want int, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, "--name", name, "--state-dir", state)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("reckon-lab %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, &stdout, &stderr)
		}
		return stdout.String()
	}
	t.Cleanup(func() { exec.Command(bin, "down", "--name", name, "--state-dir", state).Run() })
	o := lab.PersistOptions{Name: name, StateDir: state}

	cli(3, "status")

	// Remains of a lab (a namespace, a program in it): up removes them.
	stray := lab.Prefix + name + "-sw"
	if out, err := exec.Command("ip", "netns", "add", stray).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	sleep := exec.Command("ip", "netns", "exec", stray, "sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	cli(1, "status")
	out := cli(0, "up")
	if !strings.Contains(out, "lab "+name+" is up") {
		t.Errorf("up said:\n%s", out)
	}
	if err := waitExit(sleep, 5*time.Second); err != nil {
		t.Errorf("the stray program: %v", err)
	}
	first := checkUp(t, o)

	// Up again: nothing changes.
	if out := cli(0, "up"); !strings.Contains(out, "was up already") {
		t.Errorf("second up said:\n%s", out)
	}
	if again := checkUp(t, o); !slices.Equal(again, first) {
		t.Errorf("second up changed the programs: %v, then %v", first, again)
	}

	// A program dies: status says so, up rebuilds.
	if err := syscall.Kill(first[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, first[:1])
	if out := cli(1, "status"); !strings.Contains(out, "is not running") {
		t.Errorf("status of a broken lab said:\n%s", out)
	}
	cli(0, "up")
	second := checkUp(t, o)
	if slices.ContainsFunc(second, func(pid int) bool { return slices.Contains(first, pid) }) {
		t.Errorf("rebuilt lab kept programs: %v, then %v", first, second)
	}
	waitGone(t, first)

	cli(0, "down")
	waitGone(t, second)
	checkDown(t, o)
	cli(0, "down")
	cli(3, "status")

	// An up that fails (here: out of time waiting for the leases) leaves
	// nothing behind.
	cli(1, "up", "--timeout", "1ms")
	checkDown(t, o)
}

// checkUp checks the lab is up, with its namespaces and its programs
// running after the up that started them exited, and returns their pids.
func checkUp(t *testing.T, o lab.PersistOptions) []int {
	t.Helper()
	st, err := lab.Status(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy() {
		t.Fatalf("lab not healthy: %q", st.Problems)
	}
	truth, err := lab.ReadGroundTruth(o.TruthFile())
	if err != nil {
		t.Fatal(err)
	}
	if len(truth.Hosts) != 6 {
		t.Errorf("ground truth has %d hosts", len(truth.Hosts))
	}
	if got := namespaces(t, o.Name); len(got) != 8 {
		t.Errorf("namespaces %q, want the switch's, the sensor's and 6 hosts'", got)
	}
	var pids []int
	for _, p := range st.Procs {
		pids = append(pids, p.PID)
	}
	if len(pids) != 8 {
		t.Errorf("programs %+v, want 8", st.Procs)
	}
	slices.Sort(pids)
	return pids
}

// checkDown checks nothing of the lab is left: no namespace, no program
// whose command line names its folder, no files.
func checkDown(t *testing.T, o lab.PersistOptions) {
	t.Helper()
	if got := namespaces(t, o.Name); len(got) > 0 {
		t.Errorf("namespaces left: %q", got)
	}
	if pids := programsUsing(t, o.Dir()); len(pids) > 0 {
		t.Errorf("programs left: %v", pids)
	}
	for _, f := range []string{o.Dir(), o.TruthFile()} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s left", f)
		}
	}
}

func namespaces(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, lab.Prefix+name+"-") {
			got = append(got, f)
		}
	}
	return got
}

// programsUsing lists live processes (not zombies) whose command line
// mentions dir.
func programsUsing(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive says pid is a process and not a zombie: a killed daemon's parent
// is init, which may reap it late.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for slices.ContainsFunc(pids, alive) {
		if time.Now().After(deadline) {
			t.Fatalf("programs %v outlived their lab", slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !alive(p) }))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitExit(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s", d)
	}
}
