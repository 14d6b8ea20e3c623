package reconcile

import (
	"net/netip"
	"strconv"
	"strings"
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
	byReckon index[string]
	bySerial index[string]
	byMAC    index[string]
	byName   index[string] // full normalised name
	byShort  index[string] // first label of every name
	byIP     index[netip.Addr]

	// Per-CI normalised attributes, for comparing a match.
	ciName    []string    // normalised name
	ciSerials [][2]string // valid serial and asset tag ("" when not)
	ciMACs    [][]string  // universal MACs
}

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
		byReckon:    newIndex[string](n / 2),
		bySerial:    newIndex[string](n),
		byMAC:       newIndex[string](n),
		byName:      newIndex[string](n),
		byShort:     newIndex[string](n),
		byIP:        newIndex[netip.Addr](n),
		ciName:      make([]string, n),
		ciSerials:   make([][2]string, n),
		ciMACs:      make([][]string, n),
	}
	// One backing array for the CIs' universal MACs.
	total := 0
	for i := range cis {
		total += len(cis[i].MACs)
	}
	macs := make([]string, 0, total)
	for i := range cis {
		c := &cis[i]
		ci := int32(i)
		if c.ReckonID != "" {
			m.byReckon.add(strings.TrimSpace(c.ReckonID), ci)
		}
		for j, s := range [2]string{c.Serial, c.AssetTag} {
			if s = normSerial(s); m.validSerial(s) {
				m.ciSerials[i][j] = s
				m.bySerial.add(s, ci)
			}
		}
		start := len(macs)
		for _, mac := range c.MACs {
			if mac = normMAC(mac); m.macKind(mac) == macUniversal {
				macs = append(macs, mac)
				m.byMAC.add(mac, ci)
			}
		}
		m.ciMACs[i] = macs[start:len(macs):len(macs)]
		if name := normName(c.Name); name != "" {
			m.ciName[i] = name
			m.byName.add(name, ci)
			m.byShort.add(shortName(name), ci)
		}
		for j, ip := range c.IPs {
			if j < len(c.Static) && c.Static[j] && ip.IsValid() {
				m.byIP.add(ip.Unmap(), ci)
			}
		}
	}
	return m
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
	if id := strings.TrimSpace(a.ID); id != "" {
		if dst = m.byReckon.appendTo(dst, id); len(dst) > 0 {
			k.hits = append(k.hits, id)
			return RungReckonID, dst
		}
	}
	for _, s := range k.serials {
		if m.has(&m.bySerial, s) {
			dst = m.bySerial.appendTo(dst, s)
			k.hits = append(k.hits, s)
		}
	}
	if len(dst) > 0 {
		return RungSerial, dst
	}
	for _, mac := range k.macs {
		if m.has(&m.byMAC, mac) {
			dst = m.byMAC.appendTo(dst, mac)
			k.hits = append(k.hits, mac)
		}
	}
	if len(dst) > 0 {
		return RungMAC, dst
	}
	for _, h := range k.names {
		n := len(dst)
		if strings.IndexByte(h, '.') < 0 {
			dst = m.filterSite(m.byShort.appendTo(dst, h), n, a.Site, "")
		} else {
			dst = m.filterSite(m.byName.appendTo(dst, h), n, a.Site, "")
			// A CI with a short name whose label is the FQDN's first.
			dst = m.filterSite(m.byShort.appendTo(dst, shortName(h)), len(dst), a.Site, h)
		}
		if len(dst) > n {
			k.hits = append(k.hits, h)
		}
	}
	if len(dst) > 0 {
		return RungHostnameSite, dst
	}
	for _, ip := range k.ips {
		if _, ok := m.byIP.m[ip]; ok {
			dst = m.byIP.appendTo(dst, ip)
			k.hits = append(k.hits, ip.String())
		}
	}
	if len(dst) > 0 {
		return RungStaticIP, dst
	}
	return "", dst
}

func (m *matcher) has(x *index[string], k string) bool {
	_, ok := x.m[k]
	return ok
}

// filterSite drops from dst[from:] the CIs whose site disagrees with site;
// when fqdn is set, it also keeps only CIs with a short name (an FQDN CI
// was found by the full-name lookup, or is in another domain).
func (m *matcher) filterSite(dst []int32, from int, site, fqdn string) []int32 {
	out := dst[:from]
	for _, c := range dst[from:] {
		if siteDisagree(site, m.cis[c].Site) {
			continue
		}
		if fqdn != "" && strings.IndexByte(m.ciName[c], '.') >= 0 {
			continue
		}
		out = append(out, c)
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

// rungKey names a rung's keys in a reason: "serial SRV-1", "macs a, b".
func rungKey(rung string, hits []string) string {
	var label string
	switch rung {
	case RungReckonID:
		label = "reckon id"
	case RungSerial:
		label = "serial"
	case RungMAC:
		label = "mac"
	case RungHostnameSite:
		label = "hostname"
	case RungStaticIP:
		label = "static ip"
	}
	if len(hits) > 1 {
		label += "s"
	}
	return label + " " + strings.Join(hits, ", ")
}

// matchVerb agrees with rungKey's number.
func matchVerb(hits []string) string {
	if len(hits) > 1 {
		return " match "
	}
	return " matches "
}

func (m *matcher) ciIDs(cis []int) string {
	var b strings.Builder
	for i, c := range cis {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.ciLabel(c))
	}
	return b.String()
}

func (m *matcher) ciLabel(c int) string {
	if id := m.cis[c].ID; id != "" {
		return id
	}
	return "#" + strconv.Itoa(c)
}

// notExpected says whether a CI's status says it is not expected on the
// network (so it is never stale).
func notExpected(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "planned", "staged", "inventory", "offline", "decommissioning", "retired":
		return true
	}
	return false
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
	var (
		k       assetKeys
		scratch []int32
	)
	for ai := range assets {
		a := &assets[ai]
		r := &rep.Results[ai]
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
		seen := a.LastSeen.UnixNano()
		if a.LastSeen.IsZero() {
			seen = minTime
		}
		for _, c := range scratch {
			if !matched[c] || seen > latest[c] {
				latest[c] = seen
			}
			matched[c] = true
		}
		if len(scratch) > 1 {
			r.Verdict = Conflict
			r.CIs = make([]int, len(scratch))
			for i, c := range scratch {
				r.CIs[i] = int(c)
			}
			r.Reason = rungKey(rung, k.hits) + matchVerb(k.hits) + strconv.Itoa(len(scratch)) + " CIs: " + m.ciIDs(r.CIs)
			continue
		}
		c := scratch[0]
		slab[ai] = int(c)
		r.CIs = slab[ai : ai+1 : ai+1]
		r.Disagree = m.disagree(a, &k, int(c), nil)
		r.Reason = rungKey(rung, k.hits) + matchVerb(k.hits) + m.ciLabel(int(c))
		if len(r.Disagree) > 0 {
			r.Verdict = Conflict
			r.Reason += ", but they disagree on " + strings.Join(r.Disagree, ", ")
		} else {
			r.Verdict = Managed
		}
		switch s := single[c]; {
		case s == -1:
			single[c] = int32(ai)
		case s == -2:
			multi[c] = append(multi[c], int32(ai))
		default:
			single[c] = -2
			multi[c] = []int32{s, int32(ai)}
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
