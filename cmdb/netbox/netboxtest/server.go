// Package netboxtest is an in-memory NetBox 4.2 REST API emulator for tests:
// an httptest.Server over a seeded Dataset with NetBox's pagination
// (count/next/previous/results, limit default 50 and max 1000, offset),
// the list filters reckon uses, token authentication (v1 "Token <t>" and
// v2 "Bearer nbt_..."), and fault injection. Every request it receives and
// every response it sends are validated against NetBox 4.2.2's OpenAPI
// schema (testdata/netbox-openapi.json); a violation fails the test.
package netboxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Options configures an emulator.
type Options struct {
	// Tokens are the accepted token values: a v1 token is sent as
	// "Token <t>", a v2 one (starting "nbt_") as "Bearer <t>". Empty means
	// {DefaultToken, DefaultTokenV2}.
	Tokens []string
	// NoValidate switches OpenAPI validation off (benchmarks only: it
	// dominates the cost of 1000-record pages).
	NoValidate bool
	// TLS serves HTTPS (httptest.NewTLSServer).
	TLS bool
	// OmitCount renders "count": null, as NetBox does in cursor mode
	// (?start=) and some proxies do; clients must follow next. The schema
	// requires count, so use it with NoValidate.
	OmitCount bool
}

// Default tokens accepted when Options.Tokens is empty.
const (
	DefaultToken   = "0123456789abcdef0123456789abcdef01234567"
	DefaultTokenV2 = "nbt_4Fk9aQ2zLx7p.s3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t"
)

// Fault is what the next requests get instead of (or on top of) a normal
// answer.
type Fault struct {
	// Method and Path (a URL path prefix) limit the fault to matching
	// requests; empty matches any.
	Method, Path string

	Status     int           // respond with this status (429, 500, 503 ...) and Body
	RetryAfter string        // Retry-After header value, with Status
	Body       string        // body for Status; a NetBox-like default when empty
	Delay      time.Duration // wait before answering (gives up when the client does)
	Truncate   bool          // send the normal body cut in half (invalid JSON)
}

// Request is one request the emulator received.
type Request struct {
	Start  time.Time // received
	Time   time.Time // answered
	Method string
	URL    *url.URL
	Auth   string // the Authorization header
	Body   []byte // the request body (writes)
	Status int
}

// Server is a running emulator. Close is registered with t.Cleanup.
type Server struct {
	*httptest.Server
	t         testing.TB
	validate  bool
	omitCount bool

	mu       sync.Mutex
	tokens   map[string]bool
	faults   []Fault
	latency  time.Duration
	requests []Request
	tables   map[string]*table
	inFlight int
	maxIn    int

	wmu   sync.Mutex             // serialises Seed and writes
	data  Dataset                // what is served; writes change it and render again
	named map[string][]*briefObj // sites, roles, tags ... by list path, for writes
}

type record struct {
	id          int
	lastUpdated time.Time
	deviceID    int
	vmID        int
	name        string
	serial      string
	macs        []string // upper-case
	slug        string
	prefix      netip.Prefix   // ip-addresses: the address with its mask
	cf          map[string]any // custom fields, for cf_<name>=
	raw         []byte
}

type table struct{ recs []record }

// New starts an emulator with an empty dataset.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, validate: !o.NoValidate, omitCount: o.OmitCount, tokens: map[string]bool{}, tables: map[string]*table{}}
	toks := o.Tokens
	if len(toks) == 0 {
		toks = []string{DefaultToken, DefaultTokenV2}
	}
	for _, tok := range toks {
		s.tokens[tok] = true
	}
	if s.validate {
		if _, err := spec(); err != nil {
			t.Fatalf("netboxtest: load OpenAPI schema: %v", err)
		}
	}
	h := http.HandlerFunc(s.serve)
	if o.TLS {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	s.Seed(Dataset{})
	return s
}

