package reconcile

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
)

// Verdicts.
const (
	Managed   = "managed"
	Unmanaged = "unmanaged"
	Unknown   = "unknown"
	Conflict  = "conflict"
	Stale     = "stale"
)

// Rungs of the ladder, as Result.Rung names them.
const (
	RungReckonID     = "reckon_id"
	RungSerial       = "serial"
	RungMAC          = "mac"
	RungHostnameSite = "hostname_site"
	RungStaticIP     = "static_ip"
)

// Asset is what the reconciler needs of an inventory asset.
type Asset struct {
	ID string
	// Serials holds serials and asset tags.
	Serials   []string
	MACs      []string // current MACs
	Hostnames []string
	IPs       []netip.Addr // current IPs
	Site      string
	// Gateway: the asset routes (its MACs carry many IPs); it skips the
	// static IP rung.
	Gateway bool
	// Ambiguous: the inventory could not tell which asset observations
	// belong to.
	Ambiguous bool
	LastSeen  time.Time
}

// Options tune a reconciliation.
type Options struct {
	// StaleAfter is the window after which a CI nobody has seen is stale.
	StaleAfter time.Duration
	// Now is the reconciliation time (time.Now when zero).
	Now time.Time
	// JunkSerials and JunkMACs extend DefaultJunkSerials and DefaultJunkMACs.
	JunkSerials, JunkMACs []string
}

// Result is one asset's verdict.
type Result struct {
	AssetID string
	Verdict string
	// Rung is the ladder rung that decided (empty for unmanaged/unknown).
	Rung string
	// CIs are the matched CIs, as indexes into the CI slice: one for
	// managed, one or more for conflict.
	CIs []int
	// Disagree names the attributes on which asset and CI disagree
	// (serial, mac, hostname, site, reckon_id).
	Disagree []string
	// Others are the other assets that matched the same CI.
	Others []string
	// Reason says in words why.
	Reason string
}

// Report is a reconciliation's outcome.
type Report struct {
	Results []Result // one per asset, in input order
	Stale   []int    // stale CIs, as indexes into the CI slice
	Counts  map[string]int
}

// matcher holds the junk lists and the indexes over the CIs.
type matcher struct {
	junkSerials, junkMACs junkSet

	cis      []cmdb.CI
	byReckon index
	bySerial index
	byMAC    index
	byName   index // full normalised name
	byShort  index // first label of every name
	byIP     index // static IPs

	// Per-CI normalised attributes, for checking index hits and comparing
	// a match.
	ciName    []string    // normalised name
	ciSerials [][2]string // valid serial and asset tag ("" when not)
	ciMACs    [][]string  // universal MACs
}

// Key kinds, for matcher.holds.
const (
	kReckon = iota
	kSerial
	kMAC
	kName
	kShort
	kIP
)

// assetKeys are one asset's normalised identifiers, reused between assets.
type assetKeys struct {
	serials, macs, names []string
	ips                  []netip.Addr
	hits                 []string // keys that found CIs on the deciding rung
}

func (k *assetKeys) reset() {
	k.serials, k.macs, k.names, k.ips, k.hits = k.serials[:0], k.macs[:0], k.names[:0], k.ips[:0], k.hits[:0]
}

