package servicenow

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/discovery"
)

// snTime is ServiceNow's stored date-time format (always UTC in "value").
const snTime = "2006-01-02 15:04:05"

const adapterTable = "cmdb_ci_network_adapter"

// ciFields are read from every CI table. Reference fields (location,
// department, company, owned_by, assigned_to) and choices (install_status,
// sys_class_name) need both their stored value and their display value,
// hence sysparm_display_value=all: "true" would give only display values,
// and would also give sys_updated_on in the integration user's time zone
// and date format, which cannot be parsed reliably; "false" would give
// sys_ids where reports want "AMS1" and "Engineering". With "all" every
// field is {"value", "display_value"}: value for keys, times and choices,
// display_value for names.
var ciFields = []string{"sys_id", "sys_class_name", "name", "serial_number", "asset_tag", "mac_address", "ip_address",
	"location", "company", "department", "owned_by", "assigned_to", "install_status", "sys_updated_on"}

var adapterFields = []string{"sys_id", "cmdb_ci", "mac_address", "ip_address", "name"}

// installStatus maps cmdb_ci.install_status choice values to the
// lower-case words reckon uses (NetBox's where they exist, so the
// reconciler's "not expected on the network" list applies).
var installStatus = map[string]string{
	"1":   "active",      // Installed
	"2":   "planned",     // On Order
	"3":   "maintenance", // In Maintenance
	"4":   "staged",      // Pending Install
	"5":   "failed",      // Pending Repair
	"6":   "inventory",   // In Stock
	"7":   "retired",     // Retired
	"8":   "stolen",      // Stolen
	"100": "absent",      // Absent
}

// field is one column of a Table API row: a plain string (display_value
// false or true) or {"value","display_value"} (display_value all, with
// or without a reference "link").
type field struct{ Value, Display string }

