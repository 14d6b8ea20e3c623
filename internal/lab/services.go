//go:build linux

package lab

import (
	"bufio"
	"context"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DHCPServer is dnsmasq serving DHCP (and nothing else) on a host's
// interface.
type DHCPServer struct {
	Proc      *Proc
	LeaseFile string
	// First and Last bound the pool.
	First, Last netip.Addr
}

// Lease is one line of dnsmasq's lease file.
type Lease struct {
	Expiry   time.Time
	MAC      net.HardwareAddr
	IP       netip.Addr
	Hostname string // empty when the client sent none
}

// DHCPServer starts dnsmasq on the host as the lab's DHCP server, leasing
// .100 to .199 of the subnet for an hour. DNS is off (port 0), it binds the
// lab interface only, and its configuration, lease file and log live in
// the lab's folder. The host needs a static address. It fails the test if
// dnsmasq does not come up.
func (h *Host) DHCPServer() *DHCPServer {
	t := h.lab.t
	t.Helper()
	h.lab.require("dnsmasq")
	s, err := h.dhcpServer()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return s
}

func (h *Host) dhcpServer() (*DHCPServer, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("DHCP server %s needs a static address", h.Name)
	}
	dir, err := h.dir("dnsmasq")
	if err != nil {
		return nil, err
	}
	base := h.lab.Subnet.Addr().As4()
	first, last := base, base
	first[3], last[3] = 100, 199
	s := &DHCPServer{LeaseFile: filepath.Join(dir, "leases"), First: netip.AddrFrom4(first), Last: netip.AddrFrom4(last)}
	mask := net.IP(net.CIDRMask(h.lab.Subnet.Bits(), 32)).String()
	var werr errorCollector
	confFile := writeFile(&werr, dir, "dnsmasq.conf", fmt.Sprintf(`# reckon lab: DHCP only, on the lab interface only
port=0
interface=%s
except-interface=lo
bind-interfaces
no-resolv
no-hosts
dhcp-range=%s,%s,%s,1h
dhcp-leasefile=%s
dhcp-authoritative
# the pool is the lab's alone: skip the 3s ping of each address before it is
# offered, which dnsmasq does one client at a time
no-ping
log-dhcp
`, h.Iface, s.First, s.Last, mask, s.LeaseFile), 0o644)
	if werr.err != nil {
		return nil, werr.err
	}
	if s.Proc, err = h.start("dnsmasq", "--no-daemon", "--conf-file="+confFile, "--log-facility=-", "--pid-file="+filepath.Join(dir, "pid")); err != nil {
		return nil, err
	}
	if err := waitLog(s.Proc, "DHCP, IP range", 10*time.Second); err != nil {
		return nil, fmt.Errorf("dnsmasq on %s: %w", h.Name, err)
	}
	h.addService(Service{Port: 67, Proto: "udp", Name: "dhcps", Product: "dnsmasq"})
	h.lab.mu.Lock()
	if h.lab.dhcp == nil {
		h.lab.dhcp = s
	}
	h.lab.mu.Unlock()
	return s, nil
}

