//go:build linux

package lab

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Services in a weak and a hardened flavour, for assessment tests: the weak
// one fails the baseline policy's checks of its family, the hardened one
// passes most of them. Some fail on both: the certificates are self-signed,
// vsftpd speaks clear-text FTP, and OpenSSH's defaults still offer
// hmac-sha1. HTTPServer is the weak web server (nginx's default
// server_tokens on, no security headers, no redirect to HTTPS);
// FTPServer(true) and SNMPServer("public") are the weak FTP and SNMP
// servers, FTPServer(false) and SNMPServer with a long random community
// the hardened ones.

// TLSServer starts nginx on the host's address and port, over TLS with a
// self-signed certificate made for this call, answering every request with
// a short page. Weak, it speaks TLS 1.0 only, with every cipher OpenSSL
// still has (DEFAULT:@SECLEVEL=0), an RSA-1024 certificate signed with
// SHA-1, and nginx's defaults otherwise (its version in the Server header,
// no security headers); hardened, TLS 1.2 and 1.3 with ECDHE and AEAD
// suites only, an RSA-2048 certificate signed with SHA-256, server_tokens
// off and the security headers of HardenedWebServer. Its certificate's
// SHA-256 is in the host's Services (and the ground truth). Calling it
// again for a port whose server was stopped starts one with a new
// certificate, which replaces the port's entry in Services. It returns once
// the port answers, and fails the test otherwise.
//
// It is nginx rather than `openssl s_server -www`, which serves one
// connection at a time and never answers a request other than GET: an
// OPTIONS or TRACE (nmap's http-methods, the collector's HTTP probe) holds
// it until the client gives up, and every connection queued behind times
// out.
func (h *Host) TLSServer(port uint16, weak bool) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("nginx")
	p, err := h.tlsServer(port, weak)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) tlsServer(port uint16, weak bool) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("nginx on %s needs an address", h.Name)
	}
	what := fmt.Sprintf("tls-%d", port)
	dir, err := h.dir(what)
	if err != nil {
		return nil, err
	}
	spec := certSpec{Bits: 2048, SigAlg: x509.SHA256WithRSA}
	site := nginxSite{Protocols: hardenedProtocols, Ciphers: hardenedCiphers, Hardened: true}
	if weak {
		spec = certSpec{Bits: 1024, SigAlg: x509.SHA1WithRSA}
		// TLS 1.0 needs security level 0 in OpenSSL 3 (SHA-1 in the
		// handshake), which also lets the 1024-bit key in.
		site = nginxSite{Protocols: "TLSv1", Ciphers: "DEFAULT:@SECLEVEL=0"}
	}
	if site.Cert, err = makeCert(dir, h.Hostname, h.IP, spec); err != nil {
		return nil, fmt.Errorf("%s: certificate: %w", h.Name, err)
	}
	return h.nginxWith(what, port, fmt.Sprintf("reckon lab: %s, TLS on %d", h.Hostname, port), site)
}

