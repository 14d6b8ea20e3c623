package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/reckon-dev/reckon/assess"
)

// clientIdent is the identification the probe sends.
const clientIdent = "SSH-2.0-reckon"

// Bounds on what the SSH probe reads before the key exchange.
const (
	// maxPacket is the largest binary packet read: RFC 4253 section 6.1
	// asks implementations to handle 35000 bytes in all.
	maxPacket = 35000
	// maxLine bounds a line before the identification, and maxPreBanner
	// all of them together.
	maxLine      = 1024
	maxPreBanner = 16 << 10
)

// ErrIncomplete wraps an error that stopped a probe part way: the result
// returned with it holds what was learned before.
var ErrIncomplete = errors.New("probe incomplete")

// errStop ends an x/crypto/ssh handshake once the probe has what it came
// for.
var errStop = errors.New("probe: enough")

// hostKeyFamilies are the host key kinds whose key the probe fetches, each
// with the signature algorithms that show it, in the order tried. DSA
// (ssh-dss) is not among them: x/crypto/ssh cannot verify it as a host key.
var hostKeyFamilies = [][]string{
	{ssh.KeyAlgoED25519},
	{ssh.KeyAlgoECDSA256},
	{ssh.KeyAlgoECDSA384},
	{ssh.KeyAlgoECDSA521},
	{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA},
}

