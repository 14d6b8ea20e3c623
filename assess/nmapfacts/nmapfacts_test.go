package nmapfacts_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/nmapfacts"
)

// parseFixture parses testdata/name, which holds one host, and checks it
// parsed cleanly.
func parseFixture(t *testing.T, name string) assess.Facts {
	t.Helper()
	facts, err := nmapfacts.Parse(bytes.NewReader(readFixture(t, name)))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	if len(facts) != 1 {
		t.Fatalf("Parse(%s): %d hosts, want 1", name, len(facts))
	}
	f := facts[0]
	if f.Target != "127.0.0.1" {
		t.Errorf("%s: Target = %q, want 127.0.0.1", name, f.Target)
	}
	if len(f.Errors) != 0 {
		t.Errorf("%s: Errors = %q, want none", name, f.Errors)
	}
	checkNormalized(t, f)
	return f
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at is the entry of list for port n; it fails the test when there is not
// exactly one.
func at[T any](t *testing.T, list []T, port func(T) int, n int) T {
	t.Helper()
	var found []T
	for _, e := range list {
		if port(e) == n {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d entries %T for port %d, want 1", len(found), found, n)
	}
	return found[0]
}

func tlsAt(t *testing.T, f assess.Facts, n int) assess.TLS {
	t.Helper()
	return at(t, f.TLS, func(e assess.TLS) int { return e.Port }, n)
}

func sshAt(t *testing.T, f assess.Facts, n int) assess.SSH {
	t.Helper()
	return at(t, f.SSH, func(e assess.SSH) int { return e.Port }, n)
}

func httpAt(t *testing.T, f assess.Facts, n int) assess.HTTP {
	t.Helper()
	return at(t, f.HTTP, func(e assess.HTTP) int { return e.Port }, n)
}

func smbAt(t *testing.T, f assess.Facts, n int) assess.SMB {
	t.Helper()
	return at(t, f.SMB, func(e assess.SMB) int { return e.Port }, n)
}

func ports[T any](list []T, port func(T) int) []int {
	var out []int
	for _, e := range list {
		out = append(out, port(e))
	}
	return out
}

// checkNormalized fails when a list or map CEL reads is nil.
func checkNormalized(t testing.TB, f assess.Facts) {
	t.Helper()
	var bad []string
	nilIf := func(name string, isNil bool) {
		if isNil {
			bad = append(bad, name)
		}
	}
	nilIf("hostnames", f.Hostnames == nil)
	nilIf("ports", f.Ports == nil)
	nilIf("tls", f.TLS == nil)
	nilIf("ssh", f.SSH == nil)
	nilIf("http", f.HTTP == nil)
	nilIf("ftp", f.FTP == nil)
	nilIf("snmp", f.SNMP == nil)
	nilIf("smb", f.SMB == nil)
	nilIf("errors", f.Errors == nil)
	for _, p := range f.Ports {
		nilIf("ports.cpe", p.CPE == nil)
	}
	for _, e := range f.TLS {
		nilIf("tls.versions", e.Versions == nil)
		nilIf("tls.ciphers", e.Ciphers == nil)
		nilIf("tls.warnings", e.Warnings == nil)
		nilIf("tls.chain", e.Chain == nil)
		nilIf("tls.cert.sans", e.Cert.SANs == nil)
		for _, c := range e.Chain {
			nilIf("tls.chain.sans", c.SANs == nil)
		}
	}
	for _, e := range f.SSH {
		nilIf("ssh.kex", e.Kex == nil)
		nilIf("ssh.host_key_algorithms", e.HostKeyAlgorithms == nil)
		nilIf("ssh.ciphers", e.Ciphers == nil)
		nilIf("ssh.macs", e.MACs == nil)
		nilIf("ssh.compression", e.Compression == nil)
		nilIf("ssh.host_keys", e.HostKeys == nil)
		nilIf("ssh.auth_methods", e.AuthMethods == nil)
	}
	for _, e := range f.HTTP {
		nilIf("http.headers", e.Headers == nil)
		nilIf("http.methods", e.Methods == nil)
	}
	for _, e := range f.SNMP {
		nilIf("snmp.default_communities", e.DefaultCommunities == nil)
	}
	for _, e := range f.SMB {
		nilIf("smb.dialects", e.Dialects == nil)
	}
	if len(bad) > 0 {
		t.Errorf("nil after Normalize: %s", strings.Join(bad, ", "))
	}
}

func TestParseTLS(t *testing.T) {
	f := parseFixture(t, "tls.xml")
	if got := ports(f.TLS, func(e assess.TLS) int { return e.Port }); !slices.Equal(got, []int{24433, 24434, 28443}) {
		t.Fatalf("TLS ports = %v", got)
	}

	t.Run("24434 legacy", func(t *testing.T) {
		e := tlsAt(t, f, 24434)
		if want := []string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}; !slices.Equal(e.Versions, want) {
			t.Errorf("Versions = %v, want %v", e.Versions, want)
		}
		if e.LeastStrength != "F" {
			t.Errorf("LeastStrength = %q, want F", e.LeastStrength)
		}
		wantWarn := []string{
			"Anonymous key exchange, score capped at F",
			"Insecure certificate signature (SHA1), score capped at F",
		}
		if !slices.Equal(e.Warnings, wantWarn) {
			t.Errorf("Warnings = %q, want %q (each once, though every version repeats them)", e.Warnings, wantWarn)
		}
		// 16 ciphers in TLSv1.0 and TLSv1.1 each, 56 in TLSv1.2, 3 in TLSv1.3.
		if len(e.Ciphers) != 16+16+56+3 {
			t.Errorf("%d ciphers, want 91", len(e.Ciphers))
		}
		want := []assess.Cipher{
			{Name: "TLS_RSA_WITH_AES_128_CBC_SHA", Version: "TLSv1.0", Kex: "rsa 1024", KexBits: 1024, Strength: "F"},
			{Name: "TLS_DH_anon_WITH_AES_256_CBC_SHA", Version: "TLSv1.1", Kex: "dh 3072", KexBits: 3072, Strength: "F"},
			{Name: "TLS_DHE_RSA_WITH_AES_128_CCM", Version: "TLSv1.2", Kex: "dh 1024", KexBits: 1024, Strength: "F"},
			{Name: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Version: "TLSv1.0", Kex: "secp256r1", KexBits: 0, Strength: "F"},
			{Name: "TLS_AKE_WITH_AES_128_GCM_SHA256", Version: "TLSv1.3", Kex: "ecdh_x25519", KexBits: 0, Strength: "A"},
		}
		for _, c := range want {
			if !slices.Contains(e.Ciphers, c) {
				t.Errorf("no cipher %+v", c)
			}
		}
		if e.Ciphers[0].Version != "TLSv1.0" || e.Ciphers[len(e.Ciphers)-1].Version != "TLSv1.3" {
			t.Errorf("ciphers not oldest version first: first %+v, last %+v", e.Ciphers[0], e.Ciphers[len(e.Ciphers)-1])
		}

		c := e.Cert
		if c.KeyType != "rsa" || c.KeyBits != 1024 {
			t.Errorf("key = %s %d, want rsa 1024", c.KeyType, c.KeyBits)
		}
		if c.SigAlgo != "sha1WithRSAEncryption" || c.SigHash != "sha1" {
			t.Errorf("signature = %q/%q, want sha1WithRSAEncryption/sha1", c.SigAlgo, c.SigHash)
		}
		if c.Subject != "commonName=legacy.local" || c.CommonName != "legacy.local" || c.Issuer != "commonName=legacy.local" {
			t.Errorf("names = %q %q %q", c.Subject, c.CommonName, c.Issuer)
		}
		if !c.SelfSigned {
			t.Error("SelfSigned = false for a certificate whose subject is its issuer")
		}
		if len(c.SANs) != 0 {
			t.Errorf("SANs = %q, the certificate has none", c.SANs)
		}
		if want := time.Date(2036, 11, 22, 23, 55, 4, 0, time.UTC); !c.NotAfter.Equal(want) || c.NotAfter.Location() != time.UTC {
			t.Errorf("NotAfter = %v, want %v", c.NotAfter, want)
		}
		// openssl x509 -noout -fingerprint -sha256 / -sha1 of the PEM.
		if want := "37294cd5542d36e3519b6e325f0ab356eaeadf919318a0d54e885c873c79e4a1"; c.SHA256 != want {
			t.Errorf("SHA256 = %s, want %s", c.SHA256, want)
		}
		if want := "4c6ef9d04609092f68a0687aefd9e5c590816375"; c.SHA1 != want {
			t.Errorf("SHA1 = %s, want %s", c.SHA1, want)
		}
		if len(e.Chain) != 1 || e.Chain[0].SHA256 != c.SHA256 || e.Chain[0].Subject != c.Subject {
			t.Errorf("Chain = %+v, want the leaf alone", e.Chain)
		}
		if e.Source != "nmap" {
			t.Errorf("Source = %q", e.Source)
		}
	})

	t.Run("24433 modern", func(t *testing.T) {
		e := tlsAt(t, f, 24433)
		if want := []string{"TLSv1.2", "TLSv1.3"}; !slices.Equal(e.Versions, want) {
			t.Errorf("Versions = %v, want %v", e.Versions, want)
		}
		if e.LeastStrength != "A" || len(e.Warnings) != 0 {
			t.Errorf("LeastStrength %q, Warnings %q; want A and none", e.LeastStrength, e.Warnings)
		}
		c := e.Cert
		if c.KeyBits != 2048 || c.SigHash != "sha256" {
			t.Errorf("key bits %d, sig hash %q; want 2048, sha256", c.KeyBits, c.SigHash)
		}
		if want := []string{"localhost", "127.0.0.1"}; !slices.Equal(c.SANs, want) {
			t.Errorf("SANs = %q, want %q", c.SANs, want)
		}
		if want := time.Date(2026, 11, 25, 23, 55, 3, 0, time.UTC); !c.NotBefore.Equal(want) {
			t.Errorf("NotBefore = %v, want %v", c.NotBefore, want)
		}
		if want := "d97e5b67146c241d58053573b48a43f4538963224b62733047a8ebdfe094b1e7"; c.SHA256 != want {
			t.Errorf("SHA256 = %s, want %s", c.SHA256, want)
		}
	})

	t.Run("HTTP over TLS", func(t *testing.T) {
		for _, n := range []int{24433, 24434, 28443} {
			if h := httpAt(t, f, n); !h.TLS {
				t.Errorf("HTTP %d: TLS = false for an ssl/http service", n)
			}
		}
	})
}

func TestParseSSH(t *testing.T) {
	f := parseFixture(t, "ssh.xml")

	weak := sshAt(t, f, 22023)
	for _, c := range []struct {
		list []string
		want string
	}{
		{weak.Kex, "diffie-hellman-group1-sha1"},
		{weak.Kex, "diffie-hellman-group14-sha1"},
		{weak.MACs, "hmac-md5"},
		{weak.Ciphers, "3des-cbc"},
		{weak.HostKeyAlgorithms, "ssh-rsa"},
		{weak.AuthMethods, "keyboard-interactive"},
		{weak.Compression, "zlib@openssh.com"},
	} {
		if !slices.Contains(c.list, c.want) {
			t.Errorf("22023: %q not in %q", c.want, c.list)
		}
	}
	if len(weak.Kex) != 14 || len(weak.MACs) != 11 {
		t.Errorf("22023: %d kex, %d macs; want 14, 11", len(weak.Kex), len(weak.MACs))
	}
	if weak.Software != "OpenSSH_9.2p1" || weak.Protocol != "2.0" {
		t.Errorf("22023: Software %q, Protocol %q; want OpenSSH_9.2p1, 2.0", weak.Software, weak.Protocol)
	}
	if len(weak.HostKeys) != 1 || weak.HostKeys[0].Type != "ssh-rsa" || weak.HostKeys[0].Bits != 3072 {
		t.Errorf("22023: HostKeys = %+v, want one ssh-rsa 3072", weak.HostKeys)
	} else if want := "SHA256:cVgrl9TeKZwXvHWVFE6rfzj9yI/9tNMD1fGyM67AdG0"; weak.HostKeys[0].Fingerprint != want {
		t.Errorf("22023: fingerprint %s, want %s (ssh-keygen -lf)", weak.HostKeys[0].Fingerprint, want)
	}

	hard := sshAt(t, f, 22022)
	if slices.Contains(hard.Kex, "diffie-hellman-group1-sha1") || slices.Contains(hard.MACs, "hmac-md5") {
		t.Errorf("22022 has legacy algorithms: kex %q, macs %q", hard.Kex, hard.MACs)
	}
	if want := []string{"publickey", "password"}; !slices.Equal(hard.AuthMethods, want) {
		t.Errorf("22022: AuthMethods = %q, want %q", hard.AuthMethods, want)
	}
	// The fingerprint ssh-keygen -lf prints: SHA-256 of the key blob,
	// base64 without padding. Computed here from the blob nmap printed, and
	// checked against what ssh-keygen printed for it.
	blob, err := base64.StdEncoding.DecodeString("AAAAC3NzaC1lZDI1NTE5AAAAIIcOeamerMXh5j7xfGy4KuqpRbkn0IrM/ZV5tMjCiNhD")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	want := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	if want != "SHA256:HDwSS5eErJdfj8diLrvg1zWrLanOgwu/UxKPODGudnY" {
		t.Fatalf("test's own fingerprint %s differs from ssh-keygen's", want)
	}
	if wantKeys := []assess.HostKey{{Type: "ssh-ed25519", Bits: 256, Fingerprint: want}}; !slices.Equal(hard.HostKeys, wantKeys) {
		t.Errorf("22022: HostKeys = %+v, want %+v", hard.HostKeys, wantKeys)
	}
}

func TestParseHTTP(t *testing.T) {
	f := parseFixture(t, "http.xml")

	plain := httpAt(t, f, 28080)
	if plain.TLS || plain.Server != "nginx/1.22.1" {
		t.Errorf("28080: TLS %v, Server %q; want false, nginx/1.22.1", plain.TLS, plain.Server)
	}
	if _, ok := plain.Headers["strict-transport-security"]; ok {
		t.Error("28080 has a strict-transport-security header; the server sends none")
	}
	wantPlain := map[string]string{
		"server":         "nginx/1.22.1",
		"date":           "Wed, 25 Nov 2026 23:56:58 GMT",
		"content-type":   "text/plain",
		"content-length": "11",
		"connection":     "close",
	}
	if !mapsEqual(plain.Headers, wantPlain) {
		t.Errorf("28080: Headers = %q, want %q", plain.Headers, wantPlain)
	}
	if want := []string{"GET", "HEAD", "POST", "OPTIONS"}; !slices.Equal(plain.Methods, want) {
		t.Errorf("28080: Methods = %q, want %q", plain.Methods, want)
	}
	if plain.Title != "" {
		t.Errorf("28080: Title = %q; the page has none", plain.Title)
	}

	hardened := httpAt(t, f, 28443)
	if !hardened.TLS || hardened.Server != "nginx" {
		t.Errorf("28443: TLS %v, Server %q; want true, nginx", hardened.TLS, hardened.Server)
	}
	for name, want := range map[string]string{
		"strict-transport-security": "max-age=63072000",
		"x-frame-options":           "DENY",
		"x-content-type-options":    "nosniff",
		"content-security-policy":   "default-src 'self'",
		"referrer-policy":           "no-referrer", // http-security-headers misses this one
	} {
		if got := hardened.Headers[name]; got != want {
			t.Errorf("28443: header %s = %q, want %q", name, got, want)
		}
	}
	for name := range hardened.Headers {
		if name != strings.ToLower(name) || strings.Contains(name, "request type") {
			t.Errorf("28443: header name %q", name)
		}
	}
	if hardened.RedirectsToHTTPS || plain.RedirectsToHTTPS {
		t.Error("RedirectsToHTTPS set without a redirect")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestParseFTP(t *testing.T) {
	f := parseFixture(t, "ftp.xml")
	want := []assess.FTP{{Port: 22121, Banner: "220 lab ftp", Anonymous: true}}
	if !slices.Equal(f.FTP, want) {
		t.Errorf("FTP = %+v, want %+v", f.FTP, want)
	}
}

func TestParseSNMP(t *testing.T) {
	f := parseFixture(t, "snmp.xml")
	if want := []assess.Port{{Port: 21161, Protocol: "udp", Service: "snmp", Product: "SNMPv1 server; net-snmp SNMPv3 server", ExtraInfo: "public", CPE: []string{}}}; !slices.EqualFunc(f.Ports, want, portEqual) {
		t.Errorf("Ports = %+v, want %+v", f.Ports, want)
	}
	if len(f.SNMP) != 1 {
		t.Fatalf("SNMP = %+v, want one entry", f.SNMP)
	}
	s := f.SNMP[0]
	if s.Port != 21161 || !slices.Equal(s.DefaultCommunities, []string{"public"}) {
		t.Errorf("SNMP = %+v, want port 21161 answering to public", s)
	}
	if want := "Linux vm 6.18.44-fc-v782 #1 SMP PREEMPT_DYNAMIC @0 x86_64"; s.SysDescr != want {
		t.Errorf("SysDescr = %q, want %q", s.SysDescr, want)
	}
}

func portEqual(a, b assess.Port) bool {
	return a.Port == b.Port && a.Protocol == b.Protocol && a.Service == b.Service && a.Tunnel == b.Tunnel &&
		a.Product == b.Product && a.Version == b.Version && a.ExtraInfo == b.ExtraInfo && slices.Equal(a.CPE, b.CPE)
}

func TestParseSMB(t *testing.T) {
	weak := smbAt(t, parseFixture(t, "smb-24445.xml"), 24445)
	want := assess.SMB{Port: 24445, Dialects: []string{"NT LM 0.12", "2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"}, SMBv1: true, Signing: "enabled", GuestAccess: true}
	if !smbEqual(weak, want) {
		t.Errorf("smb-24445: %+v, want %+v", weak, want)
	}
	hard := smbAt(t, parseFixture(t, "smb-24446.xml"), 24446)
	want = assess.SMB{Port: 24446, Dialects: []string{"3.1.1"}, Signing: "required"}
	if !smbEqual(hard, want) {
		t.Errorf("smb-24446: %+v, want %+v", hard, want)
	}
}

func smbEqual(a, b assess.SMB) bool {
	return a.Port == b.Port && slices.Equal(a.Dialects, b.Dialects) && a.SMBv1 == b.SMBv1 && a.Signing == b.Signing && a.GuestAccess == b.GuestAccess
}

// nmapDoc wraps host elements in an nmap document head and, when complete,
// its tail.
func nmapDoc(args string, complete bool, hosts ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<!DOCTYPE nmaprun>\n")
	b.WriteString(`<nmaprun scanner="nmap" args="` + args + `" start="1795650940" version="7.93" xmloutputversion="1.05">` + "\n")
	for _, h := range hosts {
		b.WriteString(h + "\n")
	}
	if complete {
		b.WriteString(`<runstats><finished time="1795650996" exit="success"/><hosts up="1" down="0" total="1"/></runstats>` + "\n</nmaprun>\n")
	}
	return []byte(b.String())
}

// hostElement is the <host> element of a fixture.
func hostElement(t *testing.T, name string) string {
	t.Helper()
	s := string(readFixture(t, name))
	i, j := strings.Index(s, "<host "), strings.LastIndex(s, "</host>")
	if i < 0 || j < i {
		t.Fatalf("%s: no <host>", name)
	}
	return s[i : j+len("</host>")]
}

func TestParseSMBDialectForms(t *testing.T) {
	// Newer nmap prints dialects as 2:0:2 .. 3:1:1 and its smb2-security-mode
	// tables keyed the same way; with no smbport argument and no SMB service
	// the single open port is the SMB port. The second host has 445 and 139
	// open: 445 is the server, 139 not a second one.
	host1 := `<host><status state="up"/><address addr="192.0.2.7" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="8445"><state state="open"/></port></ports>
<hostscript><script id="smb-protocols" output=""><table key="dialects">
<elem>2:0:2</elem><elem>2:1:0</elem><elem>3:0:0</elem><elem>3:0:2</elem><elem>3:1:1</elem>
</table></script><script id="smb2-security-mode" output=""><table key="3:1:1"><elem>Message signing enabled but not required</elem></table></script>
</hostscript></host>`
	host2 := `<host><status state="up"/><address addr="192.0.2.8" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="139"><state state="open"/><service name="netbios-ssn"/></port>
<port protocol="tcp" portid="445"><state state="open"/><service name="microsoft-ds"/></port></ports>
<hostscript><script id="smb-security-mode" output=""><elem key="account_used">user</elem><elem key="message_signing">disabled (dangerous, but default)</elem></script>
</hostscript></host>`
	facts, err := nmapfacts.Parse(bytes.NewReader(nmapDoc("nmap --script smb-protocols", true, host1, host2)))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 2 {
		t.Fatalf("%d hosts, want 2", len(facts))
	}
	got := smbAt(t, facts[0], 8445)
	want := assess.SMB{Port: 8445, Dialects: []string{"2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"}, Signing: "enabled"}
	if !smbEqual(got, want) {
		t.Errorf("host 1: %+v, want %+v", got, want)
	}
	if want := []assess.SMB{{Port: 445, Dialects: []string{}, Signing: "disabled"}}; !slices.EqualFunc(facts[1].SMB, want, smbEqual) {
		t.Errorf("host 2: SMB = %+v, want %+v", facts[1].SMB, want)
	}
}

func TestParseDiscoveryFamilies(t *testing.T) {
	// A -sV run alone already lists each service in its family.
	f := parseFixture(t, "discovery-sV.xml")
	if len(f.Ports) != 9 {
		t.Errorf("%d ports, want 9", len(f.Ports))
	}
	check := func(family string, got, want []int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s ports = %v, want %v", family, got, want)
		}
	}
	check("SSH", ports(f.SSH, func(e assess.SSH) int { return e.Port }), []int{22022, 22023})
	check("TLS", ports(f.TLS, func(e assess.TLS) int { return e.Port }), []int{24433, 24434, 28443})
	check("HTTP", ports(f.HTTP, func(e assess.HTTP) int { return e.Port }), []int{24433, 24434, 28080, 28443})
	check("FTP", ports(f.FTP, func(e assess.FTP) int { return e.Port }), []int{22121})
	check("SMB", ports(f.SMB, func(e assess.SMB) int { return e.Port }), []int{24445, 24446})
	if len(f.SNMP) != 0 {
		t.Errorf("SNMP = %+v, no SNMP service was scanned", f.SNMP)
	}
	s := sshAt(t, f, 22022)
	if s.Software != "OpenSSH_9.2p1" || s.Protocol != "2.0" || len(s.Kex) != 0 {
		t.Errorf("SSH 22022 from -sV = %+v", s)
	}
	if e := tlsAt(t, f, 28443); e.Source != "nmap" || e.LeastStrength != "" {
		t.Errorf("TLS 28443 from -sV = %+v", e)
	}
	if h := httpAt(t, f, 28080); h.TLS {
		t.Error("HTTP 28080 is plain HTTP")
	}
	if f.FTP[0].Anonymous {
		t.Error("FTP anonymous without ftp-anon output")
	}
	if want := time.Unix(1795651399, 0).UTC(); !f.Collected.Equal(want) {
		t.Errorf("Collected = %v, want the host's endtime %v", f.Collected, want)
	}
}

func TestParseTruncated(t *testing.T) {
	// The fixtures hold one host each: build a two-host run from two of
	// them and cut it at several points.
	first, second := hostElement(t, "ssh.xml"), hostElement(t, "tls.xml")
	whole := nmapDoc("nmap -sV", true, first, second)
	if facts, err := nmapfacts.Parse(bytes.NewReader(whole)); err != nil || len(facts) != 2 {
		t.Fatalf("whole two-host file: %d hosts, %v", len(facts), err)
	}
	secondAt := bytes.Index(whole, []byte(second))
	midPort := secondAt + strings.Index(second, `<elem key="name">TLS_DHE_RSA_WITH_AES_128_CCM</elem>`) + 10

	for _, c := range []struct {
		name     string
		cut      int
		hosts    int
		inErrMsg string
	}{
		{"in the second host", secondAt + len(second)/2, 1, "after 1 complete hosts"},
		{"mid-port of the second host", midPort, 1, "after 1 complete hosts"},
		{"mid-port of the first host", bytes.Index(whole, []byte(`<port protocol="tcp" portid="22023">`)) + 20, 0, "after 0 complete hosts"},
		{"after the last host", secondAt + len(second) + 1, 2, "after 2 complete hosts"},
		{"in the document head", 30, 0, "before <nmaprun>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			facts, err := nmapfacts.Parse(bytes.NewReader(whole[:c.cut]))
			if !errors.Is(err, nmapfacts.ErrTruncated) {
				t.Fatalf("error %v, want ErrTruncated", err)
			}
			if !strings.Contains(err.Error(), c.inErrMsg) {
				t.Errorf("error %q does not say %q", err, c.inErrMsg)
			}
			if len(facts) != c.hosts {
				t.Fatalf("%d hosts, want %d", len(facts), c.hosts)
			}
			if c.hosts > 0 {
				checkNormalized(t, facts[0])
				if s := sshAt(t, facts[0], 22023); !slices.Contains(s.Kex, "diffie-hellman-group1-sha1") {
					t.Errorf("complete first host lost its facts: %+v", s)
				}
			}
		})
	}
}

func TestParseNotNmap(t *testing.T) {
	for name, in := range map[string]string{
		"text":        "hello, world\n",
		"json":        `{"nmaprun": {"host": []}}`,
		"html":        "<!DOCTYPE html><html><body><h1>hi</h1></body></html>",
		"binary":      "\x00\x01\x02\xff\xfe<host>",
		"normal -oN":  string(readFixture(t, "ssh.txt")),
		"other root":  `<?xml version="1.0"?><scan><host/></scan>`,
		"broken root": "<nmaprun <<<",
	} {
		t.Run(name, func(t *testing.T) {
			facts, err := nmapfacts.Parse(strings.NewReader(in))
			if !errors.Is(err, nmapfacts.ErrNotNmapXML) {
				t.Errorf("error %v, want ErrNotNmapXML", err)
			}
			if errors.Is(err, nmapfacts.ErrTruncated) {
				t.Errorf("error %v matches ErrTruncated", err)
			}
			if len(facts) != 0 {
				t.Errorf("%d hosts from non-nmap input", len(facts))
			}
		})
	}
}

func TestParseErrorsRecorded(t *testing.T) {
	// Collector problems go to Facts.Errors so checks do not pass silently.
	up := `<host endtime="1795650990"><status state="up" reason="user-set"/><address addr="2001:db8::1" addrtype="ipv6"/><address addr="00:11:22:33:44:55" addrtype="mac"/>
<hostnames><hostname name="web.example" type="PTR"/><hostname name="web.example" type="user"/></hostnames>
<ports><port protocol="tcp" portid="443"><state state="open"/><service name="https"/>
<script id="ssl-enum-ciphers" output="ERROR: Script execution failed (use -d to debug)"/>
<script id="ssl-cert" output=""><elem key="sig_algo">ecdsa-with-SHA384</elem><table key="validity"><elem key="notBefore">2026-01-02T03:04:05+02:00</elem><elem key="notAfter">soon</elem></table></script></port>
<port protocol="tcp" portid="80"><state state="closed"/><service name="http"/></port></ports></host>`
	down := `<host><status state="down" reason="no-response"/><address addr="192.0.2.9" addrtype="ipv4"/></host>`
	doc := nmapDoc("nmap", false, up, down)
	doc = append(doc, `<runstats><finished time="1795651000" exit="error" errormsg="interrupted"/></runstats></nmaprun>`...)
	facts, err := nmapfacts.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 2 {
		t.Fatalf("%d hosts, want 2", len(facts))
	}
	f := facts[0]
	if f.Target != "2001:db8::1" || !slices.Equal(f.Hostnames, []string{"web.example"}) {
		t.Errorf("Target %q, Hostnames %q", f.Target, f.Hostnames)
	}
	if len(f.Ports) != 1 || f.Ports[0].Port != 443 {
		t.Errorf("Ports = %+v, want only the open 443", f.Ports)
	}
	e := tlsAt(t, f, 443)
	if e.Cert.SigHash != "sha384" {
		t.Errorf("SigHash = %q, want sha384", e.Cert.SigHash)
	}
	if want := time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC); !e.Cert.NotBefore.Equal(want) || e.Cert.NotBefore.Location() != time.UTC {
		t.Errorf("NotBefore = %v, want %v in UTC", e.Cert.NotBefore, want)
	}
	if !httpAt(t, f, 443).TLS {
		t.Error("https service: HTTP TLS false")
	}
	for _, want := range []string{
		"ssl-enum-ciphers: ERROR: Script execution failed (use -d to debug) on 443/tcp",
		`ssl-cert: cannot read notAfter "soon" on 443`,
		"nmap: the run ended in an error: interrupted",
	} {
		if !slices.Contains(f.Errors, want) {
			t.Errorf("Errors %q lack %q", f.Errors, want)
		}
	}
	if !slices.Contains(facts[1].Errors, "nmap: host is down (no-response)") {
		t.Errorf("down host: Errors = %q", facts[1].Errors)
	}
	if want := time.Unix(1795651000, 0).UTC(); !facts[1].Collected.Equal(want) {
		t.Errorf("host without endtime: Collected = %v, want the run's end %v", facts[1].Collected, want)
	}
}

