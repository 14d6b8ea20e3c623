// Package api serves reckon's REST API: JSON under /api/v1 behind bearer
// tokens with roles, errors as application/problem+json, the OpenAPI
// document, health and readiness probes and Prometheus metrics. Other
// packages add their routes with Handle.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Check is one part /readyz reports on: it returns nil when the part is ready.
type Check struct {
	Name string
	Func func(context.Context) error
}

// Options configure the server.
type Options struct {
	Store *store.Store
	// Checks are what /readyz asks, in order.
	Checks []Check
	// MaxBodyBytes bounds request bodies (413 past it).
	MaxBodyBytes int64
	Version      string
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	Gatherer     prometheus.Gatherer
	// Timeouts of the HTTP server; zero takes the defaults.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Server is the API.
type Server struct {
	opts    Options
	logger  *slog.Logger
	mux     *http.ServeMux
	tokens  *Tokens
	metrics *httpMetrics
	routes  []route
	mu      sync.Mutex
}

type route struct{ method, path string }

// New builds the server with the platform's own routes.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("api: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 20
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{
		opts:    opts,
		logger:  opts.Logger,
		mux:     http.NewServeMux(),
		tokens:  NewTokens(opts.Store),
		metrics: newHTTPMetrics(opts.Registerer),
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	s.Handle("GET /api/v1/status", RoleViewer, s.status)
	s.Handle("GET /api/v1/tokens", RoleAdmin, s.listTokens)
	s.Handle("POST /api/v1/tokens", RoleAdmin, s.createToken)
	s.Handle("DELETE /api/v1/tokens/{id}", RoleAdmin, s.revokeToken)
	return s, nil
}

// HandlerFunc is an API handler: it writes its success itself and returns
// an error (a *Problem, or anything else for a 500) when it fails.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adds an API route ("METHOD /api/v1/..."), open to tokens of role need or above.
func (s *Server) Handle(pattern string, need Role, h HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.mu.Lock()
	s.routes = append(s.routes, route{method, path})
	s.mu.Unlock()
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, path)
		tok, ok := TokenFrom(r.Context())
		if !ok {
			WriteProblem(w, NewProblem(http.StatusUnauthorized, "send a bearer token: Authorization: Bearer rk_..."))
			return
		}
		if !tok.Role.Allows(need) {
			WriteProblem(w, NewProblem(http.StatusForbidden, fmt.Sprintf("token %q has role %s; this needs %s", tok.Name, tok.Role, need)))
			return
		}
		if err := h(w, r); err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status >= 500 {
				s.logger.Error("request failed", "method", r.Method, "route", path, "err", err)
			}
			WriteError(w, err)
		}
	})
}

// Routes lists the API routes added with Handle, for the OpenAPI tests.
func (s *Server) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.method + " " + r.path
	}
	slices.Sort(out)
	return out
}

type tokenKey struct{}

// TokenFrom returns the token that authenticated the request.
func TokenFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}

// Handler is the whole API with its middleware.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r, routeLabel := withRouteSlot(r)
		s.serve(rec, r)
		s.metrics.observe(r.Method, *routeLabel, rec.status, time.Since(start))
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	if strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/api/v1/openapi.json" {
		// Authenticate before routing: an unknown path tells nothing to a
		// caller without a token.
		secret, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reckon"`)
			WriteProblem(w, NewProblem(http.StatusUnauthorized, "send a bearer token: Authorization: Bearer rk_..."))
			return
		}
		tok, err := s.tokens.Authenticate(r.Context(), secret)
		if errors.Is(err, ErrTokenNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reckon", error="invalid_token"`)
			WriteProblem(w, NewProblem(http.StatusUnauthorized, "the token is unknown or revoked"))
			return
		}
		if err != nil {
			s.logger.Error("token check failed", "err", err)
			WriteProblem(w, NewProblem(http.StatusServiceUnavailable, "cannot check the token: the store is unavailable"))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// The mux would answer 404 or 405 in plain text: answer in problem+json.
		probe := &headerRecorder{h: http.Header{}}
		s.mux.ServeHTTP(probe, r)
		if allow := probe.h.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		status := probe.status
		if status != http.StatusMethodNotAllowed {
			status = http.StatusNotFound
		}
		WriteProblem(w, NewProblem(status, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

// Run serves on ln until ctx is done, then shuts down: in-flight requests get
// up to grace to finish, after which their connections are closed.
func (s *Server) Run(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: orDefault(s.opts.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       orDefault(s.opts.ReadTimeout, time.Minute),
		WriteTimeout:      orDefault(s.opts.WriteTimeout, time.Minute),
		IdleTimeout:       orDefault(s.opts.IdleTimeout, 2*time.Minute),
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.logger.Warn("requests still running after the grace period; closing their connections", "grace", grace)
		srv.Close()
		err = nil
	}
	<-errc
	return err
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	var failed []string
	for _, c := range s.opts.Checks {
		if err := c.Func(ctx); err != nil {
			checks[c.Name] = err.Error()
			failed = append(failed, c.Name+": "+err.Error())
			continue
		}
		checks[c.Name] = "ok"
	}
	if len(failed) > 0 {
		p := NewProblem(http.StatusServiceUnavailable, "not ready: "+strings.Join(failed, "; "))
		p.Checks = checks
		WriteProblem(w, p)
		return
	}
	WriteJSON(w, http.StatusOK, readiness{Status: "ready", Checks: checks})
}

type statusResponse struct {
	Version       string `json:"version"`
	Store         string `json:"store"`
	SchemaVersion int    `json:"schema_version"`
	Token         string `json:"token"`
	Role          Role   `json:"role"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	v, err := s.opts.Store.SchemaVersion(r.Context())
	if err != nil {
		return err
	}
	tok, _ := TokenFrom(r.Context())
	WriteJSON(w, http.StatusOK, statusResponse{Version: s.opts.Version, Store: string(s.opts.Store.Kind),
		SchemaVersion: v, Token: tok.Name, Role: tok.Role})
	return nil
}
