package active

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nmap", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureNames(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "nmap", "*.xml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

func parseFixture(t *testing.T, name string) Result {
	t.Helper()
	res, err := ParseXML(bytes.NewReader(fixture(t, name)), "", "sweep-1")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func byIP(t *testing.T, res Result, ip string) discovery.Observation {
	t.Helper()
	for _, o := range res.Observations {
		if o.IP == ip {
			return o
		}
	}
	t.Fatalf("no observation for %s in %d", ip, len(res.Observations))
	return discovery.Observation{}
}

func service(t *testing.T, o discovery.Observation, port int) discovery.Service {
	t.Helper()
	for _, s := range o.Services {
		if s.Port == port {
			return s
		}
	}
	t.Fatalf("%s: no service on %d in %+v", o.IP, port, o.Services)
	return discovery.Service{}
}

// TestParseFixtures reads every fixture: each is complete, each observation
// passes discovery's Normalize unchanged, and the fields the sweep promises
// come out right.
func TestParseFixtures(t *testing.T) {
	wantHosts := map[string]int{
		"discovery-sV.xml": 1, "ssh.xml": 1, "tls.xml": 1, "http.xml": 1, "ftp.xml": 1, "snmp.xml": 1,
		"smb-24445.xml": 1, "smb-24446.xml": 1, "loopback-multi.xml": 3, "lab-arp.xml": 3, "host-timeout.xml": 1,
	}
	for _, name := range fixtureNames(t) {
		res := parseFixture(t, name)
		want, ok := wantHosts[name]
		if !ok {
			t.Errorf("%s: a fixture without expectations: add it to wantHosts", name)
		}
		if len(res.Observations) != want || res.HostsUp != want || res.Partial || res.Failure != "" {
			t.Errorf("%s: %d observations, %d up, partial %v %q; want %d", name, len(res.Observations), res.HostsUp, res.Partial, res.Failure, want)
		}
		for _, o := range res.Observations {
			before := fmt.Sprintf("%+v", o)
			if errs := o.Normalize(); len(errs) > 0 {
				t.Errorf("%s: %s: %v", name, o.IP, errs)
			}
			if after := fmt.Sprintf("%+v", o); after != before {
				t.Errorf("%s: Normalize changed the observation:\n%s\n%s", name, before, after)
			}
			if o.Source != "active:nmap" || o.Sensor != "sweep-1" || o.Time.IsZero() {
				t.Errorf("%s: source %q sensor %q time %v", name, o.Source, o.Sensor, o.Time)
			}
		}
	}

	t.Run("discovery-sV", func(t *testing.T) {
		res := parseFixture(t, "discovery-sV.xml")
		o := byIP(t, res, "127.0.0.1")
		wantPorts := "22022-22023,22121,24433-24434,24445-24446,28080,28443"
		if res.PortsScanned != wantPorts || o.PortsScanned != wantPorts {
			t.Errorf("PortsScanned %q / %q, want %q", res.PortsScanned, o.PortsScanned, wantPorts)
		}
		if len(o.Services) != 9 {
			t.Errorf("%d services, want 9", len(o.Services))
		}
		for _, c := range []discovery.Service{
			{Port: 22022, Proto: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1 Debian 2+deb12u10", CPE: "cpe:/a:openbsd:openssh:9.2p1"},
			{Port: 22121, Proto: "tcp", Name: "ftp", Product: "vsftpd", Version: "2.0.8 or later", CPE: "cpe:/a:vsftpd:vsftpd"},
			{Port: 24433, Proto: "tcp", Name: "http", Product: "OpenSSL s_server -www httpd", CPE: "cpe:/a:openssl:openssl"},
			{Port: 24446, Proto: "tcp", Name: "netbios-ssn", Product: "Samba smbd", Version: "4.6.2", CPE: "cpe:/a:samba:samba:4.6.2"},
			{Port: 28080, Proto: "tcp", Name: "http", Product: "nginx", Version: "1.22.1", CPE: "cpe:/a:igor_sysoev:nginx:1.22.1"},
		} {
			if got := service(t, o, c.Port); got != c {
				t.Errorf("service %d = %+v, want %+v", c.Port, got, c)
			}
		}
		if want := time.Unix(1795651399, 0).UTC(); !o.Time.Equal(want) || !res.Finished.Equal(want) || !res.Started.Equal(time.Unix(1795651324, 0)) {
			t.Errorf("time %v finished %v started %v", o.Time, res.Finished, res.Started)
		}
		// Samba's -sV banner names the host.
		if !slices.Contains(o.Hostnames, discovery.Hostname{Name: "labweak", How: "nmap-service"}) {
			t.Errorf("hostnames %+v", o.Hostnames)
		}
		if o.OS != "" || o.MAC != "" || o.Identifiers != (discovery.Identifiers{}) {
			t.Errorf("unexpected OS %q MAC %q identifiers %+v", o.OS, o.MAC, o.Identifiers)
		}
	})

	t.Run("ssh", func(t *testing.T) {
		o := byIP(t, parseFixture(t, "ssh.xml"), "127.0.0.1")
		// 22022 has ed25519, 22023 RSA only: ed25519 wins.
		if want := "SHA256:HDwSS5eErJdfj8diLrvg1zWrLanOgwu/UxKPODGudnY"; o.Identifiers.SSHHostKey != want {
			t.Errorf("SSHHostKey %q, want %q", o.Identifiers.SSHHostKey, want)
		}
	})

	t.Run("tls", func(t *testing.T) {
		o := byIP(t, parseFixture(t, "tls.xml"), "127.0.0.1")
		// 24433, the lowest port with ssl-cert.
		if want := "d97e5b67146c241d58053573b48a43f4538963224b62733047a8ebdfe094b1e7"; o.Identifiers.TLSCert != want {
			t.Errorf("TLSCert %q, want %q", o.Identifiers.TLSCert, want)
		}
	})

	t.Run("snmp", func(t *testing.T) {
		res := parseFixture(t, "snmp.xml")
		o := byIP(t, res, "127.0.0.1")
		if got := service(t, o, 21161); got.Proto != "udp" || got.Name != "snmp" {
			t.Errorf("snmp service %+v", got)
		}
		// A UDP-only scan probed no TCP port: nothing may be read as closed.
		if res.PortsScanned != "" || o.PortsScanned != "" {
			t.Errorf("PortsScanned %q", res.PortsScanned)
		}
		if !slices.Contains(o.Hostnames, discovery.Hostname{Name: "lab-snmp", How: "nmap-service"}) {
			t.Errorf("hostnames %+v", o.Hostnames)
		}
	})

	t.Run("smb without -sV", func(t *testing.T) {
		o := byIP(t, parseFixture(t, "smb-24445.xml"), "127.0.0.1")
		if got := service(t, o, 24445); got != (discovery.Service{Port: 24445, Proto: "tcp"}) {
			t.Errorf("service %+v", got)
		}
	})

	t.Run("loopback-multi", func(t *testing.T) {
		res := parseFixture(t, "loopback-multi.xml")
		one := byIP(t, res, "127.0.0.1")
		if !slices.Equal(one.Hostnames, []discovery.Hostname{{Name: "localhost", How: "dns-ptr"}}) {
			t.Errorf("127.0.0.1 hostnames %+v", one.Hostnames)
		}
		if len(one.Services) != 0 || one.PortsScanned != "22,18022,18080" {
			t.Errorf("127.0.0.1: every port closed, got %+v, scanned %q", one.Services, one.PortsScanned)
		}
		two := byIP(t, res, "127.0.0.2")
		if got := service(t, two, 18080); got.Name != "http" || got.Product != "SimpleHTTPServer" || got.Version != "0.6" || got.CPE != "cpe:/a:python:simplehttpserver:0.6" {
			t.Errorf("127.0.0.2:18080 %+v", got)
		}
		if two.OS != "Linux 5.0 - 5.2" || !slices.Equal(two.Hints, []discovery.Hint{
			{Kind: "os", Value: "Linux 5.0 - 5.2", Confidence: 0.96, Source: "nmap-os"},
			{Kind: "device_type", Value: "general purpose", Confidence: 0.96, Source: "nmap-os"},
		}) {
			t.Errorf("127.0.0.2 OS %q hints %+v", two.OS, two.Hints)
		}
		three := byIP(t, res, "127.0.0.3")
		if got := service(t, three, 18022); got.Name != "ssh" || got.Product != "OpenSSH" {
			t.Errorf("127.0.0.3:18022 %+v", got)
		}
	})

	t.Run("host-timeout", func(t *testing.T) {
		res := parseFixture(t, "host-timeout.xml")
		o := byIP(t, res, "127.0.0.1")
		// The host timed out mid-scan: its port list is incomplete, so it
		// must not claim the whole range was probed.
		if res.PortsScanned != "1-65535" || o.PortsScanned != "" || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "1 hosts timed out (--host-timeout)") {
			t.Errorf("scanned %q / %q, warnings %q", res.PortsScanned, o.PortsScanned, res.Warnings)
		}
	})

	t.Run("lab-arp", func(t *testing.T) {
		res := parseFixture(t, "lab-arp.xml")
		web := byIP(t, res, "10.77.42.11")
		if web.MAC != "00:50:56:a1:22:10" || web.Vendor != "VMware" {
			t.Errorf("web MAC %q vendor %q", web.MAC, web.Vendor)
		}
		if got := service(t, web, 80); got.Product != "nginx" || got.Version != "1.22.1" {
			t.Errorf("web:80 %+v", got)
		}
		if !strings.HasPrefix(web.Identifiers.SSHHostKey, "SHA256:") || web.OS == "" {
			t.Errorf("web key %q OS %q", web.Identifiers.SSHHostKey, web.OS)
		}
		nas := byIP(t, res, "10.77.42.12")
		if nas.MAC != "00:11:32:4f:aa:02" || nas.Vendor != "Synology Incorporated" || nas.Identifiers.SSHHostKey == web.Identifiers.SSHHostKey {
			t.Errorf("nas MAC %q vendor %q key %q", nas.MAC, nas.Vendor, nas.Identifiers.SSHHostKey)
		}
		// The scanning host itself: no MAC for our own address.
		if self := byIP(t, res, "10.77.42.10"); self.MAC != "" {
			t.Errorf("scanner MAC %q", self.MAC)
		}
	})
}

type keyTable struct{ typ, blob string }

// sshKeyTables lists every ssh-hostkey table in a fixture.
func sshKeyTables(t *testing.T, b []byte) []keyTable {
	t.Helper()
	var out []keyTable
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "script" || attr(se, "id") != "ssh-hostkey" {
			continue
		}
		var s xScript
		if err := d.DecodeElement(&s, &se); err != nil {
			t.Fatal(err)
		}
		for _, tb := range s.Tables {
			var k keyTable
			for _, e := range tb.Elems {
				switch e.Key {
				case "type":
					k.typ = e.Value
				case "key":
					k.blob = e.Value
				}
			}
			out = append(out, k)
		}
	}
}

