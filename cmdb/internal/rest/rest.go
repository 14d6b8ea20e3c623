// Package rest holds what the CMDB clients share about talking to a REST
// API through resty: TLS with an extra CA bundle, Retry-After, and resty's
// log lines on slog.
package rest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
)

// TLSConfig trusts the system roots plus the PEM certificates in caFile (if
// any); insecure turns verification off, with a loud warning naming what
// that exposes.
func TLSConfig(caFile string, insecure bool, log *slog.Logger, what string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		conf.RootCAs = pool
	}
	if insecure {
		conf.InsecureSkipVerify = true
		log.Warn("TLS certificate verification is OFF (insecure) for " + what +
			": anyone on the path can read the token and forge the answers")
	}
	return conf, nil
}

// RetryAfter is a resty RetryAfterFunc honouring a Retry-After header in
// seconds or as an HTTP date, at most max; zero lets resty use its
// exponential backoff with jitter.
func RetryAfter(max time.Duration) resty.RetryAfterFunc {
	return func(_ *resty.Client, r *resty.Response) (time.Duration, error) {
		if r == nil {
			return 0, nil
		}
		return ParseRetryAfter(r.Header().Get("Retry-After"), time.Now(), max), nil
	}
}

// ParseRetryAfter reads a Retry-After value as of now, capped at max.
func ParseRetryAfter(v string, now time.Time, max time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, max)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, max)
		}
	}
	return 0
}

// Logger sends resty's own lines to slog at debug level, prefixed: the
// errors it logs reach the caller anyway.
type Logger struct {
	L      *slog.Logger
	Prefix string
}

func (r Logger) Errorf(format string, v ...any) { r.L.Debug(r.Prefix + fmt.Sprintf(format, v...)) }
func (r Logger) Warnf(format string, v ...any)  { r.L.Debug(r.Prefix + fmt.Sprintf(format, v...)) }
func (r Logger) Debugf(format string, v ...any) { r.L.Debug(r.Prefix + fmt.Sprintf(format, v...)) }
