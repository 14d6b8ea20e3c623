package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists field-level problems of a bad request body.
	Errors []FieldError `json:"errors,omitempty"`
	// Checks names each readiness check and its state (503 from /readyz).
	Checks map[string]string `json:"checks,omitempty"`
}

// FieldError names one bad field by its path in the request body
// (observations[3].time) and says what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// NewProblem builds a problem of a status with a detail.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: problemType(status), Title: http.StatusText(status), Status: status, Detail: detail}
}

// BadRequest is a 400 naming the fields at fault.
func BadRequest(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusBadRequest, "")
	p.Errors = errs
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Field + ": " + e.Detail
	}
	p.Detail = strings.Join(parts, "; ")
	return p
}

func problemType(status int) string {
	slug := strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "-"))
	if slug == "" {
		slug = fmt.Sprint(status)
	}
	return "urn:reckon:problem:" + slug
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteError writes err: a *Problem as it is, anything else as a 500 whose
// detail hides the cause (it is logged by the caller).
func WriteError(w http.ResponseWriter, err error) {
	var p *Problem
	if errors.As(err, &p) {
		WriteProblem(w, p)
		return
	}
	WriteProblem(w, NewProblem(http.StatusInternalServerError, "internal error; the server log has the cause"))
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON request body into dst strictly (unknown fields are
// errors) and turns every failure into a problem: 413 over the body limit,
// 415 for another content type, 400 naming the field otherwise.
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		mt = strings.TrimSpace(strings.ToLower(mt))
		if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return NewProblem(http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: send application/json", mt))
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeProblem(err)
		}
		return BadRequest(FieldError{Field: "(body)", Detail: "data after the JSON value"})
	}
	return nil
}

func decodeProblem(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit))
	case errors.Is(err, io.EOF):
		return BadRequest(FieldError{Field: "(body)", Detail: "empty body: send a JSON object"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest(FieldError{Field: "(body)", Detail: "malformed JSON: the body ends too soon"})
	case errors.As(err, &se):
		return BadRequest(FieldError{Field: "(body)", Detail: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)})
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "(body)"
		}
		return BadRequest(FieldError{Field: field, Detail: fmt.Sprintf("want %s, got JSON %s", jsonKind(ute.Type.Kind().String()), ute.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return BadRequest(FieldError{Field: name, Detail: "unknown field"})
	default:
		return BadRequest(FieldError{Field: "(body)", Detail: err.Error()})
	}
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "slice", goKind == "array":
		return "a list"
	case goKind == "struct", goKind == "map":
		return "an object"
	}
	return goKind
}
