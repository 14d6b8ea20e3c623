package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syslog sends notifications to a syslog collector or SIEM as RFC 5424
// messages carrying CEF, one message per notification:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - CEF:0|reckon|reckon|VERSION|KIND:CHECK|TITLE|CEFSEV|EXTENSIONS
//
// PRI is Facility*8 plus the syslog severity (critical 2, high 3, medium 4,
// low 5, info 6; anything else 4), TIMESTAMP the notification's time in UTC
// with microseconds, MSGID the event, and the structured data "-" (reckon
// has no private enterprise number; everything is in the CEF extensions).
// The MSG has no BOM, which CEF parsers do not expect. The package
// documentation describes the CEF fields.
//
// Network "udp" sends one datagram per message (RFC 5426); it is fire and
// forget, so a collector that is down loses messages: use "tcp" or "tls"
// where that matters. "tcp" and "tls" frame messages by octet counting
// (RFC 6587, RFC 5425: "LEN SP MSG") over one connection, reconnected when
// it breaks. A batch that fails part way is sent again whole, so a collector
// may see a message twice; cs5 (the notification id) tells them apart.
type Syslog struct {
	Network string // udp, tcp or tls
	Addr    string // host:port
	// AppName is APP-NAME (default "reckon"); Hostname is HOSTNAME
	// (default this machine's name).
	AppName, Hostname string
	// Facility is the syslog facility code, 0–23 (RFC 5424 §6.2.1). Zero
	// means 16, local0: reckon never speaks for the kernel.
	Facility int
	// TLSConfig configures "tls" (nil: system roots, server name from Addr).
	TLSConfig *tls.Config
	// Timeout bounds connecting and writing one batch (default 10s).
	Timeout time.Duration
	// Version is the CEF Device Version (default "dev").
	Version string
	// ID is the sink's Name; empty means "syslog:<network>:<addr>".
	ID string

	mu   sync.Mutex
	conn net.Conn
}

// Name identifies the sink in the outbox, logs and metrics.
func (s *Syslog) Name() string {
	if s.ID != "" {
		return s.ID
	}
	return "syslog:" + s.Network + ":" + s.Addr
}

// Send writes one message per notification.
func (s *Syslog) Send(ctx context.Context, n []Notification) error {
	if len(n) == 0 {
		return nil
	}
	name := s.Name()
	if !strings.HasPrefix(name, "syslog:") {
		name = "syslog " + name // errors say what kind of sink failed
	}
	switch s.Network {
	case "udp", "tcp", "tls":
	default:
		return permanent(fmt.Errorf("%s: network %q is not udp, tcp or tls", name, s.Network))
	}
	if s.Facility < 0 || s.Facility > 23 {
		return permanent(fmt.Errorf("%s: facility %d is not 0-23", name, s.Facility))
	}
	host := s.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	stream := s.Network != "udp"
	msgs := make([][]byte, len(n))
	for i := range n {
		m := s.format(&n[i], host, time.Now())
		if stream {
			m = append([]byte(strconv.Itoa(len(m))+" "), m...)
		}
		msgs[i] = m
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	redialled := false
	for i := 0; i < len(msgs); {
		if err := ctx.Err(); err != nil {
			return retryable(fmt.Errorf("%s: %w", name, err), 0)
		}
		if s.conn != nil && stream && !alive(s.conn) {
			s.closeConn()
		}
		if s.conn == nil {
			c, err := s.dial(ctx)
			if err != nil {
				return retryable(fmt.Errorf("%s: %w", name, err), 0)
			}
			s.conn = c
		}
		err := s.write(ctx, msgs[i])
		if err == nil {
			i++
			continue
		}
		s.closeConn()
		// A connection the collector dropped often fails only at the first
		// write: reconnect once per batch before giving up.
		if redialled {
			return retryable(fmt.Errorf("%s: %w", name, err), 0)
		}
		redialled = true
	}
	return nil
}

// Close closes the connection, if any; the next Send opens a new one.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeConn()
	return nil
}

func (s *Syslog) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{}
	if s.Network == "tls" {
		td := &tls.Dialer{NetDialer: d, Config: s.TLSConfig}
		return td.DialContext(ctx, "tcp", s.Addr)
	}
	return d.DialContext(ctx, s.Network, s.Addr)
}

// write writes one framed message, giving up when ctx ends.
func (s *Syslog) write(ctx context.Context, m []byte) error {
	c := s.conn
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Now()) })
	defer stop()
	_, err := c.Write(m)
	return err
}

// alive says whether a stream connection is still open: collectors never
// write, so anything but a read timeout means the peer closed or reset it.
func alive(c net.Conn) bool {
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return err == nil || (errors.As(err, &ne) && ne.Timeout())
}

// format renders the RFC 5424 message of n, without framing.
func (s *Syslog) format(n *Notification, host string, now time.Time) []byte {
	facility := s.Facility
	if facility == 0 {
		facility = 16
	}
	at := n.At
	if at.IsZero() {
		at = now
	}
	app := s.AppName
	if app == "" {
		app = "reckon"
	}
	version := s.Version
	if version == "" {
		version = "dev"
	}
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(strconv.Itoa(facility*8 + syslogSeverity(n.Severity)))
	b.WriteString(">1 ")
	b.WriteString(at.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	b.WriteString(" ")
	b.WriteString(headerField(host, 255))
	b.WriteString(" ")
	b.WriteString(headerField(app, 48))
	b.WriteString(" ")
	b.WriteString(strconv.Itoa(os.Getpid()))
	b.WriteString(" ")
	b.WriteString(headerField(n.Event, 32))
	b.WriteString(" - ")
	b.WriteString(formatCEF(n, version))
	return []byte(b.String())
}

// headerField makes v an RFC 5424 header field: printable US-ASCII without
// spaces, at most limit characters, "-" when empty.
func headerField(v string, limit int) string {
	b := make([]byte, 0, min(len(v), limit))
	for i := 0; i < len(v) && len(b) < limit; i++ {
		c := v[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// syslogSeverity maps a notification severity to the syslog severity code:
// critical 2, high 3, medium 4, low 5, info 6; an unknown one counts as 4.
func syslogSeverity(sev string) int {
	switch sev {
	case "critical":
		return 2
	case "high":
		return 3
	case "medium":
		return 4
	case "low":
		return 5
	case "info":
		return 6
	}
	return 4
}
