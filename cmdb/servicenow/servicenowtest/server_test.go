package servicenowtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func get(t *testing.T, s *Server, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// keys collects, per JSON path, the set of object keys found there (array
// elements share their array's path).
func keys(v any, path string, out map[string][]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !slices.Contains(out[path], k) {
				out[path] = append(out[path], k)
			}
			keys(x, path+"."+k, out)
		}
	case []any:
		for _, x := range v {
			keys(x, path+"[]", out)
		}
	}
}

// The documented request, posted to the emulator, gets an answer with the
// documented response's keys at every level.
func TestRecordedShapes(t *testing.T) {
	s := New(Seed())
	defer s.Close()
	req, err := os.ReadFile("testdata/ire-identifyreconcile-request.json")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile("testdata/ire-identifyreconcile-response.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/now/identifyreconcile", "/api/now/identifyreconcile/query"} {
		st, got := post(t, s, path, req)
		if st != http.StatusOK {
			t.Fatalf("%s: %d %s", path, st, got)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(rec, &b)
		ka, kb := map[string][]string{}, map[string][]string{}
		keys(a, "", ka)
		keys(b, "", kb)
		for p := range kb {
			sort.Strings(ka[p])
			sort.Strings(kb[p])
			if !slices.Equal(ka[p], kb[p]) {
				t.Errorf("%s %s: keys %v, recorded %v", path, p, ka[p], kb[p])
			}
		}
		for p := range ka {
			if _, ok := kb[p]; !ok {
				t.Errorf("%s: %s is not in the recorded response", path, p)
			}
		}
	}
	if w := s.Writes(); len(w) != 2 {
		t.Fatalf("writes %+v: want the two inserts of the commit, none of the query", w)
	}
}

// Payloads of the wrong shape are refused as a whole.
func TestPayloadValidation(t *testing.T) {
	s := New(Seed())
	defer s.Close()
	many := `{"items":[` + strings.Repeat(`{"className":"cmdb_ci_computer","values":{"name":"x"}},`, MaxItems) + `{"className":"cmdb_ci_computer","values":{"name":"x"}}]}`
	for name, body := range map[string]string{
		"not json":       `{"items":`,
		"no items":       `{}`,
		"no className":   `{"items":[{"values":{"name":"a"}}]}`,
		"no values":      `{"items":[{"className":"cmdb_ci_computer"}]}`,
		"values array":   `{"items":[{"className":"cmdb_ci_computer","values":[]}]}`,
		"unknown key":    `{"items":[{"className":"cmdb_ci_computer","values":{},"value":{}}]}`,
		"source no key":  `{"items":[{"className":"cmdb_ci_computer","values":{"name":"a"},"sys_object_source_info":{"source_name":"reckon"}}]}`,
		"bad recency":    `{"items":[{"className":"cmdb_ci_computer","values":{"name":"a"},"sys_object_source_info":{"source_name":"r","source_native_key":"k","source_recency_timestamp":"2024-01-02T03:04:05Z"}}]}`,
		"system field":   `{"items":[{"className":"cmdb_ci_computer","values":{"sys_updated_on":"x"}}]}`,
		"too many items": many,
	} {
		st, b := post(t, s, "/api/now/identifyreconcile", []byte(body))
		if st != http.StatusBadRequest || !strings.Contains(string(b), `"status":"failure"`) {
			t.Errorf("%s: %d %s", name, st, b)
		}
	}
	st, b := post(t, s, "/api/now/identifyreconcile?sysparm_data_source=Nope", []byte(`{"items":[{"className":"cmdb_ci_computer","values":{"name":"a"}}]}`))
	if st != http.StatusBadRequest {
		t.Errorf("unknown data source: %d %s", st, b)
	}
	if len(s.Writes()) != 0 {
		t.Fatal("a refused payload wrote")
	}
}

// Table API: class hierarchy, projection, display values, paging headers.
func TestTable(t *testing.T) {
	s := New(Seed())
	defer s.Close()
	resp, b := get(t, s, "/api/now/table/cmdb_ci_hardware?sysparm_query=ORDERBYsys_id&sysparm_fields=sys_id,location,sys_updated_on&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_limit=2&sysparm_offset=2")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var doc struct {
		Result []map[string]map[string]string `json:"result"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	// hardware: WS1, DB1, SW1, UPS1 (not PRN1, APP1); page 2 of 2.
	if len(doc.Result) != 2 || doc.Result[0]["sys_id"]["value"] != SW1 || doc.Result[1]["sys_id"]["value"] != UPS1 {
		t.Fatalf("%s", b)
	}
	if doc.Result[0]["location"]["display_value"] != "AMS1" || len(doc.Result[0]) != 3 || doc.Result[0]["sys_updated_on"]["value"] != "2024-05-12 23:59:59" {
		t.Fatalf("%s", b)
	}
	if resp.Header.Get("X-Total-Count") != "4" {
		t.Fatal(resp.Header)
	}
	l := resp.Header.Get("Link")
	if !strings.Contains(l, `rel="first"`) || !strings.Contains(l, `rel="prev"`) || strings.Contains(l, `rel="next"`) || !strings.Contains(l, `rel="last"`) {
		t.Fatal(l)
	}
	resp, b = get(t, s, "/api/now/table/cmdb_ci_network_adapter?sysparm_query=cmdb_ci.sys_updated_on>=2024-05-01%2000:00:00")
	// Dot-walk: the adapters of CIs changed since May: DB1's two, SW1's, APP1's.
	if resp.StatusCode != 200 || strings.Count(string(b), `"sys_id"`) != 4 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, _ = get(t, s, "/api/now/table/cmdb_ci_computer?sysparm_query=nameLIKEws")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsupported operator: %d", resp.StatusCode)
	}
	s.Revoke()
	resp, b = get(t, s, "/api/now/table/cmdb_ci_computer")
	if resp.StatusCode != 401 || string(b) != UnauthenticatedBody {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
