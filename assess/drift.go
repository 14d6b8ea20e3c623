package assess

import (
	"fmt"
	"slices"
	"strings"
)

// Drift kinds: what changed on a host between two assessments.
const (
	DriftPortOpened     = "port_opened"
	DriftPortClosed     = "port_closed"
	DriftServiceChanged = "service_changed" // another service on the port
	DriftVersionChanged = "version_changed" // same service, other product or version
	DriftCertChanged    = "cert_changed"    // the TLS leaf certificate was replaced
	DriftHostKeyChanged = "host_key_changed"
	DriftTLSWeakened    = "tls_weakened" // an old protocol version or a weak cipher appeared
	DriftTLSChanged     = "tls_changed"  // versions or ciphers changed otherwise
	DriftSSHWeakened    = "ssh_weakened" // a weak algorithm appeared
	DriftSSHChanged     = "ssh_changed"  // algorithms changed otherwise
	DriftHTTPChanged    = "http_changed" // a security header or a method appeared or went
	DriftFTPAnonymous   = "ftp_anonymous_changed"
	DriftSNMPCommunity  = "snmp_community_changed"
	DriftSMBChanged     = "smb_changed"
)

// DriftEntry is one change between two assessments of a host.
type DriftEntry struct {
	Kind     string `json:"kind"`
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Field names what changed within the port's service (versions,
	// ciphers, kex, sha256 ...).
	Field  string `json:"field,omitempty"`
	Before any    `json:"before,omitempty"`
	After  any    `json:"after,omitempty"`
	// Weaker: the change lowers the host's security (a weak algorithm
	// offered, a port opened, a header gone).
	Weaker bool `json:"weaker"`
}

func (d DriftEntry) String() string {
	where := ""
	if d.Port != 0 {
		where = fmt.Sprintf(" %s/%d", d.Protocol, d.Port)
	}
	if d.Field != "" {
		where += " " + d.Field
	}
	return fmt.Sprintf("%s%s: %v -> %v", d.Kind, where, d.Before, d.After)
}

