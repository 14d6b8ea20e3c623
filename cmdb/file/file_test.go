package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/file"
)

func read(t *testing.T, path string, since time.Time) ([]cmdb.CI, error) {
	t.Helper()
	c, err := file.New(path)
	if err != nil {
		return nil, err
	}
	var out []cmdb.CI
	err = c.CIs(context.Background(), since, func(ci cmdb.CI) error { out = append(out, ci); return nil })
	return out, err
}

// The demo CMDB parses, canonically: MACs lower-case, static addresses
// flagged, times read.
func TestDemoCMDB(t *testing.T) {
	cis, err := read(t, filepath.Join("..", "..", "configs", "demo", "cmdb.csv"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cis) != 4 {
		t.Fatalf("%d CIs", len(cis))
	}
	p := cis[3]
	if p.Name != "printer-3f" || p.MACs[0] != "00:1b:a9:44:10:3f" || len(p.IPs) != 1 || !p.Static[0] || p.Owner != "helpdesk@example.com" ||
		p.LastUpdated.Year() != 2025 || p.Class != "device" {
		t.Fatalf("%+v", p)
	}
	recent, err := read(t, filepath.Join("..", "..", "configs", "demo", "cmdb.csv"), time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(recent) != 2 {
		t.Fatalf("since: %d %v", len(recent), err)
	}
}

func TestJSONAndErrors(t *testing.T) {
	dir := t.TempDir()
	j := filepath.Join(dir, "cmdb.json")
	os.WriteFile(j, []byte(`{"cis":[{"id":"x:1","name":"Web01.corp.","macs":["00-50-56-A1-22-10"],"ips":["10.0.0.5"],"static":[true],"last_updated":"2026-01-01T00:00:00Z"}]}`), 0o600)
	cis, err := read(t, j, time.Time{})
	if err != nil || len(cis) != 1 || cis[0].Name != "web01.corp" || cis[0].MACs[0] != "00:50:56:a1:22:10" || !cis[0].Static[0] {
		t.Fatalf("%+v %v", cis, err)
	}
	for body, want := range map[string]string{
		"id,name,colour\n1,a,red\n":             `unknown column "colour"`,
		"id,macs\n1,00:11:22:33:44:55\n":        `"name" column is required`,
		"id,name,macs\n1,a,nope\n":              `line 2: macs: "nope"`,
		"id,name,static_ips\n1,a,10.0.0.300\n":  `line 2: static_ips`,
		"id,name,last_updated\n1,a,yesterday\n": `line 2: last_updated`,
		"id,name\n,a\n":                         "id is required",
	} {
		p := filepath.Join(t.TempDir(), "c.csv")
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := read(t, p, time.Time{}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: %v, want the file and %q", body, err, want)
		}
	}
	if _, err := file.New("cmdb.xlsx"); err == nil {
		t.Fatal("an .xlsx export was taken")
	}
	if _, err := read(t, filepath.Join(dir, "missing.csv"), time.Time{}); err == nil {
		t.Fatal("a missing file read as empty")
	}
}
