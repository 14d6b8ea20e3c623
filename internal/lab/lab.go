//go:build linux

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// Prefix starts the name of every namespace a lab creates.
const Prefix = "rklab-"

// HostSpec describes one host of a lab.
type HostSpec struct {
	// Name is a short label, [a-z][a-z0-9-]{0,15}, unique in the lab.
	Name string
	// MAC of the host's interface; nil draws a locally administered one.
	MAC net.HardwareAddr
	// Hostname is what the host calls itself (sent in DHCP); default Name.
	Hostname string
	// DHCP leaves the host without an address: Host.DHCPClient gets one.
	DHCP bool
	// IP is a static address in the lab's subnet; the zero value (without
	// DHCP) takes the next free one from .10 up.
	IP netip.Addr
}

// Options configure a lab.
type Options struct {
	Hosts []HostSpec
	// Subnet is the lab's IPv4 network, a /16 to a /24; the zero value draws
	// 10.77.N.0/24. Static addresses are drawn from .10 of its first /24 and
	// DHCP leases from .100 to .199 of it; a larger network only widens what
	// the hosts see as on-link (a scan of a /16 with few hosts). The lab's
	// namespaces are isolated, so two labs' subnets may overlap harmlessly;
	// a drawn one keeps logs of parallel tests apart.
	Subnet netip.Prefix
}

// Lab is one test's network. Its methods are for the test's goroutine; those
// that fail the test say so.
type Lab struct {
	t  tb
	tt testing.TB // t, when the lab is a test's; nil for a persistent lab
	// persist: the lab outlives the program that builds it (see Up): its
	// programs start in sessions of their own with pid files, and nothing
	// is stopped when the program ends.
	persist bool
	// ID is the random part of every name the lab creates.
	ID     string
	Subnet netip.Prefix
	// SwitchNetns holds the bridge, the hosts' ports and the mirror.
	SwitchNetns string
	// SensorNetns and SensorIface receive a copy of every frame that
	// enters the bridge from a host: capture there.
	SensorNetns string
	SensorIface string

	dir    string
	hosts  []*Host
	byName map[string]*Host

	mu        sync.Mutex
	netnss    []string // created, deleted on cleanup
	nproc     int
	dhcp      *DHCPServer // the first one started
	truthFile string      // where NewStandard or Up wrote the ground truth
}

// tb is the part of testing.TB a lab uses: a test's, or detached's for a
// lab that outlives its program.
type tb interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// Host is a host of a lab: a namespace with one interface on the bridge.
type Host struct {
	lab  *Lab
	Name string
	// Netns is the host's namespace; Iface its interface there (eth0).
	Netns    string
	Iface    string
	MAC      net.HardwareAddr
	Hostname string
	// IP is the static address, or the leased one after DHCPClient; the
	// zero value until then.
	IP netip.Addr
	// Port is the host's port on the bridge, in the switch namespace.
	Port     string
	dhcp     bool
	services []Service // guarded by lab.mu
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

// New builds a lab for t and removes it when t ends. It fails the test on
// any error, and skips it (or fails it under CI=true) where labs cannot be
// built: not root, or iproute2 missing.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	Require(t, "ip", "tc")
	l, err := newLab(t, fmt.Sprintf("%08x", rand.Uint32()), opts.Subnet)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	l.tt = t
	l.dir = t.TempDir()
	// Registered before anything exists, so it runs last: after every
	// process's cleanup, and even when New fails half-way.
	t.Cleanup(l.destroy)

	if err := l.build(opts.Hosts); err != nil {
		if len(l.netnss) == 0 && strings.Contains(err.Error(), "ip netns add") {
			storetest.RequireIntegration(t, "cannot create network namespaces: %v", err)
		}
		t.Fatalf("lab: %v", err)
	}
	return l
}

// Require skips t (or fails it under CI=true) unless it runs as root and
// every named program is on PATH.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		storetest.RequireIntegration(t, "lab networks need root (network namespaces, veth, tc)")
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			storetest.RequireIntegration(t, "lab needs %s on PATH (Debian package %s)", p, debPackage(p))
		}
	}
}

// newLab sets up a lab's names; build makes it.
func newLab(t tb, id string, subnet netip.Prefix) (*Lab, error) {
	l := &Lab{t: t, ID: id, Subnet: subnet, SensorIface: "eth0", byName: map[string]*Host{}}
	if !l.Subnet.IsValid() {
		l.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(rand.IntN(256)), 0}), 24)
	}
	if !l.Subnet.Addr().Is4() || l.Subnet.Bits() < 16 || l.Subnet.Bits() > 24 {
		return nil, fmt.Errorf("subnet %s: want an IPv4 /16 to /24", l.Subnet)
	}
	l.Subnet = l.Subnet.Masked()
	l.SwitchNetns = Prefix + l.ID + "-sw"
	l.SensorNetns = Prefix + l.ID + "-sensor"
	return l, nil
}

