package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/assess"
)

const baselinePath = "../../configs/policies/baseline.yaml"

// now is the evaluation time of the tests: ten days after the lab captures
// in shared/testdata/nmap were taken.
var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func loadBaseline(t testing.TB) *Policy {
	t.Helper()
	p, err := Load(baselinePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", baselinePath, err)
	}
	return p
}

func byID(results []assess.Result) map[string]assess.Result {
	m := make(map[string]assess.Result, len(results))
	for _, r := range results {
		m[r.CheckID] = r
	}
	return m
}

// ---------------------------------------------------------------- hosts

// Cipher lists as nmap ssl-enum-ciphers reports them for the lab's services
// (shared/testdata/nmap/tls.txt).
func ciphers(version, strength string, suites ...string) []assess.Cipher {
	out := make([]assess.Cipher, 0, len(suites))
	for _, s := range suites {
		name, kex, _ := strings.Cut(s, " ")
		kex = strings.Trim(kex, "()")
		c := assess.Cipher{Name: name, Version: version, Kex: kex, Strength: strength}
		if k, bits, ok := strings.Cut(kex, " "); ok && (k == "dh" || k == "rsa") {
			fmt.Sscan(bits, &c.KexBits)
		}
		out = append(out, c)
	}
	return out
}

var tls13Suites = []string{
	"TLS_AKE_WITH_AES_128_GCM_SHA256 (ecdh_x25519)",
	"TLS_AKE_WITH_AES_256_GCM_SHA384 (ecdh_x25519)",
	"TLS_AKE_WITH_CHACHA20_POLY1305_SHA256 (ecdh_x25519)",
}

// legacySuites is (a part of) what 24434, openssl s_server with
// ALL:@SECLEVEL=0 and an RSA-1024 certificate, accepts under each of
// TLSv1.0, 1.1 and 1.2.
var legacySuites = []string{
	"TLS_DHE_RSA_WITH_AES_128_CBC_SHA (dh 1024)",
	"TLS_DHE_RSA_WITH_AES_256_CBC_SHA (dh 1024)",
	"TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA (dh 1024)",
	"TLS_DH_anon_WITH_AES_128_CBC_SHA (dh 1024)",
	"TLS_DH_anon_WITH_AES_256_CBC_SHA (dh 3072)",
	"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA (secp256r1)",
	"TLS_ECDH_anon_WITH_AES_128_CBC_SHA (secp256r1)",
	"TLS_RSA_WITH_AES_128_CBC_SHA (rsa 1024)",
	"TLS_RSA_WITH_AES_256_CBC_SHA (rsa 1024)",
	"TLS_RSA_WITH_CAMELLIA_128_CBC_SHA (rsa 1024)",
}

// modernSuites is what 24433, openssl s_server with its defaults, accepts
// under TLSv1.2: 20 suites.
var modernSuites = []string{
	"TLS_DHE_RSA_WITH_AES_128_CBC_SHA (dh 2048)",
	"TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 (dh 2048)",
	"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (dh 2048)",
	"TLS_DHE_RSA_WITH_AES_256_CBC_SHA (dh 2048)",
	"TLS_DHE_RSA_WITH_AES_256_CBC_SHA256 (dh 2048)",
	"TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 (dh 2048)",
	"TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (dh 2048)",
	"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (secp256r1)",
	"TLS_RSA_WITH_AES_128_CBC_SHA (rsa 2048)",
	"TLS_RSA_WITH_AES_128_CBC_SHA256 (rsa 2048)",
	"TLS_RSA_WITH_AES_128_GCM_SHA256 (rsa 2048)",
	"TLS_RSA_WITH_AES_256_CBC_SHA (rsa 2048)",
	"TLS_RSA_WITH_AES_256_CBC_SHA256 (rsa 2048)",
	"TLS_RSA_WITH_AES_256_GCM_SHA384 (rsa 2048)",
}

// nginxSuites is 28443's TLSv1.2 list (Mozilla intermediate, RSA key).
var nginxSuites = []string{
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (secp256r1)",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (secp256r1)",
}

func cert(cn string, keyType string, bits int, hash string, notBefore, notAfter time.Time, selfSigned bool) assess.Cert {
	c := assess.Cert{
		Subject: "commonName=" + cn, CommonName: cn, SANs: []string{cn},
		Issuer: "commonName=Example Issuing CA", KeyType: keyType, KeyBits: bits,
		SigAlgo: hash + "WithRSAEncryption", SigHash: hash,
		NotBefore: notBefore, NotAfter: notAfter, SelfSigned: selfSigned,
	}
	if selfSigned {
		c.Issuer = c.Subject
	}
	return c
}

