package active

import (
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want PortSpec
		str  string
	}{
		{"top:100", PortSpec{Top: 100}, "top:100"},
		{"top100", PortSpec{Top: 100}, "top:100"},
		{"TOP:5", PortSpec{Top: 5}, "top:5"},
		{"22,80,443", PortSpec{List: "22,80,443"}, "22,80,443"},
		{"443,80,22,22,21-23", PortSpec{List: "21-23,80,443"}, "21-23,80,443"},
		{"1-1024", PortSpec{List: "1-1024"}, "1-1024"},
		{"1-10,5-20,21", PortSpec{List: "1-21"}, "1-21"},
		{"0,65535", PortSpec{List: "0,65535"}, "0,65535"},
		{"T:22,U:53", PortSpec{List: "T:22,U:53"}, "T:22,U:53"},
		{"U:53,161,T:22,80", PortSpec{List: "T:22,80,U:53,161"}, "T:22,80,U:53,161"},
		{"u:53", PortSpec{List: "U:53"}, "U:53"},
		{" 22 ", PortSpec{List: "22"}, "22"},
	} {
		got, err := ParsePorts(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParsePorts(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
		if err := got.check(); err != nil {
			t.Errorf("ParsePorts(%q) does not pass its own check: %v", c.in, err)
		}
	}
	for _, in := range []string{"", "top:0", "top:70000", "top:", "top", "top:-1", "top:1e3", "top: 5", "22;80", "-p 22", "22 80",
		"--top-ports 10", "65536", "0-", "-1024", "1024-1", "S:22", "T:", "22,,80", ",22", "022", "22-", "a", "1-2-3", "U:53;ls"} {
		if got, err := ParsePorts(in); err == nil {
			t.Errorf("ParsePorts(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), `ports "`+in+`"`) {
			t.Errorf("ParsePorts(%q) error %q does not name it", in, err)
		}
	}
	// A PortSpec built by hand is parsed again before it reaches nmap.
	for _, p := range []PortSpec{{List: "-oN /tmp/x"}, {List: "80,22"}, {Top: 10, List: "22"}, {Top: -1}, {Top: 70000}} {
		if err := p.check(); err == nil {
			t.Errorf("%+v passes check", p)
		}
	}
	if (PortSpec{}).String() != "" || (PortSpec{}).check() != nil {
		t.Error("the zero PortSpec is nmap's default and valid")
	}
	tcp, udp := PortSpec{List: "T:22,80,U:53"}.split()
	if tcp != "22,80" || udp != "53" {
		t.Errorf("split = %q, %q", tcp, udp)
	}
	if got := canonicalTCP("22022-22023,22121,24433-24434"); got != "22022-22023,22121,24433-24434" {
		t.Errorf("canonicalTCP = %q", got)
	}
}

func TestParsePortsErrors(t *testing.T) {
	for in, want := range map[string]string{
		"22 -oN /tmp/x": `ports "22 -oN /tmp/x": want a port from 0 to 65535 or a range lo-hi`,
		"22,x":          `ports "22,x": "x": want a port from 0 to 65535 or a range lo-hi`,
		"80-22":         `ports "80-22": range ends before it starts`,
		"S:22":          `ports "S:22": "S:": only T: and U: sections are supported`,
		"top:0":         `ports "top:0": want top:N with N from 1 to 65535`,
	} {
		if _, err := ParsePorts(in); err == nil || err.Error() != want {
			t.Errorf("ParsePorts(%q): %v, want %q", in, err, want)
		}
	}
}