// SSH probes the SSH server at addr: its identification, the algorithm
// lists of its KEXINIT, one host key per family it offers (Ed25519, each
// ECDSA curve, RSA) and the authentication methods it offers before
// authentication ("none" alone when it lets "none" in).
//
// A port that answers without an SSH identification gives an error
// matching ErrNotSSH. An SSH-1-only server (protocol 1.5) gives its banner
// and nothing more. When a host key exchange fails, the error matches
// ErrIncomplete and the result holds everything else.
func SSH(ctx context.Context, addr netip.AddrPort, o Options) (assess.SSH, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	target := addr.String()
	res := assess.SSH{Port: int(addr.Port())}
	kex, err := readKexInit(ctx, target, o, &res)
	if err != nil {
		return assess.SSH{}, fmt.Errorf("%s: %w", target, err)
	}
	if kex == nil {
		return res, nil
	}
	res.Kex = kex.KexAlgorithms
	res.HostKeyAlgorithms = kex.ServerHostKeyAlgorithms
	res.Ciphers = kex.CiphersClientToServer
	res.MACs = kex.MACsClientToServer
	res.Compression = kex.CompressionClientToServer

	var families [][]string
	for _, f := range hostKeyFamilies {
		offered := slices.DeleteFunc(slices.Clone(f), func(a string) bool {
			return !slices.Contains(kex.ServerHostKeyAlgorithms, a)
		})
		if len(offered) > 0 {
			families = append(families, offered)
		}
	}
	type found struct {
		key     ssh.PublicKey
		methods []string
		err     error
	}
	keys := make([]found, len(families))
	parallel(len(families), func(i int) {
		var f found
		f.key, f.methods, f.err = hostKey(ctx, target, o, families[i], i == 0)
		keys[i] = f
	})
	var errs []error
	for i, f := range keys {
		if f.err != nil {
			errs = append(errs, f.err)
			continue
		}
		res.HostKeys = append(res.HostKeys, hostKeyFacts(f.key))
		if i == 0 {
			res.AuthMethods = f.methods
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("%s: %w: %w", target, ErrIncomplete, err)
	}
	return res, nil
}

// readKexInit reads the server's identification into res and returns its
// KEXINIT; nil for a server that speaks only SSH-1.
func readKexInit(ctx context.Context, target string, o Options, res *assess.SSH) (*KexInit, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	conn, err := o.dial(ctx, target)
	if err != nil {
		return nil, dialError(err)
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	br := bufio.NewReaderSize(conn, maxLine)
	ident, err := readIdent(br)
	if err != nil {
		return nil, err
	}
	res.Banner = ident
	// "SSH-protoversion-softwareversion SP comments"; checked in readIdent.
	proto, software, _ := strings.Cut(strings.TrimPrefix(ident, "SSH-"), "-")
	software, _, _ = strings.Cut(software, " ")
	res.Protocol, res.Software = proto, software
	if proto != "2.0" && proto != "1.99" {
		return nil, nil
	}
	if _, err := io.WriteString(conn, clientIdent+"\r\n"); err != nil {
		return nil, fmt.Errorf("sending our identification: %w", err)
	}
	payload, err := readPacket(br)
	if err != nil {
		return nil, err
	}
	k, err := ParseKexInit(payload)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// readIdent returns the server's identification line without its line
// end, skipping the lines a server may send before it (RFC 4253, 4.2).
func readIdent(br *bufio.Reader) (string, error) {
	for read := 0; read < maxPreBanner; {
		line, err := readLine(br)
		read += len(line) + 1
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("%w: connection closed before an identification", ErrNotSSH)
			}
			return "", fmt.Errorf("reading the identification: %w", err)
		}
		if !strings.HasPrefix(line, "SSH-") {
			continue
		}
		if len(line) > 253 { // 255 with CR LF
			return "", fmt.Errorf("%w: identification of %d bytes, longer than 255", ErrNotSSH, len(line)+2)
		}
		if !strings.Contains(line[4:], "-") {
			return "", fmt.Errorf("%w: malformed identification %q", ErrNotSSH, line)
		}
		return line, nil
	}
	return "", fmt.Errorf("%w: no identification in the first %d bytes", ErrNotSSH, maxPreBanner)
}

// readLine reads one line of at most maxLine bytes, without its CR LF.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: a line longer than %d bytes", ErrNotSSH, maxLine)
	}
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return "", fmt.Errorf("%w: a NUL byte before the identification", ErrNotSSH)
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readPacket reads one unencrypted binary packet (RFC 4253, section 6)
// and returns its payload.
func readPacket(br *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading the first packet: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxPacket {
		return nil, fmt.Errorf("first packet: length %d exceeds %d", n, maxPacket)
	}
	if n < 2 {
		return nil, fmt.Errorf("first packet: length %d, too short", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("reading the first packet: %w", err)
	}
	pad := uint32(buf[0])
	if pad > n-2 {
		return nil, fmt.Errorf("first packet: padding %d leaves no payload in %d bytes", pad, n)
	}
	return buf[1 : n-pad], nil
}

// hostKey runs a key exchange with only the given host key algorithms
// offered and returns the server's key. With askAuth it goes on to ask for
// "none" authentication and returns the methods the server offers then.
func hostKey(ctx context.Context, target string, o Options, algos []string, askAuth bool) (ssh.PublicKey, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	conn, err := o.dial(ctx, target)
	if err != nil {
		return nil, nil, fmt.Errorf("host key %s: %w", algos[0], dialError(err))
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	var key ssh.PublicKey
	var methods []string
	cfg := &ssh.ClientConfig{
		Config:            sshAlgorithms(),
		User:              "reckon",
		ClientVersion:     clientIdent,
		HostKeyAlgorithms: algos,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			if askAuth {
				return nil
			}
			return errStop
		},
		// Called once "none" has failed, with the methods the server
		// offers; stopping there sends no credentials.
		AuthCallback: func(ac *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			methods = slices.Clone(ac.AllowedMethods)
			return nil, errStop
		},
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if err == nil {
		// The server let "none" in: no authentication at all.
		methods = []string{"none"}
		ssh.NewClient(c, chans, reqs).Close()
	}
	if key == nil {
		return nil, nil, fmt.Errorf("host key %s: %w", algos[0], err)
	}
	return key, methods, nil
}

// sshAlgorithms offers everything x/crypto/ssh implements, the insecure
// algorithms included, so old servers still complete a key exchange.
func sshAlgorithms() ssh.Config {
	sup, insec := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	return ssh.Config{
		KeyExchanges: slices.Concat(sup.KeyExchanges, insec.KeyExchanges),
		Ciphers:      slices.Concat(sup.Ciphers, insec.Ciphers),
		MACs:         slices.Concat(sup.MACs, insec.MACs),
	}
}

func hostKeyFacts(k ssh.PublicKey) assess.HostKey {
	h := assess.HostKey{Type: k.Type(), Fingerprint: ssh.FingerprintSHA256(k)}
	if ck, ok := k.(ssh.CryptoPublicKey); ok {
		switch pk := ck.CryptoPublicKey().(type) {
		case *rsa.PublicKey:
			h.Bits = pk.N.BitLen()
		case *ecdsa.PublicKey:
			h.Bits = pk.Curve.Params().BitSize
		case ed25519.PublicKey:
			h.Bits = 256
		}
	}
	return h
}
