// Package file reads a CMDB export from a file, CSV or JSON, for offline use
// and for the demo: the same CIs a REST client would give, with errors that
// name the file, the line and the field.
package file

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/discovery"
)

// Client reads CIs from a file each time it is asked, so an edited export is
// picked up by the next run.
type Client struct{ path string }

// New returns a client of the export at path (.csv, or .json: an array of
// CIs or {"cis": [...]} with the JSON names of cmdb.CI).
func New(path string) (*Client, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".json":
	default:
		return nil, fmt.Errorf("cmdb file %s: want a .csv or .json export", path)
	}
	return &Client{path: path}, nil
}

// Kind is "file".
func (c *Client) Kind() string { return "file" }

// CIs reads the whole file; since filters on last_updated.
func (c *Client) CIs(ctx context.Context, since time.Time, fn func(cmdb.CI) error) error {
	data, err := os.ReadFile(c.path)
	if err != nil {
		return fmt.Errorf("cmdb file: %w", err)
	}
	var cis []cmdb.CI
	if strings.EqualFold(filepath.Ext(c.path), ".json") {
		cis, err = parseJSON(data)
	} else {
		cis, err = parseCSV(data)
	}
	if err != nil {
		return fmt.Errorf("cmdb file %s: %w", c.path, err)
	}
	for _, ci := range cis {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !since.IsZero() && ci.LastUpdated.Before(since) {
			continue
		}
		if err := fn(ci); err != nil {
			return err
		}
	}
	return nil
}

func parseJSON(data []byte) ([]cmdb.CI, error) {
	data = bytes.TrimSpace(data)
	var cis []cmdb.CI
	if len(data) > 0 && data[0] == '{' {
		var doc struct {
			CIs []cmdb.CI `json:"cis"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, err
		}
		cis = doc.CIs
	} else {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cis); err != nil {
			return nil, err
		}
	}
	for i := range cis {
		if err := normalise(&cis[i]); err != nil {
			return nil, fmt.Errorf("CI %d (%s): %w", i, cis[i].ID, err)
		}
	}
	return cis, nil
}

// The CSV columns; id and name are required, the others optional. List
// columns (macs, ips, static_ips) hold values separated by spaces or
// semicolons; static_ips are addresses the CMDB assigns statically.
var columns = []string{"id", "class", "name", "url", "reckon_id", "serial", "asset_tag", "macs", "ips", "static_ips",
	"site", "business_unit", "owner", "role", "status", "last_updated"}

func parseCSV(data []byte) ([]cmdb.CI, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(columns, h) {
			return nil, fmt.Errorf("line 1: unknown column %q (known: %s)", h, strings.Join(columns, ", "))
		}
		col[h] = i
	}
	for _, need := range []string{"id", "name"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("line 1: the %q column is required", need)
		}
	}
	var cis []cmdb.CI
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		ci := cmdb.CI{ID: get("id"), Class: get("class"), Name: get("name"), URL: get("url"), ReckonID: get("reckon_id"),
			Serial: get("serial"), AssetTag: get("asset_tag"), Site: get("site"), BusinessUnit: get("business_unit"),
			Owner: get("owner"), Role: get("role"), Status: get("status")}
		ci.MACs = list(get("macs"))
		for _, s := range list(get("ips")) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("line %d: ips: %q is not an IP address", line, s)
			}
			ci.IPs, ci.Static = append(ci.IPs, a), append(ci.Static, false)
		}
		for _, s := range list(get("static_ips")) {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("line %d: static_ips: %q is not an IP address", line, s)
			}
			ci.IPs, ci.Static = append(ci.IPs, a), append(ci.Static, true)
		}
		if v := get("last_updated"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, fmt.Errorf("line %d: last_updated: %q is not an RFC 3339 time", line, v)
			}
			ci.LastUpdated = t
		}
		if err := normalise(&ci); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		cis = append(cis, ci)
	}
	return cis, nil
}

func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == ',' })
}

// normalise checks a CI and puts it in canonical form.
func normalise(ci *cmdb.CI) error {
	if ci.ID == "" {
		return errors.New("id is required")
	}
	ci.Name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(ci.Name), "."))
	if ci.Class == "" {
		ci.Class = "device"
	}
	for i, m := range ci.MACs {
		c, err := discovery.CanonicalMAC(m)
		if err != nil {
			return fmt.Errorf("macs: %q is not a MAC address", m)
		}
		ci.MACs[i] = c
	}
	if len(ci.Static) != 0 && len(ci.Static) != len(ci.IPs) {
		return errors.New("static must have one entry per IP")
	}
	if len(ci.Static) == 0 && len(ci.IPs) > 0 {
		ci.Static = make([]bool, len(ci.IPs))
	}
	return nil
}
