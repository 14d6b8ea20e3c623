package assess

import "time"

// Facts is what one assessment learned about one host over the network: the
// typed schema the policy's CEL expressions are checked against. Every
// field's JSON name is also its name in CEL (`tls`, `t.versions`,
// `c.not_after`), and each top-level field is a CEL variable of its own:
//
//	tls.exists(t, "TLSv1.0" in t.versions)
//	ssh.all(s, !("diffie-hellman-group1-sha1" in s.kex))
//	http.exists(h, h.tls && !("strict-transport-security" in h.headers))
//
// Lists are never nil after Normalize, so expressions need no has() guards.
// A service appears in a family's list once per port; a family with no
// service is an empty list.
type Facts struct {
	// Target is the address assessed.
	Target string `json:"target"`
	// AssetID is the inventory asset, "" for a one-off `reckon assess`.
	AssetID string `json:"asset_id"`
	// Role is the host's role (from the CMDB or a policy rule), "" if none.
	Role string `json:"role"`
	// Managed: the CMDB knows the host (verdict managed).
	Managed   bool     `json:"managed"`
	Hostnames []string `json:"hostnames"`
	// Collected is when collection finished.
	Collected time.Time `json:"collected"`

	Ports []Port `json:"ports"` // open ports only
	TLS   []TLS  `json:"tls"`
	SSH   []SSH  `json:"ssh"`
	HTTP  []HTTP `json:"http"`
	FTP   []FTP  `json:"ftp"`
	SNMP  []SNMP `json:"snmp"`
	SMB   []SMB  `json:"smb"`

	// Errors are collector problems that did not stop the assessment
	// ("ssl-enum-ciphers: timed out on 443/tcp"); a check whose facts are
	// missing because of one reads as not applicable or fails, never
	// passes silently.
	Errors []string `json:"errors"`
}

// Port is an open port and the service nmap (or a probe) found on it.
type Port struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // tcp, udp
	// Service is nmap's service name (ssh, http, ftp, telnet, snmp,
	// microsoft-ds ...); Tunnel is "ssl" when the service runs inside TLS
	// (nmap's ssl/http is Service "http", Tunnel "ssl").
	Service   string   `json:"service"`
	Tunnel    string   `json:"tunnel"`
	Product   string   `json:"product"`
	Version   string   `json:"version"`
	ExtraInfo string   `json:"extra_info"`
	CPE       []string `json:"cpe"`
}

// TLS is a TLS service on one port.
type TLS struct {
	Port int `json:"port"`
	// Versions offered, each one of "SSLv3", "TLSv1.0", "TLSv1.1",
	// "TLSv1.2", "TLSv1.3", oldest first.
	Versions []string `json:"versions"`
	Ciphers  []Cipher `json:"ciphers"`
	// LeastStrength is nmap's worst cipher grade, "A" (best) to "F"; "" when
	// ssl-enum-ciphers did not run.
	LeastStrength string   `json:"least_strength"`
	Warnings      []string `json:"warnings"` // ssl-enum-ciphers warnings
	// Cert is the leaf certificate; Chain the whole chain as sent, leaf
	// first (only the native probe sees more than the leaf).
	Cert  Cert   `json:"cert"`
	Chain []Cert `json:"chain"`
	// Source is "nmap", "probe" or "nmap+probe".
	Source string `json:"source"`
}

// Cipher is one cipher suite accepted under one protocol version.
type Cipher struct {
	Name    string `json:"name"`    // IANA name: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	Version string `json:"version"` // TLSv1.2
	// Kex is the key exchange as nmap's kex_info gives it ("rsa 2048",
	// "dh 1024", "secp256r1", "ecdh_x25519"); KexBits its size where it has
	// one (RSA and finite-field DH), else 0.
	Kex      string `json:"kex"`
	KexBits  int    `json:"kex_bits"`
	Strength string `json:"strength"` // nmap's grade A..F, "" from the probe
}

// Cert is an X.509 certificate.
type Cert struct {
	Subject    string   `json:"subject"`     // commonName=... as nmap prints it, or the DN
	CommonName string   `json:"common_name"` //
	SANs       []string `json:"sans"`        // DNS names and IP addresses
	Issuer     string   `json:"issuer"`
	KeyType    string   `json:"key_type"` // rsa, ec, ed25519, dsa
	KeyBits    int      `json:"key_bits"`
	// SigAlgo is the signature algorithm as OpenSSL names it
	// (sha256WithRSAEncryption, ecdsa-with-SHA256); SigHash its hash,
	// lower case: md5, sha1, sha256, sha384, sha512 ("" if none, ed25519).
	SigAlgo    string    `json:"sig_algo"`
	SigHash    string    `json:"sig_hash"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	SHA256     string    `json:"sha256"` // fingerprint, lower-case hex; "" if unknown
	SHA1       string    `json:"sha1"`
	// Verified: the chain verifies against the system roots for the name
	// probed; VerifyError says why not ("" when verified or not checked).
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error"`
}

