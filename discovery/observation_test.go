package discovery

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	o := Observation{Source: " passive:dhcp ", Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
		MAC: "00-16-3E-AA-BB-CC", IP: "::ffff:10.0.0.1", Hostnames: []Hostname{{Name: "Alpha.Corp."}},
		Services: []Service{{Port: 22}}, Identifiers: Identifiers{TLSCert: " AB:CD "}}
	if errs := o.Normalize(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if o.Source != "passive:dhcp" || o.MAC != "00:16:3e:aa:bb:cc" || o.IP != "10.0.0.1" || o.Hostnames[0].Name != "alpha.corp" ||
		o.Services[0].Proto != "tcp" || o.Identifiers.TLSCert != "ab:cd" || o.Time.Location() != time.UTC {
		t.Fatalf("normalised %+v", o)
	}
	for _, c := range []struct {
		o     Observation
		field string
	}{
		{Observation{Time: time.Now(), IP: "10.0.0.1"}, "source"},
		{Observation{Source: "x", IP: "10.0.0.1"}, "time"},
		{Observation{Source: "x", Time: time.Now(), MAC: "01:00:5e:00:00:01"}, "mac"},
		{Observation{Source: "x", Time: time.Now(), MAC: "00:00:00:00:00:00"}, "mac"},
		{Observation{Source: "x", Time: time.Now(), IP: "fe80::1%eth0"}, "ip"},
		{Observation{Source: "x", Time: time.Now(), IP: "10.0.0.1", VLAN: 5000}, "vlan"},
		{Observation{Source: "x", Time: time.Now(), IP: "10.0.0.1", Services: []Service{{Port: 1, Proto: "icmp"}}}, "services[0].proto"},
		{Observation{Source: "x", Time: time.Now(), IP: "10.0.0.1", Hints: []Hint{{Kind: "os", Confidence: 2}}}, "hints[0].confidence"},
		{Observation{Source: "x", Time: time.Now()}, "(observation)"},
	} {
		errs := c.o.Normalize()
		if len(errs) == 0 || errs[0].Field != c.field {
			t.Errorf("%+v: errors %v, want one naming %s", c.o, errs, c.field)
		}
	}
}

func TestMACBits(t *testing.T) {
	for mac, want := range map[string][2]bool{
		"00:16:3e:00:00:01": {false, false}, "02:11:22:33:44:55": {true, false}, "0a:12:34:56:78:9a": {true, false},
		"01:00:5e:00:00:01": {false, true}, "ff:ff:ff:ff:ff:ff": {true, true}, "": {false, false}, "zz": {false, false},
	} {
		if LocallyAdministered(mac) != want[0] || Multicast(mac) != want[1] {
			t.Errorf("%q: local %v multicast %v, want %v", mac, LocallyAdministered(mac), Multicast(mac), want)
		}
	}
}

func TestHostnameJSON(t *testing.T) {
	var o Observation
	if err := json.Unmarshal([]byte(`{"source":"a","time":"2026-11-20T10:00:00Z","hostnames":["a",{"name":"b","how":"mdns"}]}`), &o); err != nil {
		t.Fatal(err)
	}
	if o.Hostnames[0] != (Hostname{Name: "a"}) || o.Hostnames[1] != (Hostname{Name: "b", How: "mdns"}) {
		t.Fatalf("%+v", o.Hostnames)
	}
	out, _ := json.Marshal(o.Hostnames)
	if string(out) != `["a",{"name":"b","how":"mdns"}]` {
		t.Fatalf("%s", out)
	}
	if err := json.Unmarshal([]byte(`{"hostnames":[{"nam":"b"}]}`), &o); err == nil {
		t.Fatal("a hostname object with an unknown field was accepted")
	}
}

// FuzzObservation: any JSON decodes or fails cleanly, and normalising what
// decoded never panics and leaves no invalid MAC or IP behind.
func FuzzObservation(f *testing.F) {
	f.Add(`{"source":"passive:arp","time":"2026-11-20T10:00:00Z","mac":"00:16:3e:00:00:01","ip":"10.0.0.1"}`)
	f.Add(`{"source":"x","time":"2026-11-20T10:00:00Z","hostnames":["a",{"name":"b"}],"services":[{"port":-1}],"vlan":4096}`)
	f.Add(`{"mac":"zz","ip":"::ffff:1.2.3.4%x","identifiers":{"serial":"0"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var o Observation
		if err := json.Unmarshal([]byte(in), &o); err != nil {
			return
		}
		errs := o.Normalize()
		if len(errs) > 0 {
			return
		}
		if o.MAC != "" {
			if c, err := CanonicalMAC(o.MAC); err != nil || c != o.MAC {
				t.Fatalf("normalised MAC %q is not canonical", o.MAC)
			}
		}
		if strings.ContainsAny(o.IP, "%") {
			t.Fatalf("normalised IP %q has a zone", o.IP)
		}
	})
}