// TestSSHHostKeyMatchesSSHKeygen checks every key in the fixtures against
// OpenSSH's own fingerprint of it.
func TestSSHHostKeyMatchesSSHKeygen(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("ssh-keygen not installed (Debian's openssh-client)")
	}
	n := 0
	for _, name := range []string{"ssh.xml", "lab-arp.xml"} {
		for _, k := range sshKeyTables(t, fixture(t, name)) {
			ours := parseSSHHostKeys(xScript{Tables: []xTable{{Elems: []xElem{{Key: "type", Value: k.typ}, {Key: "key", Value: k.blob}}}}})
			cmd := exec.Command(keygen, "-lf", "-")
			cmd.Stdin = strings.NewReader(k.typ + " " + k.blob + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ssh-keygen on %s key: %v", k.typ, err)
			}
			// "256 SHA256:... no comment (ED25519)"
			f := strings.Fields(string(out))
			if len(ours) != 1 || len(f) < 2 || ours[0].fp != f[1] {
				t.Errorf("%s %s: ours %+v, ssh-keygen %q", name, k.typ, ours, out)
			}
			n++
		}
	}
	if n < 3 {
		t.Errorf("checked %d keys, want every key of ssh.xml and lab-arp.xml", n)
	}
	// Without a usable blob, nmap's MD5 fingerprint stands in.
	md5 := parseSSHHostKeys(xScript{Tables: []xTable{{Elems: []xElem{{Key: "type", Value: "ssh-rsa"}, {Key: "fingerprint", Value: "e4ba630f7770688e01453faf1f47524c"}}}}})
	if len(md5) != 1 || md5[0].fp != "MD5:e4:ba:63:0f:77:70:68:8e:01:45:3f:af:1f:47:52:4c" {
		t.Errorf("MD5 fallback %+v", md5)
	}
	// The key element in "type blob" form (older nmap) reads the same.
	both := parseSSHHostKeys(xScript{Tables: []xTable{{Elems: []xElem{{Key: "type", Value: "ssh-ed25519"}, {Key: "key", Value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIcOeamerMXh5j7xfGy4KuqpRbkn0IrM/ZV5tMjCiNhD"}}}}})
	if len(both) != 1 || both[0].fp != "SHA256:HDwSS5eErJdfj8diLrvg1zWrLanOgwu/UxKPODGudnY" {
		t.Errorf("type+blob form %+v", both)
	}
}

// TestTLSCertMatchesOpenSSL checks the certificate hash against openssl's
// DER of the same PEM: the form the passive sensor records.
func TestTLSCertMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	d := xml.NewDecoder(bytes.NewReader(fixture(t, "tls.xml")))
	n := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "script" || attr(se, "id") != "ssl-cert" {
			continue
		}
		var s xScript
		if err := d.DecodeElement(&s, &se); err != nil {
			t.Fatal(err)
		}
		var pemText string
		for _, e := range s.Elems {
			if e.Key == "pem" {
				pemText = e.Value
			}
		}
		cmd := exec.Command(openssl, "x509", "-outform", "der")
		cmd.Stdin = strings.NewReader(pemText)
		der, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		sum := sha256.Sum256(der)
		if got, want := certSHA256(s), hex.EncodeToString(sum[:]); got != want || len(got) != 64 {
			t.Errorf("cert %d: ours %q, openssl %q", n, got, want)
		}
		n++
	}
	if n != 3 {
		t.Errorf("checked %d certificates, want 3", n)
	}
}

// hostEnds are the offsets just past each "</host>" in b.
func hostEnds(b []byte) []int {
	var ends []int
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte("</host>"))
		if i < 0 {
			return ends
		}
		off += i + len("</host>")
		ends = append(ends, off)
	}
}

// TestParseTruncated cuts every fixture at many offsets, inside and between
// hosts: every host complete before the cut is kept, exactly as in the whole
// file, and the error says the file was cut.
func TestParseTruncated(t *testing.T) {
	for _, name := range fixtureNames(t) {
		full := fixture(t, name)
		whole, err := ParseXML(bytes.NewReader(full), "", "")
		if err != nil {
			t.Fatal(err)
		}
		ends := hostEnds(full)
		if len(ends) != len(whole.Observations) {
			t.Fatalf("%s: %d </host>, %d observations", name, len(ends), len(whole.Observations))
		}
		cuts := map[int]bool{0: true, 1: true, len(full) - 1: true}
		for i := 0; i < len(full); i += max(1, len(full)/60) {
			cuts[i] = true
		}
		for _, e := range ends {
			for _, d := range []int{-8, -7, -1, 0, 1, 2, 30} {
				if c := e + d; c >= 0 && c < len(full) {
					cuts[c] = true
				}
			}
		}
		end := bytes.Index(full, []byte("</nmaprun>"))
		for cut := range cuts {
			res, err := ParseXML(bytes.NewReader(full[:cut]), "", "")
			complete := 0
			for _, e := range ends {
				if e <= cut {
					complete++
				}
			}
			if cut >= end+len("</nmaprun>") {
				continue // nothing was lost
			}
			if err == nil || !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut at %d: error %v, want ErrTruncated", name, cut, err)
				continue
			}
			if !strings.Contains(err.Error(), "cut off") {
				t.Errorf("%s cut at %d: error %q does not say it was cut", name, cut, err)
			}
			if len(res.Observations) != complete {
				t.Errorf("%s cut at %d: %d observations, want the %d complete hosts (%v)", name, cut, len(res.Observations), complete, err)
				continue
			}
			if complete > 0 && !strings.Contains(err.Error(), fmt.Sprintf("after %d complete hosts", complete)) {
				t.Errorf("%s cut at %d: error %q does not count %d hosts", name, cut, err, complete)
			}
			if complete > 0 && !res.Partial {
				t.Errorf("%s cut at %d: not Partial", name, cut)
			}
			for i, o := range res.Observations {
				if !reflect.DeepEqual(o, whole.Observations[i]) {
					t.Errorf("%s cut at %d: host %d differs from the whole file's:\n%+v\n%+v", name, cut, i, o, whole.Observations[i])
				}
			}
		}
	}
}