// Leases reads the lease file.
func (s *DHCPServer) Leases() ([]Lease, error) {
	b, err := os.ReadFile(s.LeaseFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Lease
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		// expiry mac ip hostname client-id
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		exp, err1 := strconv.ParseInt(f[0], 10, 64)
		mac, err2 := net.ParseMAC(f[1])
		ip, err3 := netip.ParseAddr(f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", s.LeaseFile, sc.Text(), err)
		}
		l := Lease{Expiry: time.Unix(exp, 0), MAC: mac, IP: ip}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		out = append(out, l)
	}
	return out, nil
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$`)

// DHCPClient runs dhclient on the host, sending its Hostname (option 12),
// until the host holds a lease; it returns the address and sets h.IP.
// dhclient keeps running (renewing) until the test ends. Its lease, pid and
// configuration files are the lab's own, and its script only sets the
// address on the lab interface: nothing outside the lab is touched. Unlike
// most helpers it does not fail the test itself, so several hosts may ask
// at once, from goroutines of their own.
func (h *Host) DHCPClient(ctx context.Context) (netip.Addr, error) {
	if _, err := exec.LookPath("dhclient"); err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w (Debian package isc-dhcp-client)", h.Name, err)
	}
	if !hostnameRE.MatchString(h.Hostname) {
		return netip.Addr{}, fmt.Errorf("%s: hostname %q is not a DNS label", h.Name, h.Hostname)
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		return netip.Addr{}, err
	}
	dir := filepath.Join(h.lab.dir, h.Name+"-dhclient")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return netip.Addr{}, err
	}
	var werr errorCollector
	conf := writeFile(&werr, dir, "dhclient.conf", fmt.Sprintf(`send host-name "%s";
request subnet-mask, broadcast-address, routers;
timeout 30;
retry 1;
`, h.Hostname), 0o644)
	script := writeFile(&werr, dir, "dhclient-script", fmt.Sprintf(`#!/bin/sh
# reckon lab: set or drop the leased address on the lab interface, nothing else
ip=%s
case "$reason" in
PREINIT) "$ip" link set dev "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT)
	if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
		"$ip" -4 addr flush dev "$interface"
	fi
	"$ip" -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
EXPIRE|FAIL|RELEASE|STOP)
	[ -n "$old_ip_address" ] && "$ip" -4 addr del "$old_ip_address/$old_subnet_mask" dev "$interface" ;;
esac
exit 0
`, ipBin), 0o755)
	if werr.err != nil {
		return netip.Addr{}, werr.err
	}
	p, err := h.start("dhclient", "-d", "-v", "-1", "-cf", conf, "-lf", filepath.Join(dir, "leases"),
		"-pf", filepath.Join(dir, "pid"), "-sf", script, h.Iface)
	if err != nil {
		return netip.Addr{}, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ip, err := h.Addr(ctx)
		if err == nil && ip.IsValid() {
			h.IP = ip
			// dhclient's socket on 0.0.0.0:68 is open to a UDP scan too.
			h.addService(Service{Port: 68, Proto: "udp", Name: "dhcpc", Product: "isc-dhclient"})
			return ip, nil
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("%s: no lease: %w; dhclient said:\n%s", h.Name, ctx.Err(), tail(p.Log(), 2000))
		case <-p.Done():
			return netip.Addr{}, fmt.Errorf("%s: dhclient exited (%v):\n%s", h.Name, p.Err(), tail(p.Log(), 2000))
		case <-tick.C:
		}
	}
}

// SSHServer starts OpenSSH's sshd on the host's address, port 22, with a
// configuration and an ed25519 host key of its own; nobody can log in. It
// returns once the port answers, and fails the test otherwise. The host
// key's fingerprint is in the host's Services (and the ground truth).
func (h *Host) SSHServer() *Proc {
	t := h.lab.t
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		h.lab.require("sshd")
	}
	h.lab.require("ssh-keygen")
	p, err := h.sshServer()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

const sshdPath = "/usr/sbin/sshd" // sshd re-executes itself, so wants its absolute path

func (h *Host) sshServer() (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("sshd on %s needs an address", h.Name)
	}
	// Its privilege separation folder, which the openssh-server package's
	// service would create; empty and shared by every sshd.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	dir, err := h.dir("sshd")
	if err != nil {
		return nil, err
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := run(exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.Hostname, "-f", key)); err != nil {
		return nil, err
	}
	keyType, fp, err := sshFingerprint(key + ".pub")
	if err != nil {
		return nil, err
	}
	var werr errorCollector
	conf := writeFile(&werr, dir, "sshd_config", fmt.Sprintf(`# reckon lab: a host key to show, no way in