// Inject makes the next n requests get f.
func (s *Server) Inject(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// ClearFaults drops the injected faults not yet served.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// SetLatency adds d to every request (the benchmark's network).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// RevokeToken stops accepting tok: later requests with it get 403
// {"detail": "Invalid token"}.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	delete(s.tokens, tok)
	s.mu.Unlock()
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ResetRequests forgets the recorded requests and the in-flight maximum.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.requests = nil
	s.maxIn = 0
	s.mu.Unlock()
}

// MaxInFlight is the most requests the emulator was handling at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

// Endpoints served (list endpoints only; reckon only reads lists).
const (
	PathDevices      = "/api/dcim/devices/"
	PathVMs          = "/api/virtualization/virtual-machines/"
	PathInterfaces   = "/api/dcim/interfaces/"
	PathVMInterfaces = "/api/virtualization/interfaces/"
	PathMACs         = "/api/dcim/mac-addresses/"
	PathIPs          = "/api/ipam/ip-addresses/"
	PathSites        = "/api/dcim/sites/"
	PathTenants      = "/api/tenancy/tenants/"
	PathRoles        = "/api/dcim/device-roles/"
	PathTags         = "/api/extras/tags/"
	PathDeviceTypes  = "/api/dcim/device-types/"
)

// Seed replaces the dataset (the emulator keeps its own copy; writes change
// that). Records are rendered to JSON once here, so requests only filter
// and concatenate.
func (s *Server) Seed(d Dataset) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.data = d.clone()
	s.render()
}

