package probe

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/reckon-dev/reckon/assess"
)

// tlsVersions are the versions Go can offer, oldest first, with their names
// in the facts.
var tlsVersions = []struct {
	id   uint16
	name string
}{
	{tls.VersionTLS10, "TLSv1.0"},
	{tls.VersionTLS11, "TLSv1.1"},
	{tls.VersionTLS12, "TLSv1.2"},
	{tls.VersionTLS13, "TLSv1.3"},
}

// TLS probes the TLS service at addr: the versions it accepts, the cipher
// suites it accepts under each version up to TLS 1.2, the suite negotiated
// under TLS 1.3, and its certificate chain, verified for o.ServerName.
//
// A port that answers with something other than TLS gives an error matching
// ErrNotTLS; a TLS server that accepts none of TLS 1.0 to 1.3 gives
// ErrNoTLSVersion; a port that cannot be reached gives the dial error.
func TLS(ctx context.Context, addr netip.AddrPort, o Options) (assess.TLS, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	target := addr.String()

	// One handshake per version, every suite Go has offered at once.
	byVersion := make([]attempt, len(tlsVersions))
	parallel(len(tlsVersions), func(i int) {
		v := tlsVersions[i].id
		byVersion[i] = handshakeRetry(ctx, target, o, v, suitesFor(v))
	})
	if err := ctx.Err(); err != nil {
		return assess.TLS{}, fmt.Errorf("%s: %w", target, err)
	}
	if err := tlsFailure(target, byVersion); err != nil {
		return assess.TLS{}, err
	}

	// One handshake per suite, alone, for each version accepted up to 1.2.
	type job struct {
		version int // index in tlsVersions
		suite   uint16
	}
	var jobs []job
	for i, a := range byVersion {
		if !a.accepted() || tlsVersions[i].id == tls.VersionTLS13 {
			continue
		}
		for _, s := range suitesFor(tlsVersions[i].id) {
			jobs = append(jobs, job{i, s})
		}
	}
	bySuite := make([]attempt, len(jobs))
	parallel(len(jobs), func(i int) {
		bySuite[i] = handshakeRetry(ctx, target, o, tlsVersions[jobs[i].version].id, []uint16{jobs[i].suite})
	})
	if err := ctx.Err(); err != nil {
		return assess.TLS{}, fmt.Errorf("%s: %w", target, err)
	}

	res := assess.TLS{Port: int(addr.Port()), Source: "probe"}
	for i, a := range byVersion {
		if !a.accepted() {
			continue
		}
		name := tlsVersions[i].name
		res.Versions = append(res.Versions, name)
		var found []uint16
		for j, b := range bySuite {
			if jobs[j].version == i && b.accepted() {
				found = append(found, jobs[j].suite)
				res.Ciphers = append(res.Ciphers, cipherFacts(name, jobs[j].suite, b.state))
			}
		}
		// The suite chosen from the full list is accepted too, even if its
		// own handshake failed (a server that went away, a timeout): and
		// under TLS 1.3 it is the only one Go can learn.
		if s := a.state.CipherSuite; s != 0 && !slices.Contains(found, s) {
			res.Ciphers = append(res.Ciphers, cipherFacts(name, s, a.state))
		}
	}

	// A handshake the server never answered (a timeout, a reset) says
	// nothing of the version or suite it offered: the result is incomplete,
	// and says so rather than report them refused.
	lost := 0
	for _, a := range append(slices.Clone(byVersion), bySuite...) {
		if a.unanswered() {
			lost++
		}
	}

	// The chain from the newest version that showed one.
	for i := len(byVersion) - 1; i >= 0; i-- {
		if chain := byVersion[i].state.PeerCertificates; len(chain) > 0 {
			res.Chain = chainFacts(chain, o)
			res.Cert = res.Chain[0]
			break
		}
	}
	if lost > 0 {
		return res, fmt.Errorf("%s: %w: %d of %d TLS handshakes got no answer (tried twice); versions and suites may be missing", target, ErrIncomplete, lost, len(byVersion)+len(bySuite))
	}
	return res, nil
}

// unanswered: the server neither took nor refused the offer, it let the
// connection or the handshake time out. (A server that closes or resets
// the connection refuses; some stacks refuse a suite that way.)
func (a attempt) unanswered() bool {
	var ne net.Error
	switch {
	case a.dialErr != nil:
		return errors.As(a.dialErr, &ne) && ne.Timeout() || errors.Is(a.dialErr, context.DeadlineExceeded)
	case a.err != nil && !a.seen:
		return errors.As(a.err, &ne) && ne.Timeout() || errors.Is(a.err, context.DeadlineExceeded)
	}
	return false
}

// handshakeRetry is handshake, tried once more when the server did not
// answer the first time (busy servers drop connections).
func handshakeRetry(ctx context.Context, target string, o Options, version uint16, suites []uint16) attempt {
	a := handshake(ctx, target, o, version, suites)
	if a.unanswered() && ctx.Err() == nil {
		a = handshake(ctx, target, o, version, suites)
	}
	return a
}

