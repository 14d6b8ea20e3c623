package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func obs(h int, src, mac, ip string, names ...string) discovery.Observation {
	o := discovery.Observation{Source: src, Time: t0.Add(time.Duration(h) * time.Hour), MAC: mac, IP: ip}
	for _, n := range names {
		o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: n})
	}
	if errs := o.Normalize(); len(errs) > 0 {
		panic(fmt.Sprint(errs))
	}
	return o
}

func open(t *testing.T, s *store.Store) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(context.Background())
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	return inv
}

func ingest(t *testing.T, inv *inventory.Inventory, id string, o ...discovery.Observation) inventory.IngestResult {
	t.Helper()
	res, err := inv.Ingest(context.Background(), id, "test", o, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending {
		t.Fatalf("batch %s still pending", id)
	}
	return res
}

func all(t *testing.T, inv *inventory.Inventory, f inventory.Filter) []inventory.Summary {
	t.Helper()
	var out []inventory.Summary
	for range 1000 {
		page, next, err := inv.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
	t.Fatal("too many pages")
	return nil
}

func byMAC(items []inventory.Summary, mac string) []inventory.Summary {
	var out []inventory.Summary
	for _, a := range items {
		if slices.Contains(a.MACs, mac) {
			out = append(out, a)
		}
	}
	return out
}

func TestScenariosStored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		inv := open(t, s)
		A, B := "00:16:3e:00:00:01", "00:16:3e:00:00:02"
		key := "SHA256:multihomed"
		cid := "01:aa:bb:cc:dd:ee:ff"
		phone := func(h int, mac, ip string) discovery.Observation {
			o := obs(h, "passive:dhcp", mac, ip, "pixel-7")
			o.Identifiers.DHCPClientID = cid
			return o
		}
		mh := func(h int, mac, ip string) discovery.Observation {
			o := obs(h, "active:nmap", mac, ip)
			o.Identifiers.SSHHostKey = key
			return o
		}
		junk := obs(0, "active:snmp", "00:16:3e:00:00:20", "10.20.0.40")
		junk.Identifiers.Serial = "To be filled by O.E.M."
		junk2 := obs(0, "active:snmp", "00:16:3e:00:00:21", "10.20.0.41")
		junk2.Identifiers.Serial = "To be filled by O.E.M."
		batch1 := []discovery.Observation{
			obs(0, "passive:dhcp", A, "10.20.0.10", "alpha"), obs(0, "passive:dhcp", B, "10.20.0.11", "bravo"),
			phone(0, "02:11:22:33:44:55", "10.20.0.50"), mh(0, "00:16:3e:00:00:0c", "10.20.0.30"), junk, junk2,
		}
		batch2 := []discovery.Observation{
			obs(24, "passive:dhcp", A, "10.20.0.12", "alpha"), obs(24, "passive:dhcp", B, "10.20.0.10", "bravo"),
			phone(24, "06:aa:bb:cc:dd:01", "10.20.0.51"), phone(48, "0a:12:34:56:78:9a", "10.20.0.52"),
			mh(24, "00:16:3e:00:00:0d", "10.20.0.31"),
		}
		ingest(t, inv, "b1", batch1...)
		ingest(t, inv, "b2", batch2...)
		items := all(t, inv, inventory.Filter{Limit: 2})
		check := func(items []inventory.Summary) {
			t.Helper()
			a, b := byMAC(items, A), byMAC(items, B)
			if len(a) != 1 || len(b) != 1 || !slices.Equal(a[0].IPs, []string{"10.20.0.12"}) || !slices.Contains(b[0].IPs, "10.20.0.10") {
				t.Fatalf("DHCP churn: %+v / %+v", a, b)
			}
			phones := 0
			for _, x := range items {
				if slices.Contains(x.Hostnames, "pixel-7") {
					phones++
				}
			}
			if phones != 1 {
				t.Fatalf("%d assets for the phone", phones)
			}
			if m := byMAC(items, "00:16:3e:00:00:0c"); len(m) != 1 || !slices.Contains(m[0].MACs, "00:16:3e:00:00:0d") {
				t.Fatalf("multi-homed host: %+v", m)
			}
			if len(byMAC(items, "00:16:3e:00:00:20")) != 1 || len(byMAC(items, "00:16:3e:00:00:21")) != 1 ||
				byMAC(items, "00:16:3e:00:00:20")[0].ID == byMAC(items, "00:16:3e:00:00:21")[0].ID {
				t.Fatal("a junk serial merged two devices")
			}
			if len(items) != 6 {
				t.Fatalf("%d assets, want 6", len(items))
			}
		}
		check(items)

		// The same batch twice changes nothing.
		if res := ingest(t, inv, "b2", batch2...); !res.Duplicate || res.Accepted != 0 {
			t.Fatalf("second ingest of b2: %+v", res)
		}
		check(all(t, inv, inventory.Filter{}))

		// A fresh inventory over the same store sees the same assets.
		if err := inv.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		inv2 := open(t, s)
		if inv2.Len() != 6 {
			t.Fatalf("reloaded %d assets", inv2.Len())
		}
		ingest(t, inv2, "b3", obs(30, "active:nmap", "", "10.20.0.10"))
		after := all(t, inv2, inventory.Filter{})
		check(after)
		if b := byMAC(after, B); !b[0].LastSeen.Equal(t0.Add(30 * time.Hour)) {
			t.Fatalf("IP-only sighting of B's IP did not join B after reload: %+v", b[0])
		}

		// Filters.
		if got := all(t, inv2, inventory.Filter{Q: "ALPHA"}); len(got) != 1 || !slices.Contains(got[0].MACs, A) {
			t.Fatalf("free text: %+v", got)
		}
		if got := all(t, inv2, inventory.Filter{Q: "00:16:3e:00:00:0d"}); len(got) != 1 {
			t.Fatalf("free text by MAC: %d", len(got))
		}
		if got := all(t, inv2, inventory.Filter{Subnet: netip.MustParsePrefix("10.20.0.48/28")}); len(got) != 1 || !slices.Contains(got[0].Hostnames, "pixel-7") {
			t.Fatalf("subnet: %+v", got)
		}
		if got := all(t, inv2, inventory.Filter{Source: "active:snmp"}); len(got) != 2 {
			t.Fatalf("source: %d", len(got))
		}
		if got := all(t, inv2, inventory.Filter{SeenSince: t0.Add(47 * time.Hour)}); len(got) != 1 {
			t.Fatalf("seen since: %d", len(got))
		}
		if got := all(t, inv2, inventory.Filter{Status: "managed"}); len(got) != 0 {
			t.Fatalf("status: %d", len(got))
		}
		if _, _, err := inv2.List(context.Background(), inventory.Filter{Cursor: "!!"}); !errors.Is(err, inventory.ErrBadCursor) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

func TestMergeSplitStored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		inv := open(t, s)
		ingest(t, inv, "b1", obs(0, "passive:arp", "00:16:3e:00:00:01", "10.0.0.1", "db1"), obs(0, "passive:arp", "00:16:3e:00:00:02", "10.0.0.2"))
		items := all(t, inv, inventory.Filter{})
		x, y := byMAC(items, "00:16:3e:00:00:01")[0], byMAC(items, "00:16:3e:00:00:02")[0]
		m, err := inv.Merge(context.Background(), x.ID, y.ID, "alice")
		if err != nil || len(m.MACs) != 2 {
			t.Fatalf("merge: %v %+v", err, m)
		}
		var merged *inventory.ErrMerged
		if _, err := inv.Get(context.Background(), y.ID); !errors.As(err, &merged) || merged.Into != x.ID {
			t.Fatalf("Get merged: %v", err)
		}
		d, err := inv.Get(context.Background(), x.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(d.Timeline, func(e inventory.Event) bool { return e.Kind == inventory.EventMerged && e.Detail["by"] == "alice" }) {
			t.Fatalf("timeline lacks the merge by alice: %+v", d.Timeline)
		}
		_, nb, err := inv.Split(context.Background(), x.ID, inventory.SplitSpec{MACs: []string{"00:16:3e:00:00:02"}, IPs: []string{"10.0.0.2"}}, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if got := all(t, inv, inventory.Filter{}); len(got) != 2 {
			t.Fatalf("%d assets after split", len(got))
		}
		if _, err := inv.Get(context.Background(), nb.ID); err != nil {
			t.Fatalf("new asset from split: %v", err)
		}
		if _, err := inv.Get(context.Background(), "no-such-id"); !errors.Is(err, inventory.ErrNotFound) {
			t.Fatalf("Get unknown: %v", err)
		}
	})
}

// A batch accepted but not yet folded into stored assets (a crash between
// the two writes) is replayed when the inventory opens again.
func TestPendingBatchReplayed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		inv := open(t, s)
		ingest(t, inv, "b1", obs(0, "passive:arp", "00:16:3e:00:00:01", "10.0.0.1"))
		_ = inv.Stop(context.Background())
		// Simulate the crash: a batch row written, its assets not.
		if _, err := s.DB.Exec(s.DB.Rebind(`INSERT INTO observation_batches (batch_id, received_at, received_by, count, body) VALUES ('lost', ?, 'test', 1, ?)`),
			store.Now(), `[{"source":"passive:arp","time":"2026-11-21T10:00:00Z","mac":"00:16:3e:00:00:09","ip":"10.0.0.9"}]`); err != nil {
			t.Fatal(err)
		}
		inv2 := open(t, s)
		if got := all(t, inv2, inventory.Filter{}); len(got) != 2 || len(byMAC(got, "00:16:3e:00:00:09")) != 1 {
			t.Fatalf("after replay: %+v", got)
		}
		var pending int
		if err := s.DB.Get(&pending, s.DB.Rebind(`SELECT count(*) FROM observation_batches WHERE applied = ?`), false); err != nil || pending != 0 {
			t.Fatalf("%d batches still pending (%v)", pending, err)
		}
	})
}