// render renders s.data into the tables requests read; s.wmu is held.
func (s *Server) render() {
	d := s.data
	base := s.URL
	objURL := func(path string, id int) string { return fmt.Sprintf("%s%s%d/", base, path, id) }
	uiURL := func(path string, id int) string {
		return fmt.Sprintf("%s%s%d/", base, strings.TrimPrefix(path, "/api"), id)
	}
	named := map[string]map[string]*briefObj{PathSites: {}, PathTenants: {}, PathRoles: {}, PathTags: {}, PathDeviceTypes: {}}
	var namedOrder = map[string][]*briefObj{}
	brief := func(path, name string) *briefObj {
		if name == "" {
			return nil
		}
		if b, ok := named[path][name]; ok {
			return b
		}
		id := len(named[path]) + 1
		b := &briefObj{ID: id, URL: objURL(path, id), Display: name, Name: name, Slug: slug(name)}
		named[path][name] = b
		namedOrder[path] = append(namedOrder[path], b)
		return b
	}
	orDefault := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}

	for path, names := range map[string][]string{PathSites: d.Sites, PathRoles: d.Roles, PathTenants: d.Tenants,
		PathTags: d.Tags, PathDeviceTypes: d.DeviceTypes} {
		for _, n := range names {
			brief(path, n)
		}
	}
	tagsOf := func(names []string) []any {
		out := []any{}
		for _, n := range names {
			b := brief(PathTags, n)
			out = append(out, nestedTag{ID: b.ID, URL: b.URL, DisplayURL: uiURL(PathTags, b.ID), Display: b.Name,
				Name: b.Name, Slug: b.Slug, Color: tagColor})
		}
		return out
	}
	devByID := map[int]*Device{}
	for i := range d.Devices {
		devByID[d.Devices[i].ID] = &d.Devices[i]
	}
	vmByID := map[int]*VM{}
	for i := range d.VMs {
		vmByID[d.VMs[i].ID] = &d.VMs[i]
	}
	ifByID := map[int]*Interface{}
	for i := range d.Interfaces {
		ifByID[d.Interfaces[i].ID] = &d.Interfaces[i]
	}
	vifByID := map[int]*Interface{}
	for i := range d.VMInterfaces {
		vifByID[d.VMInterfaces[i].ID] = &d.VMInterfaces[i]
	}
	briefDev := func(id int) *briefNoSlug {
		dv := devByID[id]
		if dv == nil {
			return &briefNoSlug{ID: id, URL: objURL(PathDevices, id), Display: fmt.Sprint(id)}
		}
		return &briefNoSlug{ID: id, URL: objURL(PathDevices, id), Display: displayDev(dv), Name: dv.Name}
	}
	briefVM := func(id int) *briefNoSlug {
		name := ""
		if v := vmByID[id]; v != nil {
			name = v.Name
		}
		return &briefNoSlug{ID: id, URL: objURL(PathVMs, id), Display: name, Name: name}
	}
	macsByIf := map[int][]*MAC{}
	macsByVIf := map[int][]*MAC{}
	macByID := map[int]*MAC{}
	for i := range d.MACs {
		m := &d.MACs[i]
		macByID[m.ID] = m
		if m.InterfaceID != 0 {
			macsByIf[m.InterfaceID] = append(macsByIf[m.InterfaceID], m)
		} else if m.VMInterfaceID != 0 {
			macsByVIf[m.VMInterfaceID] = append(macsByVIf[m.VMInterfaceID], m)
		}
	}
	ipCountIf, ipCountVIf := map[int]int{}, map[int]int{}
	for _, ip := range d.IPs {
		if ip.InterfaceID != 0 {
			ipCountIf[ip.InterfaceID]++
		} else if ip.VMInterfaceID != 0 {
			ipCountVIf[ip.VMInterfaceID]++
		}
	}
	ifCountDev, ifCountVM := map[int]int{}, map[int]int{}
	for _, f := range d.Interfaces {
		ifCountDev[f.DeviceID]++
	}
	for _, f := range d.VMInterfaces {
		ifCountVM[f.VMID]++
	}
	briefMACOf := func(m *MAC) briefMAC {
		a := strings.ToUpper(m.Address)
		return briefMAC{ID: m.ID, URL: objURL(PathMACs, m.ID), Display: a, MACAddress: a}
	}
	devMACs, vmMACs := map[int][]string{}, map[int][]string{}
	for _, m := range d.MACs {
		a := strings.ToUpper(m.Address)
		if f := ifByID[m.InterfaceID]; m.InterfaceID != 0 && f != nil {
			devMACs[f.DeviceID] = append(devMACs[f.DeviceID], a)
		} else if f := vifByID[m.VMInterfaceID]; m.VMInterfaceID != 0 && f != nil {
			vmMACs[f.VMID] = append(vmMACs[f.VMID], a)
		}
	}
	assigned := func(ifID, vifID int) (*string, *int, *assignedIface, int, int) {
		switch {
		case ifID != 0:
			f := ifByID[ifID]
			a := &assignedIface{ID: ifID, URL: objURL(PathInterfaces, ifID), Cable: nil, Occupied: ptr(false)}
			devID := 0
			if f != nil {
				a.Display, a.Name, a.Device, devID = f.Name, f.Name, briefDev(f.DeviceID), f.DeviceID
			}
			return ptr("dcim.interface"), ptr(ifID), a, devID, 0
		case vifID != 0:
			f := vifByID[vifID]
			a := &assignedIface{ID: vifID, URL: objURL(PathVMInterfaces, vifID)}
			vmID := 0
			if f != nil {
				a.Display, a.Name, a.VirtualMachine, vmID = f.Name, f.Name, briefVM(f.VMID), f.VMID
			}
			return ptr("virtualization.vminterface"), ptr(vifID), a, 0, vmID
		}
		return nil, nil, nil, 0, 0
	}

	tables := map[string]*table{}
	add := func(path string, r record) {
		t := tables[path]
		if t == nil {
			t = &table{}
			tables[path] = t
		}
		t.recs = append(t.recs, r)
	}
	for i := range d.Devices {
		dv := &d.Devices[i]
		var name, tag *string
		if dv.Name != "" {
			name = ptr(dv.Name)
		}
		if dv.AssetTag != "" {
			tag = ptr(dv.AssetTag)
		}
		st := orDefault(dv.Status, "active")
		j := deviceJSON{ID: dv.ID, URL: objURL(PathDevices, dv.ID), DisplayURL: uiURL(PathDevices, dv.ID),
			Display: displayDev(dv), Name: name,
			DeviceType: deviceType(base, brief(PathDeviceTypes, orDefault(dv.DeviceType, "Generic"))),
			Role:       *brief(PathRoles, orDefault(dv.Role, "server")), Tenant: brief(PathTenants, dv.Tenant),
			Serial: dv.Serial, AssetTag: tag, Site: *brief(PathSites, orDefault(dv.Site, "default")),
			Status: choice{st, label(st)}, ConfigContext: map[string]any{}, Tags: tagsOf(dv.Tags),
			Description: dv.Description, CustomFields: cf(dv.CustomFields), Created: ts(created(dv.Created, dv.LastUpdated)),
			LastUpdated: ts(dv.LastUpdated), InterfaceCount: ifCountDev[dv.ID]}
		add(PathDevices, record{id: dv.ID, lastUpdated: dv.LastUpdated, name: dv.Name, serial: dv.Serial,
			macs: devMACs[dv.ID], cf: dv.CustomFields, raw: mustJSON(j)})
	}
	for i := range d.VMs {
		v := &d.VMs[i]
		st := orDefault(v.Status, "active")
		j := vmJSON{ID: v.ID, URL: objURL(PathVMs, v.ID), DisplayURL: uiURL(PathVMs, v.ID), Display: v.Name,
			Name: v.Name, Status: choice{st, label(st)}, Site: brief(PathSites, v.Site), Serial: v.Serial,
			Role: brief(PathRoles, v.Role), Tenant: brief(PathTenants, v.Tenant), Tags: []any{},
			CustomFields: cf(v.CustomFields), ConfigContext: map[string]any{},
			Created: ts(created(v.Created, v.LastUpdated)), LastUpdated: ts(v.LastUpdated), InterfaceCount: ifCountVM[v.ID]}
		add(PathVMs, record{id: v.ID, lastUpdated: v.LastUpdated, name: v.Name, serial: v.Serial,
			macs: vmMACs[v.ID], raw: mustJSON(j)})
	}
	renderIf := func(path string, f *Interface, vm bool) {
		j := ifaceJSON{ID: f.ID, URL: objURL(path, f.ID), DisplayURL: uiURL(path, f.ID), Display: f.Name,
			Name: f.Name, Enabled: true, MACAddresses: []briefMAC{}, TaggedVLANs: []any{}, Tags: []any{},
			CustomFields: map[string]any{}, Created: ts(created(time.Time{}, f.LastUpdated)), LastUpdated: ts(f.LastUpdated)}
		ms := macsByIf[f.ID]
		r := record{id: f.ID, lastUpdated: f.LastUpdated, name: f.Name}
		if vm {
			ms = macsByVIf[f.ID]
			j.VirtualMachine, r.vmID, j.CountIPAddresses = briefVM(f.VMID), f.VMID, ipCountVIf[f.ID]
		} else {
			ty := orDefault(f.Type, "1000base-t")
			j.Device, r.deviceID, j.CountIPAddresses = briefDev(f.DeviceID), f.DeviceID, ipCountIf[f.ID]
			j.Type, j.VDCs, j.MgmtOnly, j.MarkConnected = &choice{ty, label(ty)}, []any{}, ptr(false), ptr(false)
			j.CableEnd, j.LinkPeers, j.ConnectedEndpointsReachable, j.Occupied = ptr(""), []any{}, ptr(false), ptr(false)
		}
		for _, m := range ms {
			j.MACAddresses = append(j.MACAddresses, briefMACOf(m))
			r.macs = append(r.macs, strings.ToUpper(m.Address))
		}
		if m := macByID[f.PrimaryMACID]; f.PrimaryMACID != 0 && m != nil {
			b := briefMACOf(m)
			j.PrimaryMACAddress, j.MACAddress = &b, ptr(b.MACAddress)
		}
		r.raw = mustJSON(j)
		add(path, r)
	}
	for i := range d.Interfaces {
		renderIf(PathInterfaces, &d.Interfaces[i], false)
	}
	for i := range d.VMInterfaces {
		renderIf(PathVMInterfaces, &d.VMInterfaces[i], true)
	}
	for _, m := range d.MACs {
		a := strings.ToUpper(m.Address)
		ty, id, obj, dev, vm := assigned(m.InterfaceID, m.VMInterfaceID)
		j := macJSON{ID: m.ID, URL: objURL(PathMACs, m.ID), DisplayURL: uiURL(PathMACs, m.ID), Display: a,
			MACAddress: a, AssignedObjectType: ty, AssignedObjectID: id, AssignedObject: obj, Tags: []any{},
			CustomFields: map[string]any{}, Created: ts(created(time.Time{}, m.LastUpdated)), LastUpdated: ts(m.LastUpdated)}
		add(PathMACs, record{id: m.ID, lastUpdated: m.LastUpdated, deviceID: dev, vmID: vm, macs: []string{a}, raw: mustJSON(j)})
	}
	for _, ip := range d.IPs {
		fam := choice{4, "IPv4"}
		if p, err := netip.ParsePrefix(ip.Address); err == nil && p.Addr().Is6() {
			fam = choice{6, "IPv6"}
		}
		st := orDefault(ip.Status, "active")
		ty, id, obj, dev, vm := assigned(ip.InterfaceID, ip.VMInterfaceID)
		j := ipJSON{ID: ip.ID, URL: objURL(PathIPs, ip.ID), DisplayURL: uiURL(PathIPs, ip.ID), Display: ip.Address,
			Family: fam, Address: ip.Address, Tenant: brief(PathTenants, ip.Tenant), Status: choice{st, label(st)},
			AssignedObjectType: ty, AssignedObjectID: id, AssignedObject: obj, NATOutside: []any{},
			DNSName: ip.DNSName, Description: ip.Description, Tags: tagsOf(ip.Tags), CustomFields: cf(ip.CustomFields),
			Created: ts(created(time.Time{}, ip.LastUpdated)), LastUpdated: ts(ip.LastUpdated)}
		pfx, _ := netip.ParsePrefix(ip.Address)
		add(PathIPs, record{id: ip.ID, lastUpdated: ip.LastUpdated, deviceID: dev, vmID: vm, name: ip.DNSName,
			prefix: pfx, cf: ip.CustomFields, raw: mustJSON(j)})
	}
	for path, bs := range namedOrder {
		for _, b := range bs {
			var raw []byte
			switch path {
			case PathTags:
				raw = mustJSON(tagJSON{nestedTag: nestedTag{ID: b.ID, URL: b.URL, DisplayURL: uiURL(path, b.ID),
					Display: b.Name, Name: b.Name, Slug: b.Slug, Color: tagColor}, ObjectTypes: []string{}})
			case PathDeviceTypes:
				raw = mustJSON(deviceTypeJSON{briefDeviceType: deviceType(base, b)})
			default:
				raw = mustJSON(b)
			}
			add(path, record{id: b.ID, name: b.Name, slug: b.Slug, raw: raw})
		}
	}
	for _, t := range tables {
		sort.Slice(t.recs, func(i, j int) bool { return t.recs[i].id < t.recs[j].id })
	}
	s.named = namedOrder
	s.mu.Lock()
	s.tables = tables
	s.mu.Unlock()
}

