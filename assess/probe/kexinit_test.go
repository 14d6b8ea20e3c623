package probe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// marshalKexInit encodes k as a KEXINIT payload.
func marshalKexInit(k KexInit) []byte {
	b := append([]byte{msgKexInit}, k.Cookie[:]...)
	for _, l := range [][]string{
		k.KexAlgorithms, k.ServerHostKeyAlgorithms,
		k.CiphersClientToServer, k.CiphersServerToClient,
		k.MACsClientToServer, k.MACsServerToClient,
		k.CompressionClientToServer, k.CompressionServerToClient,
		k.LanguagesClientToServer, k.LanguagesServerToClient,
	} {
		s := strings.Join(l, ",")
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	first := byte(0)
	if k.FirstKexPacketFollows {
		first = 1
	}
	b = append(b, first)
	return binary.BigEndian.AppendUint32(b, k.Reserved)
}

// goServerKexInit is the KEXINIT payload an x/crypto/ssh server sends.
func goServerKexInit(tb testing.TB) []byte {
	tb.Helper()
	cfg, _, _ := testServerConfig(tb)
	server, client := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		_, _, _, _ = ssh.NewServerConn(server, cfg)
	}()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(client)
	if _, err := readIdent(br); err != nil {
		tb.Fatal(err)
	}
	if _, err := client.Write([]byte(clientIdent + "\r\n")); err != nil {
		tb.Fatal(err)
	}
	payload, err := readPacket(br)
	if err != nil {
		tb.Fatal(err)
	}
	return slices.Clone(payload)
}

func TestParseKexInitGoServer(t *testing.T) {
	t.Parallel()
	k, err := ParseKexInit(goServerKexInit(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.CiphersClientToServer, []string{ssh.CipherAES128GCM, ssh.CipherAES256CTR, ssh.InsecureCipherAES128CBC}) ||
		!slices.Equal(k.CiphersClientToServer, k.CiphersServerToClient) ||
		k.KexAlgorithms[0] != ssh.KeyExchangeCurve25519 || len(k.LanguagesClientToServer) != 0 || k.FirstKexPacketFollows {
		t.Errorf("%+v", k)
	}
}

func TestParseKexInit(t *testing.T) {
	t.Parallel()
	want := KexInit{
		Cookie:                    [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		KexAlgorithms:             []string{"curve25519-sha256", "diffie-hellman-group14-sha1"},
		ServerHostKeyAlgorithms:   []string{"ssh-ed25519"},
		CiphersClientToServer:     []string{"aes128-ctr"},
		CiphersServerToClient:     []string{"aes256-ctr"},
		MACsClientToServer:        []string{"hmac-sha1"},
		MACsServerToClient:        []string{"hmac-sha2-256"},
		CompressionClientToServer: []string{"none"},
		CompressionServerToClient: []string{"zlib@openssh.com"},
		LanguagesServerToClient:   []string{"en"},
		FirstKexPacketFollows:     true,
		Reserved:                  7,
	}
	good := marshalKexInit(want)
	got, err := ParseKexInit(good)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v\nwant %+v", got, err, want)
	}
	if _, err := ParseKexInit(append(slices.Clone(good), 0, 0, 0, 0)); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}

	bad := map[string][]byte{
		"empty":         nil,
		"other message": {21},
		"short cookie":  good[:10],
		"cut list":      good[:30],
		"no reserved":   good[:len(good)-2],
		"huge length":   slices.Concat(good[:17], []byte{0xff, 0xff, 0xff, 0xff}, good[21:]),
		"empty name":    marshalKexInit(KexInit{KexAlgorithms: []string{"a", ""}}),
		"space in name": marshalKexInit(KexInit{KexAlgorithms: []string{"a b"}}),
		"control byte":  marshalKexInit(KexInit{KexAlgorithms: []string{"a\x00"}}),
	}
	for name, b := range bad {
		if _, err := ParseKexInit(b); !errors.Is(err, ErrMalformedKexInit) {
			t.Errorf("%s: error %v, want ErrMalformedKexInit", name, err)
		}
	}
}

func FuzzParseKexInit(f *testing.F) {
	f.Add(goServerKexInit(f))
	f.Add(marshalKexInit(KexInit{
		KexAlgorithms:             []string{"sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "kex-strict-s-v00@openssh.com"},
		ServerHostKeyAlgorithms:   []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519"},
		CiphersClientToServer:     []string{"chacha20-poly1305@openssh.com", "aes128-ctr"},
		CiphersServerToClient:     []string{"chacha20-poly1305@openssh.com", "aes128-ctr"},
		MACsClientToServer:        []string{"umac-64-etm@openssh.com"},
		MACsServerToClient:        []string{"umac-64-etm@openssh.com"},
		CompressionClientToServer: []string{"none", "zlib@openssh.com"},
		CompressionServerToClient: []string{"none", "zlib@openssh.com"},
	}))
	f.Add([]byte{20})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKexInit(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedKexInit) {
				t.Fatalf("error %v does not match ErrMalformedKexInit", err)
			}
			return
		}
		// What parses encodes back to a prefix of the input (the flag byte
		// aside, any non-zero value of which is true) and parses the same.
		again := marshalKexInit(k)
		if len(again) > len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(again), len(b))
		}
		flag := len(again) - 5
		if !slices.Equal(again[:flag], b[:flag]) || !slices.Equal(again[flag+1:], b[flag+1:len(again)]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b[:len(again)])
		}
		k2, err := ParseKexInit(again)
		if err != nil || !reflect.DeepEqual(k, k2) {
			t.Fatalf("re-parse: %+v, %v\nwant %+v", k2, err, k)
		}
	})
}
