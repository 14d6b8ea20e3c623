package probe

import (
	"bytes"
	"crypto"
	//lint:ignore SA1019 x509 still parses DSA keys into dsa.PublicKey; only read here
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"

	"github.com/reckon-dev/reckon/assess"
)

// chainFacts describes a chain as sent, leaf first; the leaf carries the
// verification of the whole chain for o.ServerName.
func chainFacts(chain []*x509.Certificate, o Options) []assess.Cert {
	out := make([]assess.Cert, len(chain))
	for i, c := range chain {
		out[i] = certFacts(c)
	}
	out[0].Verified, out[0].VerifyError = verifyChain(chain, o)
	return out
}

// verifyChain checks the chain against o.Roots (nil: the system roots), the
// certificates after the leaf as intermediates, for o.ServerName ("" checks
// no name).
func verifyChain(chain []*x509.Certificate, o Options) (bool, string) {
	opts := x509.VerifyOptions{
		Roots:         o.Roots,
		DNSName:       o.ServerName,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// certFacts describes one certificate; Verified is left to chainFacts.
func certFacts(c *x509.Certificate) assess.Cert {
	s256 := sha256.Sum256(c.Raw)
	s1 := sha1.Sum(c.Raw)
	out := assess.Cert{
		Subject:    c.Subject.String(),
		CommonName: c.Subject.CommonName,
		Issuer:     c.Issuer.String(),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		SelfSigned: selfSigned(c),
		SHA256:     hex.EncodeToString(s256[:]),
		SHA1:       hex.EncodeToString(s1[:]),
	}
	out.SANs = append(out.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out.SANs = append(out.SANs, ip.String())
	}
	out.KeyType, out.KeyBits = keyFacts(c.PublicKey)
	out.SigAlgo, out.SigHash = sigAlgo(c)
	return out
}

func keyFacts(pub any) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "rsa", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ec", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "ed25519", 256
	case *dsa.PublicKey:
		return "dsa", k.P.BitLen()
	}
	return "", 0
}

// sigAlgos names x509's signature algorithms as OpenSSL does, with their
// hash.
var sigAlgos = map[x509.SignatureAlgorithm][2]string{
	x509.MD2WithRSA:       {"md2WithRSAEncryption", "md2"},
	x509.MD5WithRSA:       {"md5WithRSAEncryption", "md5"},
	x509.SHA1WithRSA:      {"sha1WithRSAEncryption", "sha1"},
	x509.SHA256WithRSA:    {"sha256WithRSAEncryption", "sha256"},
	x509.SHA384WithRSA:    {"sha384WithRSAEncryption", "sha384"},
	x509.SHA512WithRSA:    {"sha512WithRSAEncryption", "sha512"},
	x509.DSAWithSHA1:      {"dsaWithSHA1", "sha1"},
	x509.DSAWithSHA256:    {"dsa_with_SHA256", "sha256"},
	x509.ECDSAWithSHA1:    {"ecdsa-with-SHA1", "sha1"},
	x509.ECDSAWithSHA256:  {"ecdsa-with-SHA256", "sha256"},
	x509.ECDSAWithSHA384:  {"ecdsa-with-SHA384", "sha384"},
	x509.ECDSAWithSHA512:  {"ecdsa-with-SHA512", "sha512"},
	x509.SHA256WithRSAPSS: {"rsassaPss", "sha256"},
	x509.SHA384WithRSAPSS: {"rsassaPss", "sha384"},
	x509.SHA512WithRSAPSS: {"rsassaPss", "sha512"},
	x509.PureEd25519:      {"ED25519", ""},
}

// sigAlgo returns the certificate's signature algorithm in OpenSSL's naming
// and its hash; one x509 does not know is given as its OID.
func sigAlgo(c *x509.Certificate) (string, string) {
	if a, ok := sigAlgos[c.SignatureAlgorithm]; ok {
		return a[0], a[1]
	}
	var outer struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.Raw, &outer); err == nil && len(outer.Algorithm.Algorithm) > 0 {
		return outer.Algorithm.Algorithm.String(), ""
	}
	return "", ""
}

// selfSigned: the issuer is the subject and the certificate's signature
// checks with its own key. Where Go cannot check the signature at all (an
// MD2 signature, an RSA key under 1024 bits, which crypto/rsa refuses) the
// names decide; only a signature that is checked and wrong says no.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	if _, ok := errors.AsType[x509.InsecureAlgorithmError](err); ok && c.SignatureAlgorithm == x509.MD5WithRSA {
		// x509 refuses MD5 outright; the RSA check itself still works.
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
			h := md5.Sum(c.RawTBSCertificate)
			err = rsa.VerifyPKCS1v15(k, crypto.MD5, h[:], c.Signature)
		}
	}
	return err == nil || !badSignature(err)
}

// badSignature: the signature was checked and does not match.
func badSignature(err error) bool {
	if errors.Is(err, rsa.ErrVerification) {
		return true
	}
	switch err.Error() {
	case "x509: ECDSA verification failure", "x509: Ed25519 verification failure", "x509: DSA verification failure":
		return true
	}
	return false
}