func TestParseXMLNotNmap(t *testing.T) {
	for _, in := range []string{"", "garbage", "<html><body/></html>", "<?xml version=\"1.0\"?>\n<foo/>", "\x00\x01"} {
		res, err := ParseXML(strings.NewReader(in), "", "")
		if err == nil || len(res.Observations) != 0 {
			t.Errorf("ParseXML(%q) = %+v, %v", in, res, err)
		}
	}
	// A host that is down gives nothing; one with only junk addresses too.
	in := `<nmaprun start="1"><host><status state="down"/><address addr="127.0.0.2" addrtype="ipv4"/></host>
<host><status state="up"/><address addr="nonsense" addrtype="ipv4"/></host>
<host endtime="x"><status state="up"/><address addr="::ffff:127.0.0.3" addrtype="ipv6"/><ports><port protocol="tcp" portid="99999"><state state="open"/></port></ports></host>
<runstats><finished time="5" exit="error" errormsg="boom"/><hosts up="2" down="1"/></runstats></nmaprun>`
	res, err := ParseXML(strings.NewReader(in), "custom", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Observations) != 1 || res.Observations[0].IP != "127.0.0.3" || res.Observations[0].Source != "custom" ||
		len(res.Observations[0].Services) != 0 || !res.Observations[0].Time.Equal(time.Unix(5, 0)) {
		t.Errorf("observations %+v", res.Observations)
	}
	if !res.Partial || res.Failure != "nmap reported an error: boom" || res.HostsUp != 2 || res.HostsDown != 1 {
		t.Errorf("result %+v", res)
	}
}

