// Package servicenow reads configuration items from a ServiceNow CMDB over
// the Table API and writes reckon's assets back through the Identification
// and Reconciliation Engine (IRE), so that the instance's own identification
// and reconciliation rules decide what is created, updated or left alone.
//
// Reads: each CI table is paged with GET /api/now/table/{table}, following
// the Link rel="next" header; network adapters from cmdb_ci_network_adapter
// add their MACs and IPs to their CI. Writes: POST /api/now/identifyreconcile
// (or /query for a dry run) in payloads of at most 500 items.
//
// Every request goes through one resty client with a per-request timeout,
// an optional rate limit, and retries with exponential backoff and jitter on
// 429, 5xx and network errors, honouring Retry-After. 401 and 403 are not
// retried.
package servicenow

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

// Options configure a Client. Only URL and Token are required.
type Options struct {
	// URL is the instance's base URL, e.g. https://acme.service-now.com.
	URL string
	// Token is an OAuth bearer token ("Authorization: Bearer <t>"); when
	// User is set, Basic auth is used instead with Token as the password.
	Token string
	User  string
	// Timeout bounds each request (each attempt of it); default 30s.
	Timeout time.Duration
	// PageSize is sysparm_limit; default 1000.
	PageSize int
	// Concurrency is how many tables are read at once; default 4. One
	// table's pages are read one after the other.
	Concurrency int
	// RateLimit caps requests per second over the whole client, retries
	// included; 0 means no limit.
	RateLimit float64
	// MaxRetries is how often a request is retried after 429, 5xx or a
	// network error; default 5. Negative means no retries.
	MaxRetries int
	// CAFile is a PEM bundle of extra roots to trust; Insecure turns TLS
	// verification off (logged loudly).
	CAFile   string
	Insecure bool
	// Tables are the CI tables to read, most specific first; default
	// cmdb_ci_computer, cmdb_ci_hardware, cmdb_ci_ip_device. A CI that
	// several tables return (a computer is also hardware) is read once,
	// from the table named by its sys_class_name when listed, else from
	// the first table listed that returned it.
	Tables []string
	// Query is an extra encoded query AND-ed to every CI table's query,
	// e.g. "operational_status=1". It may not contain ^NQ.
	Query string
	// ReckonIDField names a CI field holding reckon's asset id (e.g.
	// "u_reckon_asset_id") to fill cmdb.CI.ReckonID; empty means none. (The
	// source native key IRE stores with each push lives in
	// sys_object_source, which a CI row does not carry.)
	ReckonIDField string
	// RoleField names a CI field to read cmdb.CI.Role from (e.g.
	// "u_role"); empty means the class label ("computer", "ip switch").
	RoleField string
	// DataSource is sysparm_data_source for IRE writes; it must be a
	// choice of cmdb_ci.discovery_source on the instance. Default
	// "ServiceNow".
	DataSource string
	// SourceName is sys_object_source_info.source_name; default "reckon".
	SourceName string
	// Logger receives warnings and debug lines; nil discards them.
	Logger *slog.Logger
}

// Client is a ServiceNow CMDB client. It is safe for concurrent use.
type Client struct {
	o    Options
	base *url.URL
	rc   *resty.Client
	log  *slog.Logger
	lim  *rate.Limiter
}

// ErrUnauthorized is wrapped by errors for 401 and 403 answers: the token
// is missing, revoked or lacks a role. Such requests are not retried.
var ErrUnauthorized = errors.New("servicenow: not authorised")

// APIError is a non-2xx answer that retries did not cure.
type APIError struct {
	Method string
	URL    string
	Status int
	// Message and Detail are ServiceNow's error.message and error.detail,
	// when the body had them.
	Message string
	Detail  string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("servicenow: %s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
		if e.Detail != "" {
			s += " (" + e.Detail + ")"
		}
	}
	return s
}