ListenAddress %s:22
HostKey %s
PidFile %s
UsePAM no
StrictModes no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
`, h.IP, key, filepath.Join(dir, "sshd.pid")), 0o600)
	if werr.err != nil {
		return nil, werr.err
	}
	p, err := h.start(sshdPath, "-D", "-e", "-f", conf)
	if err != nil {
		return nil, err
	}
	if err := h.waitTCP(p, netip.AddrPortFrom(h.IP, 22)); err != nil {
		return nil, err
	}
	h.addService(Service{Port: 22, Proto: "tcp", Name: "ssh", Product: "OpenSSH", SSHHostKeyType: keyType, SSHHostKeySHA256: fp})
	return p, nil
}

// sshFingerprint reads an OpenSSH public key file and returns its type and
// its SHA256 fingerprint as ssh-keygen -lf prints it ("SHA256:" and the
// unpadded base64 of the key blob's SHA-256).
func sshFingerprint(pubFile string) (keyType, fingerprint string, err error) {
	b, err := os.ReadFile(pubFile)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "", "", fmt.Errorf("%s: not an OpenSSH public key", pubFile)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", pubFile, err)
	}
	sum := sha256.Sum256(blob)
	return f[0], "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

// HTTPServer starts nginx on the host's address, port 80, answering every
// request with body; its configuration, pid and temporary files live in the
// lab's folder. It returns once the port answers, and fails the test
// otherwise.
func (h *Host) HTTPServer(body string) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("nginx")
	p, err := h.nginx("nginx", 80, body, nil)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

// HTTPSServer starts nginx on the host's address, port 443, with TLS,
// answering every request with body. Its certificate is self-signed, made
// for this call (RSA 2048, CN and DNS name the host's Hostname, and its
// address), and its SHA-256 is in the host's Services (and the ground
// truth). The configuration, key and files live in the lab's folder, apart
// from HTTPServer's. It returns once the port answers, and fails the test
// otherwise.
func (h *Host) HTTPSServer(body string) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("nginx")
	p, err := h.httpsServer(body)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) httpsServer(body string) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("nginx on %s needs an address", h.Name)
	}
	dir, err := h.dir("nginx-tls")
	if err != nil {
		return nil, err
	}
	cert, err := selfSigned(dir, h.Hostname, h.IP)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate: %w", h.Name, err)
	}
	return h.nginx("nginx-tls", 443, body, cert)
}

// nginx serves body on the host's address and port, with TLS when cert is
// not nil, from a folder of its own named what.
func (h *Host) nginx(what string, port uint16, body string, cert *certificate) (*Proc, error) {
	return h.nginxWith(what, port, body, nginxSite{Cert: cert})
}

// certificate is a self-signed TLS certificate in PEM files.
type certificate struct {
	CertFile, KeyFile string
	// SHA256 is the lowercase hex SHA-256 of the certificate's DER.
	SHA256 string
}

// selfSigned makes a certificate for hostname and ip, valid from an hour
// ago for ten years, and writes it and its key into dir.
func selfSigned(dir, hostname string, ip netip.Addr) (*certificate, error) {
	return makeCert(dir, hostname, ip, certSpec{Bits: 2048, SigAlg: x509.SHA256WithRSA})
}

// certSpec is a self-signed certificate's RSA key size and signature
// algorithm.
type certSpec struct {
	Bits   int
	SigAlg x509.SignatureAlgorithm
}

// makeCert is selfSigned with the key size and signature algorithm of spec
// (a weak one, RSA 1024 with SHA-1, included). It overwrites the files of
// an earlier call for dir.
func makeCert(dir, hostname string, ip netip.Addr, spec certSpec) (*certificate, error) {
	key, err := rsa.GenerateKey(cryptorand.Reader, spec.Bits)
	if err != nil {
		return nil, err
	}
	serial, err := cryptorand.Int(cryptorand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"reckon lab"}},
		DNSNames:              []string{hostname},
		IPAddresses:           []net.IP{ip.AsSlice()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    spec.SigAlg,
	}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	c := &certificate{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), SHA256: hex.EncodeToString(sum[:])}
	var werr errorCollector
	writeFile(&werr, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	writeFile(&werr, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})), 0o600)
	return c, werr.err
}

// SNMPServer starts net-snmp's snmpd on the host's address, UDP port 161,
// answering SNMPv1 and v2c reads for community and nothing else. Its
// sysName is the host's Hostname and its sysDescr "reckon lab <Hostname>
// (net-snmp)"; both, and the community, are in the host's Services (and
// the ground truth). It reads no configuration but its own (-C), keeps its
// persistent files in the lab's folder, and listens on nothing else (no
// SMUX, no AgentX). It returns once snmpd says it runs, and fails the test
// otherwise.
func (h *Host) SNMPServer(community string) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("snmpd")
	p, err := h.snmpServer(community)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

var communityRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

func (h *Host) snmpServer(community string) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("snmpd on %s needs an address", h.Name)
	}
	if !communityRE.MatchString(community) {
		return nil, fmt.Errorf("snmpd on %s: community %q: want %s", h.Name, community, communityRE)
	}
	dir, err := h.dir("snmpd")
	if err != nil {
		return nil, err
	}
	svc := Service{Port: 161, Proto: "udp", Name: "snmp", Product: "net-snmp",
		SNMPCommunity: community, SNMPSysName: h.Hostname, SNMPSysDescr: "reckon lab " + h.Hostname + " (net-snmp)"}
	var werr errorCollector
	conf := writeFile(&werr, dir, "snmpd.conf", fmt.Sprintf(`# reckon lab: read-only v1/v2c for one community; the address is on the command line
