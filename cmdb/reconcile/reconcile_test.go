package reconcile

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func run(t *testing.T, assets []Asset, cis []cmdb.CI) Report {
	t.Helper()
	return Reconcile(assets, cis, Options{Now: now, StaleAfter: 7 * 24 * time.Hour})
}

func want(t *testing.T, r Result, verdict, rung string, cis ...int) {
	t.Helper()
	if r.Verdict != verdict || r.Rung != rung || !slices.Equal(r.CIs, cis) && !(len(cis) == 0 && len(r.CIs) == 0) {
		t.Fatalf("%s: got verdict %q rung %q CIs %v (%s), want %q %q %v", r.AssetID, r.Verdict, r.Rung, r.CIs, r.Reason, verdict, rung, cis)
	}
	if r.Reason == "" {
		t.Fatalf("%s: empty reason", r.AssetID)
	}
}

func TestEachRungAlone(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", ReckonID: "a-reckon"},
		{ID: "ci:1", Serial: "SRV-1"},
		{ID: "ci:2", AssetTag: "TAG-9"},
		{ID: "ci:3", MACs: []string{"00:11:22:33:44:55"}},
		{ID: "ci:4", Name: "web1"},
		{ID: "ci:5", IPs: []netip.Addr{ip("10.0.0.5"), ip("10.0.0.6")}, Static: []bool{false, true}},
	}
	assets := []Asset{
		{ID: "a-reckon"},
		{ID: "a-serial", Serials: []string{" srv-1 "}},
		{ID: "a-tag", Serials: []string{"tag-9"}},
		{ID: "a-mac", MACs: []string{"00-11-22-33-44-55"}},
		{ID: "a-name", Hostnames: []string{"WEB1."}},
		{ID: "a-ip", IPs: []netip.Addr{ip("10.0.0.6")}},
		{ID: "a-dhcp", IPs: []netip.Addr{ip("10.0.0.5")}, Hostnames: []string{"x"}},
	}
	rep := run(t, assets, cis)
	want(t, rep.Results[0], Managed, RungReckonID, 0)
	want(t, rep.Results[1], Managed, RungSerial, 1)
	want(t, rep.Results[2], Managed, RungSerial, 2)
	want(t, rep.Results[3], Managed, RungMAC, 3)
	want(t, rep.Results[4], Managed, RungHostnameSite, 4)
	want(t, rep.Results[5], Managed, RungStaticIP, 5)
	// A dynamic IP in the CMDB never matches.
	want(t, rep.Results[6], Unmanaged, "")
}

func TestRungOrder(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", Serial: "SRV-1", Name: "h"},
		{ID: "ci:1", ReckonID: "a1", Serial: "SRV-2", Name: "h"},
		{ID: "ci:2", MACs: []string{"00:11:22:33:44:55"}, Name: "h"},
	}
	// The reckon id decides over a serial on another CI; the serial
	// disagrees with the CI the id names, so it is a conflict naming it.
	rep := run(t, []Asset{{ID: "a1", Serials: []string{"SRV-1"}, Hostnames: []string{"h"}}}, cis)
	want(t, rep.Results[0], Conflict, RungReckonID, 1)
	if !slices.Equal(rep.Results[0].Disagree, []string{"serial"}) {
		t.Fatalf("disagree %v", rep.Results[0].Disagree)
	}
	// Serial beats MAC.
	rep = run(t, []Asset{{ID: "a2", Serials: []string{"SRV-1"}, MACs: []string{"00:11:22:33:44:55"}}}, cis)
	want(t, rep.Results[0], Managed, RungSerial, 0) // ci:0 has no MACs to disagree
	// MAC beats hostname (three CIs named h).
	rep = run(t, []Asset{{ID: "a3", MACs: []string{"00:11:22:33:44:55"}, Hostnames: []string{"h"}}}, cis)
	want(t, rep.Results[0], Managed, RungMAC, 2)
}

