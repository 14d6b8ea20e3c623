package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/reckon-dev/reckon/assess/policy"
	assessrunner "github.com/reckon-dev/reckon/assess/runner"
)

type assessAPI struct {
	s    *assessrunner.Service
	pol  *policy.Policy
	name string
	cost uint64
}

// RegisterAssessments adds the assessment and policy routes. pol is the
// policy in force, shown under name; costLimit is used to validate others.
func (s *Server) RegisterAssessments(svc *assessrunner.Service, pol *policy.Policy, name string, costLimit uint64) {
	h := &assessAPI{s: svc, pol: pol, name: name, cost: costLimit}
	s.Handle("POST /api/v1/assets/{id}/assessments", RoleOperator, h.run)
	s.Handle("GET /api/v1/assets/{id}/assessments", RoleViewer, h.list)
	s.Handle("GET /api/v1/assessments/{id}", RoleViewer, h.get)
	s.Handle("POST /api/v1/assessment-jobs/{id}/cancel", RoleOperator, h.cancel)
	s.Handle("GET /api/v1/policies", RoleViewer, h.policies)
	s.Handle("POST /api/v1/policies/validate", RoleViewer, h.validate)
}

func (h *assessAPI) run(w http.ResponseWriter, r *http.Request) error {
	q, err := h.s.RunNow(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, assessrunner.ErrNotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	case errors.Is(err, assessrunner.ErrOutOfScope):
		return NewProblem(http.StatusConflict, "the asset may not be probed: "+err.Error())
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusAccepted, q)
	return nil
}

type assessmentList struct {
	Items []assessrunner.Assessment `json:"items"`
	// Pending is the asset's job waiting or running, null if none.
	Pending *assessrunner.Pending `json:"pending"`
}

func (h *assessAPI) list(w http.ResponseWriter, r *http.Request) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return BadRequest(FieldError{Field: "limit", Detail: "want a number from 1 to 1000"})
		}
		limit = n
	}
	id := r.PathValue("id")
	items, err := h.s.List(r.Context(), id, limit)
	if err != nil {
		return err
	}
	p, err := h.s.PendingFor(r.Context(), id)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, assessmentList{Items: items, Pending: p})
	return nil
}

func (h *assessAPI) get(w http.ResponseWriter, r *http.Request) error {
	as, err := h.s.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, assessrunner.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, as)
	return nil
}

type cancelAnswer struct {
	JobID int64  `json:"job_id"`
	State string `json:"state"`
}

func (h *assessAPI) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return BadRequest(FieldError{Field: "id", Detail: "want a job id (a positive number)"})
	}
	state, err := h.s.Cancel(r.Context(), id)
	if errors.Is(err, assessrunner.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, cancelAnswer{JobID: id, State: state})
	return nil
}

type policyCheck struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Severity  string `json:"severity"`
	Family    string `json:"family"`
	Rationale string `json:"rationale"`
	Applies   string `json:"applies"`
	Expect    string `json:"expect"`
	Evidence  string `json:"evidence,omitempty"`
}

type policyBuild struct {
	Role     string   `json:"role"`
	Title    string   `json:"title,omitempty"`
	Severity string   `json:"severity"`
	Allow    []string `json:"allow"`
}

type policyRole struct {
	Role string `json:"role"`
	When string `json:"when"`
}

type policyDoc struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Digest  string        `json:"digest"`
	Active  bool          `json:"active"`
	Checks  []policyCheck `json:"checks"`
	Builds  []policyBuild `json:"builds"`
	Roles   []policyRole  `json:"roles"`
}

func describePolicy(p *policy.Policy, name string) policyDoc {
	d := policyDoc{Name: name, Version: p.Version(), Digest: p.Digest(), Checks: []policyCheck{}, Builds: []policyBuild{}, Roles: []policyRole{}}
	for _, c := range p.Checks() {
		d.Checks = append(d.Checks, policyCheck{ID: c.ID, Title: c.Title, Severity: c.Severity, Family: c.Family, Rationale: c.Rationale,
			Applies: c.Applies, Expect: c.Expect, Evidence: c.Evidence})
	}
	for _, b := range p.Builds() {
		d.Builds = append(d.Builds, policyBuild{Role: b.Role, Title: b.Title, Severity: b.Severity, Allow: b.Allow})
	}
	for _, r := range p.RoleRules() {
		d.Roles = append(d.Roles, policyRole{Role: r.Role, When: r.When})
	}
	return d
}

type policyList struct {
	Items []policyDoc `json:"items"`
}

func (h *assessAPI) policies(w http.ResponseWriter, r *http.Request) error {
	d := describePolicy(h.pol, h.name)
	d.Active = true
	WriteJSON(w, http.StatusOK, policyList{Items: []policyDoc{d}})
	return nil
}

type validateRequest struct {
	// Name is what errors call the policy (a file name); default
	// "policy.yaml".
	Name string `json:"name"`
	// Policy is the policy's YAML text.
	Policy string `json:"policy"`
}

type validateAnswer struct {
	Valid  bool       `json:"valid"`
	Errors []string   `json:"errors"`
	Policy *policyDoc `json:"policy,omitempty"`
}

// validate compiles a policy without putting it in force: 200 with valid
// false and one error per problem (each naming the check id) when it does
// not load.
func (h *assessAPI) validate(w http.ResponseWriter, r *http.Request) error {
	var req validateRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Policy) == "" {
		return BadRequest(FieldError{Field: "policy", Detail: "required: the policy's YAML text"})
	}
	if req.Name == "" {
		req.Name = "policy.yaml"
	}
	p, err := policy.ParseOptions(req.Name, []byte(req.Policy), policy.Options{CostLimit: h.cost})
	if err != nil {
		WriteJSON(w, http.StatusOK, validateAnswer{Errors: splitErrors(err)})
		return nil
	}
	d := describePolicy(p, req.Name)
	WriteJSON(w, http.StatusOK, validateAnswer{Valid: true, Errors: []string{}, Policy: &d})
	return nil
}

// splitErrors lists the errors errors.Join put together.
func splitErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
