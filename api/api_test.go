package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/api"
	"github.com/reckon-dev/reckon/api/apitest"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

type bundle struct {
	srv    *api.Server
	client *apitest.Client
	tokens *api.Tokens
	admin  string
	reg    *prometheus.Registry
	inv    *inventory.Inventory
}

func setup(t *testing.T, s *store.Store, checks ...api.Check) *bundle {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Options{Store: s, Checks: checks, MaxBodyBytes: 8192, Version: "test",
		Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inv.Start(context.Background())
	t.Cleanup(func() { _ = inv.Stop(context.Background()) })
	srv.RegisterInventory(inv, api.InventoryOptions{MaxBatch: 5})
	tokens := api.NewTokens(s)
	admin, _, err := tokens.Create(context.Background(), "admin", api.RoleAdmin, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: srv, client: apitest.New(t, srv.Handler()), tokens: tokens, admin: admin, reg: reg, inv: inv}
}

func (b *bundle) token(t *testing.T, name string, role api.Role) string {
	t.Helper()
	secret, _, err := b.tokens.Create(context.Background(), name, role, "test")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func wantProblem(t *testing.T, r *apitest.Response, status int, detailHas string) api.Problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	p := r.Problem(t)
	if p.Type == "" || p.Title == "" {
		t.Fatalf("problem without type or title: %+v", p)
	}
	if !strings.Contains(p.Detail, detailHas) {
		t.Fatalf("problem detail %q does not mention %q", p.Detail, detailHas)
	}
	return p
}

func TestAuthAndRoles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		c := b.client
		wantProblem(t, c.Do("GET", "/api/v1/status", nil), 401, "bearer token")
		wantProblem(t, c.WithToken("rk_not-a-real-token").Do("GET", "/api/v1/status", nil), 401, "unknown or revoked")
		wantProblem(t, c.WithToken("garbage").Do("GET", "/api/v1/status", nil), 401, "unknown or revoked")
		// No token: unknown paths say 401 too, and give nothing away.
		wantProblem(t, c.Do("GET", "/api/v1/assets", nil), 401, "bearer token")
		wantProblem(t, c.Do("GET", "/api/v1/no-such-thing", nil), 401, "bearer token")

		viewer := b.token(t, "dash", api.RoleViewer)
		operator := b.token(t, "sensor", api.RoleOperator)
		r := c.WithToken(viewer).Do("GET", "/api/v1/status", nil)
		if r.Status != 200 {
			t.Fatalf("viewer GET status: %d %s", r.Status, r.Body)
		}
		var st struct {
			Role  string `json:"role"`
			Store string `json:"store"`
		}
		r.JSON(t, &st)
		if st.Role != "viewer" || st.Store != string(s.Kind) {
			t.Fatalf("status says %+v", st)
		}
		for _, tok := range []string{viewer, operator} {
			wantProblem(t, c.WithToken(tok).Do("GET", "/api/v1/tokens", nil), 403, "needs admin")
			wantProblem(t, c.WithToken(tok).Do("POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "admin"}), 403, "needs admin")
		}
		if r := c.WithToken(b.admin).Do("GET", "/api/v1/tokens", nil); r.Status != 200 {
			t.Fatalf("admin GET tokens: %d %s", r.Status, r.Body)
		}
		wantProblem(t, c.WithToken(viewer).Do("GET", "/api/v1/nothing-here", nil), 404, "no route")
		r = c.WithToken(viewer).Do("PUT", "/api/v1/status", nil)
		wantProblem(t, r, 405, "no route")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Fatalf("405 without an Allow header naming GET: %v", r.Header)
		}
	})
}

func TestTokenLifecycleAndRevocation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		c := b.client.WithToken(b.admin)
		r := c.Do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "operator"})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var created struct {
			ID     int64  `json:"id"`
			Secret string `json:"secret"`
		}
		r.JSON(t, &created)
		if !strings.HasPrefix(created.Secret, "rk_") {
			t.Fatalf("secret %q", created.Secret)
		}
		// The secret is not stored: nothing in the table holds it.
		var n int
		if err := s.DB.Get(&n, s.DB.Rebind(`SELECT count(*) FROM api_tokens WHERE token_hash = ? OR prefix = ?`), created.Secret, created.Secret); err != nil || n != 0 {
			t.Fatalf("secret found in the table (%d rows, %v)", n, err)
		}
		if r := b.client.WithToken(created.Secret).Do("GET", "/api/v1/status", nil); r.Status != 200 {
			t.Fatalf("new token: %d", r.Status)
		}
		wantProblem(t, c.Do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "viewer"}), 409, "ci")
		if r := c.Do("DELETE", "/api/v1/tokens/ci", nil); r.Status != 204 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		wantProblem(t, b.client.WithToken(created.Secret).Do("GET", "/api/v1/status", nil), 401, "revoked")
		wantProblem(t, c.Do("DELETE", "/api/v1/tokens/ci", nil), 404, "no active token")
		// The name is free again once revoked.
		if r := c.Do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "viewer"}); r.Status != 201 {
			t.Fatalf("re-create after revoke: %d %s", r.Status, r.Body)
		}
		var list struct {
			Items []api.Token `json:"items"`
		}
		c.Do("GET", "/api/v1/tokens", nil).JSON(t, &list)
		if len(list.Items) != 3 || list.Items[1].RevokedAt == nil {
			t.Fatalf("token list %+v, want admin, revoked ci, new ci", list.Items)
		}
	})
}

