package probe

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// needTool returns path when it is an executable; otherwise the test is
// skipped, or fails under CI=true, where every tool must be there.
func needTool(t *testing.T, path string) string {
	t.Helper()
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: CI must have it (install it in .ci/run)", path)
	}
	t.Skipf("%s is missing", path)
	return ""
}

// loopback is the listener's address as the probes take it.
func loopback(t *testing.T, l net.Listener) netip.AddrPort {
	t.Helper()
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listen opens a TCP listener on 127.0.0.1 that the test closes.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// freePort returns a 127.0.0.1 port nothing listens on (just now).
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := loopback(t, l)
	l.Close()
	return ap
}

// serve accepts connections on l until the test ends, each handled by h
// in its own goroutine and closed after it.
func serve(t *testing.T, l net.Listener, h func(net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				h(c)
			})
		}
	})
}

// tlsServer serves TLS handshakes with cfg on a fresh 127.0.0.1 port.
func tlsServer(t *testing.T, cfg *tls.Config) netip.AddrPort {
	t.Helper()
	l := listen(t)
	serve(t, l, func(c net.Conn) { _ = tls.Server(c, cfg).Handshake() })
	return loopback(t, l)
}

// startProgram runs a server program until the test ends and waits until
// it listens on addr.
func startProgram(t *testing.T, addr netip.AddrPort, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %v", name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// certOpts describes a certificate made in a test.
type certOpts struct {
	cn       string
	dns      []string
	ips      []net.IP
	sigAlg   x509.SignatureAlgorithm
	isCA     bool
	parent   *x509.Certificate // nil: self-signed
	signer   crypto.Signer     // the parent's key
	notAfter time.Time
}

// makeCert creates a certificate for key.
func makeCert(t *testing.T, key crypto.Signer, o certOpts) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.cn, Organization: []string{"Reckon Test"}},
		DNSNames:              o.dns,
		IPAddresses:           o.ips,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              o.notAfter,
		SignatureAlgorithm:    o.sigAlg,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if o.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	parent, signer := tmpl, key
	if o.parent != nil {
		parent, signer = o.parent, o.signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	keysOnce sync.Once
	rsa1024  *rsa.PrivateKey
	rsa2048  *rsa.PrivateKey
)

// rsaKeys are made once per test binary: RSA generation is slow.
func rsaKeys(tb testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		if rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
		if rsa2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsa1024, rsa2048
}

// weakCert is a self-signed RSA-1024 certificate signed with SHA-1.
func weakCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	k, _ := rsaKeys(t)
	c := makeCert(t, k, certOpts{cn: "weak.test", dns: []string{"weak.test"}, sigAlg: x509.SHA1WithRSA})
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}, c
}

// rsaCert is a self-signed RSA-2048 SHA-256 certificate for localhost.
func rsaCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	_, k := rsaKeys(t)
	c := makeCert(t, k, certOpts{cn: "localhost", dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}, sigAlg: x509.SHA256WithRSA})
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}, c
}

// ecChain is an ECDSA P-256 leaf for localhost and 127.0.0.1 issued by a
// test CA, sent with the CA; roots trusts that CA.
func ecChain(t *testing.T) (cert tls.Certificate, leaf, ca *x509.Certificate, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca = makeCert(t, caKey, certOpts{cn: "Reckon Test CA", sigAlg: x509.ECDSAWithSHA256, isCA: true})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf = makeCert(t, key, certOpts{
		cn: "localhost", dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)},
		sigAlg: x509.ECDSAWithSHA256, parent: ca, signer: caKey,
	})
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf}, leaf, ca, roots
}

// writePEM writes a certificate and its RSA key for programs like openssl.
func writePEM(t *testing.T, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
