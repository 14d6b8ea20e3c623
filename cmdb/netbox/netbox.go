// Package netbox reads NetBox (4.2 and later) as a CMDB and writes reckon's
// assets back to it, over NetBox's REST API with resty: limit/offset pages
// fetched concurrently and checked for consistency, a rate limit, retries
// with backoff that honour Retry-After, and errors that name the URL and
// the status.
//
// Devices and virtual machines become one cmdb.CI each, with the MACs and
// addresses of their interfaces; an IP address assigned to no device or VM
// interface is a CI of its own.
package netbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/reckon-dev/reckon/cmdb/internal/rest"
	"golang.org/x/time/rate"
)

// Options configures a Client.
type Options struct {
	// URL is NetBox's base URL, e.g. https://netbox.example.com.
	URL string
	// Token is sent as "Authorization: Token <t>" (a v1 token) or, when it
	// starts with "nbt_" (a v2 token, NetBox 4.5+), as "Bearer <t>".
	Token string
	// Timeout bounds each request attempt; default 30s.
	Timeout time.Duration
	// PageSize is the limit of each list request; default 1000 (NetBox's
	// MAX_PAGE_SIZE), at least 1.
	PageSize int
	// Concurrency bounds the requests in flight; default 4.
	Concurrency int
	// RateLimit is requests per second, 0 for no limit.
	RateLimit float64
	// MaxRetries is how often a request is retried on 429, 5xx or a network
	// error, with exponential backoff and jitter or the server's
	// Retry-After (capped at a minute); default 5. 401 and 403 are never
	// retried. Set it below 0 for no retries.
	MaxRetries int
	// CAFile is an extra PEM bundle of CAs to trust.
	CAFile string
	// Insecure skips TLS verification (New logs a warning).
	Insecure bool
	// ReckonIDField is the custom field holding reckon's asset id; default
	// "reckon_asset_id".
	ReckonIDField string
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger

	// DeviceRole, DeviceType and Site are the slugs Push gives a device it
	// creates (NetBox requires all three); without them Push creates no
	// devices.
	DeviceRole, DeviceType, Site string
	// Tag is the slug of the tag marking records reckon wrote; default
	// "reckon". It must exist in NetBox.
	Tag string
}

// Defaults of Options.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultPageSize      = 1000
	DefaultConcurrency   = 4
	DefaultMaxRetries    = 5
	DefaultReckonIDField = "reckon_asset_id"
	DefaultTag           = "reckon"

	// maxRetryWait caps a backoff and a server's Retry-After.
	maxRetryWait = 60 * time.Second
)

// ErrUnauthorized is wrapped by errors for a 401 or 403: the token is
// missing, revoked or lacks the permission.
var ErrUnauthorized = errors.New("netbox refused the token")

// ErrInconsistent is wrapped by a read whose pages do not add up (NetBox's
// data changed during the read, or a proxy mangled the pages).
var ErrInconsistent = errors.New("inconsistent pages")