func TestBadRequests(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		b := setup(t, s)
		c := b.client.WithToken(b.admin)
		wantProblem(t, c.Do("POST", "/api/v1/tokens", `{"name": "x", "role": `), 400, "malformed JSON")
		wantProblem(t, c.Do("POST", "/api/v1/tokens", `{"name": 7, "role": "admin"}`), 400, "name")
		wantProblem(t, c.Do("POST", "/api/v1/tokens", `{"name": "x", "role": "root"}`), 400, "role")
		p := wantProblem(t, c.Do("POST", "/api/v1/tokens", `{"name": "x", "role": "admin", "colour": "red"}`), 400, "colour")
		if len(p.Errors) != 1 || p.Errors[0].Field != "colour" {
			t.Fatalf("errors %+v, want one naming colour", p.Errors)
		}
		wantProblem(t, c.Do("POST", "/api/v1/tokens", ""), 400, "empty body")
		wantProblem(t, c.Do("POST", "/api/v1/tokens", `{"name":"a","role":"viewer"} {}`), 400, "after the JSON")
		big := `{"name": "` + strings.Repeat("a", 9000) + `", "role": "viewer"}`
		wantProblem(t, c.Do("POST", "/api/v1/tokens", big), 413, "limit")
		req, _ := http.NewRequest("POST", "/api/v1/tokens", strings.NewReader("name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+b.admin)
		wantProblem(t, c.Send(req), 415, "application/json")
	})
}

func TestReadyNamesFailingPart(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	queueDown := errors.New("job queue not running")
	var down bool
	b := setup(t, s,
		api.Check{Name: "store", Func: s.Ping},
		api.Check{Name: "queue", Func: func(context.Context) error {
			if down {
				return queueDown
			}
			return nil
		}})
	if r := b.client.Do("GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	down = true
	p := wantProblem(t, b.client.Do("GET", "/readyz", nil), 503, "queue: job queue not running")
	if p.Checks["store"] != "ok" || p.Checks["queue"] == "ok" {
		t.Fatalf("checks %v", p.Checks)
	}
	if r := b.client.Do("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz while not ready: %d", r.Status)
	}
}

func TestMetricsByRoute(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	b := setup(t, s)
	b.client.WithToken(b.admin).Do("DELETE", "/api/v1/tokens/12345", nil)
	r := b.client.Do("GET", "/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("metrics: %d", r.Status)
	}
	body := string(r.Body)
	want := `reckon_api_requests_total{code="404",method="DELETE",route="/api/v1/tokens/{id}"} 1`
	if !strings.Contains(body, want) {
		t.Fatalf("metrics lack %s:\n%s", want, body)
	}
	if strings.Contains(body, "12345") {
		t.Fatal("metrics are labelled by raw path")
	}
}

func TestEveryRouteDocumented(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	b := setup(t, s)
	doc := apitest.Doc(t)
	for _, rt := range b.srv.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s is not in the OpenAPI document", rt)
		}
	}
	r := b.client.Do("GET", "/api/v1/openapi.json", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"openapi":"3.`) {
		t.Fatalf("openapi.json: %d %.100s", r.Status, r.Body)
	}
}

// Shutdown lets a request in flight finish, and stops taking new ones.
func TestGracefulShutdown(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	b := setup(t, s)
	entered, release := make(chan struct{}), make(chan struct{})
	b.srv.Handle("GET /api/v1/test-slow", api.RoleViewer, func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		api.WriteJSON(w, 200, map[string]string{"done": "yes"})
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.srv.Run(ctx, ln, 10*time.Second) }()
	url := "http://" + ln.Addr().String()
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", url+"/api/v1/test-slow", nil)
		req.Header.Set("Authorization", "Bearer "+b.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- string(body)
	}()
	<-entered
	cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-ran:
		t.Fatalf("Run returned %v with a request in flight", err)
	default:
	}
	close(release)
	if body := <-got; !strings.Contains(body, `"done":"yes"`) {
		t.Fatalf("in-flight request got %q", body)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("the server still takes requests after shutdown")
	}
}

// Past the grace period, a request that will not finish is cut off and Run returns.
func TestShutdownGraceBounded(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	b := setup(t, s)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	b.srv.Handle("GET /api/v1/test-stuck", api.RoleViewer, func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- b.srv.Run(ctx, ln, 200*time.Millisecond) }()
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/test-stuck", nil)
		req.Header.Set("Authorization", "Bearer "+b.admin)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once the grace period was over")
	}
}