func newMatcher(cis []cmdb.CI, o Options) *matcher {
	n := len(cis)
	m := &matcher{
		junkSerials: newJunkSet([][]string{DefaultJunkSerials, o.JunkSerials}, normSerial, 0),
		junkMACs:    newJunkSet([][]string{DefaultJunkMACs, o.JunkMACs}, normMAC, 17),
		cis:         cis,
		ciName:      make([]string, n),
		ciSerials:   make([][2]string, n),
		ciMACs:      make([][]string, n),
	}
	// Normalise, in two halves at once.
	var wg sync.WaitGroup
	half := n / 2
	for _, r := range [2][2]int{{0, half}, {half, n}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.normCIs(r[0], r[1])
		}()
	}
	wg.Wait()
	// Build the indexes, two at once.
	builds := []func(){
		func() {
			m.byMAC = newIndex(2 * n)
			for i := range cis {
				for _, mac := range m.ciMACs[i] {
					m.byMAC.add(hashString(mac), int32(i))
				}
			}
		},
		func() {
			m.bySerial = newIndex(n)
			for i := range cis {
				for _, s := range m.ciSerials[i] {
					if s != "" {
						m.bySerial.add(hashString(s), int32(i))
					}
				}
			}
			m.byReckon = newIndex(0)
			for i := range cis {
				if id := strings.TrimSpace(cis[i].ReckonID); id != "" {
					m.byReckon.add(hashString(id), int32(i))
				}
			}
		},
		func() {
			m.byName = newIndex(n)
			for i, name := range m.ciName {
				if name != "" {
					m.byName.add(hashString(name), int32(i))
				}
			}
		},
		func() {
			m.byShort = newIndex(n)
			for i, name := range m.ciName {
				if name != "" {
					m.byShort.add(hashString(shortName(name)), int32(i))
				}
			}
		},
		func() {
			m.byIP = newIndex(n)
			for i := range cis {
				c := &cis[i]
				for j, ip := range c.IPs {
					if j < len(c.Static) && c.Static[j] && ip.IsValid() {
						m.byIP.add(hashAddr(ip.Unmap()), int32(i))
					}
				}
			}
		},
	}
	next := make(chan func(), len(builds))
	for _, f := range builds {
		next <- f
	}
	close(next)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range next {
				f()
			}
		}()
	}
	wg.Wait()
	return m
}

// normCIs fills the normalised attributes of CIs [from, to).
func (m *matcher) normCIs(from, to int) {
	total := 0
	for i := from; i < to; i++ {
		total += len(m.cis[i].MACs)
	}
	// One backing array for the universal MACs.
	macs := make([]string, 0, total)
	for i := from; i < to; i++ {
		c := &m.cis[i]
		for j, s := range [2]string{c.Serial, c.AssetTag} {
			if s = normSerial(s); m.validSerial(s) {
				m.ciSerials[i][j] = s
			}
		}
		start := len(macs)
		for _, mac := range c.MACs {
			if mac = normMAC(mac); m.macKind(mac) == macUniversal && !contains(macs[start:], mac) {
				macs = append(macs, mac)
			}
		}
		m.ciMACs[i] = macs[start:len(macs):len(macs)]
		m.ciName[i] = normName(c.Name)
	}
}