rocommunity %s
sysName %s
sysDescr %s
sysLocation reckon lab %s
sysContact nobody@reckon.invalid
sysServices 72
dontLogTCPWrappersConnects yes
# the [snmp] settings: files of its own, no MIB files to parse
[snmp] persistentDir %s
[snmp] mibs :
`, community, svc.SNMPSysName, svc.SNMPSysDescr, h.lab.ID, filepath.Join(dir, "persist")), 0o644)
	if werr.err != nil {
		return nil, werr.err
	}
	// -I -smux: no SMUX listener on tcp/199 of every address.
	p, err := h.start("snmpd", "-f", "-Lo", "-C", "-c", conf, "-I", "-smux", "-p", filepath.Join(dir, "snmpd.pid"), "udp:"+h.IP.String()+":161")
	if err != nil {
		return nil, err
	}
	if err := waitLog(p, "NET-SNMP version", 10*time.Second); err != nil {
		return nil, fmt.Errorf("snmpd on %s: %w", h.Name, err)
	}
	h.addService(svc)
	return p, nil
}

// FTPServer starts vsftpd on the host's address, port 21, with a
// configuration of its own; with anonymous, "anonymous" (or "ftp") logs in
// to a read-only folder holding README; without, nobody can log in. It
// returns once the port answers, and fails the test otherwise. vsftpd
// needs the system user "ftp" for anonymous logins, which its Debian
// package creates.
func (h *Host) FTPServer(anonymous bool) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("vsftpd")
	p, err := h.ftpServer(anonymous)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) ftpServer(anonymous bool) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("vsftpd on %s needs an address", h.Name)
	}
	dir, err := h.dir("vsftpd")
	if err != nil {
		return nil, err
	}
	// secure_chroot_dir: empty, owned by root and not writable by others;
	// anon_root: where an anonymous login is chrooted, not writable by the
	// ftp user (vsftpd refuses a writable chroot).
	empty, root := filepath.Join(dir, "empty"), filepath.Join(dir, "pub")
	for _, d := range []string{empty, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var werr errorCollector
	writeFile(&werr, root, "README", "reckon lab FTP on "+h.Hostname+"\n", 0o644)
	// Without anonymous logins, local ones are on (vsftpd refuses to run
	// with neither) but the user list allowed is empty, so every USER is
	// refused before PAM is asked.
	access := "anonymous_enable=YES\nanon_root=" + root + "\nlocal_enable=NO\n"
	if !anonymous {
		nobody := writeFile(&werr, dir, "users-allowed", "", 0o644)
		access = "anonymous_enable=NO\nlocal_enable=YES\nuserlist_enable=YES\nuserlist_deny=NO\nuserlist_file=" + nobody + "\n"
	}
	conf := writeFile(&werr, dir, "vsftpd.conf", fmt.Sprintf(`# reckon lab
