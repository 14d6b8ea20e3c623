package nmapfacts

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/assess"
)

// Helpers over the <table>/<elem> tree of a script's output.

// table is the child table with the key, nil if none.
func (t *xTable) table(key string) *xTable {
	if t == nil {
		return nil
	}
	for i := range t.Tables {
		if t.Tables[i].Key == key {
			return &t.Tables[i]
		}
	}
	return nil
}

// elem is the trimmed value of the child elem with the key, "" if none.
func (t *xTable) elem(key string) string {
	if t == nil {
		return ""
	}
	for _, e := range t.Elems {
		if e.Key == key {
			return strings.TrimSpace(e.Value)
		}
	}
	return ""
}

// list is the trimmed values of the table's elems, in order, blanks left
// out; nil for a nil table.
func (t *xTable) list() []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, e := range t.Elems {
		if v := strings.TrimSpace(e.Value); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// elemMap is the table's keyed elems.
func (t *xTable) elemMap() map[string]string {
	if t == nil {
		return nil
	}
	m := map[string]string{}
	for _, e := range t.Elems {
		if e.Key != "" {
			m[e.Key] = strings.TrimSpace(e.Value)
		}
	}
	return m
}

// outputField is the value of the first "Name: value" line of a script's
// text output, "" if none.
func outputField(out, name string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// --- TLS ---

// tlsVersions are the protocol versions ssl-enum-ciphers reports, oldest
// first.
var tlsVersions = []string{"SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

// sslEnumCiphers reads ssl-enum-ciphers: a table per protocol version with
// its ciphers ({name, kex_info, strength}) and warnings, and the overall
// "least strength". Warnings repeat per version; each is kept once.
func sslEnumCiphers(s xScript) (versions []string, ciphers []assess.Cipher, least string, warnings []string) {
	for _, v := range tlsVersions {
		t := s.table(v)
		if t == nil {
			continue
		}
		versions = append(versions, v)
		if cs := t.table("ciphers"); cs != nil {
			for i := range cs.Tables {
				c := &cs.Tables[i]
				kex := c.elem("kex_info")
				ciphers = append(ciphers, assess.Cipher{
					Name:     c.elem("name"),
					Version:  v,
					Kex:      kex,
					KexBits:  kexBits(kex),
					Strength: c.elem("strength"),
				})
			}
		}
		for _, w := range t.table("warnings").list() {
			if !slices.Contains(warnings, w) {
				warnings = append(warnings, w)
			}
		}
	}
	least = s.elem("least strength")
	return versions, ciphers, least, warnings
}

var ffdheRE = regexp.MustCompile(`^ffdhe(\d+)$`)

// kexBits is the size in nmap's kex_info for RSA and finite-field DH ("rsa
// 2048", "dh 1024", "ffdhe3072"); 0 for elliptic curves and anything else.
func kexBits(kex string) int {
	f := strings.Fields(strings.ToLower(kex))
	var digits string
	switch {
	case len(f) == 2 && (f[0] == "rsa" || f[0] == "dh" || f[0] == "dhe"):
		digits = f[1]
	case len(f) == 1 && ffdheRE.MatchString(f[0]):
		digits = ffdheRE.FindStringSubmatch(f[0])[1]
	default:
		return 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// sslCert reads ssl-cert into the leaf certificate. problems are values it
// could not read (an unparseable date), for Facts.Errors.
func sslCert(s xScript) (c assess.Cert, problems []string) {
	subject, issuer := s.table("subject"), s.table("issuer")
	c.Subject = cmp.Or(outputField(s.Output, "Subject"), nameString(subject))
	c.Issuer = cmp.Or(outputField(s.Output, "Issuer"), nameString(issuer))
	c.CommonName = subject.elem("commonName")
	if sm, im := subject.elemMap(), issuer.elemMap(); len(sm) > 0 || len(im) > 0 {
		c.SelfSigned = maps.Equal(sm, im)
	} else {
		c.SelfSigned = c.Subject != "" && c.Subject == c.Issuer
	}

	san := outputField(s.Output, "Subject Alternative Name")
	if ext := s.table("extensions"); ext != nil {
		for i := range ext.Tables {
			if e := &ext.Tables[i]; e.elem("name") == "X509v3 Subject Alternative Name" {
				san = e.elem("value")
			}
		}
	}
	c.SANs = parseSANs(san)

	if pk := s.table("pubkey"); pk != nil {
		c.KeyType = strings.ToLower(pk.elem("type"))
		c.KeyBits, _ = strconv.Atoi(pk.elem("bits"))
	}
	c.SigAlgo = s.elem("sig_algo")
	c.SigHash = sigHash(c.SigAlgo)

	validity := s.table("validity")
	for _, d := range []struct {
		key string
		dst *time.Time
	}{{"notBefore", &c.NotBefore}, {"notAfter", &c.NotAfter}} {
		raw := validity.elem(d.key)
		if raw == "" {
			continue
		}
		t, err := certTime(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("cannot read %s %q", d.key, raw))
			continue
		}
		*d.dst = t
	}

	c.SHA1 = hexFingerprint(s.elem("sha1"))
	c.SHA256 = hexFingerprint(s.elem("sha256"))
	if b, _ := pem.Decode([]byte(s.elem("pem"))); b != nil && b.Type == "CERTIFICATE" {
		sum := sha256.Sum256(b.Bytes)
		c.SHA256 = hex.EncodeToString(sum[:])
		if c.SHA1 == "" {
			sum1 := sha1.Sum(b.Bytes)
			c.SHA1 = hex.EncodeToString(sum1[:])
		}
	}
	return c, problems
}

// nameFields are the name fields nmap prints, in its order.
var nameFields = []string{"commonName", "organizationName", "stateOrProvinceName", "countryName"}

// nameString writes a subject or issuer table the way ssl-cert prints it,
// "commonName=x/organizationName=y", for when the text output is missing.
func nameString(t *xTable) string {
	m := t.elemMap()
	var parts []string
	for _, k := range nameFields {
		if v, ok := m[k]; ok {
			parts = append(parts, k+"="+v)
			delete(m, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, "/")
}

// parseSANs reads OpenSSL's subjectAltName text ("DNS:localhost, IP
// Address:127.0.0.1") into the DNS names and IP addresses.
func parseSANs(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		var v string
		if dns, ok := strings.CutPrefix(part, "DNS:"); ok {
			v = strings.TrimSpace(dns)
		} else if ip, ok := strings.CutPrefix(part, "IP Address:"); ok {
			v = strings.TrimSpace(ip)
			if a, err := netip.ParseAddr(v); err == nil {
				v = a.String()
			}
		}
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// sigHashes are the hash names looked for in a signature algorithm's name,
// longer names first so that sha3-256 is not read as sha256.
var sigHashes = []string{"sha3-512", "sha3-384", "sha3-256", "sha3-224", "sha512", "sha384", "sha256", "sha224", "sha1", "md5", "md4", "md2"}

// sigHash is the hash of an OpenSSL signature algorithm name, lower case:
// sha256WithRSAEncryption and ecdsa-with-SHA256 are "sha256"; "" when the
// name has none (ED25519, RSASSA-PSS with its hash in the parameters).
func sigHash(algo string) string {
	a := strings.ToLower(algo)
	for _, h := range sigHashes {
		if strings.Contains(a, h) {
			return h
		}
	}
	return ""
}

// certTime reads ssl-cert's validity dates: "2026-11-25T23:55:03" (UTC), or
// the same with a time zone.
func certTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339, "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// hexFingerprint is a fingerprint as lower-case hex without separators
// ("AB:CD ..." and "abcd ..." alike); "" if it is not hex.
func hexFingerprint(s string) string {
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
	if _, err := hex.DecodeString(s); err != nil {
		return ""
	}
	return s
}

// --- SSH ---

var sshProtocolRE = regexp.MustCompile(`protocol ([0-9.]+)`)

// sshFromService fills Software and Protocol from -sV: product "OpenSSH",
// version "9.2p1 Debian 2+deb12u10", extra info "protocol 2.0" give
// "OpenSSH_9.2p1" and "2.0". The banner, when the banner script ran, is
// better and overrides this.
func sshFromService(s *assess.SSH, svc xService) {
	if m := sshProtocolRE.FindStringSubmatch(svc.ExtraInfo); m != nil && s.Protocol == "" {
		s.Protocol = m[1]
	}
	product := strings.Fields(svc.Product)
	if s.Software != "" || len(product) == 0 {
		return
	}
	// How the common servers write themselves in the banner.
	name, ok := map[string]string{"OpenSSH": "OpenSSH", "Dropbear sshd": "dropbear"}[svc.Product]
	if !ok {
		name = product[0]
	}
	if v := strings.Fields(svc.Version); len(v) > 0 {
		name += "_" + v[0]
	}
	s.Software = name
}

// sshFromBanner takes Banner, Protocol and Software from the server's
// identification string "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10".
func sshFromBanner(s *assess.SSH, banner string) {
	if banner == "" {
		return
	}
	s.Banner = banner
	rest, ok := strings.CutPrefix(banner, "SSH-")
	if !ok {
		return
	}
	proto, software, ok := strings.Cut(rest, "-")
	if !ok {
		return
	}
	s.Protocol = proto
	if f := strings.Fields(software); len(f) > 0 {
		s.Software = f[0]
	}
}

// sshAlgos reads ssh2-enum-algos' tables, one per KEXINIT list.
func sshAlgos(s *assess.SSH, sc xScript) {
	s.Kex = sc.table("kex_algorithms").list()
	s.HostKeyAlgorithms = sc.table("server_host_key_algorithms").list()
	s.Ciphers = sc.table("encryption_algorithms").list()
	s.MACs = sc.table("mac_algorithms").list()
	s.Compression = sc.table("compression_algorithms").list()
}

// sshHostKeys reads ssh-hostkey: a table per key with type, bits, nmap's MD5
// fingerprint and (with ssh_hostkey=full, and in 7.93's XML always) the
// base64 key blob.
func sshHostKeys(s xScript) []assess.HostKey {
	var out []assess.HostKey
	for i := range s.Tables {
		t := &s.Tables[i]
		k := assess.HostKey{Type: t.elem("type")}
		k.Bits, _ = strconv.Atoi(t.elem("bits"))
		blob := t.elem("key")
		if f := strings.Fields(blob); len(f) > 0 {
			blob = f[len(f)-1] // the blob alone, or "type blob"
		}
		if raw, err := base64.StdEncoding.DecodeString(blob); err == nil && len(raw) > 0 {
			sum := sha256.Sum256(raw)
			k.Fingerprint = "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
			if k.Type == "" {
				k.Type = blobType(raw)
			}
		} else {
			k.Fingerprint = md5Fingerprint(t.elem("fingerprint"))
		}
		if k.Type == "" && k.Fingerprint == "" {
			continue
		}
		out = append(out, k)
	}
	return out
}

// blobType is the key type named at the start of an SSH public key blob.
func blobType(raw []byte) string {
	if len(raw) < 4 {
		return ""
	}
	n := binary.BigEndian.Uint32(raw)
	if n == 0 || uint64(n) > uint64(len(raw)-4) || n > 64 {
		return ""
	}
	return string(raw[4 : 4+n])
}

// md5Fingerprint writes nmap's hex MD5 fingerprint the way ssh-keygen -E md5
// -l prints it, "MD5:8b:48:...", so it cannot be mistaken for a SHA256 one.
func md5Fingerprint(s string) string {
	h := hexFingerprint(s)
	if len(h) != 32 {
		return strings.TrimSpace(s)
	}
	pairs := make([]string, 0, 16)
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return "MD5:" + strings.Join(pairs, ":")
}

// sshAuthMethods reads ssh-auth-methods' "Supported authentication methods"
// table.
func sshAuthMethods(s xScript) []string {
	for i := range s.Tables {
		if strings.Contains(strings.ToLower(s.Tables[i].Key), "authentication methods") {
			return s.Tables[i].list()
		}
	}
	return nil
}

// --- HTTP ---

// httpHeaders reads http-headers' text output, a "Name: value" line per
// header, into lower-case names; repeated headers are joined with ", ". The
// "(Request type: HEAD)" line is not a header. status is the code of an
// "HTTP/1.1 200 OK" line when nmap printed one, else 0.
func httpHeaders(out string) (headers map[string]string, status int) {
	headers = map[string]string{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "(Request type:") {
			continue
		}
		if strings.HasPrefix(line, "HTTP/") {
			if f := strings.Fields(line); len(f) > 1 {
				status, _ = strconv.Atoi(f[1])
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		value = strings.TrimSpace(value)
		if prev, dup := headers[name]; dup {
			value = prev + ", " + value
		}
		headers[name] = value
	}
	return headers, status
}

// httpServerHeader reads http-server-header: the Server header's value.
func httpServerHeader(s xScript) string {
	if v := s.list(); len(v) > 0 {
		return v[0]
	}
	return firstLine(s.Output)
}

// httpMethods reads http-methods' "Supported Methods" list.
func httpMethods(s xScript) []string {
	if t := s.table("Supported Methods"); t != nil {
		return t.list()
	}
	return strings.Fields(outputField(s.Output, "Supported Methods"))
}

// httpTitle reads http-title: the page's title ("" when the page has none)
// and the redirect nmap did not follow.
func httpTitle(s xScript) (title, redirect string) {
	redirect = s.elem("redirect_url")
	if t := s.elem("title"); t != "" || len(s.Elems) > 0 {
		return t, redirect
	}
	out := strings.TrimSpace(s.Output)
	for _, p := range []string{"Site doesn't have a title", "Did not follow redirect to", "Requested resource was"} {
		if strings.HasPrefix(out, p) {
			return "", redirect
		}
	}
	return out, redirect
}

// --- FTP, SNMP ---

func ftpAnonymous(s xScript) bool {
	return strings.Contains(s.Output, "Anonymous FTP login allowed")
}

// snmpCommunities reads snmp-brute: the communities the agent accepted,
// from its tables ({password, state}) or its "public - Valid credentials"
// lines.
func snmpCommunities(s xScript) []string {
	var out []string
	add := func(c string) {
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for i := range s.Tables {
		if t := &s.Tables[i]; strings.Contains(t.elem("state"), "Valid credentials") {
			add(t.elem("password"))
		}
	}
	if len(s.Tables) == 0 {
		for line := range strings.Lines(s.Output) {
			if c, ok := strings.CutSuffix(strings.TrimSpace(line), " - Valid credentials"); ok {
				add(strings.TrimSpace(c))
			}
		}
	}
	return out
}

// --- SMB ---

// smbDialects reads smb-protocols' dialect list. "NT LM 0.12 (SMBv1)
// [dangerous, but default]" is SMBv1; nmap 7.93's "202".."311", newer nmap's
// "2:0:2".."3:1:1" and older "2.02".."3.11" all become "2.0.2", "2.1",
// "3.0", "3.0.2", "3.1.1".
func smbDialects(s xScript) (dialects []string, smbv1 bool) {
	t := s.table("dialects")
	if t == nil {
		return nil, false
	}
	for _, raw := range t.list() {
		d, v1 := smbDialect(raw)
		smbv1 = smbv1 || v1
		if d != "" && !slices.Contains(dialects, d) {
			dialects = append(dialects, d)
		}
	}
	return dialects, smbv1
}

func smbDialect(raw string) (string, bool) {
	if strings.HasPrefix(raw, "NT LM 0.12") || strings.Contains(raw, "SMBv1") {
		return "NT LM 0.12", true
	}
	var digits []byte
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '.' || r == ':':
		default:
			return raw, false
		}
	}
	switch {
	case len(digits) == 2, len(digits) == 3 && digits[2] == '0':
		return string(digits[0]) + "." + string(digits[1]), false
	case len(digits) == 3:
		return string(digits[0]) + "." + string(digits[1]) + "." + string(digits[2]), false
	}
	return raw, false
}

// signingRank orders Signing values, weakest first.
var signingRank = map[string]int{"disabled": 1, "enabled": 2, "required": 3}

// smb2Signing reads smb2-security-mode, a table per dialect with a message
// ("Message signing enabled and required"); the weakest one counts.
func smb2Signing(s xScript) string {
	var msgs []string
	for i := range s.Tables {
		msgs = append(msgs, s.Tables[i].list()...)
	}
	if len(s.Tables) == 0 {
		msgs = append(msgs, s.Output)
	}
	var out string
	for _, m := range msgs {
		var v string
		switch m = strings.ToLower(m); {
		case strings.Contains(m, "disabled"):
			v = "disabled"
		case strings.Contains(m, "not required"):
			v = "enabled"
		case strings.Contains(m, "required"):
			v = "required"
		case strings.Contains(m, "enabled"):
			v = "enabled"
		default:
			continue
		}
		if out == "" || signingRank[v] < signingRank[out] {
			out = v
		}
	}
	return out
}

// smbSecurityMode reads smb-security-mode (SMBv1): message_signing
// required, supported or disabled, and whether nmap got in as guest.
func smbSecurityMode(s xScript) (signing string, guest bool) {
	m := strings.ToLower(s.elem("message_signing"))
	switch {
	case strings.HasPrefix(m, "required"):
		signing = "required"
	case strings.HasPrefix(m, "supported"):
		signing = "enabled"
	case strings.HasPrefix(m, "disabled"):
		signing = "disabled"
	}
	return signing, strings.EqualFold(s.elem("account_used"), "guest")
}