// holds says whether CI c holds the key (s or ip) of the kind: the check
// behind every index hit.
func (m *matcher) holds(kind int, c int32, s string, ip netip.Addr) bool {
	switch kind {
	case kReckon:
		return strings.TrimSpace(m.cis[c].ReckonID) == s
	case kSerial:
		return m.ciSerials[c][0] == s || m.ciSerials[c][1] == s
	case kMAC:
		return contains(m.ciMACs[c], s)
	case kName:
		return m.ciName[c] == s
	case kShort:
		return shortName(m.ciName[c]) == s
	case kIP:
		ci := &m.cis[c]
		for j, a := range ci.IPs {
			if j < len(ci.Static) && ci.Static[j] && a.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// find appends to dst the CIs of x that hold the key.
func (m *matcher) find(x *index, kind int, s string, ip netip.Addr, dst []int32) []int32 {
	var h uint64
	if kind == kIP {
		h = hashAddr(ip)
	} else {
		h = hashString(s)
	}
	single, list, ok := x.lookup(h)
	switch {
	case !ok:
	case list == nil:
		if m.holds(kind, single, s, ip) {
			dst = appendUniq(dst, single)
		}
	default:
		for _, c := range list {
			if m.holds(kind, c, s, ip) {
				dst = appendUniq(dst, c)
			}
		}
	}
	return dst
}

// keys fills k with the asset's valid serials, universal MACs, names and
// (unless it is a gateway) IPs.
func (m *matcher) keys(a *Asset, k *assetKeys) {
	k.reset()
	for _, s := range a.Serials {
		if s = normSerial(s); m.validSerial(s) && !contains(k.serials, s) {
			k.serials = append(k.serials, s)
		}
	}
	for _, mac := range a.MACs {
		if mac = normMAC(mac); m.macKind(mac) == macUniversal && !contains(k.macs, mac) {
			k.macs = append(k.macs, mac)
		}
	}
	for _, h := range a.Hostnames {
		if h = normName(h); h != "" && !contains(k.names, h) {
			k.names = append(k.names, h)
		}
	}
	if !a.Gateway {
		for _, ip := range a.IPs {
			if ip.IsValid() {
				k.ips = append(k.ips, ip.Unmap())
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// nameMatch says whether two normalised names name the same host: equal,
// or a short name that is the other's first label.
func nameMatch(a, b string) bool {
	if a == b {
		return true
	}
	ad, bd := strings.IndexByte(a, '.') >= 0, strings.IndexByte(b, '.') >= 0
	switch {
	case !ad && bd:
		return shortName(b) == a
	case ad && !bd:
		return shortName(a) == b
	}
	return false
}

func siteDisagree(a, b string) bool {
	return a != "" && b != "" && !strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// ladder walks the asset down the rungs and returns the deciding rung and
// its CIs (appended to dst), with the keys that found them in k.hits.
func (m *matcher) ladder(a *Asset, k *assetKeys, dst []int32) (string, []int32) {
	var none netip.Addr
	if id := strings.TrimSpace(a.ID); id != "" {
		if dst = m.find(&m.byReckon, kReckon, id, none, dst); len(dst) > 0 {
			k.hits = append(k.hits, id)
			return RungReckonID, dst
		}
	}
	for _, s := range k.serials {
		n := len(dst)
		if dst = m.find(&m.bySerial, kSerial, s, none, dst); len(dst) > n {
			k.hits = append(k.hits, s)
		}
	}
	if len(dst) > 0 {
		return RungSerial, dst
	}
	for _, mac := range k.macs {
		n := len(dst)
		if dst = m.find(&m.byMAC, kMAC, mac, none, dst); len(dst) > n {
			k.hits = append(k.hits, mac)
		}
	}
	if len(dst) > 0 {
		return RungMAC, dst
	}
	for _, h := range k.names {
		n := len(dst)
		if strings.IndexByte(h, '.') < 0 {
			// CIs of that short name, and FQDNs whose first label it is.
			dst = m.filterSite(m.find(&m.byShort, kShort, h, none, dst), n, a.Site)
		} else {
			dst = m.filterSite(m.find(&m.byName, kName, h, none, dst), n, a.Site)
			// A CI named by the FQDN's first label alone; FQDNs in
			// other domains do not match.
			dst = m.filterSite(m.find(&m.byShort, kName, shortName(h), none, dst), len(dst), a.Site)
		}
		if len(dst) > n {
			k.hits = append(k.hits, h)
		}
	}
	if len(dst) > 0 {
		return RungHostnameSite, dst
	}
	for _, ip := range k.ips {
		n := len(dst)
		if dst = m.find(&m.byIP, kIP, "", ip, dst); len(dst) > n {
			k.hits = append(k.hits, ip.String())
		}
	}
	if len(dst) > 0 {
		return RungStaticIP, dst
	}
	return "", dst
}

// filterSite drops from dst[from:] the CIs whose site disagrees with site.
func (m *matcher) filterSite(dst []int32, from int, site string) []int32 {
	if site == "" {
		return dst
	}
	out := dst[:from]
	for _, c := range dst[from:] {
		if !siteDisagree(site, m.cis[c].Site) {
			out = append(out, c)
		}
	}
	return out
}

// disagree compares the asset with its one matched CI and appends the
// attributes on which they disagree.
func (m *matcher) disagree(a *Asset, k *assetKeys, ci int, dst []string) []string {
	c := &m.cis[ci]
	cs := m.ciSerials[ci]
	if len(k.serials) > 0 && (cs[0] != "" || cs[1] != "") {
		shared := false
		for _, s := range k.serials {
			if s == cs[0] || s == cs[1] {
				shared = true
				break
			}
		}
		if !shared {
			dst = append(dst, "serial")
		}
	}
	if cm := m.ciMACs[ci]; len(k.macs) > 0 && len(cm) > 0 {
		shared := false
		for _, mac := range k.macs {
			if contains(cm, mac) {
				shared = true
				break
			}
		}
		if !shared {
			dst = append(dst, "mac")
		}
	}
	if name := m.ciName[ci]; name != "" && len(k.names) > 0 {
		shared := false
		for _, h := range k.names {
			if nameMatch(h, name) {
				shared = true
				break
			}
		}
		if !shared {
			dst = append(dst, "hostname")
		}
	}
	if siteDisagree(a.Site, c.Site) {
		dst = append(dst, "site")
	}
	if id := strings.TrimSpace(c.ReckonID); id != "" && id != strings.TrimSpace(a.ID) {
		dst = append(dst, "reckon_id")
	}
	return dst
}

// appendRungKey names a rung's keys in a reason: "serial SRV-1",
// "macs a, b".
func appendRungKey(buf []byte, rung string, hits []string) []byte {
	switch rung {
	case RungReckonID:
		buf = append(buf, "reckon id"...)
	case RungSerial:
		buf = append(buf, "serial"...)
	case RungMAC:
		buf = append(buf, "mac"...)
	case RungHostnameSite:
		buf = append(buf, "hostname"...)
	case RungStaticIP:
		buf = append(buf, "static ip"...)
	}
	if len(hits) > 1 {
		buf = append(buf, 's')
	}
	for i, h := range hits {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, ' ')
		buf = append(buf, h...)
	}
	return buf
}

func (m *matcher) appendCILabel(buf []byte, c int) []byte {
	if id := m.cis[c].ID; id != "" {
		return append(buf, id...)
	}
	return strconv.AppendInt(append(buf, '#'), int64(c), 10)
}

func (m *matcher) ciLabel(c int) string { return string(m.appendCILabel(nil, c)) }

// notExpected says whether a CI's status says it is not expected on the
// network (so it is never stale).
func notExpected(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "planned", "staged", "inventory", "offline", "decommissioning", "retired":
		return true
	}
	return false
}

// walk gives assets [from, to) their ladder verdicts, before the check for
// CIs matched by several assets. slab backs single matches' Result.CIs.
func (m *matcher) walk(assets []Asset, results []Result, slab []int, from, to int) {
	var (
		k       assetKeys
		scratch []int32
		buf     []byte
	)
	for ai := from; ai < to; ai++ {
		a := &assets[ai]
		r := &results[ai]
		r.AssetID = a.ID
		m.keys(a, &k)
		var rung string
		rung, scratch = m.ladder(a, &k, scratch[:0])
		if len(scratch) == 0 {
			switch {
			case a.Ambiguous:
				r.Verdict, r.Reason = Unknown, "no CI matches, and the inventory calls the asset's identity ambiguous"
			case len(k.serials) == 0 && len(k.macs) == 0 && len(k.names) == 0:
				r.Verdict, r.Reason = Unknown, "no CI matches, and the asset has no valid serial, universal MAC or hostname to identify it"
			default:
				r.Verdict, r.Reason = Unmanaged, "no CI matches the asset's reckon id, serials, MACs, hostnames or static IPs"
			}
			continue
		}
		r.Rung = rung
		buf = appendRungKey(buf[:0], rung, k.hits)
		if len(k.hits) > 1 {
			buf = append(buf, " match "...)
		} else {
			buf = append(buf, " matches "...)
		}
		if len(scratch) > 1 {
			r.Verdict = Conflict
			r.CIs = make([]int, len(scratch))
			buf = strconv.AppendInt(buf, int64(len(scratch)), 10)
			buf = append(buf, " CIs: "...)
			for i, c := range scratch {
				r.CIs[i] = int(c)
				if i > 0 {
					buf = append(buf, ", "...)
				}
				buf = m.appendCILabel(buf, int(c))
			}
			r.Reason = string(buf)
			continue
		}
		c := int(scratch[0])
		slab[ai] = c
		r.CIs = slab[ai : ai+1 : ai+1]
		r.Disagree = m.disagree(a, &k, c, nil)
		buf = m.appendCILabel(buf, c)
		if len(r.Disagree) > 0 {
			r.Verdict = Conflict
			buf = append(buf, ", but they disagree on "...)
			for i, d := range r.Disagree {
				if i > 0 {
					buf = append(buf, ", "...)
				}
				buf = append(buf, d...)
			}
		} else {
			r.Verdict = Managed
		}
		r.Reason = string(buf)
	}
}

// Reconcile matches assets against CIs. See the package documentation.
func Reconcile(assets []Asset, cis []cmdb.CI, o Options) Report {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	m := newMatcher(cis, o)
	rep := Report{
		Results: make([]Result, len(assets)),
		Counts:  map[string]int{Managed: 0, Unmanaged: 0, Unknown: 0, Conflict: 0, Stale: 0},
	}
	// single[c] is the asset that singly matched CI c (-1 none, -2
	// several: see multi).
	single := make([]int32, len(cis))
	for i := range single {
		single[i] = -1
	}
	multi := map[int32][]int32{}
	// latest[c] is the latest LastSeen of the assets matching CI c.
	latest := make([]int64, len(cis))
	matched := make([]bool, len(cis))
	// One backing array for the single matches' Result.CIs.
	slab := make([]int, len(assets))
	// Walk the assets down the ladder, in two halves at once: each
	// result depends on its asset and the read-only matcher alone.
	var wg sync.WaitGroup
	half := len(assets) / 2
	for _, r := range [2][2]int{{0, half}, {half, len(assets)}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.walk(assets, rep.Results, slab, r[0], r[1])
		}()
	}
	wg.Wait()
	for ai := range assets {
		r := &rep.Results[ai]
		if len(r.CIs) == 0 {
			continue
		}
		a := &assets[ai]
		seen := a.LastSeen.UnixNano()
		if a.LastSeen.IsZero() {
			seen = minTime
		}
		for _, c := range r.CIs {
			if !matched[c] || seen > latest[c] {
				latest[c] = seen
			}
			matched[c] = true
		}
		if len(r.CIs) > 1 {
			continue
		}
		c := r.CIs[0]
		switch s := single[c]; {
		case s == -1:
			single[c] = int32(ai)
		case s == -2:
			multi[int32(c)] = append(multi[int32(c)], int32(ai))
		default:
			single[c] = -2
			multi[int32(c)] = []int32{s, int32(ai)}
		}
	}
	// CIs matched singly by several assets.
	for c, as := range multi {
		keeper := -1
		if id := strings.TrimSpace(cis[c].ReckonID); id != "" {
			for _, ai := range as {
				if strings.TrimSpace(assets[ai].ID) == id {
					keeper = int(ai)
					break
				}
			}
		}
		for _, ai := range as {
			r := &rep.Results[ai]
			others := make([]string, 0, len(as)-1)
			for _, o := range as {
				if o != ai {
					others = append(others, assets[o].ID)
				}
			}
			r.Others = others
			if int(ai) == keeper {
				r.Reason += "; " + m.ciLabel(int(c)) + " names this asset by reckon id, so it keeps it from " + strings.Join(others, ", ")
				continue
			}
			r.Verdict = Conflict
			r.Reason += "; " + m.ciLabel(int(c)) + " is also matched by " + strings.Join(others, ", ")
		}
	}
	for i := range rep.Results {
		rep.Counts[rep.Results[i].Verdict]++
	}
	if o.StaleAfter > 0 {
		cutoff := now.Add(-o.StaleAfter)
		cut := cutoff.UnixNano()
		for i := range cis {
			c := &cis[i]
			if notExpected(c.Status) {
				continue
			}
			var stale bool
			if matched[i] {
				stale = latest[i] < cut
			} else {
				stale = c.LastUpdated.Before(cutoff)
			}
			if stale {
				rep.Stale = append(rep.Stale, i)
			}
		}
	}
	rep.Counts[Stale] = len(rep.Stale)
	return rep
}

const minTime = -1 << 63