func TestParseRedirect(t *testing.T) {
	host := `<host><status state="up"/><address addr="192.0.2.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="80"><state state="open"/><service name="http" product="nginx"/>
<script id="http-title" output="Did not follow redirect to https://192.0.2.1/"><elem key="redirect_url">https://192.0.2.1/</elem></script>
<script id="http-headers" output="&#xa;  Server: nginx&#xa;  Location: https://192.0.2.1/&#xa;  Set-Cookie: a=1&#xa;  Set-Cookie: b=2&#xa;  &#xa;  (Request type: GET)&#xa;"/>
</port></ports></host>`
	facts, err := nmapfacts.Parse(bytes.NewReader(nmapDoc("nmap", true, host)))
	if err != nil {
		t.Fatal(err)
	}
	e := httpAt(t, facts[0], 80)
	if !e.RedirectsToHTTPS || e.Location != "https://192.0.2.1/" || e.Title != "" {
		t.Errorf("HTTP = %+v, want a redirect to https://192.0.2.1/ and no title", e)
	}
	if got := e.Headers["set-cookie"]; got != "a=1, b=2" {
		t.Errorf("repeated header = %q, want joined with \", \"", got)
	}
}

func TestMerge(t *testing.T) {
	// The two-phase assessment: -sV on every port, then each script run.
	f := parseFixture(t, "discovery-sV.xml")
	for _, name := range []string{"ssh.xml", "tls.xml", "http.xml", "ftp.xml", "snmp.xml", "smb-24445.xml", "smb-24446.xml"} {
		nmapfacts.Merge(&f, parseFixture(t, name))
	}
	checkNormalized(t, f)

	if len(f.Ports) != 10 {
		t.Errorf("%d ports, want the 9 TCP ports and 21161/udp", len(f.Ports))
	}
	// -sV's product and CPE survive the SMB runs, which had no -sV.
	smbPort := at(t, f.Ports, func(p assess.Port) int { return p.Port }, 24445)
	if smbPort.Service != "netbios-ssn" || smbPort.Product != "Samba smbd" || len(smbPort.CPE) != 1 {
		t.Errorf("port 24445 = %+v, lost -sV's service", smbPort)
	}
	if s := sshAt(t, f, 22023); s.Software != "OpenSSH_9.2p1" || !slices.Contains(s.MACs, "hmac-md5") {
		t.Errorf("SSH 22023 = %+v", s)
	}
	if e := tlsAt(t, f, 24434); e.LeastStrength != "F" || e.Cert.KeyBits != 1024 || len(e.Chain) != 1 || e.Source != "nmap" {
		t.Errorf("TLS 24434 = %+v", e)
	}
	e := httpAt(t, f, 28443)
	if !e.TLS || e.Headers["strict-transport-security"] == "" {
		t.Errorf("HTTP 28443 = %+v", e)
	}
	if want := []assess.FTP{{Port: 22121, Banner: "220 lab ftp", Anonymous: true}}; !slices.Equal(f.FTP, want) {
		t.Errorf("FTP = %+v, want %+v", f.FTP, want)
	}
	if len(f.SNMP) != 1 || f.SNMP[0].DefaultCommunities[0] != "public" {
		t.Errorf("SNMP = %+v", f.SNMP)
	}
	if s := smbAt(t, f, 24445); !s.SMBv1 || s.Signing != "enabled" {
		t.Errorf("SMB 24445 = %+v", s)
	}
	if s := smbAt(t, f, 24446); s.SMBv1 || s.Signing != "required" || !slices.Equal(s.Dialects, []string{"3.1.1"}) {
		t.Errorf("SMB 24446 = %+v", s)
	}
	if want := time.Unix(1795651399, 0).UTC(); !f.Collected.Equal(want) {
		t.Errorf("Collected = %v, want the latest, %v", f.Collected, want)
	}

	// The other way round: an emptier run merged later blanks nothing.
	g := parseFixture(t, "ssh.xml")
	nmapfacts.Merge(&g, parseFixture(t, "discovery-sV.xml"))
	if s := sshAt(t, g, 22023); len(s.Kex) != 14 || len(s.AuthMethods) != 3 || len(s.HostKeys) != 1 {
		t.Errorf("SSH 22023 after merging -sV over scripts = %+v", s)
	}
}