// Drift compares two assessments' facts of the same host, prev the older.
// A family missing on one side for a port (its collector failed or did not
// run) is not a change: only facts seen on both sides are compared, apart
// from ports themselves opening and closing. The result is ordered by port,
// then kind.
func Drift(prev, cur *Facts) []DriftEntry {
	var out []DriftEntry
	type key struct {
		proto string
		port  int
	}
	before := map[key]Port{}
	for _, p := range prev.Ports {
		before[key{p.Protocol, p.Port}] = p
	}
	after := map[key]Port{}
	for _, p := range cur.Ports {
		after[key{p.Protocol, p.Port}] = p
	}
	for k, p := range after {
		q, ok := before[k]
		switch {
		case !ok:
			out = append(out, DriftEntry{Kind: DriftPortOpened, Port: k.port, Protocol: k.proto, After: serviceLabel(p), Weaker: true})
		case p.Service != q.Service || p.Tunnel != q.Tunnel:
			if p.Service != "" && q.Service != "" {
				out = append(out, DriftEntry{Kind: DriftServiceChanged, Port: k.port, Protocol: k.proto, Field: "service", Before: serviceLabel(q), After: serviceLabel(p)})
			}
		case p.Product != q.Product || p.Version != q.Version:
			if p.Product != "" || p.Version != "" {
				out = append(out, DriftEntry{Kind: DriftVersionChanged, Port: k.port, Protocol: k.proto, Field: "version",
					Before: strings.TrimSpace(q.Product + " " + q.Version), After: strings.TrimSpace(p.Product + " " + p.Version)})
			}
		}
	}
	for k, q := range before {
		if _, ok := after[k]; !ok {
			out = append(out, DriftEntry{Kind: DriftPortClosed, Port: k.port, Protocol: k.proto, Before: serviceLabel(q)})
		}
	}
	out = append(out, tlsDrift(prev.TLS, cur.TLS, func(port int) bool { return incomplete(prev, port) || incomplete(cur, port) })...)
	out = append(out, sshDrift(prev.SSH, cur.SSH)...)
	out = append(out, httpDrift(prev.HTTP, cur.HTTP)...)
	for _, p := range pairs(prev.FTP, cur.FTP, func(f FTP) int { return f.Port }) {
		if p.a.Anonymous != p.b.Anonymous {
			out = append(out, DriftEntry{Kind: DriftFTPAnonymous, Port: p.port, Protocol: "tcp", Field: "anonymous", Before: p.a.Anonymous, After: p.b.Anonymous, Weaker: p.b.Anonymous})
		}
	}
	for _, p := range pairs(prev.SNMP, cur.SNMP, func(s SNMP) int { return s.Port }) {
		if added, removed := diffSets(p.a.DefaultCommunities, p.b.DefaultCommunities); len(added)+len(removed) > 0 {
			out = append(out, DriftEntry{Kind: DriftSNMPCommunity, Port: p.port, Protocol: "udp", Field: "default_communities", Before: p.a.DefaultCommunities, After: p.b.DefaultCommunities, Weaker: len(added) > 0})
		}
	}
	for _, p := range pairs(prev.SMB, cur.SMB, func(s SMB) int { return s.Port }) {
		if added, removed := diffSets(p.a.Dialects, p.b.Dialects); len(added)+len(removed) > 0 {
			out = append(out, DriftEntry{Kind: DriftSMBChanged, Port: p.port, Protocol: "tcp", Field: "dialects", Before: p.a.Dialects, After: p.b.Dialects, Weaker: p.b.SMBv1 && !p.a.SMBv1})
		}
		if p.a.Signing != p.b.Signing && p.a.Signing != "" && p.b.Signing != "" {
			out = append(out, DriftEntry{Kind: DriftSMBChanged, Port: p.port, Protocol: "tcp", Field: "signing", Before: p.a.Signing, After: p.b.Signing, Weaker: p.a.Signing == "required"})
		}
	}
	slices.SortStableFunc(out, func(a, b DriftEntry) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Field, b.Field)
	})
	return out
}

func serviceLabel(p Port) string {
	s := p.Service
	if p.Tunnel != "" {
		s = p.Tunnel + "/" + s
	}
	if v := strings.TrimSpace(p.Product + " " + p.Version); v != "" {
		s += " (" + v + ")"
	}
	return s
}

type pair[T any] struct {
	port int
	a, b T
}

// pairs matches two lists of per-port entries by port; entries on one side
// only are left out (a port opening or closing is reported from Ports).
func pairs[T any](prev, cur []T, port func(T) int) []pair[T] {
	byPort := make(map[int]T, len(prev))
	for _, e := range prev {
		byPort[port(e)] = e
	}
	var out []pair[T]
	for _, e := range cur {
		if old, ok := byPort[port(e)]; ok {
			out = append(out, pair[T]{port(e), old, e})
		}
	}
	return out
}

