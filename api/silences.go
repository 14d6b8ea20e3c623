package api

import (
	"errors"
	"net/http"
	"time"

	alertroute "github.com/reckon-dev/reckon/alert/route"
)

type silencesAPI struct{ s *alertroute.Silences }

// RegisterSilences adds the silence routes.
func (s *Server) RegisterSilences(sil *alertroute.Silences) {
	h := &silencesAPI{s: sil}
	s.Handle("GET /api/v1/silences", RoleViewer, h.list)
	s.Handle("POST /api/v1/silences", RoleOperator, h.create)
	s.Handle("DELETE /api/v1/silences/{id}", RoleOperator, h.expire)
}

type silenceList struct {
	Items []alertroute.Silence `json:"items"`
}

func (h *silencesAPI) list(w http.ResponseWriter, r *http.Request) error {
	items, err := h.s.List(r.Context(), r.URL.Query().Get("ended") == "true")
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, silenceList{Items: items})
	return nil
}

type silenceRequest struct {
	Matchers alertroute.Match `json:"matchers"`
	StartsAt time.Time        `json:"starts_at"`
	EndsAt   time.Time        `json:"ends_at"`
	Comment  string           `json:"comment"`
}

func (h *silencesAPI) create(w http.ResponseWriter, r *http.Request) error {
	var req silenceRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.EndsAt.IsZero() {
		return BadRequest(FieldError{Field: "ends_at", Detail: "required: when the silence ends (RFC 3339)"})
	}
	if req.Comment == "" {
		return BadRequest(FieldError{Field: "comment", Detail: "required: why the alerts are silenced"})
	}
	tok, _ := TokenFrom(r.Context())
	sl, err := h.s.Create(r.Context(), alertroute.Silence{Matchers: req.Matchers, StartsAt: req.StartsAt, EndsAt: req.EndsAt,
		Comment: req.Comment, CreatedBy: "token:" + tok.Name})
	if errors.Is(err, alertroute.ErrSilence) {
		return NewProblem(http.StatusUnprocessableEntity, err.Error())
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/silences/"+sl.ID)
	WriteJSON(w, http.StatusCreated, sl)
	return nil
}

func (h *silencesAPI) expire(w http.ResponseWriter, r *http.Request) error {
	sl, err := h.s.Expire(r.Context(), r.PathValue("id"))
	if errors.Is(err, alertroute.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, sl)
	return nil
}
