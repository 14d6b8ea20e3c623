package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/reckon-dev/reckon/discovery/active/sweep"
)

type sweepAPI struct{ s *sweep.Service }

// RegisterSweeps adds the sweep and sweep-run routes.
func (s *Server) RegisterSweeps(svc *sweep.Service) {
	h := &sweepAPI{s: svc}
	s.Handle("GET /api/v1/sweeps", RoleViewer, h.list)
	s.Handle("POST /api/v1/sweeps", RoleOperator, h.create)
	s.Handle("GET /api/v1/sweeps/{id}", RoleViewer, h.get)
	s.Handle("PATCH /api/v1/sweeps/{id}", RoleOperator, h.patch)
	s.Handle("DELETE /api/v1/sweeps/{id}", RoleOperator, h.delete)
	s.Handle("GET /api/v1/sweeps/{id}/runs", RoleViewer, h.listRuns)
	s.Handle("POST /api/v1/sweeps/{id}/runs", RoleOperator, h.startRun)
	s.Handle("GET /api/v1/sweep-runs/{id}", RoleViewer, h.getRun)
	s.Handle("POST /api/v1/sweep-runs/{id}/cancel", RoleOperator, h.cancelRun)
}

// sweepProblem maps the service's errors to problems.
func sweepProblem(err error) error {
	var inv sweep.Invalid
	switch {
	case errors.As(err, &inv):
		fe := make([]FieldError, len(inv))
		for i, e := range inv {
			fe[i] = FieldError{Field: e.Field, Detail: e.Detail}
		}
		return BadRequest(fe...)
	case errors.Is(err, sweep.ErrNotFound), errors.Is(err, sweep.ErrRunNotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	case errors.Is(err, sweep.ErrExists), errors.Is(err, sweep.ErrConfigOwned), errors.Is(err, sweep.ErrActive), errors.Is(err, sweep.ErrFinished):
		return NewProblem(http.StatusConflict, err.Error())
	}
	return err
}

type sweepList struct {
	Items []sweep.Sweep `json:"items"`
}

func (h *sweepAPI) list(w http.ResponseWriter, r *http.Request) error {
	items, err := h.s.List(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, sweepList{Items: items})
	return nil
}

func (h *sweepAPI) create(w http.ResponseWriter, r *http.Request) error {
	d := sweep.Definition{Enabled: true}
	if err := DecodeJSON(r, &d); err != nil {
		return err
	}
	sw, err := h.s.Create(r.Context(), d, "api")
	if err != nil {
		return sweepProblem(err)
	}
	w.Header().Set("Location", "/api/v1/sweeps/"+sw.ID)
	WriteJSON(w, http.StatusCreated, sw)
	return nil
}

func (h *sweepAPI) get(w http.ResponseWriter, r *http.Request) error {
	sw, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return sweepProblem(err)
	}
	WriteJSON(w, http.StatusOK, sw)
	return nil
}

// patch applies a JSON merge patch to the definition: the fields given
// replace the sweep's, the others stay.
func (h *sweepAPI) patch(w http.ResponseWriter, r *http.Request) error {
	sw, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return sweepProblem(err)
	}
	var raw map[string]json.RawMessage
	if err := DecodeJSON(r, &raw); err != nil {
		return err
	}
	merged, _ := json.Marshal(sw.Definition)
	var base map[string]json.RawMessage
	_ = json.Unmarshal(merged, &base)
	for k, v := range raw {
		base[k] = v
	}
	body, _ := json.Marshal(base)
	d := sweep.Definition{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return decodeProblem(err)
	}
	out, err := h.s.Update(r.Context(), sw.ID, d)
	if err != nil {
		return sweepProblem(err)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *sweepAPI) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Delete(r.Context(), r.PathValue("id")); err != nil {
		return sweepProblem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type runList struct {
	Items []sweep.Run `json:"items"`
}

func (h *sweepAPI) listRuns(w http.ResponseWriter, r *http.Request) error {
	sw, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return sweepProblem(err)
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return BadRequest(FieldError{Field: "limit", Detail: "want a number from 1 to 500"})
		}
		limit = n
	}
	runs, err := h.s.ListRuns(r.Context(), sw.ID, limit)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, runList{Items: runs})
	return nil
}

func (h *sweepAPI) startRun(w http.ResponseWriter, r *http.Request) error {
	run, err := h.s.StartRun(r.Context(), r.PathValue("id"), "manual")
	if errors.Is(err, sweep.ErrActive) {
		p := NewProblem(http.StatusConflict, "the sweep already has run "+run.ID+" queued or running; a sweep never runs twice at once")
		w.Header().Set("Location", "/api/v1/sweep-runs/"+run.ID)
		return p
	}
	if err != nil {
		return sweepProblem(err)
	}
	w.Header().Set("Location", "/api/v1/sweep-runs/"+run.ID)
	WriteJSON(w, http.StatusAccepted, run)
	return nil
}

func (h *sweepAPI) getRun(w http.ResponseWriter, r *http.Request) error {
	run, err := h.s.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return sweepProblem(err)
	}
	WriteJSON(w, http.StatusOK, run)
	return nil
}

func (h *sweepAPI) cancelRun(w http.ResponseWriter, r *http.Request) error {
	run, err := h.s.CancelRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return sweepProblem(err)
	}
	WriteJSON(w, http.StatusAccepted, run)
	return nil
}
