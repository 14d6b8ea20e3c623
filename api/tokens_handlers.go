package api

import (
	"errors"
	"net/http"
)

type createTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type createTokenResponse struct {
	Token
	// Secret is shown in this response only.
	Secret string `json:"secret"`
}

type tokenList struct {
	Items []Token `json:"items"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	toks, err := s.tokens.List(r.Context())
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []Token{}
	}
	WriteJSON(w, http.StatusOK, tokenList{Items: toks})
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req createTokenRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	var errs []FieldError
	if req.Name == "" {
		errs = append(errs, FieldError{Field: "name", Detail: "required"})
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		errs = append(errs, FieldError{Field: "role", Detail: err.Error()})
	}
	if len(errs) > 0 {
		return BadRequest(errs...)
	}
	by, _ := TokenFrom(r.Context())
	secret, tok, err := s.tokens.Create(r.Context(), req.Name, role, "token:"+by.Name)
	if errors.Is(err, ErrTokenNameTaken) {
		return NewProblem(http.StatusConflict, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, createTokenResponse{Token: tok, Secret: secret})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	_, err := s.tokens.Revoke(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrTokenNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
