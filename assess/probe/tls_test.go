package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/assess"
)

func cipherNames(cs []assess.Cipher, version string) []string {
	var out []string
	for _, c := range cs {
		if c.Version == version {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return out
}

func findCipher(t *testing.T, cs []assess.Cipher, name string) assess.Cipher {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("cipher %s not in %+v", name, cs)
	return assess.Cipher{}
}

func TestTLS10OnlyWeakCert(t *testing.T) {
	t.Parallel()
	cert, leaf := weakCert(t)
	addr := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS10,
	})
	got, err := TLS(t.Context(), addr, Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Versions, []string{"TLSv1.0"}) {
		t.Errorf("versions %v, want [TLSv1.0]", got.Versions)
	}
	// Go's server defaults leave out RSA key transport and 3DES; ECDSA
	// suites do not fit an RSA certificate.
	want := []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}
	if names := cipherNames(got.Ciphers, "TLSv1.0"); !slices.Equal(names, want) {
		t.Errorf("TLSv1.0 ciphers %v, want %v", names, want)
	}
	if c := findCipher(t, got.Ciphers, want[0]); c.Kex != "ecdh_x25519" || c.KexBits != 0 || c.Strength != "" {
		t.Errorf("cipher %+v, want kex ecdh_x25519", c)
	}
	if len(got.Ciphers) != len(want) {
		t.Errorf("ciphers %+v, want only TLSv1.0 ones", got.Ciphers)
	}
	if got.Source != "probe" || got.Port != int(addr.Port()) {
		t.Errorf("source %q port %d", got.Source, got.Port)
	}
	c := got.Cert
	if c.KeyType != "rsa" || c.KeyBits != 1024 || c.SigAlgo != "sha1WithRSAEncryption" || c.SigHash != "sha1" {
		t.Errorf("key %s/%d sig %s/%s, want rsa/1024 sha1WithRSAEncryption/sha1", c.KeyType, c.KeyBits, c.SigAlgo, c.SigHash)
	}
	if !c.SelfSigned || c.Verified || c.VerifyError == "" {
		t.Errorf("self-signed %v verified %v (%q), want a self-signed, unverified certificate", c.SelfSigned, c.Verified, c.VerifyError)
	}
	if c.CommonName != "weak.test" || c.Subject != "CN=weak.test,O=Reckon Test" || c.Issuer != c.Subject {
		t.Errorf("names: cn %q subject %q issuer %q", c.CommonName, c.Subject, c.Issuer)
	}
	if !slices.Equal(c.SANs, []string{"weak.test"}) {
		t.Errorf("SANs %v", c.SANs)
	}
	if !c.NotAfter.Equal(leaf.NotAfter) || c.NotAfter.Location() != time.UTC {
		t.Errorf("not after %v, want %v in UTC", c.NotAfter, leaf.NotAfter)
	}
	if len(c.SHA256) != 64 || len(c.SHA1) != 40 || strings.ToLower(c.SHA256) != c.SHA256 {
		t.Errorf("fingerprints %q %q", c.SHA256, c.SHA1)
	}
	if len(got.Chain) != 1 || got.Chain[0].SHA256 != c.SHA256 {
		t.Errorf("chain %+v, want the leaf alone", got.Chain)
	}
}

func TestTLS13OnlyVerifiedChain(t *testing.T) {
	t.Parallel()
	cert, leaf, ca, roots := ecChain(t)
	addr := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
	})
	got, err := TLS(t.Context(), addr, Options{Timeout: 3 * time.Second, ServerName: "localhost", Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Versions, []string{"TLSv1.3"}) {
		t.Errorf("versions %v, want [TLSv1.3]", got.Versions)
	}
	if len(got.Ciphers) != 1 || got.Ciphers[0].Version != "TLSv1.3" || !strings.HasPrefix(got.Ciphers[0].Name, "TLS_") ||
		got.Ciphers[0].Kex == "" || got.Ciphers[0].Kex == "ecdhe" {
		t.Errorf("ciphers %+v, want the one negotiated suite with its group", got.Ciphers)
	}
	c := got.Cert
	if !c.Verified || c.VerifyError != "" {
		t.Errorf("verified %v (%q), want verified against the test CA", c.Verified, c.VerifyError)
	}
	if c.KeyType != "ec" || c.KeyBits != 256 || c.SigAlgo != "ecdsa-with-SHA256" || c.SigHash != "sha256" || c.SelfSigned {
		t.Errorf("cert %+v", c)
	}
	if c.Issuer != ca.Subject.String() || c.Subject != leaf.Subject.String() {
		t.Errorf("issuer %q subject %q", c.Issuer, c.Subject)
	}
	if !slices.Equal(c.SANs, []string{"localhost", "127.0.0.1"}) {
		t.Errorf("SANs %v", c.SANs)
	}
	if len(got.Chain) != 2 || got.Chain[0].SHA256 != c.SHA256 || !got.Chain[1].SelfSigned || got.Chain[1].CommonName != "Reckon Test CA" {
		t.Errorf("chain %+v, want leaf then CA", got.Chain)
	}

	// Another name, and the system roots, each fail verification; no name
	// at all verifies the chain alone.
	for _, tc := range []struct {
		o    Options
		ok   bool
		want string
	}{
		{Options{ServerName: "other.example", Roots: roots}, false, "other.example"},
		{Options{ServerName: "localhost"}, false, "unknown authority"},
		{Options{Roots: roots}, true, ""},
	} {
		got, err := TLS(t.Context(), addr, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if got.Cert.Verified != tc.ok || !strings.Contains(got.Cert.VerifyError, tc.want) {
			t.Errorf("%+v: verified %v (%q), want %v (%q)", tc.o, got.Cert.Verified, got.Cert.VerifyError, tc.ok, tc.want)
		}
	}
}

func TestTLS12RSAKeyTransportOnly(t *testing.T) {
	t.Parallel()
	cert, _ := rsaCert(t)
	suites := []uint16{
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	}
	addr := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: suites,
	})
	got, err := TLS(t.Context(), addr, Options{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Versions, []string{"TLSv1.2"}) {
		t.Errorf("versions %v, want [TLSv1.2]", got.Versions)
	}
	var want []string
	for _, s := range suites {
		want = append(want, tls.CipherSuiteName(s))
	}
	slices.Sort(want)
	if names := cipherNames(got.Ciphers, "TLSv1.2"); !slices.Equal(names, want) {
		t.Errorf("ciphers %v, want %v", names, want)
	}
	for _, c := range got.Ciphers {
		if c.Kex != "rsa 2048" || c.KexBits != 2048 {
			t.Errorf("%s: kex %q/%d, want rsa 2048", c.Name, c.Kex, c.KexBits)
		}
	}
	if got.Cert.SigAlgo != "sha256WithRSAEncryption" || !got.Cert.SelfSigned {
		t.Errorf("cert %+v", got.Cert)
	}
}

