//go:build linux

package lab_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// TestStandardLab builds the standard lab and checks each service for real
// from the scanner host, as a discovery would see it, against the ground
// truth file: the hosts and services it lists are exactly those there.
func TestStandardLab(t *testing.T) {
	t.Parallel()
	lab.Require(t, "ssh-keyscan", "ssh-keygen", "curl", "openssl", "snmpget", "ss")
	l := lab.NewStandard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	truth, err := lab.ReadGroundTruth(l.TruthFile())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(truth, l.GroundTruth()) {
		t.Errorf("the file's ground truth is not the lab's:\nfile %+v\nlab  %+v", truth, l.GroundTruth())
	}
	if truth.Lab != l.ID || truth.Subnet != l.Subnet || truth.Sensor.Netns != l.SensorNetns || truth.Sensor.Iface != l.SensorIface ||
		truth.Switch.Netns != l.SwitchNetns || truth.Switch.Bridge != "br0" {
		t.Errorf("ground truth: %+v", truth)
	}

	// Exactly the standard hosts, as the lab made them.
	var names []string
	for _, th := range truth.Hosts {
		names = append(names, th.Name)
		h := l.Host(th.Name)
		if th.MAC != h.MAC.String() || th.IPv4 != h.IP || th.Netns != h.Netns || th.Iface != h.Iface || th.Hostname != h.Hostname {
			t.Errorf("%s: ground truth %+v, host %+v", th.Name, th, h)
		}
		if ip, err := h.Addr(ctx); err != nil || ip != th.IPv4 {
			t.Errorf("%s: interface has %v (%v), ground truth says %s", th.Name, ip, err, th.IPv4)
		}
	}
	if want := []string{"gw", "web", "infra", "scanner", "ws1", "ws2"}; !slices.Equal(names, want) {
		t.Fatalf("hosts %v, want %v", names, want)
	}
	pool := func(ip netip.Addr) bool { b := ip.As4(); return l.Subnet.Contains(ip) && b[3] >= 100 && b[3] <= 199 }
	for i, name := range []string{"gw", "web", "infra", "scanner"} {
		th, _ := truth.Host(name)
		if b := th.IPv4.As4(); !l.Subnet.Contains(th.IPv4) || int(b[3]) != 10+i || th.DHCP {
			t.Errorf("%s: %s (dhcp %v), want .%d of %s", name, th.IPv4, th.DHCP, 10+i, l.Subnet)
		}
	}
	for _, name := range []string{"ws1", "ws2"} {
		if th, _ := truth.Host(name); !th.DHCP || !pool(th.IPv4) {
			t.Errorf("%s: %s (dhcp %v), want a lease from the pool", name, th.IPv4, th.DHCP)
		}
	}

	// Exactly the standard services, and nothing else listening.
	want := map[string][]string{
		"gw":      {"udp/67 dhcps dnsmasq"},
		"web":     {"tcp/22 ssh OpenSSH", "tcp/80 http nginx", "tcp/443 https nginx"},
		"infra":   {"udp/161 snmp net-snmp", "tcp/21 ftp vsftpd"},
		"scanner": nil,
		"ws1":     {"udp/68 dhcpc isc-dhclient"},
		"ws2":     {"udp/68 dhcpc isc-dhclient"},
	}
	for _, th := range truth.Hosts {
		var got, ports []string
		for _, s := range th.Services {
			got = append(got, fmt.Sprintf("%s/%d %s %s", s.Proto, s.Port, s.Name, s.Product))
			ports = append(ports, fmt.Sprintf("%s/%d", s.Proto, s.Port))
		}
		if !slices.Equal(got, want[th.Name]) {
			t.Errorf("%s: services %q, want %q", th.Name, got, want[th.Name])
		}
		listening := listeners(t, ctx, l.Host(th.Name))
		slices.Sort(ports)
		if !slices.Equal(listening, ports) {
			t.Errorf("%s: listening on %q, ground truth says %q", th.Name, listening, ports)
		}
	}
	web, _ := truth.Host("web")
	infra, _ := truth.Host("infra")
	scanner := l.Host("scanner")

	t.Run("ssh", func(t *testing.T) {
		svc, _ := web.Service("ssh")
		if !strings.HasPrefix(svc.SSHHostKeySHA256, "SHA256:") || svc.SSHHostKeyType != "ssh-ed25519" {
			t.Fatalf("ground truth: %+v", svc)
		}
		keys, err := scanner.SSHKeyscan(ctx, web.IPv4)
		if err != nil {
			t.Fatal(err)
		}
		fp := scanner.Command(ctx, "ssh-keygen", "-lf", "-")
		fp.Stdin = strings.NewReader(keys)
		out, err := fp.Output()
		if err != nil {
			t.Fatalf("ssh-keygen -lf: %v", err)
		}
		// 256 SHA256:... 10.77.N.11 (ED25519)
		if f := strings.Fields(string(out)); len(f) < 2 || f[1] != svc.SSHHostKeySHA256 {
			t.Errorf("ssh-keyscan's key is %q, ground truth %s", out, svc.SSHHostKeySHA256)
		}
	})

	t.Run("http", func(t *testing.T) {
		body, err := scanner.HTTPGet(ctx, "http://"+web.IPv4.String()+"/")
		if err != nil || body != "reckon lab: intranet-web\n" {
			t.Errorf("GET http: %q, %v", body, err)
		}
	})

	t.Run("https", func(t *testing.T) {
		svc, _ := web.Service("https")
		if len(svc.TLSCertSHA256) != 64 {
			t.Fatalf("ground truth: %+v", svc)
		}
		out, err := scanner.Exec(ctx, "curl", "-sS", "-k", "--fail", "--max-time", "10", "https://"+web.IPv4.String()+"/")
		if err != nil || string(out) != "reckon lab: intranet-web over TLS\n" {
			t.Errorf("GET https: %q, %v", out, err)
		}
		// The certificate as openssl sees it...
		sc := scanner.Command(ctx, "sh", "-c", "openssl s_client -connect \"$1:443\" -servername \"$2\" </dev/null 2>/dev/null | openssl x509 -outform DER | sha256sum",
			"sh", web.IPv4.String(), web.Hostname)
		out, err = sc.Output()
		if f := strings.Fields(string(out)); err != nil || len(f) == 0 || f[0] != svc.TLSCertSHA256 {
			t.Errorf("openssl s_client: certificate SHA-256 %q (%v), ground truth %s", out, err, svc.TLSCertSHA256)
		}
		// ...and as Go's TLS does, from the scanner's namespace.
		raw, err := scanner.DialContext(ctx, "tcp", netip.AddrPortFrom(web.IPv4, 443).String())
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{ServerName: web.Hostname, InsecureSkipVerify: true})
		defer c.Close()
		if err := c.HandshakeContext(ctx); err != nil {
			t.Fatal(err)
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		if hex.EncodeToString(sum[:]) != svc.TLSCertSHA256 || leaf.Subject.CommonName != web.Hostname || !slices.Equal(leaf.DNSNames, []string{web.Hostname}) {
			t.Errorf("certificate CN %q DNS %q SHA-256 %x, ground truth %s", leaf.Subject.CommonName, leaf.DNSNames, sum, svc.TLSCertSHA256)
		}
	})

	t.Run("snmp", func(t *testing.T) {
		svc, _ := infra.Service("snmp")
		if svc.SNMPCommunity != lab.StandardSNMPCommunity || svc.SNMPSysName != infra.Hostname || svc.SNMPSysDescr == "" {
			t.Fatalf("ground truth: %+v", svc)
		}
		get := func(community string) ([]byte, error) {
			// No MIB files in Debian's snmp: numeric OIDs, sysDescr.0 and
			// sysName.0. Its own persistent folder, not /var/lib/snmp.
			cmd := scanner.Command(ctx, "snmpget", "-v2c", "-c", community, "-t", "1", "-r", "1", "-Oqv",
				infra.IPv4.String(), "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0")
			cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+filepath.Join(t.TempDir(), "snmp"))
			return cmd.Output()
		}
		out, err := get(svc.SNMPCommunity)
		if want := fmt.Sprintf("%q\n%q\n", svc.SNMPSysDescr, svc.SNMPSysName); err != nil || string(out) != want {
			t.Errorf("snmpget: %q (%v), want %q", out, err, want)
		}
		if out, err := get("private"); err == nil {
			t.Errorf("snmpget with another community answered: %q", out)
		}
	})

	t.Run("ftp", func(t *testing.T) {
		svc, _ := infra.Service("ftp")
		if !svc.FTPAnonymous {
			t.Fatalf("ground truth: %+v", svc)
		}
		if code, msg := ftpLogin(t, ctx, scanner, infra.IPv4, "anonymous"); code != 230 {
			t.Errorf("anonymous login: %d %s", code, msg)
		}
	})

	t.Run("dhcp", func(t *testing.T) {
		leases, err := l.DHCP().Leases()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"ws1", "ws2"} {
			th, _ := truth.Host(name)
			i := slices.IndexFunc(leases, func(le lab.Lease) bool { return le.MAC.String() == th.MAC })
			if i < 0 {
				t.Errorf("%s: no lease for %s in %+v", name, th.MAC, leases)
				continue
			}
			if le := leases[i]; le.IP != th.IPv4 || le.Hostname != th.Hostname {
				t.Errorf("%s: lease %+v, ground truth %s %s", name, le, th.IPv4, th.Hostname)
			}
		}
		if len(leases) != 2 {
			t.Errorf("%d leases, want 2: %+v", len(leases), leases)
		}
	})
}