func TestJunkNeverMatches(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", Serial: "To Be Filled By O.E.M.", MACs: []string{"00:00:5e:00:01:07"}},
		{ID: "ci:1", Serial: "000000", MACs: []string{"02:aa:bb:cc:dd:ee", "00:50:56:c0:00:08"}},
		{ID: "ci:2", Serial: "CUSTOMJUNK", MACs: []string{"01:00:5e:00:00:01"}},
	}
	assets := []Asset{
		{ID: "a0", Serials: []string{"to be filled by o.e.m."}, MACs: []string{"00:00:5E:00:01:07"}},
		{ID: "a1", Serials: []string{"000000"}, MACs: []string{"02:aa:bb:cc:dd:ee", "00:50:56:c0:00:08"}, IPs: []netip.Addr{ip("10.1.1.1")}},
		{ID: "a2", Serials: []string{"customjunk"}, MACs: []string{"01:00:5e:00:00:01"}},
	}
	rep := Reconcile(assets, cis, Options{Now: now, JunkSerials: []string{"CustomJunk"}})
	for _, r := range rep.Results {
		// Nothing valid to identify them: unknown, not unmanaged.
		want(t, r, Unknown, "")
	}
	if !strings.Contains(rep.Results[0].Reason, "no valid serial") {
		t.Fatalf("reason %q", rep.Results[0].Reason)
	}
}

func TestDHCPChurnAndGateway(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", Name: "laptop1", MACs: []string{"00:11:22:33:44:01"}, IPs: []netip.Addr{ip("10.0.0.9")}, Static: []bool{false}},
		{ID: "ci:1", Name: "printer", IPs: []netip.Addr{ip("10.0.0.7")}, Static: []bool{true}},
		{ID: "ci:2", Name: "nas", IPs: []netip.Addr{ip("10.0.0.8")}, Static: []bool{true}},
	}
	assets := []Asset{
		// Laptop now on an IP the CMDB has for another device: matched by
		// MAC, IPs never compared.
		{ID: "laptop", MACs: []string{"00:11:22:33:44:01"}, IPs: []netip.Addr{ip("10.0.0.7")}},
		// A router whose MAC carries many IPs skips the static IP rung.
		{ID: "router", Gateway: true, MACs: []string{"00:11:22:33:44:99"}, IPs: []netip.Addr{ip("10.0.0.7"), ip("10.0.0.8")}},
		// The same, not a gateway: matches both static IPs, a conflict.
		{ID: "bridge", MACs: []string{"00:11:22:33:44:98"}, IPs: []netip.Addr{ip("10.0.0.7"), ip("10.0.0.8")}},
	}
	rep := run(t, assets, cis)
	want(t, rep.Results[0], Managed, RungMAC, 0)
	want(t, rep.Results[1], Unmanaged, "")
	want(t, rep.Results[2], Conflict, RungStaticIP, 1, 2)
}

func TestSameSerialTwoDevices(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "dcim.device:1", Serial: "SRV-1"},
		{ID: "dcim.device:2", Serial: "srv-1"},
	}
	rep := run(t, []Asset{{ID: "a", Serials: []string{"SRV-1"}}}, cis)
	r := rep.Results[0]
	want(t, r, Conflict, RungSerial, 0, 1)
	if r.Reason != "serial SRV-1 matches 2 CIs: dcim.device:1, dcim.device:2" {
		t.Fatalf("reason %q", r.Reason)
	}
}

func TestRenamedHost(t *testing.T) {
	cis := []cmdb.CI{{ID: "ci:0", Name: "db-new.example.com", Serial: "SRV-7", MACs: []string{"00:11:22:33:44:07"}}}
	for _, a := range []Asset{
		{ID: "by-serial", Serials: []string{"SRV-7"}, Hostnames: []string{"db-old"}},
		{ID: "by-mac", MACs: []string{"00:11:22:33:44:07"}, Hostnames: []string{"db-old.example.com"}},
	} {
		rep := run(t, []Asset{a}, cis)
		r := rep.Results[0]
		if r.Verdict != Conflict || !reflect.DeepEqual(r.Disagree, []string{"hostname"}) || !slices.Equal(r.CIs, []int{0}) {
			t.Fatalf("%s: %+v", a.ID, r)
		}
	}
	// Matching short name: managed.
	rep := run(t, []Asset{{ID: "x", Serials: []string{"SRV-7"}, Hostnames: []string{"DB-NEW"}}}, cis)
	want(t, rep.Results[0], Managed, RungSerial, 0)
}

