package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// msgKexInit is SSH_MSG_KEXINIT's message number.
const msgKexInit = 20

// KexInit is an SSH_MSG_KEXINIT message (RFC 4253, section 7.1): the
// algorithms one side supports, each list in its order of preference.
type KexInit struct {
	Cookie                    [16]byte
	KexAlgorithms             []string
	ServerHostKeyAlgorithms   []string
	CiphersClientToServer     []string
	CiphersServerToClient     []string
	MACsClientToServer        []string
	MACsServerToClient        []string
	CompressionClientToServer []string
	CompressionServerToClient []string
	LanguagesClientToServer   []string
	LanguagesServerToClient   []string
	FirstKexPacketFollows     bool
	Reserved                  uint32
}

// ErrMalformedKexInit is returned by ParseKexInit for a payload that is not
// a well-formed KEXINIT.
var ErrMalformedKexInit = errors.New("malformed SSH KEXINIT")

// ParseKexInit decodes the payload of an unencrypted SSH binary packet
// holding an SSH_MSG_KEXINIT, message number included. Every length is
// checked against what is left; a name in a name-list must be non-empty
// printable US-ASCII. Bytes after the reserved field are ignored.
func ParseKexInit(payload []byte) (KexInit, error) {
	var k KexInit
	if len(payload) == 0 {
		return k, fmt.Errorf("%w: empty payload", ErrMalformedKexInit)
	}
	if payload[0] != msgKexInit {
		return k, fmt.Errorf("%w: message %d, want %d (SSH_MSG_KEXINIT)", ErrMalformedKexInit, payload[0], msgKexInit)
	}
	rest := payload[1:]
	if len(rest) < len(k.Cookie) {
		return k, fmt.Errorf("%w: %d bytes, too short for the cookie", ErrMalformedKexInit, len(payload))
	}
	copy(k.Cookie[:], rest)
	rest = rest[len(k.Cookie):]
	lists := []struct {
		name string
		dst  *[]string
	}{
		{"kex_algorithms", &k.KexAlgorithms},
		{"server_host_key_algorithms", &k.ServerHostKeyAlgorithms},
		{"encryption_algorithms_client_to_server", &k.CiphersClientToServer},
		{"encryption_algorithms_server_to_client", &k.CiphersServerToClient},
		{"mac_algorithms_client_to_server", &k.MACsClientToServer},
		{"mac_algorithms_server_to_client", &k.MACsServerToClient},
		{"compression_algorithms_client_to_server", &k.CompressionClientToServer},
		{"compression_algorithms_server_to_client", &k.CompressionServerToClient},
		{"languages_client_to_server", &k.LanguagesClientToServer},
		{"languages_server_to_client", &k.LanguagesServerToClient},
	}
	for _, l := range lists {
		names, r, err := nameList(rest)
		if err != nil {
			return KexInit{}, fmt.Errorf("%w: %s: %v", ErrMalformedKexInit, l.name, err)
		}
		*l.dst, rest = names, r
	}
	if len(rest) < 5 {
		return KexInit{}, fmt.Errorf("%w: %d bytes left, want 5 for first_kex_packet_follows and reserved", ErrMalformedKexInit, len(rest))
	}
	k.FirstKexPacketFollows = rest[0] != 0
	k.Reserved = binary.BigEndian.Uint32(rest[1:5])
	return k, nil
}

// nameList reads one name-list (RFC 4251, section 5) off b.
func nameList(b []byte) ([]string, []byte, error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%d bytes left, want 4 for the length", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b))
	}
	s, rest := string(b[:n]), b[n:]
	if s == "" {
		return nil, rest, nil
	}
	names := strings.Split(s, ",")
	for _, name := range names {
		if name == "" {
			return nil, nil, fmt.Errorf("empty name in %q", s)
		}
		for i := 0; i < len(name); i++ {
			if name[i] <= ' ' || name[i] > '~' {
				return nil, nil, fmt.Errorf("byte %#x in name %q", name[i], name)
			}
		}
	}
	return names, rest, nil
}
