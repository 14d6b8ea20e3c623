package netbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/netbox/netboxtest"
)

// pushData is Example plus device 3000 "sw1" (no serial, no reckon id, no
// tenant) at AMS1.
func pushData() netboxtest.Dataset {
	d := netboxtest.Example()
	d.Devices = append(d.Devices, netboxtest.Device{ID: 3000, Name: "sw1", Site: "AMS1", Role: "router",
		LastUpdated: netboxtest.Epoch})
	return d
}

var pushAssets = []cmdb.Asset{
	// managed, its device has a reckon id and a serial; its address has a
	// curated description
	{ID: "a-router", Verdict: "managed", CIID: "dcim.device:2230", Name: "router1", Serial: "OTHER",
		IPs: []netip.Addr{netip.MustParseAddr("192.168.0.42")}},
	// managed, its device has neither
	{ID: "a-sw", Verdict: "managed", CIID: "dcim.device:3000", Name: "sw1", Serial: "SW-SN"},
	{ID: "a-new", Verdict: "unmanaged", Name: "newhost", Serial: "NH1", Vendor: "Dell", OS: "Linux",
		IPs: []netip.Addr{netip.MustParseAddr("10.1.1.1")}},
	// NetBox refuses the device (sw1 exists at AMS1); its address goes in
	{ID: "a-dup", Verdict: "unmanaged", Name: "sw1", IPs: []netip.Addr{netip.MustParseAddr("10.1.1.2")}},
}

var pushOpts = Options{DeviceRole: "router", DeviceType: "generic", Site: "ams1"}

func summary(chs []cmdb.Change) []string {
	var out []string
	for _, ch := range chs {
		var keys []string
		for k := range ch.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := fmt.Sprintf("%s %s %s %s", ch.AssetID, ch.Action, ch.Object, strings.Join(keys, ","))
		if ch.Error != "" {
			s += " ERROR"
		}
		out = append(out, s)
	}
	return out
}

func writes(s *netboxtest.Server) []netboxtest.Request {
	var out []netboxtest.Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

var wantChanges = []string{
	"a-router update ipam.ipaddress custom_fields,dns_name",
	"a-sw update dcim.device custom_fields,serial",
	"a-new create dcim.device custom_fields,device_type,name,role,serial,site,status,tags",
	"a-new create ipam.ipaddress address,custom_fields,description,dns_name,status,tags",
	"a-dup create dcim.device custom_fields,device_type,name,role,site,status,tags",
	"a-dup create ipam.ipaddress address,custom_fields,description,dns_name,status,tags",
}

func TestPushDryRun(t *testing.T) {
	s, c := setup(t, pushData(), netboxtest.Options{}, pushOpts)
	chs, err := c.Push(context.Background(), pushAssets, cmdb.PushOptions{DryRun: true, Message: "dry"})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(chs); fmt.Sprint(got) != fmt.Sprint(wantChanges) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantChanges, "\n"))
	}
	if w := writes(s); len(w) != 0 {
		t.Errorf("dry run wrote %d times: %s %s", len(w), w[0].Method, w[0].URL)
	}
	if chs[0].ID != "ipam.ipaddress:2954" || chs[0].Fields["dns_name"] != "router1" || chs[0].Message != "dry" {
		t.Errorf("first change %+v", chs[0])
	}
}