// diffSets gives what b has that a has not, and the reverse, in order.
func diffSets(a, b []string) (added, removed []string) {
	for _, s := range b {
		if !slices.Contains(a, s) {
			added = append(added, s)
		}
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// incomplete: a collector reported that what it saw of the port may be
// missing parts ("probe incomplete": handshakes that timed out), so lists
// read there are not compared.
func incomplete(f *Facts, port int) bool {
	needle := fmt.Sprintf(":%d: ", port)
	for _, e := range f.Errors {
		if strings.Contains(e, needle) && strings.Contains(e, "incomplete") {
			return true
		}
	}
	return false
}

func tlsDrift(prev, cur []TLS, partial func(port int) bool) []DriftEntry {
	var out []DriftEntry
	for _, p := range pairs(prev, cur, func(t TLS) int { return t.Port }) {
		a, b := p.a, p.b
		if partial(p.port) {
			a.Versions, a.Ciphers = nil, nil
		}
		if fa, fb := certID(a.Cert), certID(b.Cert); fa != "" && fb != "" && fa != fb {
			out = append(out, DriftEntry{Kind: DriftCertChanged, Port: p.port, Protocol: "tcp", Field: "cert",
				Before: certSummary(a.Cert), After: certSummary(b.Cert), Weaker: weakerCert(a.Cert, b.Cert)})
		}
		if len(a.Versions) > 0 && len(b.Versions) > 0 {
			if added, removed := diffSets(a.Versions, b.Versions); len(added)+len(removed) > 0 {
				weak := slices.ContainsFunc(added, func(v string) bool { return v == "SSLv3" || v == "TLSv1.0" || v == "TLSv1.1" })
				kind := DriftTLSChanged
				if weak {
					kind = DriftTLSWeakened
				}
				out = append(out, DriftEntry{Kind: kind, Port: p.port, Protocol: "tcp", Field: "versions", Before: a.Versions, After: b.Versions, Weaker: weak})
			}
		}
		if len(a.Ciphers) > 0 && len(b.Ciphers) > 0 {
			an, bn := cipherNames(a.Ciphers), cipherNames(b.Ciphers)
			if added, removed := diffSets(an, bn); len(added)+len(removed) > 0 {
				weak := slices.ContainsFunc(added, weakTLSCipher)
				kind := DriftTLSChanged
				if weak {
					kind = DriftTLSWeakened
				}
				out = append(out, DriftEntry{Kind: kind, Port: p.port, Protocol: "tcp", Field: "ciphers",
					Before: map[string][]string{"removed": removed}, After: map[string][]string{"added": added}, Weaker: weak})
			}
		}
		if a.LeastStrength != "" && b.LeastStrength != "" && a.LeastStrength < b.LeastStrength {
			out = append(out, DriftEntry{Kind: DriftTLSWeakened, Port: p.port, Protocol: "tcp", Field: "least_strength", Before: a.LeastStrength, After: b.LeastStrength, Weaker: true})
		}
	}
	return out
}

// certID identifies a certificate: its SHA-256 fingerprint, else SHA-1.
func certID(c Cert) string {
	if c.SHA256 != "" {
		return "sha256:" + c.SHA256
	}
	if c.SHA1 != "" {
		return "sha1:" + c.SHA1
	}
	return ""
}

func certSummary(c Cert) map[string]any {
	return map[string]any{"subject": c.Subject, "issuer": c.Issuer, "sha256": c.SHA256, "sha1": c.SHA1,
		"not_after": c.NotAfter, "key_type": c.KeyType, "key_bits": c.KeyBits, "sig_algo": c.SigAlgo}
}

func weakerCert(a, b Cert) bool {
	return b.KeyBits < a.KeyBits && b.KeyType == a.KeyType ||
		hashRank(b.SigHash) < hashRank(a.SigHash) ||
		b.SelfSigned && !a.SelfSigned
}

func hashRank(h string) int {
	switch h {
	case "md5":
		return 1
	case "sha1":
		return 2
	case "":
		return 10
	}
	return 5
}

func cipherNames(cs []Cipher) []string {
	var names []string
	for _, c := range cs {
		n := c.Version + " " + c.Name
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// weakTLSCipher: a cipher suite (as cipherNames writes it) no policy would
// accept.
func weakTLSCipher(name string) bool {
	for _, w := range []string{"_RC4_", "_3DES_", "_DES_", "_NULL_", "EXPORT", "_anon_", "_MD5", "SSLv3"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func sshDrift(prev, cur []SSH) []DriftEntry {
	var out []DriftEntry
	for _, p := range pairs(prev, cur, func(s SSH) int { return s.Port }) {
		a, b := p.a, p.b
		ka, kb := hostKeyMap(a.HostKeys), hostKeyMap(b.HostKeys)
		for typ, fb := range kb {
			if fa, ok := ka[typ]; ok && fa != fb {
				out = append(out, DriftEntry{Kind: DriftHostKeyChanged, Port: p.port, Protocol: "tcp", Field: typ, Before: fa, After: fb})
			}
		}
		for _, l := range []struct {
			field string
			a, b  []string
		}{
			{"kex", a.Kex, b.Kex}, {"host_key_algorithms", a.HostKeyAlgorithms, b.HostKeyAlgorithms},
			{"ciphers", a.Ciphers, b.Ciphers}, {"macs", a.MACs, b.MACs}, {"auth_methods", a.AuthMethods, b.AuthMethods},
		} {
			if len(l.a) == 0 || len(l.b) == 0 {
				continue
			}
			added, removed := diffSets(l.a, l.b)
			if len(added)+len(removed) == 0 {
				continue
			}
			weak := slices.ContainsFunc(added, func(s string) bool { return weakSSH(l.field, s) })
			kind := DriftSSHChanged
			if weak {
				kind = DriftSSHWeakened
			}
			out = append(out, DriftEntry{Kind: kind, Port: p.port, Protocol: "tcp", Field: l.field,
				Before: map[string][]string{"removed": removed}, After: map[string][]string{"added": added}, Weaker: weak})
		}
		if a.Protocol != "" && b.Protocol != "" && a.Protocol != b.Protocol {
			out = append(out, DriftEntry{Kind: DriftSSHWeakened, Port: p.port, Protocol: "tcp", Field: "protocol", Before: a.Protocol, After: b.Protocol, Weaker: b.Protocol != "2.0"})
		}
	}
	// Several host keys of one type on one port are unusual; the map keeps
	// the last, and a change in any of them still differs.
	return out
}

func hostKeyMap(ks []HostKey) map[string]string {
	m := make(map[string]string, len(ks))
	for _, k := range ks {
		if k.Fingerprint != "" {
			m[k.Type] = k.Fingerprint
		}
	}
	return m
}

// weakSSH: an SSH algorithm (or auth method) that widens exposure when it
// appears.
func weakSSH(field, name string) bool {
	switch field {
	case "auth_methods":
		return name == "password" || name == "keyboard-interactive" || name == "none"
	case "kex":
		return strings.HasSuffix(name, "-sha1") || strings.Contains(name, "group1-") || strings.Contains(name, "gss-")
	case "host_key_algorithms":
		return name == "ssh-dss" || name == "ssh-rsa"
	case "ciphers":
		return strings.Contains(name, "cbc") || strings.Contains(name, "arcfour") || strings.Contains(name, "3des") || strings.Contains(name, "blowfish") || name == "none"
	case "macs":
		return strings.Contains(name, "md5") || strings.Contains(name, "-96") || name == "hmac-sha1" || name == "none"
	}
	return false
}

// securityHeaders are the response headers whose coming or going is drift.
var securityHeaders = []string{"strict-transport-security", "content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"}

func httpDrift(prev, cur []HTTP) []DriftEntry {
	var out []DriftEntry
	for _, p := range pairs(prev, cur, func(h HTTP) int { return h.Port }) {
		a, b := p.a, p.b
		for _, h := range securityHeaders {
			va, oka := a.Headers[h]
			vb, okb := b.Headers[h]
			if oka != okb || va != vb {
				out = append(out, DriftEntry{Kind: DriftHTTPChanged, Port: p.port, Protocol: "tcp", Field: "header " + h, Before: va, After: vb, Weaker: oka && !okb})
			}
		}
		if len(a.Methods) > 0 && len(b.Methods) > 0 {
			if added, removed := diffSets(a.Methods, b.Methods); len(added)+len(removed) > 0 {
				out = append(out, DriftEntry{Kind: DriftHTTPChanged, Port: p.port, Protocol: "tcp", Field: "methods", Before: a.Methods, After: b.Methods, Weaker: len(added) > 0})
			}
		}
		if a.RedirectsToHTTPS != b.RedirectsToHTTPS && !a.TLS {
			out = append(out, DriftEntry{Kind: DriftHTTPChanged, Port: p.port, Protocol: "tcp", Field: "redirects_to_https", Before: a.RedirectsToHTTPS, After: b.RedirectsToHTTPS, Weaker: a.RedirectsToHTTPS})
		}
	}
	return out
}
