package probe

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/reckon-dev/reckon/assess"
)

// hostKeys are an Ed25519 and an RSA-2048 host key.
func hostKeys(tb testing.TB) (ed, rsaKey ssh.Signer) {
	tb.Helper()
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if ed, err = ssh.NewSignerFromKey(edPriv); err != nil {
		tb.Fatal(err)
	}
	_, r := rsaKeys(tb)
	if rsaKey, err = ssh.NewSignerFromKey(r); err != nil {
		tb.Fatal(err)
	}
	return ed, rsaKey
}

// sshServer serves x/crypto/ssh server handshakes with cfg.
func sshServer(t *testing.T, cfg *ssh.ServerConfig) netip.AddrPort {
	t.Helper()
	l := listen(t)
	serve(t, l, func(c net.Conn) {
		if sc, chans, reqs, err := ssh.NewServerConn(c, cfg); err == nil {
			go ssh.DiscardRequests(reqs)
			go func() {
				for ch := range chans {
					_ = ch.Reject(ssh.Prohibited, "test")
				}
			}()
			sc.Close()
		}
	})
	return loopback(t, l)
}

func testServerConfig(tb testing.TB) (*ssh.ServerConfig, ssh.Signer, ssh.Signer) {
	ed, rsaKey := hostKeys(tb)
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{
			KeyExchanges: []string{ssh.KeyExchangeCurve25519, ssh.KeyExchangeDH14SHA256, ssh.InsecureKeyExchangeDH1SHA1},
			Ciphers:      []string{ssh.CipherAES128GCM, ssh.CipherAES256CTR, ssh.InsecureCipherAES128CBC},
			MACs:         []string{ssh.HMACSHA256ETM, ssh.HMACSHA256, ssh.InsecureHMACSHA196},
		},
		ServerVersion: "SSH-2.0-ReckonTest_1.0 test build",
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("no")
		},
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(ed)
	cfg.AddHostKey(rsaKey)
	return cfg, ed, rsaKey
}

// normalSSH is s as it reads after assess.Facts.Normalize.
func normalSSH(s assess.SSH) assess.SSH {
	f := assess.Facts{SSH: []assess.SSH{s}}
	f.Normalize()
	return f.SSH[0]
}

func hostKeyByType(keys []assess.HostKey, typ string) (assess.HostKey, bool) {
	for _, k := range keys {
		if k.Type == typ {
			return k, true
		}
	}
	return assess.HostKey{}, false
}

func TestSSHGoServer(t *testing.T) {
	t.Parallel()
	cfg, ed, rsaKey := testServerConfig(t)
	addr := sshServer(t, cfg)
	got, err := SSH(t.Context(), addr, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.Banner != "SSH-2.0-ReckonTest_1.0 test build" || got.Protocol != "2.0" || got.Software != "ReckonTest_1.0" {
		t.Errorf("banner %q protocol %q software %q", got.Banner, got.Protocol, got.Software)
	}
	if got.Port != int(addr.Port()) {
		t.Errorf("port %d", got.Port)
	}
	// x/crypto/ssh adds curve25519's old name and strict key exchange.
	wantKex := []string{ssh.KeyExchangeCurve25519, "curve25519-sha256@libssh.org", ssh.KeyExchangeDH14SHA256, ssh.InsecureKeyExchangeDH1SHA1, "kex-strict-s-v00@openssh.com"}
	if !slices.Equal(got.Kex, wantKex) {
		t.Errorf("kex %v, want %v", got.Kex, wantKex)
	}
	if !slices.Equal(got.Ciphers, cfg.Ciphers) || !slices.Equal(got.MACs, cfg.MACs) || !slices.Equal(got.Compression, []string{"none"}) {
		t.Errorf("ciphers %v macs %v compression %v", got.Ciphers, got.MACs, got.Compression)
	}
	for _, a := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		if !slices.Contains(got.HostKeyAlgorithms, a) {
			t.Errorf("host key algorithms %v, want %s among them", got.HostKeyAlgorithms, a)
		}
	}
	if len(got.HostKeys) != 2 {
		t.Errorf("host keys %+v, want two", got.HostKeys)
	}
	if k, ok := hostKeyByType(got.HostKeys, "ssh-ed25519"); !ok || k.Bits != 256 || k.Fingerprint != ssh.FingerprintSHA256(ed.PublicKey()) {
		t.Errorf("ed25519 host key %+v, want %s", k, ssh.FingerprintSHA256(ed.PublicKey()))
	}
	if k, ok := hostKeyByType(got.HostKeys, "ssh-rsa"); !ok || k.Bits != 2048 || k.Fingerprint != ssh.FingerprintSHA256(rsaKey.PublicKey()) {
		t.Errorf("rsa host key %+v, want %s", k, ssh.FingerprintSHA256(rsaKey.PublicKey()))
	}
	slices.Sort(got.AuthMethods)
	if !slices.Equal(got.AuthMethods, []string{"password", "publickey"}) {
		t.Errorf("auth methods %v, want password and publickey", got.AuthMethods)
	}
}