func displayDev(d *Device) string {
	if d.Name != "" {
		return d.Name
	}
	return fmt.Sprintf("Unnamed device (%d)", d.ID)
}

func created(c, lu time.Time) time.Time {
	if c.IsZero() {
		return lu
	}
	return c
}

var served = map[string]bool{PathDevices: true, PathVMs: true, PathInterfaces: true, PathVMInterfaces: true,
	PathMACs: true, PathIPs: true, PathSites: true, PathTenants: true, PathRoles: true, PathTags: true,
	PathDeviceTypes: true}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mu.Lock()
	var f *Fault
	for i := range s.faults {
		ft := s.faults[i]
		if (ft.Method == "" || ft.Method == r.Method) && strings.HasPrefix(r.URL.Path, ft.Path) {
			f = &ft
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			break
		}
	}
	latency := s.latency
	tables := s.tables
	s.inFlight++
	s.maxIn = max(s.maxIn, s.inFlight)
	s.mu.Unlock()

	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	s.handle(rec, r, f, latency, tables)

	s.mu.Lock()
	s.inFlight--
	s.requests = append(s.requests, Request{Start: start, Time: time.Now(), Method: r.Method, URL: r.URL,
		Auth: r.Header.Get("Authorization"), Body: body, Status: rec.status})
	s.mu.Unlock()

	if s.validate && !(f != nil && f.Truncate) {
		s.validateResponse(r, rec)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (s *Server) handle(w *recorder, r *http.Request, f *Fault, latency time.Duration, tables map[string]*table) {
	delay := latency
	if f != nil {
		delay += f.Delay
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			w.status = 499 // nginx's "client closed request"; the client is gone
			return
		}
	}
	w.header.Set("Content-Type", "application/json")
	w.header.Set("API-Version", "4.2")
	var invalid error
	if s.validate {
		invalid = s.validateRequest(r)
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter != "" {
			w.header.Set("Retry-After", f.RetryAfter)
		}
		w.status = f.Status
		body := f.Body
		if body == "" {
			body = defaultBody(f.Status)
		}
		w.body.WriteString(body)
		return
	}
	if status, detail := s.auth(r.Header.Get("Authorization")); status != 0 {
		w.status = status
		w.body.Write(mustJSON(map[string]string{"detail": detail}))
		return
	}
	if r.Method != http.MethodGet {
		if invalid != nil {
			// NetBox would answer 400; the test has already failed.
			w.status = http.StatusBadRequest
			w.body.Write(mustJSON(map[string]string{"detail": invalid.Error()}))
			return
		}
		s.write(w, r)
		return
	}
	if !served[r.URL.Path] {
		w.status = http.StatusNotFound
		w.header.Set("Content-Type", "text/html")
		w.body.WriteString("<h1>Page Not Found</h1>")
		return
	}
	s.list(w, r, tables[r.URL.Path])
	if f != nil && f.Truncate {
		b := w.body.Bytes()
		w.body.Truncate(len(b) / 2)
	}
}