// StatusError is a non-2xx answer (after retries).
type StatusError struct {
	Method string
	URL    string
	Status int
	Body   string // the start of the body
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("netbox: %s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap makes a 401 or 403 match ErrUnauthorized.
func (e *StatusError) Unwrap() error {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return ErrUnauthorized
	}
	return nil
}

// Client is a NetBox client; it is safe for concurrent use.
type Client struct {
	o       Options
	base    *url.URL
	log     *slog.Logger
	rc      *resty.Client
	limiter *rate.Limiter // nil: unlimited
	sem     chan struct{} // one slot per request in flight
}

// New checks o and returns a client. It does not contact NetBox.
func New(o Options) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("netbox: no URL")
	}
	base, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("netbox: URL %q: want http(s)://host[:port][/path]", o.URL)
	}
	if o.Token == "" {
		return nil, errors.New("netbox: no token")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.RateLimit < 0 {
		return nil, fmt.Errorf("netbox: rate limit %v: want >= 0", o.RateLimit)
	}
	if o.ReckonIDField == "" {
		o.ReckonIDField = DefaultReckonIDField
	}
	if o.Tag == "" {
		o.Tag = DefaultTag
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	tlsConf, err := rest.TLSConfig(o.CAFile, o.Insecure, log, "NetBox at "+base.String())
	if err != nil {
		return nil, fmt.Errorf("netbox: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = o.Concurrency + 2
	tr.MaxConnsPerHost = 0

	c := &Client{o: o, base: base, log: log, sem: make(chan struct{}, o.Concurrency)}
	if o.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(o.RateLimit), 1)
	}
	auth := "Token " + o.Token
	if strings.HasPrefix(o.Token, "nbt_") {
		auth = "Bearer " + o.Token
	}
	c.rc = resty.NewWithClient(&http.Client{Transport: tr}).
		SetTimeout(o.Timeout).
		SetHeader("Authorization", auth).
		SetHeader("Accept", "application/json").
		SetLogger(rest.Logger{L: log, Prefix: "netbox: "}).
		SetRetryCount(o.MaxRetries).
		SetRetryWaitTime(time.Second).
		SetRetryMaxWaitTime(maxRetryWait).
		SetRetryAfter(rest.RetryAfter(maxRetryWait)).
		OnBeforeRequest(func(_ *resty.Client, r *resty.Request) error {
			// Every attempt, retries included, waits for the rate limit.
			if c.limiter == nil {
				return nil
			}
			if err := c.limiter.Wait(r.Context()); err != nil {
				return fmt.Errorf("%w: rate limit: %w", errNoRetry, err)
			}
			return nil
		})
	return c, nil
}

// Kind is "netbox".
func (c *Client) Kind() string { return "netbox" }

var errNoRetry = errors.New("not retried")

// retryRead retries 429, 5xx and network errors (timeouts included).
func retryRead(r *resty.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, errNoRetry) && !errors.Is(err, context.Canceled)
	}
	s := r.StatusCode()
	return s == http.StatusTooManyRequests || s >= 500
}

// retryWrite retries only answers that say the write was not done (429,
// 502, 503, 504): after a 500 or a timeout NetBox may have committed it,
// and a second POST would create a duplicate.
func retryWrite(r *resty.Response, err error) bool {
	if err != nil {
		return false
	}
	switch r.StatusCode() {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// abs is NetBox's URL for an API path and query.
func (c *Client) abs(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

// rebase keeps the path and query of a URL NetBox returned (a next link)
// on the configured base: behind a proxy NetBox often renders its own
// internal scheme and host.
func (c *Client) rebase(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("netbox: bad next link %q: %w", link, err)
	}
	path := u.Path
	if i := strings.Index(path, "/api/"); i >= 0 {
		path = path[i:]
	}
	v := *c.base
	v.Path = strings.TrimRight(c.base.Path, "/") + path
	v.RawQuery = u.RawQuery
	return v.String(), nil
}

// do sends one request (with retries) and decodes a 2xx JSON answer into
// out (when out is not nil). It holds one concurrency slot while it runs.
func (c *Client) do(ctx context.Context, method, u string, body, out any) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("netbox: %s %s: %w", method, u, ctx.Err())
	}
	defer func() { <-c.sem }()

	req := c.rc.R().SetContext(ctx)
	if method == http.MethodGet {
		req.AddRetryCondition(retryRead)
	} else {
		req.AddRetryCondition(retryWrite)
		req.SetHeader("Content-Type", "application/json").SetBody(body)
	}
	start := time.Now()
	resp, err := req.Execute(method, u)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("netbox: %s %s: %w", method, u, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) { // it repeats the method and URL
			if ue.Timeout() {
				return fmt.Errorf("netbox: %s %s: no answer within %v: %w", method, u, c.o.Timeout, ue.Err)
			}
			err = ue.Err
		}
		return fmt.Errorf("netbox: %s %s: %w", method, u, err)
	}
	c.log.Debug("netbox request", "method", method, "url", u, "status", resp.StatusCode(),
		"bytes", len(resp.Body()), "elapsed", time.Since(start))
	if s := resp.StatusCode(); s < 200 || s > 299 {
		return &StatusError{Method: method, URL: u, Status: s, Body: snippet(resp.Body())}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return fmt.Errorf("netbox: %s %s: status %d but the body (%d bytes) is not the expected JSON: %w",
			method, u, resp.StatusCode(), len(resp.Body()), err)
	}
	return nil
}

func snippet(b []byte) string {
	const n = 300
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
