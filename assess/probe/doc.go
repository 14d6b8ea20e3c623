// Package probe holds the native Go probes of the assessment: TLS, SSH and
// HTTP collectors that talk to one service and fill its entry in the typed
// facts of package assess.
//
// Each probe is one function over a netip.AddrPort and an Options value;
// none keeps state between calls, and every connection is bounded by
// Options.Timeout and the caller's context.
//
// # TLS
//
// TLS learns the protocol versions a server accepts with one handshake per
// version (TLS 1.0 to 1.3, MinVersion and MaxVersion pinned), the cipher
// suites accepted under each version up to TLS 1.2 with one handshake per
// suite (offered alone), and the certificate chain as sent, verified against
// the system roots (or Options.Roots) by the probe itself. A version or a
// suite counts as accepted once the server has answered with its
// certificate: a handshake that Go then cannot finish (a SHA-1 signature on
// the key exchange, which Go refuses since 1.25) still shows what the server
// chose. What Go cannot speak stays invisible here and is left to nmap:
// SSLv3, finite-field DHE, CAMELLIA, ARIA, SEED, IDEA, export and NULL
// suites, DSA certificates; TLS 1.3 suites cannot be restricted in Go, so
// only the one negotiated is reported.
//
// Cipher.Kex follows nmap's kex_info: "rsa 2048" (with KexBits) for RSA
// key transport, the group for ECDHE ("secp256r1", "ecdh_x25519").
//
// # SSH
//
// SSH reads the server's identification and its KEXINIT (the algorithm
// lists in the server's order) over a raw connection, then runs one real key
// exchange per host key family the server offers (Ed25519, each ECDSA curve,
// RSA) with golang.org/x/crypto/ssh to record the host keys, and on the
// first of them asks for "none" authentication to learn the methods the
// server offers. No credentials are ever sent. ParseKexInit decodes a
// KEXINIT payload and is fuzzed.
//
// # HTTP
//
// HTTP sends one GET / (no redirects followed, at most 64 KiB of body read),
// one OPTIONS / for the Allow header and one TRACE /, with certificate
// verification off for HTTPS.
package probe
