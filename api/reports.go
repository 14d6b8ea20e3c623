package api

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/alert/report"
	"github.com/reckon-dev/reckon/inventory/store"
)

type reportsAPI struct {
	st *store.Store
}

// RegisterReports adds the report route.
func (s *Server) RegisterReports(st *store.Store) {
	h := &reportsAPI{st: st}
	s.Handle("GET /api/v1/reports/{name}", RoleViewer, h.get)
}

// get answers GET /api/v1/reports/{name}: from and to (RFC 3339; the last
// 30 days by default), group_by, and format=json|csv (else CSV when the
// Accept header asks for text/csv and not for JSON).
func (h *reportsAPI) get(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !report.Known(name) {
		return NewProblem(http.StatusNotFound, fmt.Sprintf("no report %q: the reports are %s", name, strings.Join(report.Names(), ", ")))
	}
	q := r.URL.Query()
	var errs []FieldError
	when := func(field string) time.Time {
		v := q.Get(field)
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, FieldError{Field: field, Detail: fmt.Sprintf("%q: want an RFC 3339 time such as 2026-11-25T10:00:00Z", v)})
		}
		return t
	}
	rq := report.Query{From: when("from"), To: when("to"), GroupBy: q.Get("group_by")}
	if rq.To.IsZero() {
		rq.To = store.Now()
	}
	if rq.From.IsZero() {
		rq.From = rq.To.Add(-report.DefaultPeriod)
	}
	asCSV := false
	switch f := q.Get("format"); f {
	case "csv":
		asCSV = true
	case "json":
	case "":
		asCSV = acceptsCSV(r.Header.Values("Accept"))
	default:
		errs = append(errs, FieldError{Field: "format", Detail: fmt.Sprintf("%q: want json or csv", f)})
	}
	if len(errs) > 0 {
		return BadRequest(errs...)
	}
	rep, err := report.Run(r.Context(), h.st, name, rq)
	var qe *report.QueryError
	if errors.As(err, &qe) {
		return BadRequest(FieldError{Field: qe.Field, Detail: qe.Detail})
	}
	if err != nil {
		return err
	}
	w.Header().Add("Vary", "Accept")
	if !asCSV {
		WriteJSON(w, http.StatusOK, rep)
		return nil
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name+".csv"))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return nil
}

// acceptsCSV says whether Accept headers name text/csv and not JSON.
func acceptsCSV(accept []string) bool {
	csv, json := false, false
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch {
			case mt == "text/csv":
				csv = true
			case mt == "application/json" || strings.HasSuffix(mt, "+json"):
				json = true
			}
		}
	}
	return csv && !json
}