// SSHServerWith starts OpenSSH's sshd on the host's address and port, with
// a configuration and a host key of its own, in which nobody can log in
// (AllowUsers names no user; sshd still offers every method it is
// configured with). Weak, it has an RSA-1024 host key and adds to
// OpenSSH's defaults the SHA-1 key exchanges (diffie-hellman-group14-sha1
// and -group1-sha1), CBC and 3DES ciphers (aes128-cbc, 3des-cbc), the
// hmac-sha1 and hmac-md5 MACs and ssh-rsa signatures, and offers password
// and keyboard-interactive authentication; hardened, it has an ed25519 host
// key, OpenSSH's default algorithms, and public keys as the only
// authentication offered. The host key's fingerprint is in the host's
// Services (and the ground truth). It returns once the port answers, and
// fails the test otherwise.
func (h *Host) SSHServerWith(port uint16, weak bool) *Proc {
	t := h.lab.t
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		h.lab.require("sshd")
	}
	h.lab.require("ssh-keygen")
	p, err := h.sshServerWith(port, weak)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) sshServerWith(port uint16, weak bool) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("sshd on %s needs an address", h.Name)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	dir, err := h.dir(fmt.Sprintf("sshd-%d", port))
	if err != nil {
		return nil, err
	}
	keygen := []string{"-t", "ed25519"}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	algorithms := ""
	auth := "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
	if weak {
		// OpenSSH 9.2 still accepts every one of these at configuration
		// time (sshd -t), diffie-hellman-group1-sha1 and 3des-cbc included.
		keygen = []string{"-t", "rsa", "-b", "1024"}
		key = filepath.Join(dir, "ssh_host_rsa_key")
		algorithms = `KexAlgorithms +diffie-hellman-group14-sha1,diffie-hellman-group1-sha1
Ciphers +aes128-cbc,3des-cbc
MACs +hmac-sha1,hmac-md5
HostKeyAlgorithms +ssh-rsa
`
		auth = "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nPermitEmptyPasswords no\n"
	}
	for _, f := range []string{key, key + ".pub"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	if err := run(exec.Command("ssh-keygen", append([]string{"-q", "-N", "", "-C", h.Hostname, "-f", key}, keygen...)...)); err != nil {
		return nil, err
	}
	keyType, fp, err := sshFingerprint(key + ".pub")
	if err != nil {
		return nil, err
	}
	var werr errorCollector
	conf := writeFile(&werr, dir, "sshd_config", fmt.Sprintf(`# reckon lab: weak=%[5]t; methods to show, no way in
ListenAddress %[1]s
HostKey %[2]s
PidFile %[3]s
UsePAM no
StrictModes no
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile none
AllowUsers reckon-lab-nobody
%[4]s%[6]s`, netip.AddrPortFrom(h.IP, port), key, filepath.Join(dir, "sshd.pid"), algorithms, weak, auth), 0o600)
	if werr.err != nil {
		return nil, werr.err
	}
	p, err := h.start(sshdPath, "-D", "-e", "-f", conf)
	if err != nil {
		return nil, err
	}
	if err := h.waitTCP(p, netip.AddrPortFrom(h.IP, port)); err != nil {
		p.Stop()
		return nil, err
	}
	h.setService(Service{Port: port, Proto: "tcp", Name: "ssh", Product: "OpenSSH", SSHHostKeyType: keyType, SSHHostKeySHA256: fp})
	return p, nil
}

// HardenedWebServer starts nginx on the host's address answering every
// request with body over HTTPS on port 443, and redirecting plain HTTP on
// port 80 there (301 to https://$host$request_uri). It is the hardened
// counterpart of HTTPServer: server_tokens off; TLS 1.2 and 1.3 with ECDHE
// and AEAD suites only; and Strict-Transport-Security, X-Frame-Options,
// X-Content-Type-Options, Content-Security-Policy and Referrer-Policy on
// every response. Its certificate is self-signed, made for this call (RSA
// 2048, SHA-256), and its SHA-256 is in the host's Services (and the ground
// truth). Its files live in the lab's folder, apart from HTTPServer's and
// HTTPSServer's. It returns once both ports answer, and fails the test
// otherwise.
func (h *Host) HardenedWebServer(body string) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("nginx")
	p, err := h.hardenedWebServer(body)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) hardenedWebServer(body string) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("nginx on %s needs an address", h.Name)
	}
	dir, err := h.dir("nginx-hardened")
	if err != nil {
		return nil, err
	}
	cert, err := selfSigned(dir, h.Hostname, h.IP)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate: %w", h.Name, err)
	}
	return h.nginxWith("nginx-hardened", 443, body, nginxSite{Cert: cert, Protocols: hardenedProtocols, Ciphers: hardenedCiphers,
		Hardened: true, RedirectFrom: 80})
}

// The TLS versions and suites of the hardened servers.
const (
	hardenedProtocols = "TLSv1.2 TLSv1.3"
	hardenedCiphers   = "ECDHE+AESGCM:ECDHE+CHACHA20"
)