func defaultBody(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return `{"detail": "Request was throttled."}`
	case status >= 500:
		return `{"error": "server error", "exception": "OperationalError", "netbox_version": "4.2.2", "python_version": "3.12.3"}`
	}
	return `{"detail": "error"}`
}

// auth returns a non-zero status and NetBox's detail when the request is
// refused.
func (s *Server) auth(h string) (int, string) {
	if h == "" {
		return http.StatusForbidden, "Authentication credentials were not provided."
	}
	scheme, tok, _ := strings.Cut(h, " ")
	s.mu.Lock()
	ok := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case scheme == "Token" && !strings.HasPrefix(tok, "nbt_") && ok:
		return 0, ""
	case scheme == "Bearer" && strings.HasPrefix(tok, "nbt_") && ok:
		return 0, ""
	}
	return http.StatusForbidden, "Invalid token"
}

const (
	defaultLimit = 50
	maxLimit     = 1000
)

func (s *Server) list(w *recorder, r *http.Request, t *table) {
	q := r.URL.Query()
	bad := func(field, msg string) {
		w.status = http.StatusBadRequest
		w.body.Write(mustJSON(map[string][]string{field: {msg}}))
	}
	limit, offset := defaultLimit, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("limit", "A valid integer is required.")
			return
		}
		limit = n
	}
	if limit == 0 || limit > maxLimit {
		limit = maxLimit
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("offset", "A valid integer is required.")
			return
		}
		offset = n
	}
	ints := func(key string) (map[int]bool, bool) {
		vs := q[key]
		if len(vs) == 0 {
			return nil, true
		}
		m := map[int]bool{}
		for _, v := range vs {
			n, err := strconv.Atoi(v)
			if err != nil {
				bad(key, fmt.Sprintf("“%s” is not a valid value.", v))
				return nil, false
			}
			m[n] = true
		}
		return m, true
	}
	ids, ok1 := ints("id")
	devs, ok2 := ints("device_id")
	vms, ok3 := ints("virtual_machine_id")
	if !ok1 || !ok2 || !ok3 {
		return
	}
	var since time.Time
	if v := q.Get("last_updated__gte"); v != "" {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad("last_updated__gte", "Enter a valid date/time.")
			return
		}
		since = tm
	}
	anyFold := func(vs []string, s string) bool {
		for _, v := range vs {
			if strings.EqualFold(v, s) {
				return true
			}
		}
		return false
	}
	match := func(rec *record) bool {
		if ids != nil && !ids[rec.id] || devs != nil && !devs[rec.deviceID] || vms != nil && !vms[rec.vmID] {
			return false
		}
		if !since.IsZero() && rec.lastUpdated.Before(since) {
			return false
		}
		if vs := q["name"]; len(vs) > 0 && !anyFold(vs, rec.name) {
			return false
		}
		if vs := q["serial"]; len(vs) > 0 && !anyFold(vs, rec.serial) {
			return false
		}
		if vs := q["slug"]; len(vs) > 0 && !slices.Contains(vs, rec.slug) {
			return false
		}
		if vs := q["address"]; len(vs) > 0 && !addressMatch(vs, rec.prefix) {
			return false
		}
		for k, vs := range q {
			name, ok := strings.CutPrefix(k, "cf_")
			if !ok {
				continue
			}
			v, set := rec.cf[name]
			if !set || v == nil || !slices.Contains(vs, fmt.Sprint(v)) {
				return false
			}
		}
		if vs := q["mac_address"]; len(vs) > 0 {
			hit := false
			for _, m := range rec.macs {
				hit = hit || anyFold(vs, m)
			}
			if !hit {
				return false
			}
		}
		return true
	}
	var recs []record
	if t != nil {
		recs = t.recs
	}
	count, written := 0, 0
	w.body.WriteString(`{"count":`)
	var page bytes.Buffer
	for i := range recs {
		if !match(&recs[i]) {
			continue
		}
		if count >= offset && written < limit {
			if written > 0 {
				page.WriteByte(',')
			}
			page.Write(recs[i].raw)
			written++
		}
		count++
	}
	link := func(off int) string {
		u := *r.URL
		u.Scheme, u.Host = "http", r.Host
		if r.TLS != nil {
			u.Scheme = "https"
		}
		v := u.Query()
		v.Set("limit", strconv.Itoa(limit))
		if off <= 0 {
			v.Del("offset")
		} else {
			v.Set("offset", strconv.Itoa(off))
		}
		u.RawQuery = v.Encode()
		b, _ := json.Marshal(u.String())
		return string(b)
	}
	next, prev := "null", "null"
	if offset+limit < count {
		next = link(offset + limit)
	}
	if offset > 0 {
		prev = link(offset - limit)
	}
	cnt := strconv.Itoa(count)
	if s.omitCount {
		cnt = "null"
	}
	fmt.Fprintf(&w.body, `%s,"next":%s,"previous":%s,"results":[`, cnt, next, prev)
	w.body.Write(page.Bytes())
	w.body.WriteString("]}")
}