// attempt is the outcome of one handshake.
type attempt struct {
	dialErr error // the connection could not be opened
	err     error // the handshake failed once the connection was open
	// seen: the server answered with its certificate, so it took the
	// version and the suite offered, whether or not Go then finished the
	// handshake (it refuses SHA-1 key exchange signatures, for one).
	seen bool
	// state is complete after a handshake that finished, else as it was
	// when the certificate came (CurveID still 0 under TLS 1.2).
	state tls.ConnectionState
}

func (a attempt) accepted() bool { return a.dialErr == nil && (a.err == nil || a.seen) }

// handshake runs one TLS handshake with the version pinned and only the
// given suites offered (under TLS 1.3 Go offers its own suites regardless).
func handshake(ctx context.Context, target string, o Options, version uint16, suites []uint16) attempt {
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	conn, err := o.dial(ctx, target)
	if err != nil {
		return attempt{dialErr: err}
	}
	defer conn.Close()

	var a attempt
	cfg := &tls.Config{
		ServerName: o.ServerName,
		// The probe verifies the chain itself, after the handshake, so an
		// untrusted certificate still shows the versions and suites.
		InsecureSkipVerify: true,
		MinVersion:         version,
		MaxVersion:         version,
		// Set explicitly: Go leaves RSA key transport and 3DES out of its
		// defaults (GODEBUG tlsrsakex, tls3des) but offers them when a
		// config names them, so RSA-only servers still answer.
		CipherSuites: suites,
		VerifyConnection: func(cs tls.ConnectionState) error {
			a.seen, a.state = true, cs
			return nil
		},
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		a.err = err
		return a
	}
	a.seen, a.state = true, tc.ConnectionState()
	return a
}

// tlsFailure returns the probe's error when no version was accepted, nil
// otherwise.
func tlsFailure(target string, byVersion []attempt) error {
	if slices.ContainsFunc(byVersion, attempt.accepted) {
		return nil
	}
	var why []string
	dialFailed := true
	for i, a := range byVersion {
		if a.dialErr != nil {
			why = append(why, tlsVersions[i].name+": "+dialError(a.dialErr).Error())
			continue
		}
		dialFailed = false
		var rh tls.RecordHeaderError
		if errors.As(a.err, &rh) {
			return fmt.Errorf("%s: %w: %v", target, ErrNotTLS, a.err)
		}
		why = append(why, tlsVersions[i].name+": "+a.err.Error())
	}
	if dialFailed {
		return fmt.Errorf("%s: %w", target, dialError(byVersion[0].dialErr))
	}
	return fmt.Errorf("%s: %w (%s)", target, ErrNoTLSVersion, strings.Join(why, "; "))
}

// suitesFor lists every suite Go implements for version up to TLS 1.2,
// secure ones first; TLS 1.3 suites are not a config's to choose.
func suitesFor(version uint16) []uint16 {
	if version == tls.VersionTLS13 {
		// Ignored by Go under 1.3; the 1.2 list keeps the config valid.
		version = tls.VersionTLS12
	}
	var ids []uint16
	for _, s := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if slices.Contains(s.SupportedVersions, version) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// cipherFacts describes one accepted suite; Kex as nmap's kex_info puts it.
func cipherFacts(version string, suite uint16, st tls.ConnectionState) assess.Cipher {
	c := assess.Cipher{Name: tls.CipherSuiteName(suite), Version: version}
	switch {
	case st.Version == tls.VersionTLS13 || strings.HasPrefix(c.Name, "TLS_ECDHE_"):
		c.Kex = groupName(st.CurveID)
	case strings.HasPrefix(c.Name, "TLS_RSA_"):
		c.Kex = "rsa"
		if len(st.PeerCertificates) > 0 {
			if k, ok := st.PeerCertificates[0].PublicKey.(*rsa.PublicKey); ok {
				c.KexBits = k.N.BitLen()
				c.Kex = fmt.Sprintf("rsa %d", c.KexBits)
			}
		}
	case strings.HasPrefix(c.Name, "TLS_DHE_"):
		c.Kex = "dh"
	}
	return c
}

// groupName names a key exchange group as nmap does; "ecdhe" when the
// handshake stopped before the group was known.
func groupName(id tls.CurveID) string {
	switch id {
	case 0:
		return "ecdhe"
	case tls.CurveP256:
		return "secp256r1"
	case tls.CurveP384:
		return "secp384r1"
	case tls.CurveP521:
		return "secp521r1"
	case tls.X25519:
		return "ecdh_x25519"
	}
	return strings.ToLower(id.String())
}

// parallel runs f(0) .. f(n-1), a few at a time.
func parallel(n int, f func(i int)) {
	var g errgroup.Group
	g.SetLimit(concurrency)
	for i := range n {
		g.Go(func() error { f(i); return nil })
	}
	_ = g.Wait() // f returns no error
}
