package probe

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func serverAddr(t *testing.T, s *httptest.Server) netip.AddrPort {
	t.Helper()
	return loopback(t, s.Listener)
}

func TestHTTPRedirectToHTTPS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			http.Redirect(w, r, "https://app.example.test/", http.StatusMovedPermanently)
		case http.MethodOptions:
			w.Header().Set("Allow", "GET, head,OPTIONS  GET")
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(srv.Close)
	addr := serverAddr(t, srv)
	got, err := HTTP(t.Context(), addr, false, Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != http.StatusMovedPermanently || !got.RedirectsToHTTPS || got.Location != "https://app.example.test/" || got.TLS {
		t.Errorf("%+v", got)
	}
	if got.Port != int(addr.Port()) {
		t.Errorf("port %d", got.Port)
	}
	if !slices.Equal(got.Methods, []string{"GET", "HEAD", "OPTIONS"}) {
		t.Errorf("methods %v", got.Methods)
	}
	// The redirect's own little HTML body has no title.
	if got.Title != "" || got.Headers["location"] != got.Location {
		t.Errorf("title %q headers %v", got.Title, got.Headers)
	}
}

func TestHTTPSWithHSTS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("Server", "reckon-test/1.0")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		h.Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><TITLE>\n  Hello &amp;\n welcome  </TITLE></head><body>%s</body></html>",
			strings.Repeat("x", 100<<10))
	}))
	t.Cleanup(srv.Close)
	got, err := HTTP(t.Context(), serverAddr(t, srv), true, Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != http.StatusOK || !got.TLS || got.RedirectsToHTTPS || got.Server != "reckon-test/1.0" {
		t.Errorf("%+v", got)
	}
	if got.Headers["strict-transport-security"] != "max-age=31536000; includeSubDomains" || got.Headers["x-multi"] != "a, b" {
		t.Errorf("headers %v", got.Headers)
	}
	if got.Title != "Hello & welcome" {
		t.Errorf("title %q", got.Title)
	}
	if len(got.Methods) != 0 {
		t.Errorf("methods %v, want none", got.Methods)
	}
}

func TestHTTPTrace(t *testing.T) {
	t.Parallel()
	hosts := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodTrace:
			w.Header().Set("Content-Type", "message/http")
			_ = r.Write(w)
		case http.MethodOptions:
			w.Header().Set("Allow", "GET,POST")
		default:
			select {
			case hosts <- r.Host:
			default:
			}
			_, _ = io.WriteString(w, "plain text, <title>not a title</title>")
		}
	}))
	t.Cleanup(srv.Close)
	addr := serverAddr(t, srv)
	got, err := HTTP(t.Context(), addr, false, Options{Timeout: 3 * time.Second, ServerName: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Methods, []string{"GET", "POST", "TRACE"}) {
		t.Errorf("methods %v, want GET POST TRACE", got.Methods)
	}
	if got.Title != "" {
		t.Errorf("title %q from a text/plain body", got.Title)
	}
	if got, want := <-hosts, fmt.Sprintf("www.example.test:%d", addr.Port()); got != want {
		t.Errorf("Host %q, want %q", got, want)
	}
}

func TestHTTPClosedPort(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	_, err := HTTP(t.Context(), addr, false, Options{Timeout: 2 * time.Second})
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), addr.String()+": ") {
		t.Fatalf("error %v, want connection refused on %s", err, addr)
	}
}

func TestTitle(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		"<title>A</title>":                                         "A",
		"<html><title></title></html>":                             "",
		"<!-- <title>no</title> --><title>yes</title>":             "yes",
		"<script>x='<title>no</title>'</script><title>yes</title>": "yes",
		"<title>" + strings.Repeat("é", 300) + "</title>":          strings.Repeat("é", 200),
		"no title here":                                            "",
	} {
		got := title([]byte(body))
		if got != want || utf8.RuneCountInString(got) > 200 {
			t.Errorf("title(%.40q) = %.40q, want %.40q", body, got, want)
		}
	}
}