// addressMatch is NetBox's address filter (ipam/filtersets.py
// filter_address, ipam/lookups.py NetHostContained): a value without a mask
// matches the host whatever the stored mask, with a mask it matches
// exactly; values are ORed, and one that does not parse matches nothing.
func addressMatch(vs []string, p netip.Prefix) bool {
	for _, v := range vs {
		if q, err := netip.ParsePrefix(v); err == nil {
			if q == p {
				return true
			}
		} else if a, err := netip.ParseAddr(v); err == nil && a == p.Addr() {
			return true
		}
	}
	return false
}

// spec loads the OpenAPI document once per test binary; it is read-only
// afterwards.
var spec = sync.OnceValues(func() (*openapi3.T, error) {
	_, file, _, _ := runtime.Caller(0)
	l := openapi3.NewLoader()
	doc, err := l.LoadFromFile(filepath.Join(filepath.Dir(file), "testdata", "netbox-openapi.json"))
	if err != nil {
		return nil, err
	}
	relax(doc)
	return doc, nil
})

// dnsPattern is the pattern drf-spectacular exports for NetBox's DNSValidator
// (ipam/validators.py) on ip-address dns_name.
const dnsPattern = `^([0-9A-Za-z_-]+|\*)(\.[0-9A-Za-z_-]+)*\.?$`

