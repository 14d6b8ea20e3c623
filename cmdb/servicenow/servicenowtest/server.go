package servicenowtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "embed"
)

//go:embed testdata/error-429-rate-limit.json
var rateLimitBody []byte

// UnauthenticatedBody is what ServiceNow answers with 401.
const UnauthenticatedBody = `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`

const snTime = "2006-01-02 15:04:05"

// references are the reference fields and whose display value they show.
var references = map[string]bool{"location": true, "company": true, "department": true, "owned_by": true, "assigned_to": true, "cmdb_ci": true}

type record struct {
	class string
	f     map[string]string
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	Auth   string
}

// Fault makes matching requests fail or slow down.
type Fault struct {
	// Path is a prefix of the request paths the fault hits ("" = all).
	Path string
	// Status answers with this status (0 = serve normally after Delay).
	Status int
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Body is the answer's body; default: the recorded 429 body for 429,
	// otherwise a ServiceNow error body naming the status.
	Body []byte
	// Delay is waited before answering (or until the client gives up).
	Delay time.Duration
	// Truncate answers 200 with the first half of the real body.
	Truncate bool
	// Times is how many requests the fault hits; 0 means all.
	Times int
}

// Write is a CI the IRE endpoint inserted or updated.
type Write struct {
	Op         string // INSERT or UPDATE
	Class      string
	SysID      string
	Values     map[string]string
	DataSource string
}

// Server is the emulated instance. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	// Token (and User, for Basic auth) are the accepted credentials.
	Token, User string
	// DataSources are the cmdb_ci.discovery_source choices IRE accepts.
	DataSources []string
	// Now stamps writes (default time.Now).
	Now func() time.Time
	// NoLinkHeader leaves out the Link header (as
	// sysparm_suppress_pagination_header=true does), so clients page by
	// offset.
	NoLinkHeader bool

	mu       sync.Mutex
	recs     []*record
	refs     map[string]string
	faults   []*Fault
	reqs     []Request
	writes   []Write
	sources  map[string]string // source_name + "\x00" + native key -> sys_id
	failKeys map[string][2]string
	revoked  bool
	seq      int
}

// New starts a server with ds; Close it when done.
func New(ds Dataset) *Server {
	s := &Server{Token: "test-token", DataSources: []string{"ServiceNow", "SCCM", "Manual Entry", "Other Automated", "ImportSet"},
		Now: time.Now, refs: map[string]string{}, sources: map[string]string{}, failKeys: map[string][2]string{}}
	for k, v := range ds.Refs {
		s.refs[k] = v
	}
	for _, c := range ds.CIs {
		f := map[string]string{"sys_id": c.SysID, "sys_class_name": c.Class, "name": c.Name, "serial_number": c.Serial,
			"asset_tag": c.AssetTag, "mac_address": c.MAC, "ip_address": c.IP, "location": c.Location, "company": c.Company,
			"department": c.Department, "owned_by": c.OwnedBy, "assigned_to": c.AssignedTo, "install_status": c.InstallStatus,
			"sys_updated_on": c.Updated.UTC().Format(snTime)}
		for k, v := range c.Extra {
			f[k] = v
		}
		s.recs = append(s.recs, &record{class: c.Class, f: f})
	}
	for _, a := range ds.Adapters {
		s.recs = append(s.recs, &record{class: "cmdb_ci_network_adapter", f: map[string]string{"sys_id": a.SysID,
			"sys_class_name": "cmdb_ci_network_adapter", "cmdb_ci": a.CI, "name": a.Name, "mac_address": a.MAC,
			"ip_address": a.IP, "sys_updated_on": a.Updated.UTC().Format(snTime)}})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/now/table/{table}", s.table)
	mux.HandleFunc("POST /api/now/identifyreconcile", func(w http.ResponseWriter, r *http.Request) { s.ire(w, r, false) })
	mux.HandleFunc("POST /api/now/identifyreconcile/query", func(w http.ResponseWriter, r *http.Request) { s.ire(w, r, true) })
	s.Server = httptest.NewServer(s.middleware(mux))
	return s
}

// Inject adds a fault; faults are tried in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Revoke makes every later request fail with 401, as a revoked token does.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// FailItem makes IRE answer the item with this source native key with an
// error (code, message), as it does for an item it cannot process.
func (s *Server) FailItem(nativeKey, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failKeys[nativeKey] = [2]string{code, message}
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Writes returns the CI writes IRE made so far.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// Touch sets a CI's fields and stamps sys_updated_on with at.
func (s *Server) Touch(sysID string, at time.Time, fields map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if r.f["sys_id"] == sysID {
			for k, v := range fields {
				r.f[k] = v
			}
			r.f["sys_updated_on"] = at.UTC().Format(snTime)
		}
	}
}

// AddCIs seeds n computers named host-0000 ... with one adapter each
// (for paging tests), updated at at.
func (s *Server) AddCIs(n int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		id := s.newID()
		s.recs = append(s.recs, &record{class: "cmdb_ci_computer", f: map[string]string{"sys_id": id, "sys_class_name": "cmdb_ci_computer",
			"name": fmt.Sprintf("host-%04d", i), "install_status": "1", "sys_updated_on": at.UTC().Format(snTime)}})
		s.recs = append(s.recs, &record{class: "cmdb_ci_network_adapter", f: map[string]string{"sys_id": s.newID(),
			"sys_class_name": "cmdb_ci_network_adapter", "cmdb_ci": id, "name": "eth0",
			"mac_address": fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), "sys_updated_on": at.UTC().Format(snTime)}})
	}
}

