package inventory

import (
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

func TestSetVerdict(t *testing.T) {
	e := NewEngine(DefaultOptions())
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	a := e.Apply(&discovery.Observation{Source: "passive:arp", Time: at, MAC: "00:16:3e:00:00:01", IP: "10.0.0.5"})
	e.TakeDirty()
	e.TakeEvents()
	link := CMDBLink{CIID: "dcim.device:1", CIName: "web-01", Owner: "ops", BusinessUnit: "Payments", Rung: "mac"}
	if !e.SetVerdict(Verdict{AssetID: a.ID.String(), Status: StatusManaged, Link: link}, at) {
		t.Fatal("first verdict reported no change")
	}
	s := a.Summary()
	if s.Status != StatusManaged || s.CMDB == nil || s.CMDB.BusinessUnit != "Payments" || s.CMDB.Owner != "ops" {
		t.Fatalf("summary after verdict: %+v", s)
	}
	if d := e.TakeDirty(); len(d) != 1 {
		t.Fatalf("%d dirty assets, want 1", len(d))
	}
	evs := e.TakeEvents()
	if len(evs) != 1 || evs[0].Kind != EventVerdict || evs[0].Detail["to"] != StatusManaged || evs[0].Detail["from"] != StatusNew {
		t.Fatalf("events %+v", evs)
	}
	// The same verdict again, later: nothing to store.
	if e.SetVerdict(Verdict{AssetID: a.ID.String(), Status: StatusManaged, Link: link}, at.Add(time.Hour)) {
		t.Fatal("an unchanged verdict reported a change")
	}
	// A changed owner is stored without a verdict event.
	link.Owner = "netops"
	if !e.SetVerdict(Verdict{AssetID: a.ID.String(), Status: StatusManaged, Link: link}, at) {
		t.Fatal("a changed owner reported no change")
	}
	if evs := e.TakeEvents(); len(evs) != 0 {
		t.Fatalf("owner change emitted %+v", evs)
	}
	if e.SetVerdict(Verdict{AssetID: "no-such-asset", Status: StatusUnmanaged}, at) {
		t.Fatal("a verdict on a missing asset reported a change")
	}
}