// weakHost gathers every weakness the lab's weak instances show (24434,
// 22023, 28080, 22121, 21161/udp, 24445), plus the few the lab has no
// instance for (an expired certificate, SSLv3 with RC4, SSH-1, telnet),
// so that every check of the baseline fails on it.
func weakHost() *assess.Facts {
	legacy := func(v string) []assess.Cipher { return ciphers(v, "F", legacySuites...) }
	var legacyCiphers []assess.Cipher
	for _, v := range []string{"TLSv1.0", "TLSv1.1", "TLSv1.2"} {
		legacyCiphers = append(legacyCiphers, legacy(v)...)
	}
	legacyCiphers = append(legacyCiphers, ciphers("TLSv1.3", "A", tls13Suites...)...)
	captured := time.Date(2026, 11, 25, 23, 55, 4, 0, time.UTC)

	f := &assess.Facts{
		Target:    "127.0.0.1",
		Hostnames: []string{"legacy.example.net"},
		Collected: now,
		Ports: []assess.Port{
			{Port: 22023, Protocol: "tcp", Service: "ssh", Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u10"},
			{Port: 2222, Protocol: "tcp", Service: "ssh", Product: "Cisco SSH", Version: "1.25"},
			{Port: 24434, Protocol: "tcp", Service: "http", Tunnel: "ssl", Product: "OpenSSL s_server -www httpd"},
			{Port: 8443, Protocol: "tcp", Service: "https", Tunnel: "ssl"},
			{Port: 28080, Protocol: "tcp", Service: "http", Product: "nginx", Version: "1.22.1"},
			{Port: 8080, Protocol: "tcp", Service: "http", Product: "Apache httpd", Version: "2.4.25"},
			{Port: 22121, Protocol: "tcp", Service: "ftp", Product: "vsftpd", Version: "2.0.8 or later"},
			{Port: 21161, Protocol: "udp", Service: "snmp", Product: "net-snmp"},
			{Port: 24445, Protocol: "tcp", Service: "microsoft-ds", Product: "Samba smbd"},
			{Port: 23, Protocol: "tcp", Service: "telnet", Product: "Linux telnetd"},
			{Port: 513, Protocol: "tcp", Service: "login"},
		},
		TLS: []assess.TLS{
			{
				// 24434: TLSv1.0..1.3, anonymous DH, DH 1024, RSA-1024/SHA1 self-signed.
				Port:          24434,
				Versions:      []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
				Ciphers:       legacyCiphers,
				LeastStrength: "F",
				Warnings: []string{
					"Anonymous key exchange, score capped at F",
					"Insecure certificate signature (SHA1), score capped at F",
				},
				Cert:   cert("legacy.local", "rsa", 1024, "sha1", captured, captured.AddDate(10, 0, 0), true),
				Source: "nmap",
			},
			{
				// An old appliance: SSLv3 and TLSv1.0 only, RC4 and 3DES, an
				// expired certificate that the probe cannot verify.
				Port:     8443,
				Versions: []string{"SSLv3", "TLSv1.0"},
				Ciphers: append(ciphers("SSLv3", "C",
					"TLS_RSA_WITH_RC4_128_MD5 (rsa 2048)", "TLS_RSA_WITH_3DES_EDE_CBC_SHA (rsa 2048)"),
					ciphers("TLSv1.0", "C", "TLS_RSA_WITH_RC4_128_SHA (rsa 2048)", "TLS_RSA_WITH_DES_CBC_SHA (rsa 2048)",
						"TLS_RSA_EXPORT_WITH_RC4_40_MD5 (rsa 512)", "TLS_RSA_WITH_NULL_SHA (rsa 2048)")...),
				LeastStrength: "F",
				Cert: func() assess.Cert {
					c := cert("appliance.example.net", "ec", 192, "md5", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
						time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), false)
					c.VerifyError = "x509: certificate has expired or is not yet valid"
					return c
				}(),
				Source: "nmap+probe",
			},
			{
				// A certificate about to expire, and one not yet valid, on
				// services that are otherwise fine.
				Port: 9443, Versions: []string{"TLSv1.2", "TLSv1.3"},
				Cert: cert("legacy.example.net", "rsa", 2048, "sha256", now.AddDate(0, -11, 0), now.Add(10*24*time.Hour), false),
			},
			{
				Port: 9444, Versions: []string{"TLSv1.2", "TLSv1.3"},
				Cert: cert("legacy.example.net", "rsa", 2048, "sha256", now.Add(48*time.Hour), now.AddDate(1, 0, 0), false),
			},
			{
				// An embedded device that only speaks TLS 1.0.
				Port: 10443, Versions: []string{"TLSv1.0"},
				Ciphers: ciphers("TLSv1.0", "C", "TLS_RSA_WITH_AES_128_CBC_SHA (rsa 2048)"),
			},
		},
		SSH: []assess.SSH{
			{
				// 22023: legacy algorithms enabled, keyboard-interactive on.
				Port: 22023, Banner: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", Protocol: "2.0", Software: "OpenSSH_9.2p1",
				Kex: []string{"sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
					"curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
					"diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
					"diffie-hellman-group14-sha256", "diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1",
					"kex-strict-s-v00@openssh.com"},
				HostKeyAlgorithms: []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"},
				Ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
					"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-cbc", "3des-cbc"},
				MACs: []string{"umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
					"hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
					"umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1", "hmac-md5"},
				Compression: []string{"none", "zlib@openssh.com"},
				HostKeys:    []assess.HostKey{{Type: "ssh-rsa", Bits: 3072, Fingerprint: "SHA256:cVgrl9TeKZwXvHWVFE6rfzj9yI/9tNMD1fGyM67AdG0"}},
				AuthMethods: []string{"publickey", "password", "keyboard-interactive"},
			},
			{
				// An old network device: SSH 1.99, DSA and RSA-1024 keys.
				Port: 2222, Banner: "SSH-1.99-Cisco-1.25", Protocol: "1.99", Software: "Cisco-1.25",
				Kex:               []string{"diffie-hellman-group1-sha1"},
				HostKeyAlgorithms: []string{"ssh-rsa", "ssh-dss"},
				Ciphers:           []string{"aes128-cbc", "3des-cbc", "blowfish-cbc"},
				MACs:              []string{"hmac-sha1", "hmac-sha1-96", "hmac-md5"},
				HostKeys:          []assess.HostKey{{Type: "ssh-rsa", Bits: 1024}, {Type: "ssh-dss", Bits: 1024}},
				AuthMethods:       []string{"password"},
			},
		},
		HTTP: []assess.HTTP{
			{
				// 28080: plain nginx, server_tokens on, no security headers.
				Port: 28080, Status: 200, Server: "nginx/1.22.1",
				Headers: map[string]string{"server": "nginx/1.22.1", "content-type": "text/plain",
					"content-length": "11", "connection": "close"},
				Methods: []string{"GET", "HEAD", "POST", "OPTIONS"},
			},
			{
				// 24434: s_server -www over TLS, no headers at all.
				Port: 24434, TLS: true, Status: 200,
				Headers: map[string]string{"content-type": "text/html"},
			},
			{
				// An old Apache with TRACE, WebDAV and PHP.
				Port: 8080, Status: 200, Server: "Apache/2.4.25 (Debian)",
				Headers: map[string]string{"server": "Apache/2.4.25 (Debian)", "x-powered-by": "PHP/7.0.33"},
				Methods: []string{"GET", "HEAD", "POST", "OPTIONS", "TRACE", "PUT", "DELETE"},
			},
		},
		FTP:  []assess.FTP{{Port: 22121, Banner: "220 lab ftp", Anonymous: true}},
		SNMP: []assess.SNMP{{Port: 21161, DefaultCommunities: []string{"public"}, SysDescr: "Linux vm 6.18.44-fc-v782 #1 SMP PREEMPT_DYNAMIC @0 x86_64"}},
		SMB: []assess.SMB{{
			Port: 24445, Dialects: []string{"NT LM 0.12", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"},
			SMBv1: true, Signing: "enabled", GuestAccess: true,
		}},
		Errors: []string{"ssl-enum-ciphers: timed out on 9443/tcp"},
	}
	return f
}

