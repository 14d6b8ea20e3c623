// Command gen builds vendor/oui.tsv.gz, the embedded vendor table, from the
// IEEE registry as Debian's ieee-data package ships it:
//
//	go run ./discovery/vendor/gen /usr/share/ieee-data/oui.csv discovery/vendor/oui.tsv.gz
package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"sort"

	"github.com/reckon-dev/reckon/discovery/vendor"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen OUI.CSV OUT.TSV.GZ")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	entries, err := vendor.ParseCSV(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out, err := os.Create(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	for _, k := range keys {
		fmt.Fprintf(zw, "%s\t%s\n", k, entries[k])
	}
	if err := zw.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := out.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d vendors\n", len(keys))
}
