package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/discovery/vendor"
	"github.com/reckon-dev/reckon/inventory"
)

// runSensor reads a capture file and prints the devices in it, folding the
// sensor's observations through the same identity engine as the server.
func runSensor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensor", flag.ContinueOnError)
	read := fs.String("read", "", "a pcap or pcapng capture to read (the format is found from its magic bytes)")
	format := fs.String("format", "table", "jsonl (one asset per line) or table")
	name := fs.String("sensor", "sensor", "the sensor's name in observations")
	ouiFile := fs.String("oui", "", "a newer IEEE oui.csv to name vendors with (default: the embedded table)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *read == "" {
		return fmt.Errorf("%w: --read FILE is required (live capture from an interface comes in a later release)", errUsage)
	}
	if *format != "jsonl" && *format != "table" {
		return fmt.Errorf("%w: --format must be jsonl or table", errUsage)
	}
	vendors := vendor.Default()
	if *ouiFile != "" {
		t, err := vendor.Load(*ouiFile)
		if err != nil {
			return fmt.Errorf("--oui: %w", err)
		}
		vendors = t
	}
	f, err := passive.OpenFile(*read)
	if err != nil {
		return err
	}
	defer f.Close()
	engine := inventory.NewEngine(inventory.Options{})
	bad := 0
	dec := passive.NewDecoder(passive.Options{Sensor: *name, Segment: *read, Vendors: vendors}, func(o discovery.Observation) {
		if errs := o.Normalize(); len(errs) > 0 {
			bad++
			return
		}
		engine.Apply(&o)
	})
	var readErr error
	for {
		if ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
		data, ci, link, err := f.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		dec.Packet(data, ci, link)
	}
	var assets []inventory.Summary
	engine.Assets(func(a *inventory.Asset) { assets = append(assets, a.Summary()) })
	slices.SortFunc(assets, func(a, b inventory.Summary) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if err := printDevices(stdout, *format, assets); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %d packets, %d observations, %d devices", *read, dec.Stats.Packets, dec.Stats.Observations, len(assets))
	if s := dec.Stats.ErrorSummary(); s != "" {
		fmt.Fprintf(stderr, "; decode errors: %s", s)
	}
	fmt.Fprintln(stderr)
	if readErr != nil {
		return fmt.Errorf("%s: reading stopped after %d packets: %w (the devices above are those found before)", *read, dec.Stats.Packets, readErr)
	}
	return nil
}

func printDevices(w io.Writer, format string, assets []inventory.Summary) error {
	if format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, a := range assets {
			if err := enc.Encode(a); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACS\tIPS\tHOSTNAMES\tVENDOR\tOS\tSOURCES\tLAST SEEN")
	dash := func(v []string) string {
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	}
	for _, a := range assets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(a.MACs), dash(a.IPs), dash(a.Hostnames), dashS(a.Vendor), dashS(a.OS),
			dash(a.Sources), a.LastSeen.Format(time.RFC3339))
	}
	return tw.Flush()
}

func dashS(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
