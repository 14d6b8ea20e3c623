//go:build linux

package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	Require(t, "dnsmasq")
	if !h.IP.IsValid() {
		t.Fatalf("lab: DHCP server %s needs a static address", h.Name)
	}
	dir := h.dir("dnsmasq")
	base := h.lab.Subnet.Addr().As4()
	first, last := base, base
	first[3], last[3] = 100, 199
	s := &DHCPServer{LeaseFile: filepath.Join(dir, "leases"), First: netip.AddrFrom4(first), Last: netip.AddrFrom4(last)}
	conf := fmt.Sprintf(`# reckon lab: DHCP only, on the lab interface only
port=0
interface=%s
except-interface=lo
bind-interfaces
no-resolv
no-hosts
dhcp-range=%s,%s,255.255.255.0,1h
dhcp-leasefile=%s
dhcp-authoritative
# the pool is the lab's alone: skip the 3s ping of each address before it is
# offered, which dnsmasq does one client at a time
no-ping
log-dhcp
`, h.Iface, s.First, s.Last, s.LeaseFile)
	confFile := writeFile(t, dir, "dnsmasq.conf", conf, 0o644)
	s.Proc = h.Start("dnsmasq", "--no-daemon", "--conf-file="+confFile, "--log-facility=-", "--pid-file="+filepath.Join(dir, "pid"))
	if err := waitLog(s.Proc, "DHCP, IP range", 10*time.Second); err != nil {
		t.Fatalf("lab: dnsmasq on %s: %v", h.Name, err)
	}
	return s
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
// returns once the port answers, and fails the test otherwise.
func (h *Host) SSHServer() *Proc {
	t := h.lab.t
	t.Helper()
	const sshd = "/usr/sbin/sshd" // sshd re-executes itself, so wants its absolute path
	if _, err := os.Stat(sshd); err != nil {
		Require(t, "sshd")
	}
	Require(t, "ssh-keygen")
	if !h.IP.IsValid() {
		t.Fatalf("lab: sshd on %s needs an address", h.Name)
	}
	// Its privilege separation folder, which the openssh-server package's
	// service would create; empty and shared by every sshd.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	dir := h.dir("sshd")
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := run(exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.Hostname, "-f", key)); err != nil {
		t.Fatalf("lab: %v", err)
	}
	conf := writeFile(t, dir, "sshd_config", fmt.Sprintf(`# reckon lab: a host key to show, no way in
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
	p := h.Start(sshd, "-D", "-e", "-f", conf)
	h.waitTCP(p, netip.AddrPortFrom(h.IP, 22))
	return p
}

// HTTPServer starts nginx on the host's address, port 80, answering every
// request with body; its configuration, pid and temporary files live in the
// lab's folder. It returns once the port answers, and fails the test
// otherwise.
func (h *Host) HTTPServer(body string) *Proc {
	t := h.lab.t
	t.Helper()
	Require(t, "nginx")
	if !h.IP.IsValid() {
		t.Fatalf("lab: nginx on %s needs an address", h.Name)
	}
	dir := h.dir("nginx")
	conf := writeFile(t, dir, "nginx.conf", fmt.Sprintf(`# reckon lab
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
	server {
		listen %[2]s:80;
		location / {
			default_type text/plain;
			return 200 %[3]q;
		}
	}
}
`, dir, h.IP, body+"\n"), 0o644)
	p := h.Start("nginx", "-p", dir, "-c", conf, "-e", "stderr")
	h.waitTCP(p, netip.AddrPortFrom(h.IP, 80))
	return p
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
// (over its loopback, so the wire stays quiet), or fails the test.
func (h *Host) waitTCP(p *Proc, addr netip.AddrPort) {
	t := h.lab.t
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := h.DialContext(ctx, "tcp", addr.String())
		cancel()
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("lab: %s exited (%v):\n%s", p.Name, p.Err(), tail(p.Log(), 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab: %s: %s does not answer: %v\n%s", p.Name, addr, err, tail(p.Log(), 2000))
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

func (h *Host) dir(what string) string {
	dir := filepath.Join(h.lab.dir, h.Name+"-"+what)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.lab.t.Fatalf("lab: %v", err)
	}
	return dir
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
