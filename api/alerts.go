package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/reckon-dev/reckon/alert"
	assessrunner "github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/inventory"
)

type alertsAPI struct {
	alerts  *alert.Store
	inv     *inventory.Inventory
	assess  *assessrunner.Service // nil when assessment is off
	history int
}

// RegisterAlerts adds the alert routes. assess may be nil.
func (s *Server) RegisterAlerts(alerts *alert.Store, inv *inventory.Inventory, assess *assessrunner.Service) {
	h := &alertsAPI{alerts: alerts, inv: inv, assess: assess, history: 50}
	s.Handle("GET /api/v1/alerts", RoleViewer, h.list)
	s.Handle("GET /api/v1/alerts/{id}", RoleViewer, h.get)
	s.Handle("POST /api/v1/alerts/{id}/transitions", RoleOperator, h.transition)
	s.Handle("GET /api/v1/alerts/{id}/context", RoleViewer, h.context)
}

type alertList struct {
	Items []alert.Alert `json:"items"`
	Next  string        `json:"next,omitempty"`
}

// list answers GET /api/v1/alerts: filters state, severity, kind, team
// (each repeatable or comma-separated), asset, limit, cursor.
func (h *alertsAPI) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	multi := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	f := alert.Filter{Teams: multi("team"), AssetID: q.Get("asset"), Cursor: q.Get("cursor")}
	for _, v := range multi("state") {
		f.States = append(f.States, alert.State(v))
	}
	for _, v := range multi("severity") {
		f.Severities = append(f.Severities, alert.Severity(v))
	}
	for _, v := range multi("kind") {
		f.Kinds = append(f.Kinds, alert.Kind(v))
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > alert.MaxLimit {
			return BadRequest(FieldError{Field: "limit", Detail: "want a number from 1 to " + strconv.Itoa(alert.MaxLimit)})
		}
		f.Limit = n
	}
	items, next, err := h.alerts.List(r.Context(), f)
	if errors.Is(err, alert.ErrBadFilter) {
		return NewProblem(http.StatusBadRequest, err.Error())
	}
	if err != nil {
		return err
	}
	if items == nil {
		items = []alert.Alert{}
	}
	WriteJSON(w, http.StatusOK, alertList{Items: items, Next: next})
	return nil
}

func (h *alertsAPI) get(w http.ResponseWriter, r *http.Request) error {
	a, err := h.alerts.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, alert.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, a)
	return nil
}

// transition answers POST /api/v1/alerts/{id}/transitions with
// {to, resolution, note, change_ref, expires_at, accept_baseline}; a
// refused move is 409 with the reason.
func (h *alertsAPI) transition(w http.ResponseWriter, r *http.Request) error {
	var req alert.TransitionRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.To == "" {
		return BadRequest(FieldError{Field: "to", Detail: "required: triage, escalated or closed"})
	}
	tok, _ := TokenFrom(r.Context())
	a, err := h.alerts.Transition(r.Context(), r.PathValue("id"), req, "token:"+tok.Name)
	var te *alert.TransitionError
	switch {
	case errors.As(err, &te):
		return NewProblem(http.StatusConflict, te.Reason)
	case errors.Is(err, alert.ErrNotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, a)
	return nil
}

// alertContext is everything a responder needs in one answer.
type alertContext struct {
	Alert alert.Alert `json:"alert"`
	// Asset is the device with its identifiers, CMDB record (owner,
	// business unit, site) and timeline; null for an alert on no asset.
	Asset *inventory.Detail `json:"asset"`
	// Assessment and Previous are the assessments the change was seen
	// between (facts before and after, results, evidence, policy version).
	Assessment *assessrunner.Assessment `json:"assessment,omitempty"`
	Previous   *assessrunner.Assessment `json:"previous,omitempty"`
	// History is the asset's other alerts, newest first.
	History []alert.Alert `json:"history"`
	// Notes are the triage notes, oldest first (the alert's transitions).
	Notes []alert.Transition `json:"notes"`
}

func (h *alertsAPI) context(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	a, err := h.alerts.Get(ctx, r.PathValue("id"))
	if errors.Is(err, alert.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	out := alertContext{Alert: a, History: []alert.Alert{}, Notes: a.Transitions}
	if out.Notes == nil {
		out.Notes = []alert.Transition{}
	}
	if a.AssetID != "" {
		if d, err := h.inv.Get(ctx, a.AssetID); err == nil {
			out.Asset = &d
		}
		others, _, err := h.alerts.List(ctx, alert.Filter{AssetID: a.AssetID, Limit: h.history})
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.ID != a.ID {
				out.History = append(out.History, o)
			}
		}
	}
	if h.assess != nil {
		out.Assessment = h.assessment(ctx, a.Detail["assessment_id"])
		out.Previous = h.assessment(ctx, a.Detail["previous_assessment_id"])
		if out.Previous == nil && out.Assessment != nil && out.Assessment.PreviousID != "" {
			out.Previous = h.assessment(ctx, out.Assessment.PreviousID)
		}
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *alertsAPI) assessment(ctx context.Context, id any) *assessrunner.Assessment {
	s, _ := id.(string)
	if s == "" {
		return nil
	}
	as, err := h.assess.Get(ctx, s)
	if err != nil {
		return nil
	}
	return &as
}