// TestClosedServices checks the services' closed variants: vsftpd without
// anonymous logins refuses every user.
func TestClosedServices(t *testing.T) {
	t.Parallel()
	lab.Require(t, "vsftpd")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{{Name: "srv"}, {Name: "cli"}}})
	srv, cli := l.Host("srv"), l.Host("cli")
	srv.FTPServer(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, user := range []string{"anonymous", "root"} {
		if code, msg := ftpLogin(t, ctx, cli, srv.IP, user); code != 530 {
			t.Errorf("USER %s: %d %s, want 530", user, code, msg)
		}
	}
	if s := srv.Services(); len(s) != 1 || s[0].Name != "ftp" || s[0].FTPAnonymous {
		t.Errorf("services %+v", s)
	}
}

// ftpLogin logs in to the FTP server at ip as user (password
// guest@example.com when asked) from h, and returns the final reply.
func ftpLogin(t *testing.T, ctx context.Context, h *lab.Host, ip netip.Addr, user string) (int, string) {
	t.Helper()
	raw, err := h.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, 21).String())
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}
	c := textproto.NewConn(raw)
	defer c.Close()
	if _, msg, err := c.ReadResponse(220); err != nil {
		t.Fatalf("FTP greeting: %s %v", msg, err)
	}
	if err := c.PrintfLine("USER %s", user); err != nil {
		t.Fatal(err)
	}
	code, msg, _ := c.ReadResponse(0)
	if code == 331 {
		if err := c.PrintfLine("PASS guest@example.com"); err != nil {
			t.Fatal(err)
		}
		code, msg, _ = c.ReadResponse(0)
	}
	_ = c.PrintfLine("QUIT")
	return code, msg
}

// listeners lists the host's listening TCP and UDP sockets as proto/port,
// sorted, leaving out those on loopback addresses only.
func listeners(t *testing.T, ctx context.Context, h *lab.Host) []string {
	t.Helper()
	out, err := h.Exec(ctx, "ss", "-H", "-l", "-n", "-t", "-u")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		i := strings.LastIndexByte(f[4], ':')
		if i < 0 {
			t.Fatalf("ss: %q", line)
		}
		addr := strings.Trim(strings.SplitN(f[4][:i], "%", 2)[0], "[]")
		if ip, err := netip.ParseAddr(addr); err == nil && ip.IsLoopback() {
			continue
		}
		got = append(got, f[0]+"/"+f[4][i+1:])
	}
	slices.Sort(got)
	return got
}