// relax corrects two places where the exported schema is stricter than the
// NetBox it describes, so the emulator can render what NetBox really sends
// instead of bending the data to the schema:
//
//   - dns_name: the model field is blank=True, and Django and DRF skip
//     validators on a blank value (DRF CharField.run_validation returns ”
//     before running them), so NetBox stores and returns "" for an address
//     without a DNS name, and accepts "" on write. The schema's pattern
//     rejects "". We allow exactly "" besides the pattern; any other value
//     is still checked.
//   - custom_fields values: drf-spectacular renders the JSON values as {}
//     without nullable, but NetBox renders a defined custom field that is
//     not set as null ({"owner": null}), and accepts null on write to clear
//     one. We mark the value schema nullable.
//
// Nothing else is changed; every other rule of the schema still applies.
func relax(doc *openapi3.T) {
	for _, ref := range doc.Components.Schemas {
		if ref.Value == nil {
			continue
		}
		for name, p := range ref.Value.Properties {
			if p.Value == nil {
				continue
			}
			switch {
			case name == "dns_name" && p.Value.Pattern == dnsPattern:
				v := *p.Value
				v.Pattern = "^$|" + dnsPattern
				ref.Value.Properties[name] = openapi3.NewSchemaRef("", &v)
			case name == "custom_fields" && p.Value.AdditionalProperties.Schema != nil &&
				p.Value.AdditionalProperties.Schema.Value != nil:
				v := *p.Value
				ap := *v.AdditionalProperties.Schema.Value
				ap.Nullable = true
				v.AdditionalProperties.Schema = openapi3.NewSchemaRef("", &ap)
				ref.Value.Properties[name] = openapi3.NewSchemaRef("", &v)
			}
		}
	}
}

