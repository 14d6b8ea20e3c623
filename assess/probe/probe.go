package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"time"
)

// DefaultTimeout bounds one connection (dial, handshake, exchange) when
// Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// concurrency is how many connections one probe opens at once.
const concurrency = 4

// Errors callers branch on; the probes wrap them with the address.
var (
	// ErrNotTLS: the port answered, but not with TLS.
	ErrNotTLS = errors.New("not a TLS service")
	// ErrNoTLSVersion: the server speaks TLS (or did not say) but accepted
	// none of the versions Go can offer (it may still speak SSLv3).
	ErrNoTLSVersion = errors.New("no TLS version accepted")
	// ErrNotSSH: the port answered, but with no SSH identification.
	ErrNotSSH = errors.New("not an SSH service")
)

// Options are the settings shared by the probes.
type Options struct {
	// Timeout bounds each connection; 0 means DefaultTimeout.
	Timeout time.Duration
	// ServerName is sent as TLS SNI (and HTTP Host) and is the name the
	// certificate is verified for; "" sends none and verifies the chain
	// without a name.
	ServerName string
	// Dial opens the connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Roots are the trust anchors for certificate verification; nil uses
	// the system roots.
	Roots *x509.CertPool
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// dial opens a TCP connection to addr, with the connection's deadline set to
// the end of ctx (which the caller bounds by the timeout).
func (o Options) dial(ctx context.Context, addr string) (net.Conn, error) {
	d := o.Dial
	if d == nil {
		var nd net.Dialer
		d = nd.DialContext
	}
	conn, err := d(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// dialError strips a *net.OpError's "dial tcp 127.0.0.1:1:" prefix, which
// repeats the address the probes already put first; the error chain is
// kept, so errors.Is(err, syscall.ECONNREFUSED) still holds.
func dialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Err != nil {
		return op.Err
	}
	return err
}
