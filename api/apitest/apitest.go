// Package apitest drives an http.Handler of the API in tests and checks every
// response it sees against the OpenAPI document: an undocumented route,
// status or body fails the test.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/reckon-dev/reckon/api"
)

// Doc loads and validates the API's OpenAPI document.
func Doc(t testing.TB) *openapi3.T {
	t.Helper()
	raw, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return doc
}

// Client sends requests to a handler and validates each response.
type Client struct {
	t       testing.TB
	handler http.Handler
	router  routers.Router
	// Token is sent as the bearer token when not empty.
	Token string
}

// New returns a client over h.
func New(t testing.TB, h http.Handler) *Client {
	t.Helper()
	router, err := legacy.NewRouter(Doc(t))
	if err != nil {
		t.Fatal(err)
	}
	return &Client{t: t, handler: h, router: router}
}

// WithToken returns a copy that sends token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.Token = token
	return &cp
}

// Response is what the handler answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
}

// Problem decodes a problem+json body.
func (r *Response) Problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	var p api.Problem
	r.JSON(t, &p)
	if p.Status != r.Status {
		t.Fatalf("problem status %d in a %d response", p.Status, r.Status)
	}
	return p
}

// Do sends a request; body may be nil, a string or []byte sent as is, or
// anything else sent as JSON.
func (c *Client) Do(method, path string, body any) *Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.Send(req)
}

// Send sends req as it is and validates the response.
func (c *Client) Send(req *http.Request) *Response {
	c.t.Helper()
	rec := httptest.NewRecorder()
	c.handler.ServeHTTP(rec, req)
	resp := &Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	c.validate(req, resp)
	return resp
}

func (c *Client) validate(req *http.Request, resp *Response) {
	c.t.Helper()
	// Match against a clean request: the handler has consumed the body.
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	if probe.URL.Host == "" {
		probe.URL.Host = "example.com"
		probe.URL.Scheme = "http"
	}
	route, params, err := c.router.FindRoute(probe)
	if err != nil {
		// Unknown paths and methods are answered by the server, not the document;
		// they must still be problems.
		if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed || resp.Status == http.StatusUnauthorized {
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				c.t.Errorf("%s %s: %d with content type %q, want application/problem+json", req.Method, req.URL.Path, resp.Status, ct)
			}
			return
		}
		c.t.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, resp.Status, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: probe, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: resp.Status,
		Header: resp.Header,
		Body:   io.NopCloser(bytes.NewReader(resp.Body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s: the %d response does not match the OpenAPI document: %v\nbody: %.500s", req.Method, req.URL.Path, resp.Status, err, resp.Body)
	}
}