func (s *Server) route(r *http.Request) (*openapi3filter.RequestValidationInput, bool) {
	doc, _ := spec()
	path, params := r.URL.Path, map[string]string{}
	item := doc.Paths.Find(path)
	if item == nil {
		// A detail route: /api/ipam/ip-addresses/12/ is .../{id}/.
		if base, id, ok := detail(path); ok {
			path, params["id"] = base+"{id}/", strconv.Itoa(id)
			item = doc.Paths.Find(path)
		}
	}
	if item == nil || item.GetOperation(r.Method) == nil {
		s.t.Errorf("netboxtest: %s %s: not an operation of the NetBox 4.2 OpenAPI schema", r.Method, r.URL.Path)
		return nil, false
	}
	return &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: r.Method,
			Operation: item.GetOperation(r.Method)},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}, true
}

func (s *Server) validateRequest(r *http.Request) error {
	in, ok := s.route(r)
	if !ok {
		return fmt.Errorf("no such operation")
	}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		s.t.Errorf("netboxtest: request %s %s violates the NetBox OpenAPI schema: %v", r.Method, r.URL, err)
		return err
	}
	return nil
}

func (s *Server) validateResponse(r *http.Request, rec *recorder) {
	if rec.status == 499 {
		return
	}
	in, ok := s.route(r)
	if !ok {
		return
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.status,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options: &openapi3filter.Options{IncludeResponseStatus: false}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		msg := err.Error()
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		s.t.Errorf("netboxtest: response to %s %s (status %d) violates the NetBox OpenAPI schema: %s",
			r.Method, r.URL, rec.status, msg)
	}
}