func TestPush(t *testing.T) {
	s, c := setup(t, pushData(), netboxtest.Options{}, pushOpts)
	const msg = "reckon push 2025-01-20"
	chs, err := c.Push(context.Background(), pushAssets, cmdb.PushOptions{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(chs); fmt.Sprint(got) != fmt.Sprint(strings.Replace(fmt.Sprint(wantChanges),
		"a-dup create dcim.device custom_fields,device_type,name,role,site,status,tags",
		"a-dup create dcim.device custom_fields,device_type,name,role,site,status,tags ERROR", 1)) {
		t.Errorf("changes:\n%s", strings.Join(got, "\n"))
	}
	for _, ch := range chs {
		if ch.Error == "" && ch.ID == "" {
			t.Errorf("change without the record's id: %+v", ch)
		}
		if ch.AssetID == "a-dup" && ch.Object == "dcim.device" && !strings.Contains(ch.Error, "400") {
			t.Errorf("a-dup device error %q, want NetBox's 400", ch.Error)
		}
	}
	// Every write carries the message.
	ws := writes(s)
	if len(ws) != 6 {
		t.Errorf("%d writes, want 6", len(ws))
	}
	for _, w := range ws {
		var body map[string]any
		if err := json.Unmarshal(w.Body, &body); err != nil || body["changelog_message"] != msg {
			t.Errorf("%s %s: changelog_message %v (%v)", w.Method, w.URL, body["changelog_message"], err)
		}
	}

	d := s.Data()
	ip := func(addr string) *netboxtest.IPAddress {
		for i := range d.IPs {
			if p, _ := netip.ParsePrefix(d.IPs[i].Address); p.Addr().String() == addr {
				return &d.IPs[i]
			}
		}
		t.Fatalf("no address %s", addr)
		return nil
	}
	dev := func(name string) []netboxtest.Device {
		var out []netboxtest.Device
		for _, x := range d.Devices {
			if x.Name == name {
				out = append(out, x)
			}
		}
		return out
	}
	// Curated fields stay; empty ones are filled.
	if a := ip("192.168.0.42"); a.Description != "Example IP address" || a.DNSName != "router1" ||
		a.CustomFields["reckon_asset_id"] != "a-router" {
		t.Errorf("192.168.0.42 after push: %+v", a)
	}
	if r := dev("router1")[0]; r.Serial != "FOC1234X" || r.CustomFields["reckon_asset_id"] != "r-1" {
		t.Errorf("router1 curated fields overwritten: %+v", r)
	}
	if sw := dev("sw1"); len(sw) != 1 || sw[0].Serial != "SW-SN" || sw[0].CustomFields["reckon_asset_id"] != "a-sw" {
		t.Errorf("sw1 after push: %+v", sw)
	}
	if n := dev("newhost"); len(n) != 1 || n[0].Serial != "NH1" || n[0].Site != "AMS1" || n[0].Role != "router" ||
		n[0].CustomFields["reckon_asset_id"] != "a-new" || fmt.Sprint(n[0].Tags) != "[reckon]" {
		t.Errorf("newhost after push: %+v", n)
	}
	if a := ip("10.1.1.1"); a.Address != "10.1.1.1/32" || a.DNSName != "newhost" || a.Status != "active" ||
		fmt.Sprint(a.Tags) != "[reckon]" || a.CustomFields["reckon_asset_id"] != "a-new" || a.Description != "seen by reckon: Dell, Linux" {
		t.Errorf("10.1.1.1 after push: %+v", a)
	}
	ip("10.1.1.2")

	// Again: nothing left to write but the device NetBox refuses.
	s.ResetRequests()
	chs, err = c.Push(context.Background(), pushAssets, cmdb.PushOptions{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(chs); len(got) != 1 || !strings.HasPrefix(got[0], "a-dup create dcim.device") {
		t.Errorf("second push changes %v", got)
	}

	// Owned fields are overwritten.
	chs, err = c.Push(context.Background(), pushAssets[:1], cmdb.PushOptions{Message: msg, Owns: []string{"description", "serial"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(chs); fmt.Sprint(got) != "[a-router update dcim.device serial a-router update ipam.ipaddress description]" {
		t.Errorf("owned push changes %v", got)
	}
}

func TestPushNoDeviceDefaults(t *testing.T) {
	s, c := setup(t, pushData(), netboxtest.Options{}, Options{})
	chs, err := c.Push(context.Background(), pushAssets[2:3], cmdb.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || chs[0].Object != "dcim.device" || !strings.Contains(chs[0].Error, "device_role") ||
		chs[1].Object != "ipam.ipaddress" || chs[1].Error != "" {
		t.Errorf("changes %+v", chs)
	}
	if n := len(writes(s)); n != 1 {
		t.Errorf("%d writes, want the address only", n)
	}
}

func TestPushAborts(t *testing.T) {
	s, c := setup(t, pushData(), netboxtest.Options{}, pushOpts)
	s.Inject(1, netboxtest.Fault{Method: http.MethodPost, Status: 500})
	chs, err := c.Push(context.Background(), pushAssets[2:], cmdb.PushOptions{})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 500 || len(chs) != 0 {
		t.Errorf("500 on a write: %v, %d changes; want an error (writes are not retried after a 500)", err, len(chs))
	}
	if n := len(writes(s)); n != 1 {
		t.Errorf("%d writes after a 500, want 1", n)
	}

	s.RevokeToken(netboxtest.DefaultToken)
	if _, err := c.Push(context.Background(), pushAssets, cmdb.PushOptions{}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("revoked token: %v", err)
	}
}

func TestPushRetries503(t *testing.T) {
	s, c := setup(t, pushData(), netboxtest.Options{}, pushOpts)
	s.Inject(1, netboxtest.Fault{Method: http.MethodPost, Status: 503, RetryAfter: "0"})
	chs, err := c.Push(context.Background(), pushAssets[3:], cmdb.PushOptions{})
	if err != nil || len(chs) != 2 || chs[1].Error != "" {
		t.Fatalf("%v %+v", err, chs)
	}
	// The device POST gets the 503 and is retried (then refused with 400,
	// sw1 exists); the address POST goes in.
	if ws := writes(s); len(ws) != 3 || ws[0].Status != 503 || ws[1].Status != 400 || ws[2].Status != 201 {
		t.Errorf("writes %+v, want 503, 400, 201", ws)
	}
}
