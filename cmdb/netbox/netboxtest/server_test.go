package netboxtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, path, auth string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: decode: %v", path, err)
	}
	return resp.StatusCode, m
}

const tok = "Token " + DefaultToken

// TestEndpointsValidate serves every endpoint over the Example dataset; the
// emulator's own OpenAPI validation fails the test on any schema violation.
func TestEndpointsValidate(t *testing.T) {
	s := New(t, Options{})
	s.Seed(Example())
	want := map[string]int{PathDevices: 1, PathVMs: 1, PathInterfaces: 1, PathVMInterfaces: 1,
		PathMACs: 3, PathIPs: 4, PathSites: 1, PathTenants: 1, PathRoles: 2}
	for p, n := range want {
		st, m := get(t, s, p, tok)
		if st != 200 || int(m["count"].(float64)) != n {
			t.Errorf("%s: status %d count %v, want 200 %d", p, st, m["count"], n)
		}
	}
}

// TestExampleBodies checks the rendered IP 2954 against the real NetBox
// documentation body it was seeded from.
func TestExampleBodies(t *testing.T) {
	s := New(t, Options{})
	s.Seed(Example())
	raw, err := os.ReadFile("testdata/ipaddress-detail.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex map[string]any
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	_, m := get(t, s, PathIPs+"?id=2954", tok)
	got := m["results"].([]any)[0].(map[string]any)
	for k := range ex {
		if k == "role" { // a nested choice in 4.2, omitted when blank
			continue
		}
		if _, ok := got[k]; !ok {
			t.Errorf("rendered ip-address lacks %q", k)
		}
	}
	for _, k := range []string{"address", "assigned_object_type", "assigned_object_id", "description"} {
		if got[k] != ex[k] {
			t.Errorf("%s = %v, example has %v", k, got[k], ex[k])
		}
	}
	if g, e := got["status"].(map[string]any)["value"], ex["status"].(map[string]any)["value"]; g != e {
		t.Errorf("status %v, example %v", g, e)
	}
	if g := got["assigned_object"].(map[string]any)["device"].(map[string]any)["name"]; g != "router1" {
		t.Errorf("assigned device %v", g)
	}
	if !strings.HasSuffix(got["url"].(string), "/api/ipam/ip-addresses/2954/") {
		t.Errorf("url %v", got["url"])
	}
}

func TestPaginationAndFilters(t *testing.T) {
	s := New(t, Options{})
	s.Seed(Generate(120))
	_, m := get(t, s, PathDevices, tok)
	if n := len(m["results"].([]any)); n != 50 || m["count"].(float64) != 120 {
		t.Fatalf("default page: %d results of %v", n, m["count"])
	}
	next := m["next"].(string)
	if !strings.Contains(next, "offset=50") || !strings.Contains(next, "limit=50") {
		t.Errorf("next = %s", next)
	}
	_, m = get(t, s, PathDevices+"?limit=5000", tok)
	if n := len(m["results"].([]any)); n != 120 || m["next"] != nil {
		t.Errorf("limit capped: %d results next %v", n, m["next"])
	}
	_, m = get(t, s, PathDevices+"?limit=10&offset=110", tok)
	if n := len(m["results"].([]any)); n != 10 || m["next"] != nil || m["previous"] == nil {
		t.Errorf("last page: %d next %v prev %v", n, m["next"], m["previous"])
	}
	_, m = get(t, s, PathIPs+"?device_id=3&device_id=4", tok)
	if m["count"].(float64) != 2 {
		t.Errorf("device_id filter count %v", m["count"])
	}
	_, m = get(t, s, PathDevices+"?mac_address="+GeneratedMAC(7), tok)
	if m["count"].(float64) != 1 || m["results"].([]any)[0].(map[string]any)["id"].(float64) != 7 {
		t.Errorf("mac_address filter %v", m)
	}
	_, m = get(t, s, PathDevices+"?serial=sn9&name=DEV-9", tok)
	if m["count"].(float64) != 1 {
		t.Errorf("serial/name filter %v", m["count"])
	}
}

func TestAuth(t *testing.T) {
	s := New(t, Options{})
	st, m := get(t, s, PathDevices, "")
	if st != 403 || m["detail"] != "Authentication credentials were not provided." {
		t.Errorf("no token: %d %v", st, m)
	}
	if st, _ := get(t, s, PathDevices, "Bearer "+DefaultTokenV2); st != 200 {
		t.Errorf("v2 token: %d", st)
	}
	s.RevokeToken(DefaultToken)
	if st, m := get(t, s, PathDevices, tok); st != 403 || m["detail"] != "Invalid token" {
		t.Errorf("revoked: %d %v", st, m)
	}
}

func send(t *testing.T, s *Server, method, path, body string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return resp.StatusCode, v
}

// TestWrites creates and patches addresses and devices; the emulator
// validates requests and responses against the schema.
func TestWrites(t *testing.T) {
	s := New(t, Options{})
	s.Seed(Example())
	st, v := send(t, s, "POST", PathIPs, `{"address": "10.9.8.7/32", "dns_name": "new.example", "status": "active",
		"tags": [{"name": "reckon", "slug": "reckon"}], "custom_fields": {"reckon_asset_id": "a-1"},
		"description": "d", "changelog_message": "hello"}`)
	if st != 201 {
		t.Fatalf("create ip: %d %v", st, v)
	}
	id := int(v.(map[string]any)["id"].(float64))
	_, m := get(t, s, PathIPs+"?address=10.9.8.7", tok)
	if m["count"].(float64) != 1 {
		t.Errorf("address filter without mask: %v", m["count"])
	}
	_, m = get(t, s, PathIPs+"?address=10.9.8.7/24", tok)
	if m["count"].(float64) != 0 {
		t.Errorf("address filter with another mask: %v", m["count"])
	}
	_, m = get(t, s, PathIPs+"?cf_reckon_asset_id=a-1", tok)
	if m["count"].(float64) != 1 {
		t.Errorf("cf filter: %v", m["count"])
	}
	st, v = send(t, s, "PATCH", PathIPs+fmt.Sprint(id)+"/", `{"custom_fields": {"owner": "x"}}`)
	cf := v.(map[string]any)["custom_fields"].(map[string]any)
	if st != 200 || cf["reckon_asset_id"] != "a-1" || cf["owner"] != "x" {
		t.Errorf("patch merges custom fields: %d %v", st, v)
	}
	if st, v = send(t, s, "POST", PathIPs, `{"address": "10.9.8.8/32", "tags": [{"name": "nope", "slug": "nope"}]}`); st != 400 {
		t.Errorf("unknown tag: %d %v", st, v)
	}
	dev := `{"name": "%s", "device_type": {"manufacturer": {"name": "Generic", "slug": "generic"}, "model": "Generic", "slug": "generic"},
		"role": {"name": "router", "slug": "router"}, "site": {"name": "AMS1", "slug": "ams1"}, "serial": "S1"}`
	if st, v = send(t, s, "POST", PathDevices, fmt.Sprintf(dev, "new-dev")); st != 201 {
		t.Errorf("create device: %d %v", st, v)
	}
	st, v = send(t, s, "POST", PathDevices, fmt.Sprintf(dev, "NEW-DEV")) // router1 has a tenant: no clash
	if st != 400 || !strings.Contains(fmt.Sprint(v), "unique per site") {
		t.Errorf("duplicate device name: %d %v", st, v)
	}
	if st, v = send(t, s, "PATCH", PathDevices+"2230/", `{"serial": "X"}`); st != 200 || v.(map[string]any)["serial"] != "X" {
		t.Errorf("patch device: %d %v", st, v)
	}
	if d := s.Data(); len(d.Devices) != 2 || len(d.IPs) != 5 || Example().Devices[0].Serial != "FOC1234X" {
		t.Errorf("dataset after writes: %d devices %d ips", len(d.Devices), len(d.IPs))
	}
}
