// Command inventoryload fills a reckon database with N distinct devices
// through the inventory's own ingest path (batch log, identity, coalesced
// writes), and marks a share of them unmanaged, for the scale benchmarks
// in bench/inventory-scale.sh.
//
//	go run ./bench/inventoryload -db postgres://... -devices 1000000 -unmanaged 0.3
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
)

func main() {
	url := flag.String("db", os.Getenv("RECKON_DATABASE_URL"), "postgres:// URL (empty: -sqlite file)")
	sqlite := flag.String("sqlite", "", "SQLite file, when -db is empty")
	devices := flag.Int("devices", 1_000_000, "distinct devices")
	batch := flag.Int("batch", 5000, "observations per batch")
	unmanaged := flag.Float64("unmanaged", 0.3, "share of assets marked unmanaged afterwards")
	flag.Parse()
	if err := run(*url, *sqlite, *devices, *batch, *unmanaged); err != nil {
		fmt.Fprintln(os.Stderr, "inventoryload:", err)
		os.Exit(1)
	}
}

func run(url, sqlite string, n, batch int, unmanaged float64) error {
	ctx := context.Background()
	opts := store.Options{Kind: store.Postgres, URL: url, MaxOpenConns: 4}
	if url == "" {
		opts = store.Options{Kind: store.SQLite, Path: sqlite}
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	inv.Start(ctx)
	start := time.Now()
	base := time.Now().Add(-time.Hour).UTC()
	obs := make([]discovery.Observation, 0, batch)
	sent := 0
	flush := func() error {
		if len(obs) == 0 {
			return nil
		}
		if _, err := inv.Ingest(ctx, fmt.Sprintf("load-%d", sent), "inventoryload", obs, false); err != nil {
			return err
		}
		sent += len(obs)
		obs = obs[:0]
		return nil
	}
	for i := range n {
		mac := fmt.Sprintf("00:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		ip := fmt.Sprintf("10.%d.%d.%d", 64+i>>16&0x3f, i>>8&0xff, i&0xff)
		t := base.Add(time.Duration(i) * time.Millisecond)
		o := discovery.Observation{Source: "passive:dhcp", Time: t, MAC: mac, IP: ip,
			Hostnames:   []discovery.Hostname{{Name: fmt.Sprintf("host-%07d", i), How: "dhcp-option-12"}},
			Identifiers: discovery.Identifiers{DHCPClientID: "01:" + mac}}
		o2 := discovery.Observation{Source: "active:nmap", Time: t.Add(time.Second), IP: ip,
			Services: []discovery.Service{{Port: 22, Proto: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1"}}}
		o.Normalize()
		o2.Normalize()
		obs = append(obs, o, o2)
		if len(obs) >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := inv.Stop(ctx); err != nil {
		return err
	}
	fmt.Printf("ingested %d observations of %d devices in %s (%.0f obs/s)\n", sent, n, time.Since(start).Round(time.Millisecond), float64(sent)/time.Since(start).Seconds())
	// A share becomes unmanaged, as reconciliation would mark them; the
	// document carries the status too.
	q := `UPDATE assets SET status = 'unmanaged', doc = replace(doc, '"status":"new"', '"status":"unmanaged"'),
		summary = replace(summary, '"status":"new"', '"status":"unmanaged"')
		WHERE id IN (SELECT id FROM assets ORDER BY id LIMIT ?) `
	res, err := st.DB.ExecContext(ctx, st.DB.Rebind(q), int(float64(n)*unmanaged))
	if err != nil {
		return err
	}
	m, _ := res.RowsAffected()
	fmt.Printf("marked %d assets unmanaged\n", m)
	if st.Kind == store.Postgres {
		_, err = st.DB.ExecContext(ctx, `VACUUM ANALYZE assets`)
	}
	return err
}