func (f *field) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &f.Value); err != nil {
			return err
		}
		f.Display = f.Value
		return nil
	case len(b) > 0 && b[0] == '{':
		var v struct {
			Value   *string `json:"value"`
			Display *string `json:"display_value"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Value != nil {
			f.Value = *v.Value
		}
		if v.Display != nil {
			f.Display = *v.Display
		} else {
			f.Display = f.Value
		}
		return nil
	default:
		// Numbers and booleans appear with some field types.
		f.Value = string(b)
		f.Display = f.Value
		return nil
	}
}

type row map[string]field

// CIs reads every configured table and the network adapters, and calls fn
// once per CI, in sys_id order. When since is set only CIs whose
// sys_updated_on is at or after it are read (an incremental run), with all
// of their adapters; an adapter changed on a CI that did not change is not
// seen until the CI changes or a full read runs.
//
// sys_updated_on is compared with a "YYYY-MM-DD HH:MM:SS" literal in UTC,
// the format ServiceNow stores; run the integration user in the UTC time
// zone so the instance reads the literal as UTC too.
//
// All pages are read before fn is first called: the CIs of several tables
// are merged and their adapters attached. An error means the read is
// incomplete and fn may not have been called at all.
func (c *Client) CIs(ctx context.Context, since time.Time, fn func(cmdb.CI) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		rows []row
		err  error
	}
	jobs := len(c.o.Tables) + 1 // the adapters are the last job
	results := make([]result, jobs)
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			var rows []row
			var err error
			if i < len(c.o.Tables) {
				rows, err = c.readTable(ctx, c.o.Tables[i], c.ciFieldList(), c.ciQuery(since))
			} else {
				rows, err = c.readTable(ctx, adapterTable, adapterFields, adapterQuery(since))
			}
			if err != nil {
				cancel() // one failed table fails the read: stop the others
			}
			results[i] = result{rows, err}
		})
	}
	wg.Wait()
	// A table's own failure first; the others were then cancelled by it.
	var errs []error
	for _, r := range results {
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, r := range results {
		if r.err != nil {
			return r.err
		}
	}

	// Merge the tables: one CI per sys_id, from the most specific table.
	type pick struct {
		r    row
		rank int
		tab  string
	}
	picked := map[string]pick{}
	for ti, t := range c.o.Tables {
		for _, r := range results[ti].rows {
			id := r["sys_id"].Value
			if id == "" {
				return fmt.Errorf("servicenow: table %s: a row without sys_id", t)
			}
			rank := ti + 1
			if r["sys_class_name"].Value == t {
				rank = 0
			}
			if p, ok := picked[id]; ok && p.rank <= rank {
				continue
			}
			picked[id] = pick{r, rank, t}
		}
	}
	cis := make(map[string]*cmdb.CI, len(picked))
	for id, p := range picked {
		ci := c.toCI(p.r, p.tab)
		cis[id] = &ci
	}
	for _, a := range results[len(c.o.Tables)].rows {
		ci := cis[a["cmdb_ci"].Value]
		if ci == nil {
			continue // an adapter of a CI not read (another class, or unchanged)
		}
		c.addMAC(ci, a["mac_address"].Value)
		c.addIP(ci, a["ip_address"].Value)
	}
	ids := make([]string, 0, len(cis))
	for id := range cis {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(*cis[id]); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) ciFieldList() []string {
	f := slices.Clone(ciFields)
	for _, x := range []string{c.o.ReckonIDField, c.o.RoleField} {
		if x != "" && !slices.Contains(f, x) {
			f = append(f, x)
		}
	}
	return f
}

func (c *Client) ciQuery(since time.Time) string {
	var q []string
	if c.o.Query != "" {
		q = append(q, c.o.Query)
	}
	if !since.IsZero() {
		q = append(q, "sys_updated_on>="+since.UTC().Format(snTime))
	}
	return strings.Join(append(q, "ORDERBYsys_id"), "^")
}

// adapterQuery: in an incremental run, the adapters of changed CIs
// (dot-walking to the CI's sys_updated_on).
func adapterQuery(since time.Time) string {
	if since.IsZero() {
		return "ORDERBYsys_id"
	}
	return "cmdb_ci.sys_updated_on>=" + since.UTC().Format(snTime) + "^ORDERBYsys_id"
}

// readTable pages through one table: Link rel="next" when the instance
// sends it, otherwise offsets until a short page or X-Total-Count.
func (c *Client) readTable(ctx context.Context, table string, fields []string, query string) ([]row, error) {
	q := url.Values{}
	q.Set("sysparm_query", query)
	q.Set("sysparm_fields", strings.Join(fields, ","))
	q.Set("sysparm_display_value", "all")
	q.Set("sysparm_exclude_reference_link", "true")
	q.Set("sysparm_limit", strconv.Itoa(c.o.PageSize))
	q.Set("sysparm_offset", "0")
	path := "/api/now/table/" + table
	var rows []row
	offset := 0
	for pages := 0; ; pages++ {
		body, hdr, err := c.do(ctx, http.MethodGet, path, q, nil)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Result *[]row `json:"result"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("servicenow: GET %s: 200 with a body that is not a Table API answer: %w", c.show(path, q), err)
		}
		if doc.Result == nil {
			return nil, fmt.Errorf("servicenow: GET %s: 200 without a result array", c.show(path, q))
		}
		page := *doc.Result
		rows = append(rows, page...)
		offset += len(page)
		c.log.Debug("page", "table", table, "rows", len(page), "total", len(rows))

		if next, ok := linkNext(hdr.Get("Link")); ok {
			nu, err := c.base.Parse(next)
			if err != nil || nu.Host != c.base.Host || nu.Scheme != c.base.Scheme {
				return nil, fmt.Errorf("servicenow: GET %s: Link rel=next %q is not on the instance", c.show(path, q), next)
			}
			if len(page) == 0 {
				return nil, fmt.Errorf("servicenow: GET %s: an empty page with a next link", c.show(path, q))
			}
			// Absolute, so a base URL with a path prefix is not doubled.
			path, q = (&url.URL{Scheme: nu.Scheme, Host: nu.Host, Path: nu.Path}).String(), nu.Query()
			continue
		}
		if hdr.Get("Link") != "" {
			return rows, nil // links without next: the last page
		}
		if len(page) < c.o.PageSize {
			return rows, nil
		}
		if n, err := strconv.Atoi(hdr.Get("X-Total-Count")); err == nil && offset >= n {
			return rows, nil
		}
		q.Set("sysparm_offset", strconv.Itoa(offset))
	}
}