func TestSSHNoneAuth(t *testing.T) {
	t.Parallel()
	cfg, _, _ := testServerConfig(t)
	cfg.NoClientAuth = true
	got, err := SSH(t.Context(), sshServer(t, cfg), Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.AuthMethods, []string{"none"}) {
		t.Errorf("auth methods %v, want [none]", got.AuthMethods)
	}
}

// packet frames a payload as an unencrypted SSH binary packet.
func packet(payload []byte) []byte {
	pad := 8 - (5+len(payload))%8
	if pad < 4 {
		pad += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+pad))
	b = append(b, byte(pad))
	b = append(b, payload...)
	return append(b, make([]byte, pad)...)
}

// rawServer writes out to each connection, then unless hangUp reads the
// client's identification and waits for it to go.
func rawServer(t *testing.T, out []byte, hangUp bool) netip.AddrPort {
	t.Helper()
	l := listen(t)
	serve(t, l, func(c net.Conn) {
		_, _ = c.Write(out)
		if hangUp {
			return
		}
		br := bufio.NewReader(c)
		_, _ = br.ReadString('\n')
		_, _ = br.ReadByte()
	})
	return loopback(t, l)
}

func TestSSHRaw(t *testing.T) {
	t.Parallel()
	kexinit := marshalKexInit(KexInit{
		KexAlgorithms:             []string{"diffie-hellman-group1-sha1"},
		ServerHostKeyAlgorithms:   []string{"ssh-dss"},
		CiphersClientToServer:     []string{"3des-cbc", "aes128-cbc"},
		CiphersServerToClient:     []string{"3des-cbc"},
		MACsClientToServer:        []string{"hmac-md5"},
		MACsServerToClient:        []string{"hmac-md5"},
		CompressionClientToServer: []string{"zlib", "none"},
		CompressionServerToClient: []string{"none"},
	})
	tests := []struct {
		name    string
		out     []byte
		want    assess.SSH
		hangUp  bool // the server closes once it has written out
		wantErr string
		is      error
	}{{
		// Lines before the identification are skipped; a DSA-only server
		// has no host key x/crypto/ssh can fetch, and is no error.
		name: "pre-banner lines and old algorithms",
		out:  slices.Concat([]byte("Welcome\r\nauthorised use only\n"), []byte("SSH-1.99-OldSSH_3.9p1\r\n"), packet(kexinit)),
		want: assess.SSH{
			Banner: "SSH-1.99-OldSSH_3.9p1", Protocol: "1.99", Software: "OldSSH_3.9p1",
			Kex: []string{"diffie-hellman-group1-sha1"}, HostKeyAlgorithms: []string{"ssh-dss"},
			Ciphers: []string{"3des-cbc", "aes128-cbc"}, MACs: []string{"hmac-md5"}, Compression: []string{"zlib", "none"},
		},
	}, {
		name: "SSH-1 only",
		out:  []byte("SSH-1.5-Cisco-1.25\r\n"),
		want: assess.SSH{Banner: "SSH-1.5-Cisco-1.25", Protocol: "1.5", Software: "Cisco-1.25"},
	}, {
		name:    "packet too large",
		out:     slices.Concat([]byte("SSH-2.0-Big\r\n"), binary.BigEndian.AppendUint32(nil, 100000), make([]byte, 64)),
		wantErr: "length 100000 exceeds 35000",
	}, {
		name:    "not KEXINIT",
		out:     slices.Concat([]byte("SSH-2.0-Odd\r\n"), packet([]byte{21, 0, 0})),
		wantErr: "message 21",
		is:      ErrMalformedKexInit,
	}, {
		name:    "not SSH",
		out:     []byte("220 mail.example ESMTP\r\n"),
		hangUp:  true,
		wantErr: "not an SSH service: connection closed before an identification",
		is:      ErrNotSSH,
	}, {
		name:    "long line",
		out:     []byte(strings.Repeat("x", 5000) + "\r\n"),
		wantErr: "not an SSH service",
		is:      ErrNotSSH,
	}, {
		name:    "malformed identification",
		out:     []byte("SSH-2.0\r\n"),
		wantErr: "malformed identification",
		is:      ErrNotSSH,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := rawServer(t, tc.out, tc.hangUp)
			got, err := SSH(t.Context(), addr, Options{Timeout: 2 * time.Second})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), addr.String()+": ") {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v, want it to match %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Port = int(addr.Port())
			if !reflect.DeepEqual(normalSSH(got), normalSSH(tc.want)) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A server that stops after its KEXINIT leaves the lists, and an error
// that says the host keys are missing.
func TestSSHIncomplete(t *testing.T) {
	t.Parallel()
	kexinit := marshalKexInit(KexInit{
		KexAlgorithms:           []string{"curve25519-sha256"},
		ServerHostKeyAlgorithms: []string{"ssh-ed25519"},
		CiphersClientToServer:   []string{"aes128-ctr"}, CiphersServerToClient: []string{"aes128-ctr"},
		MACsClientToServer: []string{"hmac-sha2-256"}, MACsServerToClient: []string{"hmac-sha2-256"},
		CompressionClientToServer: []string{"none"}, CompressionServerToClient: []string{"none"},
	})
	addr := rawServer(t, slices.Concat([]byte("SSH-2.0-Stub\r\n"), packet(kexinit)), false)
	got, err := SSH(t.Context(), addr, Options{Timeout: 2 * time.Second})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "host key ssh-ed25519") {
		t.Fatalf("error %v, want ErrIncomplete for the ed25519 host key", err)
	}
	if !slices.Equal(got.Kex, []string{"curve25519-sha256"}) || got.Software != "Stub" || len(got.HostKeys) != 0 {
		t.Errorf("result %+v", got)
	}
}

func TestSSHClosedPort(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	_, err := SSH(t.Context(), addr, Options{Timeout: 2 * time.Second})
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), addr.String()+": ") {
		t.Fatalf("error %v, want connection refused on %s", err, addr)
	}
}

