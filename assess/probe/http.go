package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/reckon-dev/reckon/assess"
)

// Bounds on what the HTTP probe reads.
const (
	maxBody     = 64 << 10
	maxHeaders  = 64 << 10
	maxTitleLen = 200 // runes
)

// HTTP probes the HTTP server at addr, over TLS when useTLS (certificate
// not verified): one GET / without following redirects, one OPTIONS / for
// the Allow header and one TRACE /, whose 200 adds TRACE to Methods. Only a
// failed GET is an error; OPTIONS and TRACE are answers either way.
func HTTP(ctx context.Context, addr netip.AddrPort, useTLS bool, o Options) (assess.HTTP, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	target := addr.String()
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	client := httpClient(target, o)
	defer client.CloseIdleConnections()
	u := scheme + "://" + target + "/"
	host := ""
	if o.ServerName != "" {
		host = o.ServerName
		if p := addr.Port(); !(useTLS && p == 443 || !useTLS && p == 80) {
			host = net.JoinHostPort(o.ServerName, strconv.Itoa(int(p)))
		}
	}

	resp, body, err := httpDo(ctx, client, http.MethodGet, u, host)
	if err != nil {
		// Not net/http's `Get "http://...": dial tcp ...:`, which repeats
		// the address.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return assess.HTTP{}, fmt.Errorf("%s: GET /: %w", target, dialError(err))
	}
	res := assess.HTTP{
		Port:     int(addr.Port()),
		TLS:      useTLS,
		Status:   resp.StatusCode,
		Server:   resp.Header.Get("Server"),
		Headers:  make(map[string]string, len(resp.Header)),
		Location: resp.Header.Get("Location"),
	}
	for name, values := range resp.Header {
		res.Headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	res.RedirectsToHTTPS = !useTLS && resp.StatusCode >= 300 && resp.StatusCode < 400 &&
		len(res.Location) >= 8 && strings.EqualFold(res.Location[:8], "https://")
	if isHTML(resp.Header.Get("Content-Type"), body) {
		res.Title = title(body)
	}

	if resp, _, err := httpDo(ctx, client, http.MethodOptions, u, host); err == nil {
		for _, m := range strings.FieldsFunc(resp.Header.Get("Allow"), func(r rune) bool {
			return r == ',' || unicode.IsSpace(r)
		}) {
			if m = strings.ToUpper(m); !slices.Contains(res.Methods, m) {
				res.Methods = append(res.Methods, m)
			}
		}
	}
	if resp, _, err := httpDo(ctx, client, http.MethodTrace, u, host); err == nil &&
		resp.StatusCode == http.StatusOK && !slices.Contains(res.Methods, http.MethodTrace) {
		res.Methods = append(res.Methods, http.MethodTrace)
	}
	return res, nil
}

// httpClient talks to target alone, whatever the URL's host, over HTTP/1.1
// with no proxy, no redirects and no certificate verification.
func httpClient(target string, o Options) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return o.dial(ctx, target)
			},
			TLSClientConfig: &tls.Config{
				ServerName:         o.ServerName,
				InsecureSkipVerify: true, // the TLS probe judges the certificate
				MinVersion:         tls.VersionTLS10,
				// Every suite (the 1.2 list holds the older versions' too),
				// so a server with only old ones still answers.
				CipherSuites: suitesFor(tls.VersionTLS12),
			},
			DisableKeepAlives:      true,
			TLSHandshakeTimeout:    o.timeout(),
			ResponseHeaderTimeout:  o.timeout(),
			MaxResponseHeaderBytes: maxHeaders,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       o.timeout(),
	}
}

// httpDo sends one request and reads at most maxBody bytes of the answer.
func httpDo(ctx context.Context, c *http.Client, method, url, host string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "reckon-probe")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	// A body cut short still leaves the status, the headers and what came.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp, body, nil
}

func isHTML(contentType string, body []byte) bool {
	if contentType != "" {
		return strings.Contains(strings.ToLower(contentType), "html")
	}
	return strings.Contains(strings.ToLower(http.DetectContentType(body)), "html")
}

// title returns the text of the document's first <title>, whitespace
// collapsed, at most maxTitleLen runes.
func title(body []byte) string {
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken:
			if name, _ := z.TagName(); string(name) != "title" {
				continue
			}
			if z.Next() != html.TextToken {
				return ""
			}
			t := strings.Join(strings.Fields(string(z.Text())), " ")
			if utf8.RuneCountInString(t) > maxTitleLen {
				t = string([]rune(t)[:maxTitleLen])
			}
			return t
		}
	}
}