func TestMaintainMarksMissingAndPrunes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s,
			Identity: inventory.Options{MissingAfter: 24 * time.Hour}, RawRetention: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ingest(t, inv, "b1", obs(0, "passive:arp", "00:16:3e:00:00:01", "10.0.0.1"))
		if err := inv.Maintain(context.Background(), time.Now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got := all(t, inv, inventory.Filter{})
		if len(got) != 1 || !got[0].Missing {
			t.Fatalf("not marked missing: %+v", got)
		}
		var n int
		if err := s.DB.Get(&n, `SELECT count(*) FROM observation_batches`); err != nil || n != 0 {
			t.Fatalf("%d raw batches left past retention", n)
		}
		d, _ := inv.Get(context.Background(), got[0].ID)
		if !slices.ContainsFunc(d.Timeline, func(e inventory.Event) bool { return e.Kind == inventory.EventNotSeen }) {
			t.Fatal("no not-seen event")
		}
	})
}

// A router MAC carrying 200 routed IPs: one router, and 200 devices once a
// routed sweep sees those IPs.
func TestRouterScenarioStored(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		inv := open(t, s)
		router := "00:1b:21:00:00:fe"
		var passive, sweep []discovery.Observation
		passive = append(passive, obs(0, "passive:arp", router, "10.0.0.1"))
		for i := range 200 {
			ip := fmt.Sprintf("172.16.%d.%d", i/250, 1+i%250)
			passive = append(passive, obs(1, "passive:tcp", router, ip))
			sweep = append(sweep, obs(2, "active:nmap", "", ip))
		}
		ingest(t, inv, "passive", passive...)
		ingest(t, inv, "sweep", sweep...)
		items := all(t, inv, inventory.Filter{})
		if len(items) != 201 {
			t.Fatalf("%d assets, want one router plus 200", len(items))
		}
		r := byMAC(items, router)
		if len(r) != 1 || r[0].DeviceType != "router" || !slices.Equal(r[0].IPs, []string{"10.0.0.1"}) {
			t.Fatalf("router %+v", r)
		}
		if got := all(t, inv, inventory.Filter{Subnet: netip.MustParsePrefix("172.16.0.0/16")}); len(got) != 200 {
			t.Fatalf("%d assets in the routed subnet, want 200", len(got))
		}
	})
}