// nginxSite is how nginxWith configures nginx beyond a port and a page.
type nginxSite struct {
	// Cert, when set, serves the port with TLS.
	Cert *certificate
	// Protocols and Ciphers are ssl_protocols and ssl_ciphers; "" keeps
	// nginx's defaults.
	Protocols, Ciphers string
	// Hardened: server_tokens off and securityHeaders on every response.
	Hardened bool
	// RedirectFrom, when not 0, is a plain-HTTP port of the same nginx that
	// answers everything with a 301 to https://$host$request_uri.
	RedirectFrom uint16
}

// securityHeaders are what a hardened nginx adds to every response.
var securityHeaders = [][2]string{
	{"Strict-Transport-Security", `"max-age=63072000; includeSubDomains"`},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Content-Security-Policy", `"default-src 'self'; frame-ancestors 'none'"`},
	{"Referrer-Policy", "no-referrer"},
}

// nginxWith serves body on the host's address and port as site says, from
// a folder of its own named what. nginx is nginxWith with a bare site.
func (h *Host) nginxWith(what string, port uint16, body string, site nginxSite) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("nginx on %s needs an address", h.Name)
	}
	dir, err := h.dir(what)
	if err != nil {
		return nil, err
	}
	svc := Service{Port: port, Proto: "tcp", Name: "http", Product: "nginx"}
	var httpConf, server strings.Builder
	if site.Cert == nil {
		fmt.Fprintf(&server, "\t\tlisten %s;\n", netip.AddrPortFrom(h.IP, port))
	} else {
		fmt.Fprintf(&server, "\t\tlisten %s ssl;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n",
			netip.AddrPortFrom(h.IP, port), site.Cert.CertFile, site.Cert.KeyFile)
		svc.Name, svc.TLSCertSHA256 = "https", site.Cert.SHA256
		if site.Protocols != "" {
			fmt.Fprintf(&server, "\t\tssl_protocols %s;\n", site.Protocols)
		}
		if site.Ciphers != "" {
			fmt.Fprintf(&server, "\t\tssl_ciphers %q;\n\t\tssl_prefer_server_ciphers on;\n", site.Ciphers)
		}
	}
	fmt.Fprintf(&server, "\t\tserver_name %s;\n", h.Hostname)
	if site.Hardened {
		httpConf.WriteString("\tserver_tokens off;\n")
		for _, hd := range securityHeaders {
			fmt.Fprintf(&server, "\t\tadd_header %s %s always;\n", hd[0], hd[1])
		}
	}
	fmt.Fprintf(&server, "\t\tlocation / {\n\t\t\tdefault_type text/plain;\n\t\t\treturn 200 %q;\n\t\t}\n", body+"\n")
	redirect := ""
	if site.RedirectFrom != 0 {
		redirect = fmt.Sprintf("\tserver {\n\t\tlisten %s;\n\t\tserver_name %s;\n\t\treturn 301 https://$host$request_uri;\n\t}\n",
			netip.AddrPortFrom(h.IP, site.RedirectFrom), h.Hostname)
	}
	var werr errorCollector
	conf := writeFile(&werr, dir, "nginx.conf", fmt.Sprintf(`# reckon lab
daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
%[2]s	server {
%[3]s	}
%[4]s}
`, dir, httpConf.String(), server.String(), redirect), 0o644)
	if werr.err != nil {
		return nil, werr.err
	}
	p, err := h.start("nginx", "-p", dir, "-c", conf, "-e", "stderr")
	if err != nil {
		return nil, err
	}
	ports := []uint16{port}
	if site.RedirectFrom != 0 {
		ports = append(ports, site.RedirectFrom)
	}
	for _, pt := range ports {
		if err := h.waitTCP(p, netip.AddrPortFrom(h.IP, pt)); err != nil {
			p.Stop()
			return nil, err
		}
	}
	h.setService(svc)
	if site.RedirectFrom != 0 {
		h.setService(Service{Port: site.RedirectFrom, Proto: "tcp", Name: "http", Product: "nginx"})
	}
	return p, nil
}

// setService records s, replacing what the host had on its port.
func (h *Host) setService(s Service) {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	for i, old := range h.services {
		if old.Port == s.Port && old.Proto == s.Proto {
			h.services[i] = s
			return
		}
	}
	h.services = append(h.services, s)
}