// Suites that only Go's client offers when asked: the probe must still see
// versions where the server would pick them.
func TestSuitesFor(t *testing.T) {
	t.Parallel()
	for _, s := range []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA} {
		if !slices.Contains(suitesFor(tls.VersionTLS10), s) || !slices.Contains(suitesFor(tls.VersionTLS12), s) {
			t.Errorf("%s not offered", tls.CipherSuiteName(s))
		}
	}
	if slices.Contains(suitesFor(tls.VersionTLS10), tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) {
		t.Error("a TLS 1.2 suite offered under TLS 1.0")
	}
	if slices.Contains(suitesFor(tls.VersionTLS12), tls.TLS_AES_128_GCM_SHA256) {
		t.Error("a TLS 1.3 suite offered under TLS 1.2")
	}
}

func TestTLSNotTLS(t *testing.T) {
	t.Parallel()
	l := listen(t)
	serve(t, l, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 512))
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	addr := loopback(t, l)
	_, err := TLS(t.Context(), addr, Options{Timeout: 3 * time.Second})
	if !errors.Is(err, ErrNotTLS) {
		t.Fatalf("error %v, want ErrNotTLS", err)
	}
	if want := addr.String() + ": not a TLS service: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
}

func TestTLSClosedPort(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	_, err := TLS(t.Context(), addr, Options{Timeout: 3 * time.Second})
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), addr.String()+": ") {
		t.Fatalf("error %v, want connection refused on %s", err, addr)
	}
}

// A server that takes the connection and never answers costs one timeout,
// not one per handshake tried.
func TestTLSSilentServer(t *testing.T) {
	t.Parallel()
	l := listen(t)
	serve(t, l, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	start := time.Now()
	_, err := TLS(t.Context(), loopback(t, l), Options{Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrNoTLSVersion) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("error %v, want ErrNoTLSVersion with timeouts", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestTLSCanceled(t *testing.T) {
	t.Parallel()
	cert, _ := weakCert(t)
	addr := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := TLS(ctx, addr, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// The project's acceptance check runs these two openssl servers.
func TestTLSOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := needTool(t, "openssl")
	cert, _ := rsaCert(t)
	certFile, keyFile := writePEM(t, cert)
	for _, tc := range []struct {
		name     string
		args     []string
		versions []string
		ciphers  []string // some that must be among them
	}{
		{"tls1", []string{"-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"}, []string{"TLSv1.0"},
			[]string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"}},
		{"tls1_3", []string{"-tls1_3"}, []string{"TLSv1.3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := freePort(t)
			args := append([]string{"s_server", "-accept", addr.String(), "-cert", certFile, "-key", keyFile, "-www", "-quiet"}, tc.args...)
			startProgram(t, addr, openssl, args...)
			got, err := TLS(t.Context(), addr, Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Versions, tc.versions) {
				t.Errorf("versions %v, want %v", got.Versions, tc.versions)
			}
			for _, name := range tc.ciphers {
				findCipher(t, got.Ciphers, name)
			}
			if len(got.Ciphers) == 0 {
				t.Error("no ciphers")
			}
			for _, c := range got.Ciphers {
				if c.Version != tc.versions[0] {
					t.Errorf("cipher %+v under another version", c)
				}
				if strings.HasPrefix(c.Name, "TLS_RSA_") && c.Kex != "rsa 2048" {
					t.Errorf("cipher %+v, want kex rsa 2048", c)
				}
			}
			if got.Cert.CommonName != "localhost" || got.Cert.KeyBits != 2048 {
				t.Errorf("cert %+v", got.Cert)
			}
			t.Logf("%s: %d ciphers: %+v", tc.name, len(got.Ciphers), got.Ciphers)
		})
	}
}