func TestCIMatchedByTwoAssets(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", MACs: []string{"00:11:22:33:44:01", "00:11:22:33:44:02"}},
		{ID: "ci:1", ReckonID: "k", Serial: "SRV-9"},
	}
	assets := []Asset{
		{ID: "a1", MACs: []string{"00:11:22:33:44:01"}},
		{ID: "a2", MACs: []string{"00:11:22:33:44:02"}},
		{ID: "k"},
		{ID: "other", Serials: []string{"SRV-9"}},
	}
	rep := run(t, assets, cis)
	want(t, rep.Results[0], Conflict, RungMAC, 0)
	want(t, rep.Results[1], Conflict, RungMAC, 0)
	if !slices.Equal(rep.Results[0].Others, []string{"a2"}) || !slices.Equal(rep.Results[1].Others, []string{"a1"}) {
		t.Fatalf("others %v %v", rep.Results[0].Others, rep.Results[1].Others)
	}
	// The CI names k by reckon id: k keeps it, the other asset conflicts.
	want(t, rep.Results[2], Managed, RungReckonID, 1)
	want(t, rep.Results[3], Conflict, RungSerial, 1)
	if !slices.Equal(rep.Results[3].Others, []string{"k"}) || !slices.Contains(rep.Results[3].Disagree, "reckon_id") {
		t.Fatalf("other: %+v", rep.Results[3])
	}
}

func TestNames(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "ci:0", Name: "web1.a.example"},
		{ID: "ci:1", Name: "mail"},
		{ID: "ci:2", Name: "db", Site: "ams"},
		{ID: "ci:3", Name: "db", Site: "fra"},
		{ID: "ci:4", Name: "app", Site: "ams"},
	}
	assets := []Asset{
		{ID: "short-fqdn", Hostnames: []string{"web1"}},
		{ID: "fqdn-same", Hostnames: []string{"Web1.A.Example."}},
		{ID: "fqdn-other-domain", Hostnames: []string{"web1.b.example"}},
		{ID: "fqdn-short", Hostnames: []string{"mail.a.example"}},
		{ID: "site", Hostnames: []string{"db"}, Site: "FRA"},
		{ID: "no-site", Hostnames: []string{"db"}},
		{ID: "site-disagree", Hostnames: []string{"app"}, Site: "fra"},
	}
	// One asset at a time: two assets matching one CI would conflict.
	one := func(i int) Result { return run(t, assets[i:i+1], cis).Results[0] }
	want(t, one(0), Managed, RungHostnameSite, 0)
	want(t, one(1), Managed, RungHostnameSite, 0)
	want(t, one(2), Unmanaged, "")
	want(t, one(3), Managed, RungHostnameSite, 1)
	want(t, one(4), Managed, RungHostnameSite, 3)
	want(t, one(5), Conflict, RungHostnameSite, 2, 3)
	want(t, one(6), Unmanaged, "")

	// Site disagreement on a serial match is a conflict.
	rep := run(t, []Asset{{ID: "s", Serials: []string{"SRV-1"}, Site: "fra"}}, []cmdb.CI{{ID: "c", Serial: "SRV-1", Site: "ams"}})
	if r := rep.Results[0]; r.Verdict != Conflict || !slices.Equal(r.Disagree, []string{"site"}) {
		t.Fatalf("%+v", r)
	}
}

func TestUnknownVsUnmanaged(t *testing.T) {
	assets := []Asset{
		{ID: "ambiguous", Serials: []string{"SRV-1"}, Ambiguous: true},
		{ID: "random-mac", MACs: []string{"da:a1:19:00:00:01"}, IPs: []netip.Addr{ip("10.9.9.9")}},
		{ID: "serial", Serials: []string{"SRV-1"}},
		{ID: "mac", MACs: []string{"00:11:22:33:44:55"}},
		{ID: "name", Hostnames: []string{"h"}},
	}
	rep := run(t, assets, nil)
	want(t, rep.Results[0], Unknown, "")
	want(t, rep.Results[1], Unknown, "")
	for _, r := range rep.Results[2:] {
		want(t, r, Unmanaged, "")
	}
	if !strings.Contains(rep.Results[0].Reason, "ambiguous") {
		t.Fatalf("reason %q", rep.Results[0].Reason)
	}
}

