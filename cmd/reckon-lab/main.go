//go:build linux

// Command reckon-lab keeps the standard test network (internal/lab's
// Standard) running for a shell: hosts in network namespaces on a bridge,
// running real services, with a mirror port for the passive sensor, and its
// ground truth in a JSON file. It needs root.
//
//	reckon-lab up     [--name demo] [--state-dir /run/reckon-lab]
//	reckon-lab status [--name demo] [--state-dir /run/reckon-lab]
//	reckon-lab down   [--name demo] [--state-dir /run/reckon-lab]
//
// up is idempotent: a healthy lab is left alone, the remains of a broken one
// are removed and the lab built afresh, and a failed up removes what it
// made. down removes the lab, and succeeds when there is none. status exits
// 0 when the lab is up and healthy, 1 when parts of it are there but it is
// not, and 3 when nothing of it is there. scripts/lab.sh and `make lab-up` /
// `make lab-down` wrap it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// errUsage marks a command line that is wrong; main exits 2 for it.
var errUsage = errors.New("usage")

// errNotHealthy and errAbsent are status's answers that are not errors.
var (
	errNotHealthy = errors.New("lab is not healthy")
	errAbsent     = errors.New("no such lab")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `usage: reckon-lab up|down|status [--name NAME] [--state-dir DIR]

  up      build the standard lab and leave it running (idempotent)
  status  say whether the lab is up and healthy (exit 0), broken (1) or absent (3)
  down    stop the lab's programs and delete its namespaces and files

The ground truth (hosts, MACs, addresses, services) is DIR/NAME.json.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	fs := flag.NewFlagSet("reckon-lab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "demo", "the lab's name, [a-z][a-z0-9]{0,11}: its namespaces are "+lab.Prefix+"NAME-*")
	stateDir := fs.String("state-dir", lab.DefaultStateDir, "where the lab's ground truth (NAME.json) and folder (NAME/) go")
	timeout := fs.Duration("timeout", 2*time.Minute, "up: give up (and clean up) after this long")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "reckon-lab %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	o := lab.PersistOptions{Name: *name, StateDir: *stateDir,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}

	var err error
	switch cmd {
	case "up":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		err = up(ctx, o, stdout)
	case "down":
		err = lab.Down(o)
		if err == nil {
			fmt.Fprintf(stdout, "lab %s is down\n", o.Name)
		}
	case "status":
		err = status(ctx, o, stdout)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "reckon-lab: %v\n\n%s", err, usageText)
		return 2
	case errors.Is(err, errNotHealthy):
		return 1
	case errors.Is(err, errAbsent):
		return 3
	}
	fmt.Fprintf(stderr, "reckon-lab %s: %v\n", cmd, err)
	return 1
}

func up(ctx context.Context, o lab.PersistOptions, stdout io.Writer) error {
	truth, existed, err := lab.Up(ctx, o)
	if err != nil {
		return err
	}
	state := "is up"
	if existed {
		state = "was up already"
	}
	fmt.Fprintf(stdout, "lab %s %s: %s, ground truth %s\n", o.Name, state, truth.Subnet, o.TruthFile())
	printTruth(stdout, truth)
	return nil
}

func status(ctx context.Context, o lab.PersistOptions, stdout io.Writer) error {
	st, err := lab.Status(ctx, o)
	if err != nil {
		return err
	}
	switch {
	case st.Empty():
		fmt.Fprintf(stdout, "lab %s: not there\n", o.Name)
		return errAbsent
	case st.Healthy():
		fmt.Fprintf(stdout, "lab %s: up and healthy: %s, ground truth %s\n", o.Name, st.Truth.Subnet, st.TruthFile)
	default:
		fmt.Fprintf(stdout, "lab %s: NOT healthy (run up to rebuild it, or down)\n", o.Name)
		for _, p := range st.Problems {
			fmt.Fprintf(stdout, "  problem: %s\n", p)
		}
	}
	if st.Truth != nil {
		printTruth(stdout, *st.Truth)
	}
	for _, p := range st.Procs {
		state := "running"
		if !p.Running {
			state = "NOT running"
		}
		fmt.Fprintf(stdout, "  pid %-7d %-18s %s\n", p.PID, p.Name, state)
	}
	if !st.Healthy() {
		return errNotHealthy
	}
	return nil
}

func printTruth(w io.Writer, t lab.Truth) {
	for _, h := range t.Hosts {
		var svcs []string
		for _, s := range h.Services {
			svcs = append(svcs, fmt.Sprintf("%s %s/%d", s.Name, s.Proto, s.Port))
		}
		addr := h.IPv4.String()
		if h.DHCP {
			addr += " (dhcp)"
		}
		fmt.Fprintf(w, "  %-8s %-20s %s  %-14s %s\n", h.Name, addr, h.MAC, h.Hostname, strings.Join(svcs, ", "))
	}
	fmt.Fprintf(w, "  sensor:  ip netns exec %s tcpdump -ni %s\n", t.Sensor.Netns, t.Sensor.Iface)
	if s, ok := t.Host("scanner"); ok {
		fmt.Fprintf(w, "  scanner: ip netns exec %s nmap -sn %s\n", s.Netns, t.Subnet)
	}
}