listen=YES
listen_ipv6=NO
listen_address=%[1]s
listen_port=21
background=NO
%[2]swrite_enable=NO
anon_upload_enable=NO
anon_mkdir_write_enable=NO
dirmessage_enable=NO
secure_chroot_dir=%[3]s
syslog_enable=NO
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=%[4]s
`, h.IP, access, empty, filepath.Join(dir, "vsftpd.log")), 0o600)
	if werr.err != nil {
		return nil, werr.err
	}
	p, err := h.start("vsftpd", conf)
	if err != nil {
		return nil, err
	}
	if err := h.waitTCP(p, netip.AddrPortFrom(h.IP, 21)); err != nil {
		return nil, err
	}
	h.addService(Service{Port: 21, Proto: "tcp", Name: "ftp", Product: "vsftpd", FTPAnonymous: anonymous})
	return p, nil
}

// Ping sends count ICMP echo requests to ip, 0.2s apart.
func (h *Host) Ping(ctx context.Context, ip netip.Addr, count int) error {
	_, err := h.Exec(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", ip.String())
	return err
}

// Arping sends count ARP requests for ip out of the host's interface, and
// says whether any was answered; an address nobody holds is no error.
func (h *Host) Arping(ctx context.Context, ip netip.Addr, count int) (answered bool, err error) {
	_, err = h.Exec(ctx, "arping", "-q", "-c", strconv.Itoa(count), "-w", "5", "-I", h.Iface, ip.String())
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 1 {
		return false, nil // iputils arping: sent, no reply
	}
	return err == nil, err
}

// HTTPGet fetches url with curl from the host and returns the body.
func (h *Host) HTTPGet(ctx context.Context, url string) (string, error) {
	out, err := h.Exec(ctx, "curl", "-sS", "--fail", "--max-time", "10", url)
	return string(out), err
}

// SSHKeyscan asks the SSH server at ip for its host keys, as ssh-keyscan
// prints them.
func (h *Host) SSHKeyscan(ctx context.Context, ip netip.Addr) (string, error) {
	out, err := h.Command(ctx, "ssh-keyscan", "-T", "5", ip.String()).Output()
	if err != nil {
		return "", fmt.Errorf("%s: ssh-keyscan %s: %w", h.Name, ip, err)
	}
	return string(out), nil
}

// waitTCP waits until addr accepts a connection made from the host itself
// (over its loopback, so the wire stays quiet).
func (h *Host) waitTCP(p *Proc, addr netip.AddrPort) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := h.DialContext(ctx, "tcp", addr.String())
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, p.Err(), tail(p.Log(), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s does not answer: %v\n%s", p.Name, addr, err, tail(p.Log(), 2000))
		}
	}
}

// waitLog waits until the program's log holds want.
func waitLog(p *Proc, want string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Log(), want) {
		select {
		case <-p.Done():
			return fmt.Errorf("exited (%v):\n%s", p.Err(), tail(p.Log(), 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in its log after %s:\n%s", want, d, tail(p.Log(), 2000))
		}
	}
	return nil
}

// dir makes and returns the host's folder for what, in the lab's folder.
func (h *Host) dir(what string) (string, error) {
	dir := filepath.Join(h.lab.dir, h.Name+"-"+what)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

func writeFile(t interface{ Fatalf(string, ...any) }, dir, name, content string, mode os.FileMode) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return path
}

// errorCollector keeps the first failure of writeFile for a caller that
// must not fail the test.
type errorCollector struct{ err error }

func (e *errorCollector) Fatalf(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}
