package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook request headers.
const (
	HeaderTimestamp = "X-Reckon-Timestamp"
	HeaderSignature = "X-Reckon-Signature"
)

// ErrBadSignature means a webhook request's signature does not verify.
var ErrBadSignature = errors.New("bad webhook signature")

// Webhook posts notifications to an HTTP(S) endpoint, a batch per request:
//
//	POST <URL>
//	Content-Type: application/json
//	X-Reckon-Timestamp: <Unix seconds when sent>
//	X-Reckon-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with Secret>
//
//	{"notifications":[{"id":"…","event":"opened",…}, …]}
//
// The signature header is sent only when Secret is set. A receiver checks it
// with Verify over the raw body, rejects old timestamps (replays), and
// dedupes by notification id: delivery is at least once.
//
// A 2xx answer is success. 408, 429, 5xx, network errors and timeouts are
// retryable (a *RetryError carrying Retry-After when the receiver sent one);
// any other status, redirects included, is permanent (ErrPermanent).
type Webhook struct {
	URL    string
	Secret []byte
	// Timeout bounds one request, answer included (default 10s).
	Timeout time.Duration
	// Headers are added to every request (an Authorization token, say);
	// they cannot replace Content-Type or the X-Reckon headers.
	Headers map[string]string
	// Client sends the requests; nil means a client over
	// http.DefaultTransport that does not follow redirects.
	Client *http.Client
	// ID is the sink's Name. Empty means "webhook:<host>-<hash of URL>",
	// which keeps tokens in the URL out of logs and the database.
	ID string
}

// Name identifies the webhook in the outbox, logs and metrics.
func (w *Webhook) Name() string {
	if w.ID != "" {
		return w.ID
	}
	sum := sha256.Sum256([]byte(w.URL))
	host := "invalid"
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return "webhook:" + host + "-" + hex.EncodeToString(sum[:4])
}

// Send posts the notifications in one request.
func (w *Webhook) Send(ctx context.Context, n []Notification) error {
	if len(n) == 0 {
		return nil
	}
	name := w.Name()
	if !strings.HasPrefix(name, "webhook:") {
		name = "webhook " + name // errors say what kind of sink failed
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return permanent(fmt.Errorf("%s: URL is not an http(s) URL", name))
	}
	body, err := json.Marshal(struct {
		Notifications []Notification `json:"notifications"`
	}{n})
	if err != nil {
		return permanent(fmt.Errorf("%s: encoding: %w", name, err))
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("%s: %w", name, err))
	}
	req.Header.Set("User-Agent", "reckon-notify")
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	if len(w.Secret) > 0 {
		req.Header.Set(HeaderSignature, sign(w.Secret, ts, body))
	}
	client := w.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		// Refused, reset, TLS, DNS, timeout: all may heal.
		return retryable(fmt.Errorf("%s: %w", name, err), 0)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return retryable(fmt.Errorf("%s: %s", name, resp.Status),
			parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	default:
		msg := strings.Join(strings.Fields(string(head)), " ")
		if msg != "" {
			msg = ": " + msg
		}
		if loc := resp.Header.Get("Location"); code >= 300 && code < 400 && loc != "" {
			msg = " to " + loc + " (configure the final URL)"
		}
		return permanent(fmt.Errorf("%s: %s%s", name, resp.Status, msg))
	}
}

// parseRetryAfter reads a Retry-After header, seconds or an HTTP date; zero
// when absent, unreadable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sign returns the X-Reckon-Signature value of a request.
func sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook request as its receiver: secret is the shared
// secret, timestamp and signature the X-Reckon-Timestamp and
// X-Reckon-Signature headers, body the raw request body. With maxSkew > 0 a
// timestamp further than that from now is refused, which bounds replays.
// Errors wrap ErrBadSignature. The comparison takes constant time.
func Verify(secret, timestamp, body, signature string, maxSkew time.Duration) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrBadSignature, timestamp)
	}
	if maxSkew > 0 {
		skew := time.Since(time.Unix(secs, 0)).Abs()
		if skew > maxSkew {
			return fmt.Errorf("%w: timestamp is %s away from now, more than %s", ErrBadSignature, skew.Round(time.Second), maxSkew)
		}
	}
	want := sign([]byte(secret), timestamp, []byte(body))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}