// linkNext finds rel="next" in a Link header such as ServiceNow's
// <https://i/api/now/table/t?sysparm_limit=1&sysparm_offset=1>;rel="next".
func linkNext(h string) (string, bool) {
	for _, part := range splitLinks(h) {
		segs := strings.Split(part, ";")
		u := strings.TrimSpace(segs[0])
		if !strings.HasPrefix(u, "<") || !strings.HasSuffix(u, ">") {
			continue
		}
		for _, p := range segs[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "rel") {
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
					if strings.EqualFold(rel, "next") {
						return u[1 : len(u)-1], true
					}
				}
			}
		}
	}
	return "", false
}

// splitLinks splits a Link header at the commas between <...> entries
// (URLs may hold commas, e.g. in sysparm_fields).
func splitLinks(h string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range h {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, h[start:i])
				start = i + 1
			}
		}
	}
	return append(out, h[start:])
}

func (c *Client) toCI(r row, table string) cmdb.CI {
	class := r["sys_class_name"].Value
	if class == "" {
		class = table
	}
	id := r["sys_id"].Value
	ci := cmdb.CI{
		ID:           id,
		Class:        class,
		Name:         strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r["name"].Value), ".")),
		URL:          c.base.String() + "/nav_to.do?uri=" + class + ".do?sys_id=" + url.QueryEscape(id),
		Serial:       strings.TrimSpace(r["serial_number"].Value),
		AssetTag:     strings.TrimSpace(r["asset_tag"].Value),
		Site:         r["location"].Display,
		BusinessUnit: cmp.Or(r["department"].Display, r["company"].Display),
		Owner:        cmp.Or(r["owned_by"].Display, r["assigned_to"].Display),
		Role:         strings.ToLower(r["sys_class_name"].Display),
	}
	if c.o.ReckonIDField != "" {
		ci.ReckonID = r[c.o.ReckonIDField].Value
	}
	if c.o.RoleField != "" {
		ci.Role = r[c.o.RoleField].Display
	}
	if st := r["install_status"]; st.Value != "" {
		ci.Status = installStatus[st.Value]
		if ci.Status == "" { // a choice added on the instance
			ci.Status = strings.ReplaceAll(strings.ToLower(cmp.Or(st.Display, st.Value)), " ", "_")
		}
	}
	if v := r["sys_updated_on"].Value; v != "" {
		if t, err := time.ParseInLocation(snTime, v, time.UTC); err == nil {
			ci.LastUpdated = t
		} else {
			c.log.Debug("unparsable sys_updated_on", "sys_id", id, "value", v)
		}
	}
	c.addMAC(&ci, r["mac_address"].Value)
	c.addIP(&ci, r["ip_address"].Value)
	return ci
}

// addMAC adds a MAC in canonical form, once; ServiceNow's field is free
// text, so what is not a MAC is skipped.
func (c *Client) addMAC(ci *cmdb.CI, s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	m, err := discovery.CanonicalMAC(s)
	if err != nil {
		c.log.Debug("not a MAC address", "sys_id", ci.ID, "value", s)
		return
	}
	if !slices.Contains(ci.MACs, m) {
		ci.MACs = append(ci.MACs, m)
	}
}

// addIP adds an address once. ServiceNow records no DHCP/static flag on a
// CI or adapter, so every address is marked not static: the reconciler
// then never trusts a ServiceNow IP as a stable identity on its own.
func (c *Client) addIP(ci *cmdb.CI, s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		c.log.Debug("not an IP address", "sys_id", ci.ID, "value", s)
		return
	}
	a = a.Unmap()
	if !slices.Contains(ci.IPs, a) {
		ci.IPs = append(ci.IPs, a)
		ci.Static = append(ci.Static, false)
	}
}