// Is makes errors.Is(err, ErrUnauthorized) true for 401 and 403.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// New checks o, fills its defaults and returns a client. It makes no
// request.
func New(o Options) (*Client, error) {
	if o.URL == "" {
		return nil, errors.New("servicenow: URL is required")
	}
	base, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("servicenow: URL %q is not an http(s) URL", o.URL)
	}
	if o.Token == "" {
		return nil, errors.New("servicenow: Token is required")
	}
	if strings.Contains(o.Query, "^NQ") {
		return nil, errors.New("servicenow: Query may not contain ^NQ (it could not be AND-ed)")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	} else if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if len(o.Tables) == 0 {
		o.Tables = []string{"cmdb_ci_computer", "cmdb_ci_hardware", "cmdb_ci_ip_device"}
	}
	for _, t := range o.Tables {
		if !validName(t) {
			return nil, fmt.Errorf("servicenow: table %q is not a table name", t)
		}
	}
	for _, f := range []string{o.ReckonIDField, o.RoleField} {
		if f != "" && !validName(f) {
			return nil, fmt.Errorf("servicenow: field %q is not a field name", f)
		}
	}
	if o.DataSource == "" {
		o.DataSource = "ServiceNow"
	}
	if o.SourceName == "" {
		o.SourceName = "reckon"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("cmdb", "servicenow", "url", base.String())

	tlsConf, err := rest.TLSConfig(o.CAFile, o.Insecure, log, "the ServiceNow instance")
	if err != nil {
		return nil, fmt.Errorf("servicenow: %w", err)
	}

	c := &Client{o: o, base: base, log: log}
	if o.RateLimit > 0 {
		c.lim = rate.NewLimiter(rate.Limit(o.RateLimit), 1)
	}
	c.rc = resty.New().
		SetBaseURL(base.String()).
		SetTimeout(o.Timeout).
		SetLogger(rest.Logger{L: log, Prefix: "resty: "}).
		SetTLSClientConfig(tlsConf).
		SetHeader("Accept", "application/json").
		SetHeader("User-Agent", "reckon").
		SetRetryCount(o.MaxRetries).
		SetRetryWaitTime(500 * time.Millisecond).
		SetRetryMaxWaitTime(60 * time.Second).
		SetRetryAfter(rest.RetryAfter(60 * time.Second)).
		AddRetryCondition(retryable).
		// A redirect would carry the token to wherever it points.
		SetRedirectPolicy(resty.NoRedirectPolicy())
	if o.User != "" {
		c.rc.SetBasicAuth(o.User, o.Token)
	} else {
		c.rc.SetAuthToken(o.Token)
	}
	// The limiter runs before every attempt, retries included.
	c.rc.OnBeforeRequest(func(_ *resty.Client, r *resty.Request) error {
		if c.lim == nil {
			return nil
		}
		return c.lim.Wait(r.Context())
	})
	c.rc.AddRetryHook(func(r *resty.Response, err error) {
		if r != nil && r.Request != nil {
			c.log.Debug("retrying", "method", r.Request.Method, "url", r.Request.URL, "status", r.StatusCode(), "err", err)
		}
	})
	return c, nil
}

// Kind is "servicenow".
func (c *Client) Kind() string { return "servicenow" }

// retryable: network errors, 429 and 5xx. 401/403 and other 4xx are final.
func retryable(r *resty.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, resty.ErrAutoRedirectDisabled)
	}
	if r == nil {
		return false
	}
	s := r.StatusCode()
	return s == http.StatusTooManyRequests || s >= 500
}

// do sends one request (with retries) and returns the 2xx body. Errors
// name the method and URL, and the status when there was one.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, http.Header, error) {
	req := c.rc.R().SetContext(ctx)
	if query != nil {
		req.SetQueryParamsFromValues(query)
	}
	if body != nil {
		req.SetHeader("Content-Type", "application/json").SetBody(body)
	}
	shown := c.show(path, query)
	resp, err := req.Execute(method, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("servicenow: %s %s: %w", method, shown, ctx.Err())
		}
		return nil, nil, fmt.Errorf("servicenow: %s %s: %w", method, shown, err)
	}
	if s := resp.StatusCode(); s < 200 || s > 299 {
		e := &APIError{Method: method, URL: shown, Status: s}
		var doc struct {
			Error struct {
				Message string `json:"message"`
				Detail  string `json:"detail"`
			} `json:"error"`
		}
		if json.Unmarshal(resp.Body(), &doc) == nil {
			e.Message, e.Detail = doc.Error.Message, doc.Error.Detail
		}
		return nil, nil, e
	}
	return resp.Body(), resp.Header(), nil
}

// show is the URL as an error names it.
func (c *Client) show(path string, query url.Values) string {
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.base.String() + path
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}
