package assess

import (
	"reflect"
	"testing"
	"time"
)

func host() *Facts {
	f := &Facts{
		Target: "10.0.0.5",
		Ports: []Port{
			{Port: 22, Protocol: "tcp", Service: "ssh", Product: "OpenSSH", Version: "9.2p1"},
			{Port: 443, Protocol: "tcp", Service: "http", Tunnel: "ssl", Product: "nginx"},
		},
		TLS: []TLS{{Port: 443, Versions: []string{"TLSv1.2", "TLSv1.3"},
			Ciphers: []Cipher{{Name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Version: "TLSv1.2"}},
			Cert:    Cert{Subject: "commonName=a", SHA256: "aa", KeyType: "rsa", KeyBits: 2048, SigHash: "sha256", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		SSH: []SSH{{Port: 22, Protocol: "2.0", Kex: []string{"curve25519-sha256"}, Ciphers: []string{"aes128-ctr"}, MACs: []string{"hmac-sha2-256"},
			HostKeys: []HostKey{{Type: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:one"}}}},
		HTTP: []HTTP{{Port: 443, TLS: true, Headers: map[string]string{"strict-transport-security": "max-age=63072000"}, Methods: []string{"GET", "HEAD"}}},
	}
	f.Normalize()
	return f
}

func TestDriftNoChange(t *testing.T) {
	if d := Drift(host(), host()); len(d) != 0 {
		t.Fatalf("drift between identical hosts: %v", d)
	}
}

func TestDriftPortOpened(t *testing.T) {
	cur := host()
	cur.Ports = append(cur.Ports, Port{Port: 3306, Protocol: "tcp", Service: "mysql", Product: "MySQL", Version: "8.0"})
	got := Drift(host(), cur)
	want := []DriftEntry{{Kind: DriftPortOpened, Port: 3306, Protocol: "tcp", After: "mysql (MySQL 8.0)", Weaker: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("drift:\n got %+v\nwant %+v", got, want)
	}
}

func TestDriftCertSwapped(t *testing.T) {
	cur := host()
	cur.TLS[0].Cert.SHA256 = "bb"
	cur.TLS[0].Cert.Subject = "commonName=b"
	got := Drift(host(), cur)
	if len(got) != 1 || got[0].Kind != DriftCertChanged || got[0].Port != 443 {
		t.Fatalf("drift: %+v, want one cert_changed on 443", got)
	}
	if got[0].Before.(map[string]any)["sha256"] != "aa" || got[0].After.(map[string]any)["sha256"] != "bb" {
		t.Fatalf("cert drift before/after: %+v", got[0])
	}
	if got[0].Weaker {
		t.Fatal("a same-strength certificate swap is not weaker")
	}
}

func TestDriftWeakened(t *testing.T) {
	cur := host()
	cur.TLS[0].Versions = []string{"TLSv1.0", "TLSv1.2", "TLSv1.3"}
	cur.SSH[0].Kex = append(cur.SSH[0].Kex, "diffie-hellman-group1-sha1")
	cur.SSH[0].HostKeys[0].Fingerprint = "SHA256:two"
	cur.Ports[0].Version = "8.4p1"
	delete(cur.HTTP[0].Headers, "strict-transport-security")
	cur.Ports = cur.Ports[:1] // 443 closed: its TLS and HTTP facts go too
	cur.TLS, cur.HTTP = nil, nil
	got := Drift(host(), cur)
	kinds := map[string]bool{}
	for _, d := range got {
		kinds[d.Kind+" "+d.Field] = true
	}
	want := map[string]bool{
		"version_changed version": true, "ssh_weakened kex": true, "host_key_changed ssh-ed25519": true,
		"port_closed ": true,
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("drift kinds %v, want %v (%+v)", kinds, want, got)
	}

	cur = host()
	cur.TLS[0].Versions = []string{"TLSv1.0", "TLSv1.2", "TLSv1.3"}
	delete(cur.HTTP[0].Headers, "strict-transport-security")
	got = Drift(host(), cur)
	if len(got) != 2 || got[0].Kind != DriftHTTPChanged || !got[0].Weaker || got[1].Kind != DriftTLSWeakened || !got[1].Weaker {
		t.Fatalf("drift: %+v, want header gone and TLS weakened", got)
	}
}

// A collector that failed on the second run (no TLS facts for an open
// port) is not drift.
func TestDriftMissingFamilyIsNotChange(t *testing.T) {
	cur := host()
	cur.TLS, cur.SSH = []TLS{}, []SSH{}
	if d := Drift(host(), cur); len(d) != 0 {
		t.Fatalf("drift: %v", d)
	}
}

// A TLS probe that lost handshakes (the port's facts are incomplete) gives
// no version or cipher drift; a certificate change still shows.
func TestDriftIncompleteTLS(t *testing.T) {
	cur := host()
	cur.TLS[0].Ciphers = nil
	cur.TLS[0].Versions = []string{"TLSv1.3"}
	cur.Errors = []string{"tls 10.0.0.5:443: 10.0.0.5:443: probe incomplete: 3 of 20 TLS handshakes got no answer"}
	if d := Drift(host(), cur); len(d) != 0 {
		t.Fatalf("drift from an incomplete probe: %v", d)
	}
	cur.TLS[0].Cert.SHA256 = "cc"
	if d := Drift(host(), cur); len(d) != 1 || d[0].Kind != DriftCertChanged {
		t.Fatalf("drift: %v", d)
	}
}
