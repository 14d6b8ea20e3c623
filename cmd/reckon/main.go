// Command reckon finds every device on a network, reconciles it with the
// CMDB and gets new hosts assessed. It is one binary with subcommands; this
// package only wires the others together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the server: API, job queue and schedules", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"token", "create, list and revoke API tokens (create|list|revoke)", runToken},
		{"assets", "list and show the assets of a running server (list|show)", runAssets},
		{"sensor", "find devices passively: a capture file (--read) or a span port (--interface)", runSensor},
		{"sweep", "sweep targets with nmap once and print the devices (--targets T)", runSweep},
		{"reconcile", "reconcile the inventory with the configured CMDB once and print the verdicts", runReconcile},
		{"assess", "assess one host now against the policy and print each check (--target ADDR)", runAssess},
		{"alerts", "list, show and work the alerts of a running server (list|show|ack|escalate|close)", runAlerts},
		{"report", "reports on the alert process: time to detect, acknowledge, resolve; false-positive and regression rates (NAME; --format table|csv|json)", runReport},
		{"policy", "check policy files: type-check every expression (check FILE...)", runPolicy},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks a command line that is wrong; main exits 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errChecksFailed):
			return 3
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "reckon %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "reckon %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "reckon: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: reckon <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'reckon <command> -h' for a command's flags.")
}

// parseFlags parses args with fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "reckon", versionString())
	return nil
}