// require is Require for a test's lab; a persistent lab's fails alike,
// never skips.
func (l *Lab) require(programs ...string) {
	l.t.Helper()
	if l.tt != nil {
		Require(l.tt, programs...)
		return
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			l.t.Fatalf("lab needs %s on PATH (Debian package %s)", p, debPackage(p))
		}
	}
}

func debPackage(program string) string {
	switch program {
	case "ip", "tc", "bridge", "ss":
		return "iproute2"
	case "dnsmasq":
		return "dnsmasq-base"
	case "dhclient":
		return "isc-dhcp-client"
	case "sshd":
		return "openssh-server"
	case "ssh-keygen", "ssh-keyscan":
		return "openssh-client"
	case "nginx":
		return "nginx-light"
	case "snmpget", "snmpwalk":
		return "snmp"
	case "ping":
		return "iputils-ping"
	case "arping":
		return "iputils-arping"
	case "smbd":
		return "samba"
	}
	return program
}

func (l *Lab) build(specs []HostSpec) error {
	used := map[netip.Addr]bool{}
	for _, s := range specs {
		if s.IP.IsValid() {
			used[s.IP] = true
		}
	}
	next := l.Subnet.Addr().As4()
	next[3] = 10
	for i, s := range specs {
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("host %q: want a name matching %s", s.Name, nameRE)
		}
		if l.byName[s.Name] != nil {
			return fmt.Errorf("host %q named twice", s.Name)
		}
		h := &Host{lab: l, Name: s.Name, Netns: Prefix + l.ID + "-h-" + s.Name, Iface: "eth0",
			MAC: s.MAC, Hostname: s.Hostname, IP: s.IP, Port: fmt.Sprintf("p%d", i), dhcp: s.DHCP}
		if h.Hostname == "" {
			h.Hostname = s.Name
		}
		if h.MAC == nil {
			h.MAC = randomMAC()
		} else if len(h.MAC) != 6 || h.MAC[0]&1 != 0 {
			return fmt.Errorf("host %s: MAC %s is not a 48-bit unicast address", s.Name, h.MAC)
		}
		switch {
		case s.DHCP && s.IP.IsValid():
			return fmt.Errorf("host %s: both DHCP and a static IP", s.Name)
		case s.IP.IsValid() && !l.Subnet.Contains(s.IP):
			return fmt.Errorf("host %s: %s is outside the lab's %s", s.Name, s.IP, l.Subnet)
		case !s.DHCP && !s.IP.IsValid():
			for used[netip.AddrFrom4(next)] {
				next[3]++
			}
			if next[3] >= 100 {
				return errors.New("more than 90 static hosts")
			}
			h.IP = netip.AddrFrom4(next)
			used[h.IP] = true
		}
		l.hosts = append(l.hosts, h)
		l.byName[h.Name] = h
	}

	// The switch: a bridge with IPv6 off, so that neither it nor the mirror
	// port ever sends a frame of its own.
	if err := l.addNetns(l.SwitchNetns); err != nil {
		return err
	}
	if err := l.sysctl(l.SwitchNetns, "net/ipv6/conf/all/disable_ipv6", "1", "net/ipv6/conf/default/disable_ipv6", "1"); err != nil {
		return err
	}
	sw := []string{"-n", l.SwitchNetns}
	if err := l.ip(append(sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")...); err != nil {
		return err
	}
	if err := l.ip(append(sw, "link", "set", "br0", "up")...); err != nil {
		return err
	}

	// The sensor: a namespace whose eth0 is the far end of the mirror.
	if err := l.addNetns(l.SensorNetns); err != nil {
		return err
	}
	if err := l.sysctl(l.SensorNetns, "net/ipv6/conf/all/disable_ipv6", "1", "net/ipv6/conf/default/disable_ipv6", "1"); err != nil {
		return err
	}
	if err := l.ip(append(sw, "link", "add", "mirror", "type", "veth", "peer", "name", l.SensorIface, "netns", l.SensorNetns)...); err != nil {
		return err
	}
	if err := l.ip(append(sw, "link", "set", "mirror", "up")...); err != nil {
		return err
	}
	if err := l.ip("-n", l.SensorNetns, "link", "set", l.SensorIface, "up"); err != nil {
		return err
	}

	for _, h := range l.hosts {
		if err := l.addHost(h); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	return nil
}

func (l *Lab) addHost(h *Host) error {
	sw := []string{"-n", l.SwitchNetns}
	if err := l.addNetns(h.Netns); err != nil {
		return err
	}
	steps := [][]string{
		append(sw, "link", "add", h.Port, "type", "veth", "peer", "name", h.Iface, "netns", h.Netns),
		append(sw, "link", "set", h.Port, "master", "br0"),
		append(sw, "link", "set", h.Port, "up"),
		{"-n", h.Netns, "link", "set", h.Iface, "address", h.MAC.String()},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		{"-n", h.Netns, "link", "set", h.Iface, "up"},
	}
	if h.IP.IsValid() {
		steps = append(steps, []string{"-n", h.Netns, "addr", "add", netip.PrefixFrom(h.IP, l.Subnet.Bits()).String(), "dev", h.Iface})
	}
	for _, s := range steps {
		if err := l.ip(s...); err != nil {
			return err
		}
	}
	// Mirror what the host sends into the bridge: every frame crosses the
	// bridge by entering it at exactly one host's port, so the sensor gets
	// each one once.
	if err := l.tc("-n", l.SwitchNetns, "qdisc", "add", "dev", h.Port, "ingress"); err != nil {
		return err
	}
	mirror := []string{"action", "mirred", "egress", "mirror", "dev", "mirror"}
	err := l.tc(append([]string{"-n", l.SwitchNetns, "filter", "add", "dev", h.Port, "parent", "ffff:", "matchall"}, mirror...)...)
	if err != nil {
		// Kernels built without the matchall classifier have u32.
		err = l.tc(append([]string{"-n", l.SwitchNetns, "filter", "add", "dev", h.Port, "parent", "ffff:", "protocol", "all",
			"u32", "match", "u32", "0", "0"}, mirror...)...)
	}
	return err
}

func (l *Lab) addNetns(name string) error {
	if err := run(exec.Command("ip", "netns", "add", name)); err != nil {
		return err
	}
	l.mu.Lock()
	l.netnss = append(l.netnss, name)
	l.mu.Unlock()
	return nil
}

// sysctl sets name=value pairs (paths under /proc/sys) inside netns.
func (l *Lab) sysctl(netns string, kv ...string) error {
	var script strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&script, "echo %s > /proc/sys/%s && ", kv[i+1], kv[i])
	}
	script.WriteString("true")
	return run(exec.Command("ip", "netns", "exec", netns, "sh", "-c", script.String()))
}