func TestParseProgress(t *testing.T) {
	var got []Progress
	p := newParser("", "", func(pr Progress) { got = append(got, pr) })
	if err := p.parse(bytes.NewReader(fixture(t, "lab-arp.xml"))); err != nil {
		t.Fatal(err)
	}
	want := []Progress{
		{Percent: 50.39, Task: "ARP Ping Scan"},
		{Percent: 92.74, Remaining: time.Second, Task: "ARP Ping Scan"},
		{Percent: 66.67, Remaining: 4 * time.Second, Task: "Service scan"},
		{Percent: 0, Task: "NSE"},
		{Percent: 0, Task: "NSE", HostsUp: 1, HostsDone: 1},
		{Percent: 0, Task: "NSE", HostsUp: 2, HostsDone: 2},
		{Percent: 0, Task: "NSE", HostsUp: 3, HostsDone: 3},
		{Percent: 0, Task: "NSE", HostsUp: 3, HostsDone: 3}, // NSE's post-scan line
	}
	if !slices.Equal(got, want) {
		t.Errorf("progress\n got %+v\nwant %+v", got, want)
	}
}

func FuzzParseXML(f *testing.F) {
	for _, name := range []string{"ssh.xml", "smb-24446.xml", "loopback-multi.xml"} {
		b := fixture(f, name)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ParseXML(bytes.NewReader(b), "", "")
		if err == nil && res.Partial && res.Failure == "" {
			t.Fatal("partial without a failure")
		}
		for _, o := range res.Observations {
			if o.IP == "" && o.MAC == "" {
				t.Fatalf("an observation without an address: %+v", o)
			}
			if o.Source != DefaultSource {
				t.Fatalf("source %q", o.Source)
			}
			for _, s := range o.Services {
				if s.Port < 0 || s.Port > 65535 {
					t.Fatalf("port %d", s.Port)
				}
			}
			for _, h := range o.Hints {
				if h.Confidence < 0 || h.Confidence > 1 {
					t.Fatalf("confidence %v", h.Confidence)
				}
			}
		}
	})
}
