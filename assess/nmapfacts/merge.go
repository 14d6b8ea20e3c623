package nmapfacts

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/assess"
)

// Merge folds src, the facts of a later nmap run against the same host, into
// dst. The assessment runs nmap twice: -sV first, then NSE scripts on the
// ports that fit, and merges the second run into the first.
//
// Ports match by port and protocol, family entries by port. Where both have
// an entry, src's value wins field by field wherever it is non-empty (a
// non-empty string or list, a non-zero number or time, a true flag), so the
// later, more detailed run fills in what the first one could not see and
// never blanks what it did see. Entries only src has are added. Hostnames
// and Errors are the union; Collected is the later time. TLS.Source joins
// the sources ("nmap" and "probe" make "nmap+probe"). A certificate whose
// fingerprint differs between the two is replaced whole, not mixed.
//
// Merge never keeps a reference to src's lists; dst is Normalized.
func Merge(dst *assess.Facts, src assess.Facts) {
	setStr(&dst.Target, src.Target)
	setStr(&dst.AssetID, src.AssetID)
	setStr(&dst.Role, src.Role)
	setFlag(&dst.Managed, src.Managed)
	dst.Hostnames = union(dst.Hostnames, src.Hostnames)
	if src.Collected.After(dst.Collected) {
		dst.Collected = src.Collected
	}
	dst.Errors = union(dst.Errors, src.Errors)

	type portKey struct {
		port  int
		proto string
	}
	mergeBy(&dst.Ports, src.Ports, func(p assess.Port) portKey { return portKey{p.Port, p.Protocol} }, mergePort)
	slices.SortStableFunc(dst.Ports, func(a, b assess.Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	mergeBy(&dst.TLS, src.TLS, func(t assess.TLS) int { return t.Port }, mergeTLS)
	slices.SortStableFunc(dst.TLS, func(a, b assess.TLS) int { return cmp.Compare(a.Port, b.Port) })
	mergeBy(&dst.SSH, src.SSH, func(s assess.SSH) int { return s.Port }, mergeSSH)
	slices.SortStableFunc(dst.SSH, func(a, b assess.SSH) int { return cmp.Compare(a.Port, b.Port) })
	mergeBy(&dst.HTTP, src.HTTP, func(h assess.HTTP) int { return h.Port }, mergeHTTP)
	slices.SortStableFunc(dst.HTTP, func(a, b assess.HTTP) int { return cmp.Compare(a.Port, b.Port) })
	mergeBy(&dst.FTP, src.FTP, func(f assess.FTP) int { return f.Port }, mergeFTP)
	slices.SortStableFunc(dst.FTP, func(a, b assess.FTP) int { return cmp.Compare(a.Port, b.Port) })
	mergeBy(&dst.SNMP, src.SNMP, func(s assess.SNMP) int { return s.Port }, mergeSNMP)
	slices.SortStableFunc(dst.SNMP, func(a, b assess.SNMP) int { return cmp.Compare(a.Port, b.Port) })
	mergeBy(&dst.SMB, src.SMB, func(s assess.SMB) int { return s.Port }, mergeSMB)
	slices.SortStableFunc(dst.SMB, func(a, b assess.SMB) int { return cmp.Compare(a.Port, b.Port) })
	dst.Normalize()
}

// mergeBy merges each element of src into the element of *dst with the same
// key, or appends it (merged into a zero value, which copies its lists).
func mergeBy[T any, K comparable](dst *[]T, src []T, key func(T) K, merge func(*T, T)) {
	for _, s := range src {
		k := key(s)
		i := slices.IndexFunc(*dst, func(d T) bool { return key(d) == k })
		if i < 0 {
			var v T
			merge(&v, s)
			*dst = append(*dst, v)
			continue
		}
		merge(&(*dst)[i], s)
	}
}

func mergePort(d *assess.Port, s assess.Port) {
	setNum(&d.Port, s.Port)
	setStr(&d.Protocol, s.Protocol)
	setStr(&d.Service, s.Service)
	setStr(&d.Tunnel, s.Tunnel)
	setStr(&d.Product, s.Product)
	setStr(&d.Version, s.Version)
	setStr(&d.ExtraInfo, s.ExtraInfo)
	setList(&d.CPE, s.CPE)
}

func mergeTLS(d *assess.TLS, s assess.TLS) {
	setNum(&d.Port, s.Port)
	setList(&d.Versions, s.Versions)
	setList(&d.Ciphers, s.Ciphers)
	setStr(&d.LeastStrength, s.LeastStrength)
	setList(&d.Warnings, s.Warnings)
	mergeCert(&d.Cert, s.Cert)
	// The longer chain is the more detailed one; its leaf is the merged
	// certificate.
	if len(s.Chain) > 0 && len(s.Chain) >= len(d.Chain) {
		d.Chain = make([]assess.Cert, len(s.Chain))
		for i, c := range s.Chain {
			mergeCert(&d.Chain[i], c)
		}
	}
	if len(d.Chain) > 0 {
		d.Chain[0] = assess.Cert{}
		mergeCert(&d.Chain[0], d.Cert)
	}
	d.Source = joinSources(d.Source, s.Source)
}

// mergeCert merges two views of the same certificate; a certificate with a
// different fingerprint (it was replaced between the runs) replaces it.
func mergeCert(d *assess.Cert, s assess.Cert) {
	if (d.SHA256 != "" && s.SHA256 != "" && d.SHA256 != s.SHA256) ||
		(d.SHA1 != "" && s.SHA1 != "" && d.SHA1 != s.SHA1) {
		*d = assess.Cert{}
	}
	setStr(&d.Subject, s.Subject)
	setStr(&d.CommonName, s.CommonName)
	setList(&d.SANs, s.SANs)
	setStr(&d.Issuer, s.Issuer)
	setStr(&d.KeyType, s.KeyType)
	setNum(&d.KeyBits, s.KeyBits)
	setStr(&d.SigAlgo, s.SigAlgo)
	setStr(&d.SigHash, s.SigHash)
	setTime(&d.NotBefore, s.NotBefore)
	setTime(&d.NotAfter, s.NotAfter)
	setFlag(&d.SelfSigned, s.SelfSigned)
	setStr(&d.SHA256, s.SHA256)
	setStr(&d.SHA1, s.SHA1)
	setFlag(&d.Verified, s.Verified)
	setStr(&d.VerifyError, s.VerifyError)
}

// joinSources joins TLS.Source values: "nmap", "probe", "nmap+probe".
func joinSources(a, b string) string {
	var parts []string
	for _, s := range []string{a, b} {
		for p := range strings.SplitSeq(s, "+") {
			if p != "" && !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	order := map[string]int{"nmap": 1, "probe": 2}
	slices.SortStableFunc(parts, func(x, y string) int {
		return cmp.Compare(cmp.Or(order[x], 3), cmp.Or(order[y], 3))
	})
	return strings.Join(parts, "+")
}

func mergeSSH(d *assess.SSH, s assess.SSH) {
	setNum(&d.Port, s.Port)
	setStr(&d.Banner, s.Banner)
	setStr(&d.Protocol, s.Protocol)
	setStr(&d.Software, s.Software)
	setList(&d.Kex, s.Kex)
	setList(&d.HostKeyAlgorithms, s.HostKeyAlgorithms)
	setList(&d.Ciphers, s.Ciphers)
	setList(&d.MACs, s.MACs)
	setList(&d.Compression, s.Compression)
	setList(&d.HostKeys, s.HostKeys)
	setList(&d.AuthMethods, s.AuthMethods)
}

func mergeHTTP(d *assess.HTTP, s assess.HTTP) {
	setNum(&d.Port, s.Port)
	setFlag(&d.TLS, s.TLS)
	setNum(&d.Status, s.Status)
	setStr(&d.Server, s.Server)
	if len(s.Headers) > 0 {
		d.Headers = maps.Clone(s.Headers)
	}
	setList(&d.Methods, s.Methods)
	setStr(&d.Location, s.Location)
	setStr(&d.Title, s.Title)
	// Recomputed rather than OR'd: the service may have turned out to be
	// TLS itself.
	d.RedirectsToHTTPS = (d.RedirectsToHTTPS || s.RedirectsToHTTPS) && !d.TLS
}

func mergeFTP(d *assess.FTP, s assess.FTP) {
	setNum(&d.Port, s.Port)
	setStr(&d.Banner, s.Banner)
	setFlag(&d.Anonymous, s.Anonymous)
}

func mergeSNMP(d *assess.SNMP, s assess.SNMP) {
	setNum(&d.Port, s.Port)
	setList(&d.DefaultCommunities, s.DefaultCommunities)
	setStr(&d.SysDescr, s.SysDescr)
}

func mergeSMB(d *assess.SMB, s assess.SMB) {
	setNum(&d.Port, s.Port)
	setList(&d.Dialects, s.Dialects)
	setFlag(&d.SMBv1, s.SMBv1)
	setStr(&d.Signing, s.Signing)
	setFlag(&d.GuestAccess, s.GuestAccess)
}

// The field rules: src wins where it is non-empty.

func setStr(d *string, s string) {
	if s != "" {
		*d = s
	}
}

func setNum(d *int, s int) {
	if s != 0 {
		*d = s
	}
}

func setFlag(d *bool, s bool) {
	if s {
		*d = true
	}
}

func setTime(d *time.Time, s time.Time) {
	if !s.IsZero() {
		*d = s
	}
}

func setList[T any](d *[]T, s []T) {
	if len(s) > 0 {
		*d = slices.Clone(s)
	}
}

// union is a followed by the elements of b it lacks.
func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}