func (l *Lab) ip(args ...string) error { return run(exec.Command("ip", args...)) }
func (l *Lab) tc(args ...string) error { return run(exec.Command("tc", args...)) }

// run runs cmd with a deadline and returns an error that names it and
// carries its output.
func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: no answer in 30s", strings.Join(cmd.Args, " "))
	}
}

// destroy kills whatever still runs in the lab's namespaces and deletes
// them; the veths and the bridge go with them.
func (l *Lab) destroy() {
	l.mu.Lock()
	names := append([]string(nil), l.netnss...)
	l.mu.Unlock()
	for _, ns := range names {
		// Processes a test's own Proc did not cover (a daemon's forks): only
		// those inside this lab's namespaces, so only this test's.
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	}
	for _, ns := range names {
		if err := run(exec.Command("ip", "netns", "del", ns)); err != nil {
			l.t.Errorf("lab cleanup: %v", err)
		}
	}
}

func randomMAC() net.HardwareAddr {
	v := rand.Uint64()
	mac := net.HardwareAddr{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24), byte(v >> 32), byte(v >> 40)}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}

// Host returns the named host; it fails the test when there is none.
func (l *Lab) Host(name string) *Host {
	l.t.Helper()
	h := l.byName[name]
	if h == nil {
		l.t.Fatalf("lab: no host %q", name)
	}
	return h
}

// Hosts returns the lab's hosts in the order given.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Dir is a folder of the lab's own for configuration, leases and logs.
func (l *Lab) Dir() string { return l.dir }

// Command returns a command that runs argv inside the host's namespace.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	if h.Netns == "" || len(argv) == 0 {
		panic("lab: Command with no namespace or no program")
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns}, argv...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Exec runs argv inside the host's namespace and returns its combined
// output; the error carries the output too.
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	out, err := h.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", h.Name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Addr reads the host's IPv4 address off its interface: the zero value when
// it has none yet.
func (h *Host) Addr(ctx context.Context) (netip.Addr, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", h.Netns, "-j", "-4", "addr", "show", "dev", h.Iface).Output()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: ip addr: %w", h.Name, err)
	}
	var links []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return netip.Addr{}, fmt.Errorf("%s: ip -j addr: %w", h.Name, err)
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if ip, err := netip.ParseAddr(a.Local); err == nil {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, nil
}