func TestStale(t *testing.T) {
	day := 24 * time.Hour
	old, recent := now.Add(-30*day), now.Add(-day)
	cis := []cmdb.CI{
		{ID: "matched-old", Serial: "S-1", LastUpdated: recent},
		{ID: "matched-recent", Serial: "S-2", LastUpdated: old},
		{ID: "unmatched-old", Serial: "S-3", LastUpdated: old},
		{ID: "unmatched-recent", Serial: "S-4", LastUpdated: recent},
		{ID: "retired", Serial: "S-5", Status: "Retired", LastUpdated: old},
		{ID: "planned", Serial: "S-6", Status: "planned", LastUpdated: old},
		{ID: "conflict-mixed", Name: "h", LastUpdated: old},
		{ID: "conflict-mixed2", Name: "h", LastUpdated: old},
	}
	assets := []Asset{
		{ID: "a1", Serials: []string{"S-1"}, LastSeen: old},
		{ID: "a2", Serials: []string{"S-2"}, LastSeen: recent},
		{ID: "a5", Serials: []string{"S-5"}, LastSeen: old},
		{ID: "h-old", Hostnames: []string{"h"}, LastSeen: old},
		{ID: "h-new", Hostnames: []string{"h"}, LastSeen: recent},
	}
	rep := Reconcile(assets, cis, Options{Now: now, StaleAfter: 7 * day})
	if !slices.Equal(rep.Stale, []int{0, 2}) {
		t.Fatalf("stale %v", rep.Stale)
	}
	rep = Reconcile(assets, cis, Options{Now: now})
	if len(rep.Stale) != 0 || rep.Counts[Stale] != 0 {
		t.Fatalf("StaleAfter 0: stale %v", rep.Stale)
	}
}

func TestCounts(t *testing.T) {
	cis := []cmdb.CI{
		{ID: "c0", Serial: "S-0", LastUpdated: now},
		{ID: "c1", Serial: "S-1", Name: "x", LastUpdated: now},
		{ID: "c2", LastUpdated: now.Add(-100 * 24 * time.Hour)},
	}
	assets := []Asset{
		{ID: "m", Serials: []string{"S-0"}, LastSeen: now},
		{ID: "c", Serials: []string{"S-1"}, Hostnames: []string{"y"}, LastSeen: now},
		{ID: "u1", Serials: []string{"S-9"}},
		{ID: "u2", Hostnames: []string{"z"}},
		{ID: "k"},
	}
	rep := run(t, assets, cis)
	got := rep.Counts
	exp := map[string]int{Managed: 1, Conflict: 1, Unmanaged: 2, Unknown: 1, Stale: 1}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("counts %v, want %v", got, exp)
	}
	empty := Reconcile(nil, nil, Options{})
	if !reflect.DeepEqual(empty.Counts, map[string]int{Managed: 0, Conflict: 0, Unmanaged: 0, Unknown: 0, Stale: 0}) {
		t.Fatalf("empty counts %v", empty.Counts)
	}
}

func TestIndex(t *testing.T) {
	x := newIndex(0)
	for i := range 1000 {
		x.add(uint64(i+1), int32(i))
		x.add(uint64(i+1), int32(i)) // the same CI twice: one entry
	}
	x.add(7, 999)
	x.add(7, 1000)
	for i := range 1000 {
		s, l, ok := x.lookup(uint64(i + 1))
		switch {
		case !ok:
			t.Fatalf("%d missing", i)
		case i == 6:
			if !slices.Equal(l, []int32{6, 999, 1000}) {
				t.Fatalf("multi %v", l)
			}
		case l != nil || s != int32(i):
			t.Fatalf("%d: %d %v", i, s, l)
		}
	}
	if _, _, ok := x.lookup(5000); ok {
		t.Fatal("absent key found")
	}
	// A hash collision (forced here) is filtered by the CI's own value.
	m := newMatcher([]cmdb.CI{{Serial: "AAA-1"}, {Serial: "BBB-2"}}, Options{})
	m.bySerial.add(hashString("ZZZ-9"), 0)
	if got := m.find(&m.bySerial, kSerial, "ZZZ-9", netip.Addr{}, nil); len(got) != 0 {
		t.Fatalf("collision matched %v", got)
	}
	if got := m.find(&m.byIP, kIP, "", ip("10.0.0.1"), nil); len(got) != 0 {
		t.Fatalf("ip matched %v", got)
	}
}