// hardenedHost gathers the lab's hardened instances (28443, 22022, 24446)
// and hardened counterparts of the rest, with the two changes a stock
// 22022 needs: no hmac-sha1/umac-64 MACs (OpenSSH 9.2 still offers them)
// and no password authentication.
func hardenedHost() *assess.Facts {
	nginx := append(ciphers("TLSv1.2", "A", nginxSuites...), ciphers("TLSv1.3", "A", tls13Suites...)...)
	c := cert("www.example.net", "rsa", 2048, "sha256", now.AddDate(0, -1, 0), now.AddDate(0, 2, 0), false)
	c.CommonName, c.SANs = "example.net", []string{"*.example.net", "example.net"} // www matches the wildcard
	c.Verified = true
	c.SHA256 = "4c6ef9d04609092f68a0687aefd9e5c590816375"
	return &assess.Facts{
		Target:    "192.0.2.10",
		AssetID:   "a-1",
		Managed:   true,
		Hostnames: []string{"www.example.net"},
		Collected: now,
		Ports: []assess.Port{
			{Port: 22022, Protocol: "tcp", Service: "ssh", Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u10"},
			{Port: 80, Protocol: "tcp", Service: "http", Product: "nginx"},
			{Port: 28443, Protocol: "tcp", Service: "http", Tunnel: "ssl", Product: "nginx"},
			{Port: 990, Protocol: "tcp", Service: "ftp", Tunnel: "ssl", Product: "vsftpd"},
			{Port: 161, Protocol: "udp", Service: "snmp", Product: "net-snmp"},
			{Port: 24446, Protocol: "tcp", Service: "microsoft-ds", Product: "Samba smbd"},
		},
		TLS: []assess.TLS{
			{Port: 28443, Versions: []string{"TLSv1.2", "TLSv1.3"}, Ciphers: nginx, LeastStrength: "A", Cert: c, Source: "nmap+probe"},
			{Port: 990, Versions: []string{"TLSv1.3"}, Cert: c, Source: "probe"},
		},
		SSH: []assess.SSH{{
			Port: 22022, Banner: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10", Protocol: "2.0", Software: "OpenSSH_9.2p1",
			Kex: []string{"sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
				"curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
				"diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
				"diffie-hellman-group14-sha256", "kex-strict-s-v00@openssh.com"},
			HostKeyAlgorithms: []string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"},
			Ciphers: []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
				"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"},
			MACs:        []string{"umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"},
			Compression: []string{"none", "zlib@openssh.com"},
			HostKeys: []assess.HostKey{
				{Type: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:HDwSS5eErJdfj8diLrvg1zWrLanOgwu/UxKPODGudnY"},
				{Type: "ssh-rsa", Bits: 3072, Fingerprint: "SHA256:cVgrl9TeKZwXvHWVFE6rfzj9yI/9tNMD1fGyM67AdG0"},
			},
			AuthMethods: []string{"publickey"},
		}},
		HTTP: []assess.HTTP{
			{
				Port: 28443, TLS: true, Status: 200, Server: "nginx",
				Headers: map[string]string{"server": "nginx", "content-type": "text/plain",
					"strict-transport-security": "max-age=63072000", "x-frame-options": "DENY",
					"x-content-type-options": "nosniff", "content-security-policy": "default-src 'self'",
					"referrer-policy": "no-referrer"},
				Methods: []string{"GET", "HEAD", "POST", "OPTIONS"},
			},
			{
				Port: 80, Status: 301, Server: "nginx", Headers: map[string]string{"server": "nginx",
					"location": "https://www.example.net/"},
				Methods: []string{"GET", "HEAD"}, RedirectsToHTTPS: true, Location: "https://www.example.net/",
			},
		},
		FTP:  []assess.FTP{{Port: 990, Banner: "220 (vsFTPd 3.0.3)"}},
		SNMP: []assess.SNMP{{Port: 161, SysDescr: "Linux gw 6.1.0"}},
		SMB:  []assess.SMB{{Port: 24446, Dialects: []string{"3.1.1"}, Signing: "required"}},
	}
}

// ---------------------------------------------------------------- tests

func TestBaselineLoads(t *testing.T) {
	p := loadBaseline(t)
	checks := p.Checks()
	if len(checks) < 34 {
		t.Errorf("baseline has %d checks, want at least 34", len(checks))
	}
	data, err := os.ReadFile(baselinePath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got, want := p.Digest(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest() = %s, want %s", got, want)
	}
	if p.Version() != "2026-12-05" {
		t.Errorf("Version() = %q", p.Version())
	}
	families := map[string]int{}
	for _, c := range checks {
		families[c.Family]++
		if len(c.Rationale) < 60 {
			t.Errorf("%s: rationale too short: %q", c.ID, c.Rationale)
		}
		if !slices.Contains(assess.Severities, c.Severity) || c.Title == "" || c.Expect == "" {
			t.Errorf("%s: incomplete: %+v", c.ID, c)
		}
	}
	for _, fam := range []string{"tls", "cert", "ssh", "http", "ftp", "snmp", "smb", "svc"} {
		if families[fam] == 0 {
			t.Errorf("no check of family %s", fam)
		}
	}
}

// TestBaselineWeakAndHardened: every check of the baseline fails on the
// weak host and passes on the hardened one, so each family both fails and
// passes, and nothing errors.
func TestBaselineWeakAndHardened(t *testing.T) {
	p := loadBaseline(t)
	weak := byID(p.Evaluate(weakHost(), now))
	hard := byID(p.Evaluate(hardenedHost(), now))

	var neverFails, neverPasses []string
	failsByFamily, passesByFamily := map[string]bool{}, map[string]bool{}
	for _, c := range p.Checks() {
		w, h := weak[c.ID], hard[c.ID]
		for _, r := range []assess.Result{w, h} {
			if r.Status == assess.Error {
				t.Errorf("%s: error: %s", c.ID, r.Error)
			}
		}
		if w.Status == assess.Fail && h.Status == assess.Pass {
			failsByFamily[c.Family], passesByFamily[c.Family] = true, true
		}
		if w.Status != assess.Fail {
			neverFails = append(neverFails, c.ID+" ("+string(w.Status)+")")
		} else if w.Evidence == nil {
			t.Errorf("%s: fails on the weak host without evidence", c.ID)
		}
		if h.Status != assess.Pass {
			neverPasses = append(neverPasses, fmt.Sprintf("%s (%s: %v)", c.ID, h.Status, h.Evidence))
		}
	}
	for _, fam := range []string{"tls", "cert", "ssh", "http", "ftp", "snmp", "smb", "svc"} {
		if !failsByFamily[fam] || !passesByFamily[fam] {
			t.Errorf("family %s: no check fails on the weak host and passes on the hardened one", fam)
		}
	}
	if len(neverFails) > 0 {
		t.Errorf("checks that do not fail on the weak host: %s", strings.Join(neverFails, ", "))
	}
	if len(neverPasses) > 0 {
		t.Errorf("checks that do not pass on the hardened host: %s", strings.Join(neverPasses, ", "))
	}

	// Results marshal to JSON, evidence included.
	if _, err := json.Marshal(p.Evaluate(weakHost(), now)); err != nil {
		t.Errorf("marshal results: %v", err)
	}
}

// TestBaselineTLSOnlyVersion: a TLS check that fails on a TLS 1.0-only
// service passes on a TLS 1.3-only one, with versions alone and with the
// suites such services accept.
func TestBaselineTLSOnlyVersion(t *testing.T) {
	p := loadBaseline(t)
	host := func(tls assess.TLS) *assess.Facts {
		return &assess.Facts{Target: "192.0.2.1", Collected: now,
			Ports: []assess.Port{{Port: 443, Protocol: "tcp", Service: "https", Tunnel: "ssl"}}, TLS: []assess.TLS{tls}}
	}
	cases := []struct {
		name         string
		weak, strong assess.TLS
	}{
		{"versions", assess.TLS{Port: 443, Versions: []string{"TLSv1.0"}}, assess.TLS{Port: 443, Versions: []string{"TLSv1.3"}}},
		{"suites", assess.TLS{
			Port: 443, Versions: []string{"TLSv1.0"}, LeastStrength: "C",
			Ciphers: ciphers("TLSv1.0", "C", "TLS_RSA_WITH_3DES_EDE_CBC_SHA (rsa 2048)",
				"TLS_DHE_RSA_WITH_AES_128_CBC_SHA (dh 1024)", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (secp256r1)"),
		}, assess.TLS{
			Port: 443, Versions: []string{"TLSv1.3"}, LeastStrength: "A",
			Ciphers: ciphers("TLSv1.3", "A", tls13Suites...),
		}},
		{"suites of the strong one not listed", assess.TLS{
			Port: 443, Versions: []string{"TLSv1.0"}, LeastStrength: "F",
			Ciphers: ciphers("TLSv1.0", "F", "TLS_DH_anon_WITH_AES_128_CBC_SHA (dh 1024)", "TLS_RSA_WITH_RC4_128_SHA (rsa 1024)"),
		}, assess.TLS{Port: 443, Versions: []string{"TLSv1.3"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			weak := byID(p.Evaluate(host(tc.weak), now))
			strong := byID(p.Evaluate(host(tc.strong), now))
			failed := 0
			for _, c := range p.Checks() {
				if c.Family != "tls" || weak[c.ID].Status != assess.Fail {
					continue
				}
				failed++
				if s := strong[c.ID]; s.Status != assess.Pass {
					t.Errorf("%s fails on TLSv1.0-only but is %s on TLSv1.3-only (%v %s)", c.ID, s.Status, s.Evidence, s.Error)
				}
			}
			if failed == 0 {
				t.Error("no TLS check fails on the TLSv1.0-only service")
			}
		})
	}
}

func TestBaselineEvidence(t *testing.T) {
	p := loadBaseline(t)
	weak := byID(p.Evaluate(weakHost(), now))
	got, _ := json.Marshal(weak["TLS-001"].Evidence)
	want := `[{"port":24434,"versions":["TLSv1.0","TLSv1.1"]},{"port":8443,"versions":["TLSv1.0"]},{"port":10443,"versions":["TLSv1.0"]}]`
	if string(got) != want {
		t.Errorf("TLS-001 evidence = %s, want %s", got, want)
	}
	got, _ = json.Marshal(weak["SSH-001"].Evidence)
	if want := `[{"kex":["diffie-hellman-group1-sha1"],"port":22023},{"kex":["diffie-hellman-group1-sha1"],"port":2222}]`; string(got) != want {
		t.Errorf("SSH-001 evidence = %s, want %s", got, want)
	}
	got, _ = json.Marshal(weak["CERT-003"].Evidence)
	if want := `[{"not_after":"2024-01-01T00:00:00Z","port":8443,"subject":"commonName=appliance.example.net"}]`; string(got) != want {
		t.Errorf("CERT-003 evidence = %s, want %s", got, want)
	}
	got, _ = json.Marshal(weak["SVC-001"].Evidence)
	if want := `["tcp/23"]`; string(got) != want {
		t.Errorf("SVC-001 evidence = %s, want %s", got, want)
	}
}

// A check without an evidence expression shows the facts its expect reads.
func TestEvidenceDefaultsToFactsRead(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
checks:
  - id: X-001
    title: no ftp
    severity: low
    expect: "ftp.size() == 0 && target != ''"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Evaluate(&assess.Facts{Target: "h", FTP: []assess.FTP{{Port: 21}}}, now)[0]
	ev, ok := r.Evidence.(map[string]any)
	if r.Status != assess.Fail || !ok {
		t.Fatalf("result %+v", r)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range ev {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"ftp", "target"}) {
		t.Errorf("evidence keys %v, want [ftp target]", got)
	}
}

func TestNativeTypes(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
checks:
  - id: T-001
    title: timestamps and structs
    severity: info
    expect: "tls.all(t, t.cert.not_after < now + duration('720h'))"
    evidence: "{'cert': tls[0].cert, 'in': now + duration('720h') - tls[0].cert.not_after, 'opt': http[0].headers[?'x'], 'n': collected}"
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &assess.Facts{
		Collected: now,
		TLS:       []assess.TLS{{Port: 443, Cert: assess.Cert{CommonName: "a", NotAfter: now.AddDate(1, 0, 0), KeyBits: 2048}}},
		HTTP:      []assess.HTTP{{Port: 80}},
	}
	r := p.Evaluate(f, now)[0]
	if r.Status != assess.Fail {
		t.Fatalf("result %+v", r)
	}
	ev := r.Evidence.(map[string]any)
	c := ev["cert"].(map[string]any)
	if c["common_name"] != "a" || c["key_bits"] != int64(2048) || c["not_after"] != "2027-12-05T12:00:00Z" || c["sans"] == nil {
		t.Errorf("cert evidence %#v", c)
	}
	if ev["in"] != "-8040h0m0s" || ev["opt"] != nil || ev["n"] != "2026-12-05T12:00:00Z" {
		t.Errorf("evidence %#v", ev)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "checks:\n  - id: OK-001\n    title: fine\n    severity: low\n    expect: \"true\"\n"
	check := func(id, field, expr string) string {
		return fmt.Sprintf("  - id: %s\n    title: t\n    severity: low\n    %s: %q\n", id, field, expr)
	}
	cases := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"type error", head + check("BAD-001", "expect", "1 + 'a' == 2"),
			[]string{"bad.yaml: check BAD-001: expect: ERROR: <input>:1:3: found no matching overload for '_+_'"}},
		{"unknown fact", head + check("TLS-001", "expect", "tls.all(t, !('TLSv1.0' in t.verzions))"),
			[]string{"bad.yaml: check TLS-001: expect: ERROR: <input>:1:28: undefined field 'verzions'"}},
		{"unknown variable", head + check("BAD-002", "applies", "tcp.size() > 0") + "    expect: \"true\"\n",
			[]string{"bad.yaml: check BAD-002: applies: ERROR: <input>:1:1: undeclared reference to 'tcp'"}},
		{"string expect", head + check("BAD-003", "expect", "tls.size() > 0 ? 'yes' : 'no'"),
			[]string{"bad.yaml: check BAD-003: expect: has type string, want bool"}},
		{"int expect", head + check("BAD-004", "expect", "ports.size()"),
			[]string{"bad.yaml: check BAD-004: expect: has type int, want bool"}},
		{"dyn expect", head + check("BAD-005", "expect", "dyn(true)"),
			[]string{"bad.yaml: check BAD-005: expect: has type dyn, want bool"}},
		{"bad evidence", head + "  - id: BAD-006\n    title: t\n    severity: low\n    expect: \"true\"\n    evidence: \"ports.map(p, p.prot)\"\n",
			[]string{"bad.yaml: check BAD-006: evidence: ERROR", "undefined field 'prot'"}},
		{"several errors at once", head + check("BAD-007", "expect", "1") + check("BAD-008", "expect", "t.x"),
			[]string{"check BAD-007: expect: has type int", "check BAD-008: expect: ERROR"}},
		{"duplicate id", head + check("OK-001", "expect", "true"), []string{"bad.yaml: check OK-001: duplicate id"}},
		{"missing id", head + "  - title: t\n    severity: low\n    expect: \"true\"\n", []string{"bad.yaml: check #2 (line 6): missing id"}},
		{"missing title", head + "  - id: X-1\n    severity: low\n    expect: \"true\"\n", []string{"bad.yaml: check X-1: missing title"}},
		{"missing expect", head + "  - id: X-1\n    title: t\n    severity: low\n", []string{"bad.yaml: check X-1: missing expect"}},
		{"unknown severity", head + "  - id: X-1\n    title: t\n    severity: severe\n    expect: \"true\"\n",
			[]string{`bad.yaml: check X-1: severity "severe" is not one of info, low, medium, high, critical`}},
		{"unknown key", head + "    expects: \"true\"\n", []string{"bad.yaml: yaml: unmarshal errors:", "line 6: field expects not found"}},
		{"unknown top-level key", "check: []\n", []string{"bad.yaml: yaml: unmarshal errors:", "line 1: field check not found"}},
		{"empty file", "", []string{"bad.yaml: empty policy"}},
		{"no checks", "version: x\nchecks: []\n", []string{"bad.yaml: empty policy"}},
		{"bad allow", head + "builds:\n  - role: web\n    allow: [\"tcp/99999\", \"foo/22\", \"HTTP\", \"udp/161\", \"ssh\"]\n",
			[]string{`bad.yaml: build web: allow "tcp/99999": port "99999"`, `allow "foo/22": protocol "foo"`, `allow "HTTP": want`}},
		{"build without role", head + "builds:\n  - allow: [\"tcp/22\"]\n", []string{"bad.yaml: build #1 (line 7): missing role"}},
		{"role rule does not compile", head + "roles:\n  - role: web\n    when: \"ports.exists(p, p.service = 'http')\"\n",
			[]string{"bad.yaml: role rule #1 (web): when: ERROR"}},
		{"role rule not bool", head + "roles:\n  - role: web\n    when: \"ports.size()\"\n",
			[]string{"bad.yaml: role rule #1 (web): when: has type int, want bool"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %d checks", len(p.Checks()))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// Load names the file in its errors as it was given.
func TestLoadNamesFile(t *testing.T) {
	path := t.TempDir() + "/baseline.yaml"
	if err := os.WriteFile(path, []byte("checks:\n  - id: TLS-001\n    title: t\n    severity: high\n    expect: \"tls.all(t, t.verzions.size() == 0)\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "baseline.yaml: check TLS-001: expect: ERROR: <input>:1:13: undefined field 'verzions'") {
		t.Errorf("Load error = %v", err)
	}
	if _, err := Load(t.TempDir() + "/missing.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestCostLimit(t *testing.T) {
	src := []byte(`
checks:
  - id: COST-001
    title: every pair of ports differs
    severity: low
    expect: "ports.all(p, ports.all(q, p == q || p.port != q.port || p.protocol != q.protocol))"
  - id: COST-002
    title: cheap
    severity: low
    expect: "ports.size() > 0"
`)
	p, err := ParseOptions("cost.yaml", src, Options{CostLimit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Checks()[0]; c.MaxCost <= 10_000 {
		t.Errorf("estimated max cost %d, want it over the limit", c.MaxCost)
	}
	f := &assess.Facts{}
	for i := range 200 {
		f.Ports = append(f.Ports, assess.Port{Port: i + 1, Protocol: "tcp"})
	}
	rs := p.Evaluate(f, now)
	if rs[0].Status != assess.Error || !strings.Contains(rs[0].Error, "cost limit 10000 exceeded") {
		t.Errorf("over the limit: %+v", rs[0])
	}
	if rs[1].Status != assess.Pass {
		t.Errorf("the next check: %+v", rs[1])
	}
	// Under the default limit the same check runs.
	p, err = Parse("cost.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Evaluate(f, now)[0]; r.Status != assess.Pass {
		t.Errorf("under the default limit: %+v", r)
	}
	// An expression certain to exceed the limit is rejected when it loads.
	_, err = ParseOptions("cost.yaml", []byte(`
checks:
  - id: COST-003
    title: t
    severity: low
    expect: "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, a + b)).size() == 10"
`), Options{CostLimit: 50})
	if err == nil || !strings.Contains(err.Error(), "cost.yaml: check COST-003: expect: cost limit 50 exceeded") {
		t.Errorf("load-time estimate: %v", err)
	}
}

func TestEvaluationError(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
checks:
  - id: E-001
    title: t
    severity: low
    applies: "http.size() > 0"
    expect: "http[0].headers['x-frame-options'] == 'DENY'"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Evaluate(&assess.Facts{HTTP: []assess.HTTP{{Port: 80}}}, now)[0]
	if r.Status != assess.Error || !strings.Contains(r.Error, "no such key") {
		t.Errorf("result %+v", r)
	}
	if r := p.Evaluate(&assess.Facts{}, now)[0]; r.Status != assess.NotApplicable {
		t.Errorf("without http: %+v", r)
	}
}

const buildsPolicy = `
checks:
  - id: X-001
    title: t
    severity: low
    expect: "true"
builds:
  - role: web-server
    allow: ["tcp/22", "tcp/80", "tcp/443", "http", "ssh"]
  - role: db
    severity: high
    allow: ["tcp/5432"]
roles:
  - role: db
    when: "ports.exists(p, p.service == 'postgresql')"
  - role: web-server
    when: "ports.exists(p, p.service == 'http')"
`

func TestBuilds(t *testing.T) {
	p, err := Parse("builds.yaml", []byte(buildsPolicy))
	if err != nil {
		t.Fatal(err)
	}
	web := &assess.Facts{Ports: []assess.Port{
		{Port: 22, Protocol: "tcp", Service: "ssh"},
		{Port: 8443, Protocol: "tcp", Service: "http", Tunnel: "ssl"},
		{Port: 3306, Protocol: "tcp", Service: "mysql"},
	}}
	if got := p.Role(web); got != "web-server" {
		t.Errorf("Role = %q, want web-server from the role rule", got)
	}
	rs := p.Evaluate(web, now)
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	b := rs[1]
	if b.CheckID != "BUILD-web-server" || b.Status != assess.Fail || b.Severity != "medium" {
		t.Errorf("build result %+v", b)
	}
	if ev, _ := b.Evidence.([]string); len(ev) != 1 || !strings.HasPrefix(ev[0], "tcp/3306") {
		t.Errorf("evidence %#v, want tcp/3306 alone", b.Evidence)
	}

	web.Ports = web.Ports[:2]
	if b := p.Evaluate(web, now)[1]; b.Status != assess.Pass {
		t.Errorf("without 3306: %+v", b)
	}

	// The CMDB's role wins over the rules; a role without a build, or no
	// role, is not applicable.
	web.Role = "db"
	if b := p.Evaluate(web, now)[1]; b.CheckID != "BUILD-db" || b.Status != assess.Fail || b.Severity != "high" {
		t.Errorf("db: %+v", b)
	}
	web.Role = "printer"
	if b := p.Evaluate(web, now)[1]; b.CheckID != "BUILD-printer" || b.Status != assess.NotApplicable {
		t.Errorf("printer: %+v", b)
	}
	none := &assess.Facts{Ports: []assess.Port{{Port: 25, Protocol: "tcp", Service: "smtp"}}}
	if b := p.Evaluate(none, now)[1]; b.CheckID != "BUILD" || b.Status != assess.NotApplicable {
		t.Errorf("no role: %+v", b)
	}
	if got := p.Builds(); len(got) != 2 || got[0].Role != "web-server" || got[1].Severity != "high" {
		t.Errorf("Builds() = %+v", got)
	}
}

// The baseline's header documents builds and roles; that example must load.
func TestBaselineHeaderExample(t *testing.T) {
	data, err := os.ReadFile(baselinePath)
	if err != nil {
		t.Fatal(err)
	}
	var example []string
	in := false
	for line := range strings.Lines(string(data)) {
		switch {
		case line == "#   builds:\n":
			in = true
		case in && !strings.HasPrefix(line, "#   "):
			in = false
		}
		if in {
			example = append(example, strings.TrimPrefix(line, "#   "))
		}
	}
	if len(example) == 0 {
		t.Fatal("no builds example in the baseline's header")
	}
	p, err := Parse("example.yaml", []byte(strings.Join(example, "")))
	if err != nil {
		t.Fatalf("the header's example: %v", err)
	}
	f := &assess.Facts{Ports: []assess.Port{
		{Port: 443, Protocol: "tcp", Service: "http", Tunnel: "ssl"},
		{Port: 3306, Protocol: "tcp", Service: "mysql"},
	}}
	rs := p.Evaluate(f, now)
	if len(rs) != 1 || rs[0].CheckID != "BUILD-web-server" || rs[0].Status != assess.Fail {
		t.Errorf("results %+v", rs)
	}
}

func TestRoleVariable(t *testing.T) {
	p, err := Parse("r.yaml", []byte(`
checks:
  - id: R-001
    title: web servers run nginx
    severity: low
    applies: "role == 'web-server'"
    expect: "ports.all(p, p.service != 'http' || p.product == 'nginx')"
roles:
  - role: web-server
    when: "ports.exists(p, p.service == 'http')"
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &assess.Facts{Ports: []assess.Port{{Port: 80, Protocol: "tcp", Service: "http", Product: "Apache httpd"}}}
	if r := p.Evaluate(f, now)[0]; r.Status != assess.Fail {
		t.Errorf("role from the rule: %+v", r)
	}
	f.Role = "mail"
	if r := p.Evaluate(f, now)[0]; r.Status != assess.NotApplicable {
		t.Errorf("role from the CMDB: %+v", r)
	}
}

// A Policy is shared by the assessment workers.
func TestEvaluateConcurrently(t *testing.T) {
	p := loadBaseline(t)
	want := p.Evaluate(weakHost(), now)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				got := p.Evaluate(weakHost(), now)
				p.Evaluate(hardenedHost(), now)
				if len(got) != len(want) || got[0].Status != want[0].Status {
					t.Error("results differ between goroutines")
					return
				}
			}
		})
	}
	wg.Wait()
}

// A cancelled context stops the evaluation: the checks not run are errors.
func TestEvaluateContextCancelled(t *testing.T) {
	p := loadBaseline(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range p.EvaluateContext(ctx, weakHost(), now) {
		if r.Status != assess.Error || !strings.Contains(r.Error, "context canceled") {
			t.Fatalf("%s: %+v", r.CheckID, r)
		}
	}
}

// Facts fresh from a decoder have nil lists; Evaluate reads them as empty.
func TestNilLists(t *testing.T) {
	p := loadBaseline(t)
	f := &assess.Facts{TLS: []assess.TLS{{Port: 443}}, SSH: []assess.SSH{{Port: 22}}, HTTP: []assess.HTTP{{Port: 80}}}
	for _, r := range p.Evaluate(f, now) {
		if r.Status == assess.Error {
			t.Errorf("%s: %s", r.CheckID, r.Error)
		}
	}
}

// ---------------------------------------------------------------- benchmark

// typicalHost is a host as most assessments see it: sshd with two host
// keys, nginx on 80 (redirecting) and 443 with 23 accepted suites, and a
// few other ports.
func typicalHost() *assess.Facts {
	f := hardenedHost()
	f.Ports = []assess.Port{
		{Port: 22, Protocol: "tcp", Service: "ssh", Product: "OpenSSH", Version: "9.2p1"},
		{Port: 80, Protocol: "tcp", Service: "http", Product: "nginx"},
		{Port: 443, Protocol: "tcp", Service: "http", Tunnel: "ssl", Product: "nginx"},
		{Port: 25, Protocol: "tcp", Service: "smtp", Product: "Postfix smtpd"},
		{Port: 9100, Protocol: "tcp", Service: "jetdirect"},
		{Port: 5432, Protocol: "tcp", Service: "postgresql", Product: "PostgreSQL DB"},
	}
	f.TLS = []assess.TLS{f.TLS[0]}
	f.TLS[0].Port = 443
	f.TLS[0].Ciphers = append(ciphers("TLSv1.2", "A", modernSuites...), ciphers("TLSv1.3", "A", tls13Suites...)...)
	f.SSH[0].Port = 22
	f.SSH[0].MACs = []string{"umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
		"hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com",
		"umac-128@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"}
	f.SSH[0].AuthMethods = []string{"publickey", "password"}
	f.HTTP[0].Port = 443
	f.FTP, f.SNMP, f.SMB = nil, nil, nil
	return f
}

func BenchmarkBaseline(b *testing.B) {
	benchmarkBaseline(b, Options{})
}

// BenchmarkBaselineInterpreter is BenchmarkBaseline without the fast path:
// every expression in cel-go's interpreter, under the cost tracker where
// the estimate does not rule the limit out.
func BenchmarkBaselineInterpreter(b *testing.B) {
	benchmarkBaseline(b, Options{NoFastPath: true})
}

func benchmarkBaseline(b *testing.B, opts Options) {
	p, err := LoadOptions(baselinePath, opts)
	if err != nil {
		b.Fatal(err)
	}
	f := typicalHost()
	f.Normalize()
	rs := p.Evaluate(f, now)
	fails := 0
	for _, r := range rs {
		if r.Status == assess.Error {
			b.Fatalf("%s: %s", r.CheckID, r.Error)
		}
		if r.Status == assess.Fail {
			fails++
		}
	}
	b.Logf("%d checks, %d fail on the typical host", len(rs), fails)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Evaluate(f, now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hosts/s")
}