// A real OpenSSH server, with its own configuration and host keys.
func TestSSHOpenSSH(t *testing.T) {
	t.Parallel()
	sshd := needTool(t, "/usr/sbin/sshd")
	if os.Geteuid() != 0 {
		t.Skip("sshd needs root to start")
	}
	// The privilege separation directory sshd insists on; the Debian
	// service makes it at start, so a machine where sshd never ran lacks it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, rsaPriv := rsaKeys(t)
	var cfg strings.Builder
	addr := freePort(t)
	cfg.WriteString("ListenAddress " + addr.String() + "\n")
	want := map[string]string{}
	for name, key := range map[string]any{"ed25519": edPriv, "rsa": rsaPriv} {
		block, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "ssh_host_"+name+"_key")
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.WriteString("HostKey " + path + "\n")
		signer, err := ssh.NewSignerFromKey(key)
		if err != nil {
			t.Fatal(err)
		}
		want[signer.PublicKey().Type()] = ssh.FingerprintSHA256(signer.PublicKey())
	}
	cfg.WriteString(`PidFile ` + filepath.Join(dir, "sshd.pid") + `
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
`)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	startProgram(t, addr, sshd, "-f", cfgPath, "-D", "-e")

	got, err := SSH(t.Context(), addr, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Banner, "SSH-2.0-OpenSSH") || !strings.HasPrefix(got.Software, "OpenSSH_") || got.Protocol != "2.0" {
		t.Errorf("banner %q software %q protocol %q", got.Banner, got.Software, got.Protocol)
	}
	if !slices.Contains(got.Kex, "curve25519-sha256") || !slices.Contains(got.Ciphers, "aes128-ctr") || len(got.MACs) == 0 || len(got.Compression) == 0 {
		t.Errorf("lists %+v", got)
	}
	for typ, fp := range want {
		if k, ok := hostKeyByType(got.HostKeys, typ); !ok || k.Fingerprint != fp {
			t.Errorf("host key %s: got %+v, want %s", typ, got.HostKeys, fp)
		}
	}
	if len(got.HostKeys) != len(want) {
		t.Errorf("host keys %+v, want %d", got.HostKeys, len(want))
	}
	if !slices.Equal(got.AuthMethods, []string{"publickey"}) {
		t.Errorf("auth methods %v, want [publickey]", got.AuthMethods)
	}
	t.Logf("%+v", got)
}