func (s *Server) newID() string {
	s.seq++
	return fmt.Sprintf("%032x", 0xf0000000+s.seq)
}

func writeError(w http.ResponseWriter, status int, message, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": message, "detail": detail}, "status": "failure"})
	w.Write(b)
}

// middleware records the request, checks auth and applies faults.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Auth: r.Header.Get("Authorization")})
		var fault *Fault
		for _, f := range s.faults {
			if strings.HasPrefix(r.URL.Path, f.Path) && f.Times >= 0 {
				fault = f
				if f.Times > 0 {
					if f.Times--; f.Times == 0 {
						f.Times = -1 // used up
					}
				}
				break
			}
		}
		var fc Fault
		if fault != nil {
			fc = *fault
		}
		authOK := !s.revoked && s.authorised(r)
		s.mu.Unlock()

		if fc.Delay > 0 {
			select {
			case <-time.After(fc.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if !authOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, UnauthenticatedBody)
			return
		}
		if fc.Status != 0 {
			if fc.RetryAfter != "" {
				w.Header().Set("Retry-After", fc.RetryAfter)
			}
			b := fc.Body
			if b == nil && fc.Status == http.StatusTooManyRequests {
				b = rateLimitBody
			}
			if b == nil {
				writeError(w, fc.Status, http.StatusText(fc.Status), "injected fault")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(fc.Status)
			w.Write(b)
			return
		}
		if fc.Truncate {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			b := rec.Body.Bytes()
			b = b[:len(b)/2]
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(rec.Code)
			w.Write(b)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorised(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if s.User == "" {
		return h == "Bearer "+s.Token
	}
	return h == "Basic "+base64.StdEncoding.EncodeToString([]byte(s.User+":"+s.Token))
}

// table serves GET /api/now/table/{table}.
func (s *Server) table(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if _, ok := parents[table]; !ok {
		writeError(w, http.StatusBadRequest, "Invalid table "+table, "")
		return
	}
	q := r.URL.Query()
	limit, offset := 10000, 0
	if v := q.Get("sysparm_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "Invalid sysparm_limit "+v, "")
			return
		}
		limit = n
	}
	if v := q.Get("sysparm_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Invalid sysparm_offset "+v, "")
			return
		}
		offset = n
	}
	dv := q.Get("sysparm_display_value")
	if dv == "" {
		dv = "false"
	}
	if dv != "false" && dv != "true" && dv != "all" {
		writeError(w, http.StatusBadRequest, "Invalid sysparm_display_value "+dv, "")
		return
	}
	noLink := q.Get("sysparm_exclude_reference_link") == "true"
	var fields []string
	if v := q.Get("sysparm_fields"); v != "" {
		fields = strings.Split(v, ",")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	qry, err := parseQuery(q.Get("sysparm_query"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	var hits []*record
	for _, rec := range s.recs {
		if isA(rec.class, table) && qry.match(s, rec) {
			hits = append(hits, rec)
		}
	}
	qry.sort(hits)
	total := len(hits)
	page := hits[min(offset, total):min(offset+limit, total)]

	base := "http://" + r.Host + r.URL.Path
	link := func(off int, rel string) string {
		lq := url.Values{}
		for k, v := range q {
			lq[k] = v
		}
		lq.Set("sysparm_limit", strconv.Itoa(limit))
		lq.Set("sysparm_offset", strconv.Itoa(off))
		return "<" + base + "?" + lq.Encode() + ">;rel=\"" + rel + "\""
	}
	links := []string{link(0, "first")}
	if offset > 0 {
		links = append(links, link(max(offset-limit, 0), "prev"))
	}
	if offset+limit < total {
		links = append(links, link(offset+limit, "next"))
	}
	last := 0
	if total > 0 {
		last = (total - 1) / limit * limit
	}
	links = append(links, link(last, "last"))
	if q.Get("sysparm_suppress_pagination_header") != "true" && !s.NoLinkHeader {
		w.Header().Set("Link", strings.Join(links, ","))
	}
	if q.Get("sysparm_no_count") != "true" {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}

	out := make([]map[string]any, 0, len(page))
	for _, rec := range page {
		fs := fields
		if fs == nil {
			fs = make([]string, 0, len(rec.f))
			for k := range rec.f {
				fs = append(fs, k)
			}
		}
		m := map[string]any{}
		for _, f := range fs {
			m[f] = s.render(rec, f, dv, noLink, base)
		}
		out = append(out, m)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"result": out})
}

// display is a field's display value (the emulated user's time zone is
// UTC-8, with ServiceNow's US date format, so clients must use "value").
func (s *Server) display(rec *record, f string) string {
	v := rec.f[f]
	switch {
	case v == "":
		return ""
	case f == "cmdb_ci":
		if ci := s.find(v); ci != nil {
			return ci.f["name"]
		}
		return ""
	case references[f]:
		return s.refs[v]
	case f == "sys_class_name":
		return labels[v]
	case f == "install_status":
		return installLabels[v]
	case f == "sys_updated_on" || f == "sys_created_on":
		t, err := time.Parse(snTime, v)
		if err != nil {
			return v
		}
		return t.In(time.FixedZone("PST", -8*3600)).Format("01/02/2006 03:04:05 PM")
	}
	return v
}

func (s *Server) render(rec *record, f, dv string, noLink bool, base string) any {
	v := rec.f[f]
	isRef := references[f] && v != ""
	link := strings.SplitN(base, "/api/", 2)[0] + "/api/now/table/cmdb_ci/" + v
	switch dv {
	case "true":
		if isRef && !noLink {
			return map[string]string{"display_value": s.display(rec, f), "link": link}
		}
		return s.display(rec, f)
	case "all":
		m := map[string]string{"display_value": s.display(rec, f), "value": v}
		if isRef && !noLink {
			m["link"] = link
		}
		return m
	default:
		if isRef && !noLink {
			return map[string]string{"value": v, "link": link}
		}
		return v
	}
}

func (s *Server) find(sysID string) *record {
	for _, r := range s.recs {
		if r.f["sys_id"] == sysID {
			return r
		}
	}
	return nil
}

// field reads f of rec, dot-walking references ("cmdb_ci.sys_updated_on").
func (s *Server) field(rec *record, f string) string {
	for {
		head, rest, ok := strings.Cut(f, ".")
		if !ok {
			return rec.f[f]
		}
		rec = s.find(rec.f[head])
		if rec == nil {
			return ""
		}
		f = rest
	}
}