// SSH is an SSH server on one port.
type SSH struct {
	Port     int    `json:"port"`
	Banner   string `json:"banner"`   // SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10
	Protocol string `json:"protocol"` // 2.0, 1.99, 1.5
	Software string `json:"software"` // OpenSSH_9.2p1
	// The server's KEXINIT lists, in its order of preference.
	Kex               []string  `json:"kex"`
	HostKeyAlgorithms []string  `json:"host_key_algorithms"`
	Ciphers           []string  `json:"ciphers"`
	MACs              []string  `json:"macs"`
	Compression       []string  `json:"compression"`
	HostKeys          []HostKey `json:"host_keys"`
	// AuthMethods the server offers before authentication (publickey,
	// password, keyboard-interactive ...); empty when not collected.
	AuthMethods []string `json:"auth_methods"`
}

// HostKey is one SSH host key.
type HostKey struct {
	Type        string `json:"type"` // ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256
	Bits        int    `json:"bits"`
	Fingerprint string `json:"fingerprint"` // SHA256:base64, as ssh-keygen -l prints it
}

// HTTP is an HTTP server on one port.
type HTTP struct {
	Port   int    `json:"port"`
	TLS    bool   `json:"tls"`
	Status int    `json:"status"` // of GET / (or HEAD), without following redirects
	Server string `json:"server"` // the Server header
	// Headers of that response, names in lower case; repeated headers are
	// joined with ", ".
	Headers map[string]string `json:"headers"`
	// Methods the server says it allows (OPTIONS / Allow, http-methods).
	Methods []string `json:"methods"`
	// RedirectsToHTTPS: a plain-HTTP service answers with a redirect to
	// an https:// URL.
	RedirectsToHTTPS bool   `json:"redirects_to_https"`
	Location         string `json:"location"`
	Title            string `json:"title"`
}

// FTP is an FTP server on one port.
type FTP struct {
	Port      int    `json:"port"`
	Banner    string `json:"banner"`
	Anonymous bool   `json:"anonymous"` // anonymous login accepted
}

// SNMP is an SNMP agent on one port.
type SNMP struct {
	Port int `json:"port"`
	// DefaultCommunities are the well-known communities (public, private
	// ...) the agent answered to; only such a list is ever tried.
	DefaultCommunities []string `json:"default_communities"`
	SysDescr           string   `json:"sys_descr"`
}

// SMB is an SMB server.
type SMB struct {
	Port int `json:"port"` // 0 when nmap did not say
	// Dialects offered: "NT LM 0.12" (SMBv1), "2.0.2", "2.1", "3.0",
	// "3.0.2", "3.1.1" (nmap 7.93's 202..311 and newer 2:0:2..3:1:1 both
	// normalised to this form).
	Dialects []string `json:"dialects"`
	SMBv1    bool     `json:"smbv1"`
	// Signing is "required", "enabled" (offered, not required) or
	// "disabled"; "" when not collected.
	Signing string `json:"signing"`
	// GuestAccess: the server let nmap in as guest.
	GuestAccess bool `json:"guest_access"`
}

// Normalize makes every nil list and map empty, so CEL sees `[]` and `{}`
// rather than null.
func (f *Facts) Normalize() {
	f.Hostnames = nonNil(f.Hostnames)
	f.Ports = nonNil(f.Ports)
	f.TLS = nonNil(f.TLS)
	f.SSH = nonNil(f.SSH)
	f.HTTP = nonNil(f.HTTP)
	f.FTP = nonNil(f.FTP)
	f.SNMP = nonNil(f.SNMP)
	f.SMB = nonNil(f.SMB)
	f.Errors = nonNil(f.Errors)
	for i := range f.Ports {
		f.Ports[i].CPE = nonNil(f.Ports[i].CPE)
	}
	for i := range f.TLS {
		t := &f.TLS[i]
		t.Versions = nonNil(t.Versions)
		t.Ciphers = nonNil(t.Ciphers)
		t.Warnings = nonNil(t.Warnings)
		t.Chain = nonNil(t.Chain)
		t.Cert.SANs = nonNil(t.Cert.SANs)
		for j := range t.Chain {
			t.Chain[j].SANs = nonNil(t.Chain[j].SANs)
		}
	}
	for i := range f.SSH {
		s := &f.SSH[i]
		s.Kex = nonNil(s.Kex)
		s.HostKeyAlgorithms = nonNil(s.HostKeyAlgorithms)
		s.Ciphers = nonNil(s.Ciphers)
		s.MACs = nonNil(s.MACs)
		s.Compression = nonNil(s.Compression)
		s.HostKeys = nonNil(s.HostKeys)
		s.AuthMethods = nonNil(s.AuthMethods)
	}
	for i := range f.HTTP {
		if f.HTTP[i].Headers == nil {
			f.HTTP[i].Headers = map[string]string{}
		}
		f.HTTP[i].Methods = nonNil(f.HTTP[i].Methods)
	}
	for i := range f.SNMP {
		f.SNMP[i].DefaultCommunities = nonNil(f.SNMP[i].DefaultCommunities)
	}
	for i := range f.SMB {
		f.SMB[i].Dialects = nonNil(f.SMB[i].Dialects)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