func TestMergeFields(t *testing.T) {
	dst := assess.Facts{
		Target: "192.0.2.1",
		TLS: []assess.TLS{{Port: 443, Source: "probe", Versions: []string{"TLSv1.2"},
			Cert:  assess.Cert{Subject: "CN=old", SHA256: "aa", Verified: true},
			Chain: []assess.Cert{{Subject: "CN=old", SHA256: "aa"}, {Subject: "CN=ca"}}}},
		HTTP: []assess.HTTP{{Port: 443, Status: 200, Headers: map[string]string{"server": "x"}}},
	}
	src := assess.Facts{
		Hostnames: []string{"www"},
		Errors:    []string{"ssl-cert: timed out"},
		TLS: []assess.TLS{{Port: 443, Source: "nmap", LeastStrength: "A",
			Cert:  assess.Cert{Subject: "CN=old", SHA256: "aa", SigHash: "sha256", SANs: []string{"www"}},
			Chain: []assess.Cert{{Subject: "CN=old", SHA256: "aa"}}}},
		HTTP: []assess.HTTP{{Port: 443, TLS: true, Methods: []string{"GET"}}},
		SSH:  []assess.SSH{{Port: 22, Kex: []string{"curve25519-sha256"}}},
	}
	nmapfacts.Merge(&dst, src)

	e := dst.TLS[0]
	if e.Source != "nmap+probe" || e.LeastStrength != "A" || !slices.Equal(e.Versions, []string{"TLSv1.2"}) {
		t.Errorf("TLS = %+v", e)
	}
	if !e.Cert.Verified || e.Cert.SigHash != "sha256" || !slices.Equal(e.Cert.SANs, []string{"www"}) {
		t.Errorf("Cert = %+v, want the probe's and nmap's fields together", e.Cert)
	}
	if len(e.Chain) != 2 || e.Chain[0].SigHash != "sha256" || e.Chain[1].Subject != "CN=ca" {
		t.Errorf("Chain = %+v, want the longer chain with the merged leaf", e.Chain)
	}
	hh := dst.HTTP[0]
	if hh.Status != 200 || !hh.TLS || hh.Headers["server"] != "x" || !slices.Equal(hh.Methods, []string{"GET"}) {
		t.Errorf("HTTP = %+v", hh)
	}
	if len(dst.SSH) != 1 || dst.Target != "192.0.2.1" || !slices.Equal(dst.Hostnames, []string{"www"}) || len(dst.Errors) != 1 {
		t.Errorf("merged facts = %+v", dst)
	}

	// Merge copies: changing src afterwards leaves dst alone.
	src.SSH[0].Kex[0] = "changed"
	src.TLS[0].Cert.SANs[0] = "changed"
	if dst.SSH[0].Kex[0] != "curve25519-sha256" || dst.TLS[0].Cert.SANs[0] != "www" {
		t.Error("dst shares lists with src")
	}

	// A different certificate replaces the old one whole.
	nmapfacts.Merge(&dst, assess.Facts{TLS: []assess.TLS{{Port: 443, Cert: assess.Cert{Subject: "CN=new", SHA256: "bb"}}}})
	if c := dst.TLS[0].Cert; c.Subject != "CN=new" || c.Verified || c.SigHash != "" {
		t.Errorf("replaced Cert = %+v, want only the new certificate's fields", c)
	}
	checkNormalized(t, dst)
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("<nmaprun><host><ports><port portid=\"1\"><state state=\"open\"/><service name=\"ssh\" product=\" \"/></port></ports></host>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		facts, err := nmapfacts.Parse(bytes.NewReader(in))
		if err != nil && len(facts) > 0 && !errors.Is(err, nmapfacts.ErrTruncated) {
			t.Fatalf("%d hosts with an error that is not ErrTruncated: %v", len(facts), err)
		}
		if len(facts) == 0 {
			return
		}
		var all assess.Facts // every host merged into one: Merge must cope too
		for _, f := range facts {
			checkNormalized(t, f)
			nmapfacts.Merge(&all, f)
		}
		checkNormalized(t, all)
	})
}
