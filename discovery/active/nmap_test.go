package active

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	ports, err := ParsePorts("T:22,80,U:53")
	if err != nil {
		t.Fatal(err)
	}
	four := 4
	spec := Spec{
		Targets:          []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")},
		Ports:            ports,
		Discovery:        []string{"arp", "icmp", "syn:443,22", "ack"},
		ServiceDetection: true,
		OSDetection:      true,
		Scripts:          []string{"ssh-hostkey", "ssl-cert"},
		Timing:           &four,
		MaxRate:          100,
		HostTimeout:      30 * time.Second,
		MaxRetries:       1,
		StatsEvery:       time.Second,
	}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	args, warnings, err := spec.args("/usr/bin/nmap", "/w/targets.txt", "/w/out.xml", true, "running as root")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-iL", "/w/targets.txt", "-sS", "-sU", "-p", "T:22,80,U:53", "-PE", "-PS22,443", "-PA", "-sV", "-O",
		"--script=ssh-hostkey,ssl-cert", "-T4", "--max-rate", "100", "--host-timeout", "30000ms", "--max-retries", "1"}
	if os.Geteuid() != 0 {
		want = append(want, "--privileged") // file capabilities: nmap must be told
	}
	want = append(want, "--stats-every", "1000ms", "--no-stylesheet", "-PR", "-oX", "/w/out.xml")
	if !slices.Equal(args, want) || len(warnings) != 0 {
		t.Errorf("privileged argv\n got %q\nwant %q\nwarnings %q", args, want, warnings)
	}

	args, warnings, err = spec.args("/usr/bin/nmap", "/w/targets.txt", "/w/out.xml", false, "not root")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"-iL", "/w/targets.txt", "-sT", "-p", "22,80", "-PS22,443", "-PA", "-sV",
		"--script=ssh-hostkey,ssl-cert", "-T4", "--max-rate", "100", "--host-timeout", "30000ms", "--max-retries", "1",
		"--unprivileged", "--stats-every", "1000ms", "--no-stylesheet", "-oX", "/w/out.xml"}
	if !slices.Equal(args, want) {
		t.Errorf("unprivileged argv\n got %q\nwant %q", args, want)
	}
	if !slices.Equal(warnings, []string{"not privileged (not root): TCP connect scan instead of SYN, no UDP ports (53), no arp discovery, no icmp discovery, no OS detection"}) {
		t.Errorf("warnings %q", warnings)
	}

	// UDP only, unprivileged: nothing left to scan, refused before a start.
	udp := Spec{Targets: spec.Targets, Ports: PortSpec{List: "U:53"}, MaxRetries: -1}
	if _, _, err := udp.args("/usr/bin/nmap", "t", "x", false, "not root"); err == nil || !strings.Contains(err.Error(), "UDP scans need raw packets") {
		t.Errorf("UDP unprivileged: %v", err)
	}

	// Defaults: top ports, IPv6, -Pn, no timing or retries flags.
	v6 := Spec{Targets: []netip.Prefix{netip.MustParsePrefix("::1/128")}, Ports: PortSpec{Top: 100}, Discovery: []string{"none"}, MaxRetries: -1, NoDNS: true}
	args, _, err = v6.args("/usr/bin/nmap", "t", "x", true, "root")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"-iL", "t", "-sS", "--top-ports", "100", "-Pn", "-n", "-6"}
	if os.Geteuid() != 0 {
		want = append(want, "--privileged")
	}
	want = append(want, "--stats-every", "2000ms", "--no-stylesheet", "-oX", "x")
	if !slices.Equal(args, want) {
		t.Errorf("defaults argv\n got %q\nwant %q", args, want)
	}
}

func TestValidate(t *testing.T) {
	one := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	ok := []Spec{
		{Targets: one, MaxRetries: -1},
		{Targets: one, Discovery: []string{"syn", "ack:80", "arp", "icmp"}, Scripts: []string{"ssl-cert"}, StatsEvery: 100 * time.Millisecond, NmapPath: "/usr/bin/nmap"},
		{Targets: []netip.Prefix{netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/120")}},
	}
	for i, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("spec %d: %v", i, err)
		}
	}
	bad := []struct {
		spec Spec
		want string
	}{
		{Spec{Targets: []netip.Prefix{{}}}, "not a prefix"},
		{Spec{Targets: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.1/128")}}, "not a prefix"},
		{Spec{Targets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/7")}}, "target set too large"},
		{Spec{Targets: one, MaxRate: -1}, "max rate"},
		{Spec{Targets: one, HostTimeout: -time.Second}, "host timeout"},
		{Spec{Targets: one, HostTimeout: time.Microsecond}, "under a millisecond"},
		{Spec{Targets: one, Timeout: -1}, "timeout"},
		{Spec{Targets: one, StatsEvery: time.Millisecond}, "stats interval"},
		{Spec{Targets: one, Discovery: []string{"arp:22"}}, "only syn and ack take ports"},
		{Spec{Targets: one, Discovery: []string{"ping"}}, "want arp, icmp"},
	}
	for _, c := range bad {
		if err := c.spec.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.spec, err, c.want)
		}
	}
}
