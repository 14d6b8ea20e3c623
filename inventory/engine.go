package inventory

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// Options tune identity resolution.
type Options struct {
	// LeaseWindow bounds how long after an IP was last seen on a device an
	// IP-only observation still binds to that device (DHCP leases move IPs).
	LeaseWindow time.Duration
	// GatewayIPs: a MAC seen with more distinct IPs than this is a router or
	// gateway; IPs seen behind it are other devices.
	GatewayIPs int
	// MissingAfter: an asset no source has seen for this long is missing.
	MissingAfter time.Duration
	// JunkSerials are serials that identify nothing (compared case-blind).
	JunkSerials []string
}

// DefaultJunkSerials are placeholder serials firmware ships with.
var DefaultJunkSerials = []string{
	"to be filled by o.e.m.", "to be filled by oem", "default string", "0", "00000000", "000000000000",
	"none", "n/a", "na", "not specified", "not applicable", "system serial number", "serial number",
	"123456789", "1234567890", "chassis serial number", "invalid", "unknown", "xxxxxxxxxx", "0123456789",
	"base board serial number", "oem", "empty",
}

// DefaultOptions are the identity defaults.
func DefaultOptions() Options {
	return Options{LeaseWindow: 24 * time.Hour, GatewayIPs: 8, MissingAfter: 7 * 24 * time.Hour, JunkSerials: DefaultJunkSerials}
}

// onLinkSources bind an IP to a MAC with authority: the device itself said so.
func onLinkSource(src string) bool {
	return src == "passive:arp" || src == "passive:dhcp" || src == "passive:dhcpv6" || src == "passive:ndp" || src == "active:arp"
}

type ipHold struct {
	asset *Asset
	last  Stamp
}

// Engine folds observations into assets in memory. It is the one identity
// engine: the server keeps one over the store, standalone commands one of
// their own. It is not safe for concurrent use.
type Engine struct {
	opts   Options
	junk   map[string]bool
	assets map[ID]*Asset
	// byKey indexes strong and corroborating identifiers: "serial:X",
	// "ssh:X", "tls:X", "mac:X" (universal MACs), "lmac:X" (local MACs),
	// "cid:X" (DHCP client ids).
	byKey  keyIndex
	byIP   map[netip.Addr]ipHold
	byName nameIndex
	// gateways are MACs that carry many IPs.
	gateways map[string]*Asset
	events   []Event
	// merged maps an absorbed asset's id to the one it went into.
	merged map[string]string
	// discarded are assets merged away before they were ever written.
	discarded map[string]struct{}
	// dirty lists the assets changed since the last TakeDirty.
	dirty []*Asset
	// mergesPending are merges not yet taken by TakeMerges: {from, into}.
	mergesPending [][2]string
	newID         func() ID
}

// NewEngine returns an empty engine.
func NewEngine(opts Options) *Engine {
	def := DefaultOptions()
	if opts.LeaseWindow <= 0 {
		opts.LeaseWindow = def.LeaseWindow
	}
	if opts.GatewayIPs <= 0 {
		opts.GatewayIPs = def.GatewayIPs
	}
	if opts.MissingAfter <= 0 {
		opts.MissingAfter = def.MissingAfter
	}
	if opts.JunkSerials == nil {
		opts.JunkSerials = def.JunkSerials
	}
	e := &Engine{
		opts: opts, junk: map[string]bool{},
		assets: map[ID]*Asset{}, byKey: newKeyIndex(), byIP: map[netip.Addr]ipHold{},
		byName: newNameIndex(), gateways: map[string]*Asset{}, merged: map[string]string{},
		discarded: map[string]struct{}{},
		newID:     NewID,
	}
	for _, j := range opts.JunkSerials {
		e.junk[strings.ToLower(strings.TrimSpace(j))] = true
	}
	return e
}

// Len is how many assets the engine tracks.
func (e *Engine) Len() int { return len(e.assets) }

// Get returns an asset by id.
func (e *Engine) Get(id string) (*Asset, bool) {
	p, err := ParseID(id)
	if err != nil {
		return nil, false
	}
	a, ok := e.assets[p]
	return a, ok
}

// MergedInto says which live asset an absorbed one went into, following
// merges of merges.
func (e *Engine) MergedInto(id string) (string, bool) {
	to, ok := e.merged[id]
	for i := 0; ok && i < 1000; i++ {
		next, more := e.merged[to]
		if !more {
			break
		}
		to = next
	}
	return to, ok
}

// assetKeys are the byKey keys an asset's records give.
func assetKeys(a *Asset) []string {
	var keys []string
	for _, m := range a.MACHistory {
		if v := m.Value.String(); discovery.LocallyAdministered(v) {
			keys = append(keys, "lmac:"+v)
		} else {
			keys = append(keys, "mac:"+v)
		}
	}
	for _, id := range a.Idents {
		switch id.Kind.String() {
		case "serial":
			keys = append(keys, "serial:"+strings.ToLower(id.Value))
		case "ssh_hostkey":
			keys = append(keys, "ssh:"+id.Value)
		case "tls_cert":
			keys = append(keys, "tls:"+id.Value)
		}
	}
	return keys
}

// Assets calls fn for every asset, in no order.
func (e *Engine) Assets(fn func(*Asset)) {
	for _, a := range e.assets {
		fn(a)
	}
}

// JunkSerial says whether a serial identifies nothing.
func (e *Engine) JunkSerial(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	if e.junk[s] || len(s) < 3 {
		return true
	}
	// A serial of one repeated character (000000, xxxxxx) is a placeholder.
	return strings.Count(s, s[:1]) == len(s)
}

// TakeEvents returns the change events since the last call.
func (e *Engine) TakeEvents() []Event {
	ev := e.events
	e.events = nil
	if len(e.discarded) > 0 {
		ev = slices.DeleteFunc(ev, func(x Event) bool {
			_, gone := e.discarded[x.AssetID]
			return gone
		})
		clear(e.discarded)
	}
	return ev
}

// TakeMerges returns the merges since the last call, {from, into}.
func (e *Engine) TakeMerges() [][2]string {
	m := e.mergesPending
	e.mergesPending = nil
	return m
}

// MarkDirty marks an asset changed again (a failed write is retried).
func (e *Engine) MarkDirty(id string) {
	p, err := ParseID(id)
	if err != nil {
		return
	}
	if a, ok := e.assets[p]; ok {
		e.markDirty(a)
	}
}

// markDirty queues a changed asset for the next write.
func (e *Engine) markDirty(a *Asset) {
	if !a.dirty {
		a.dirty = true
		e.dirty = append(e.dirty, a)
	}
}

// PutBackEvents returns events a failed write did not store, ahead of newer ones.
func (e *Engine) PutBackEvents(ev []Event, merges [][2]string) {
	e.events = append(ev, e.events...)
	e.mergesPending = append(merges, e.mergesPending...)
}

// TakeDirty returns the assets changed since the last call and marks them clean.
func (e *Engine) TakeDirty() []*Asset {
	out := make([]*Asset, 0, len(e.dirty))
	for _, a := range e.dirty {
		a.dirty, a.fresh = false, false
		// An asset merged away since it changed is deleted, not written.
		if e.assets[a.ID] == a {
			out = append(out, a)
		}
	}
	e.dirty = e.dirty[:0]
	return out
}

func (e *Engine) emit(a *Asset, at Stamp, kind string, detail map[string]string) {
	if kind == EventChanged && a.fresh {
		// Not yet written since it was created: "asset_created" will carry
		// it whole; what it learned meanwhile is in its histories.
		return
	}
	e.events = append(e.events, Event{AssetID: a.ID.String(), Time: at.Time(), Kind: kind, Detail: detail})
}

// strongKeys are the identifier keys of o, strongest first, with their level.
func (e *Engine) keysOf(o *discovery.Observation, mac string) [][]string {
	levels := make([][]string, 4)
	ids := o.Identifiers
	if ids.Serial != "" && !e.JunkSerial(ids.Serial) {
		levels[0] = append(levels[0], "serial:"+strings.ToLower(ids.Serial))
	}
	if ids.SSHHostKey != "" {
		levels[1] = append(levels[1], "ssh:"+ids.SSHHostKey)
	}
	if ids.TLSCert != "" {
		levels[1] = append(levels[1], "tls:"+ids.TLSCert)
	}
	if mac != "" && !discovery.LocallyAdministered(mac) {
		levels[2] = append(levels[2], "mac:"+mac)
	}
	return levels
}

// Apply folds one normalised observation into the assets and returns the
// asset it landed on.
func (e *Engine) Apply(o *discovery.Observation) *Asset {
	mac := o.MAC
	var ip netip.Addr
	if o.IP != "" {
		ip, _ = netip.ParseAddr(o.IP)
	}
	// A gateway's MAC on routed traffic names the router, not the IP's owner.
	if gw, ok := e.gateways[mac]; ok && !onLinkSource(o.Source) {
		e.touch(gw, o, mac)
		if !ip.IsValid() {
			return gw
		}
		mac = ""
	}

	var target *Asset
	var lower []*Asset
	ambiguous := false
	for _, level := range e.keysOf(o, mac) {
		var found []*Asset
		for _, k := range level {
			if a := e.byKey.get(k); a != nil && !slices.Contains(found, a) {
				found = append(found, a)
			}
		}
		if len(found) == 0 {
			continue
		}
		if target == nil {
			target = found[0]
			if len(found) > 1 {
				ambiguous = true
				lower = append(lower, found[1:]...)
			}
			continue
		}
		for _, a := range found {
			if a != target && !slices.Contains(lower, a) {
				lower = append(lower, a)
			}
		}
	}
	if target == nil {
		target = e.byCorroboratedName(o, mac)
	}
	localMAC := mac != "" && discovery.LocallyAdministered(mac)
	if target == nil && localMAC {
		// A randomised MAC is evidence, not identity: like an IP, it joins
		// the asset it is current on, within the lease window.
		if a := e.byKey.get("lmac:" + mac); a != nil && currentLocalWithin(a, mac, st(o), e.opts.LeaseWindow) {
			target = a
		}
	}
	if target == nil && (mac == "" || localMAC) && ip.IsValid() {
		// IP only: the device that held the IP most recently, within the lease window.
		if h, ok := e.byIP[ip]; ok && st(o).Sub(h.last) <= e.opts.LeaseWindow && h.last.Sub(st(o)) <= e.opts.LeaseWindow {
			target = h.asset
		}
	}

	// Stronger evidence joins assets that weaker evidence kept apart: merge
	// them, unless they disagree on a serial or an analyst split them.
	for _, other := range lower {
		if ambiguous || !e.mergeable(target, other) {
			ambiguous = true
			e.markAmbiguous(other, st(o), target.ID.String())
			continue
		}
		e.merge(target, other, st(o), "identity", "shares a stronger identifier")
	}
	if target == nil {
		target = e.newAsset(st(o))
	}
	if ambiguous {
		e.markAmbiguous(target, st(o), "")
	}
	e.touch(target, o, mac)
	e.bindIdentifiers(target, o, mac)
	if ip.IsValid() {
		e.bindIP(target, ip, mac, o)
	}
	e.observeDetails(target, o)
	e.refreshIdentity(target)
	return target
}

// byCorroboratedName finds the asset that has one of o's hostnames and
// shares a DHCP client id, DHCP fingerprint or randomised MAC with it.
func (e *Engine) byCorroboratedName(o *discovery.Observation, mac string) *Asset {
	if len(o.Hostnames) == 0 {
		return nil
	}
	ids := o.Identifiers
	var found *Asset
	for _, h := range o.Hostnames {
		for _, a := range e.byName.get(h.Name) {
			if found == a {
				continue
			}
			ok := (ids.DHCPClientID != "" && hasIdent(a, "dhcp_client_id", ids.DHCPClientID)) ||
				(ids.DHCPFingerprint != "" && hasIdent(a, "dhcp_fingerprint", ids.DHCPFingerprint)) ||
				(mac != "" && discovery.LocallyAdministered(mac) && hasMAC(a, mac))
			if !ok {
				continue
			}
			if found != nil {
				return nil // two assets fit: ambiguous, do not guess
			}
			found = a
		}
	}
	return found
}

// currentLocalWithin says whether the randomised mac is a's current one and
// was seen within window of at.
func currentLocalWithin(a *Asset, mac string, at Stamp, window time.Duration) bool {
	v := AddrOf(mac)
	for _, m := range a.MACHistory {
		if m.Value == v {
			return m.Current && at.Sub(m.LastSeen) <= window && m.LastSeen.Sub(at) <= window
		}
	}
	return false
}

func hasIdent(a *Asset, kind, value string) bool {
	for _, id := range a.Idents {
		if id.Kind.String() == kind && id.Value == value {
			return true
		}
	}
	return false
}

func hasMAC(a *Asset, mac string) bool {
	v := AddrOf(mac)
	for _, m := range a.MACHistory {
		if m.Value == v {
			return true
		}
	}
	return false
}

func (e *Engine) mergeable(a, b *Asset) bool {
	if slices.Contains(a.ro().KeepApart, b.ID.String()) || slices.Contains(b.ro().KeepApart, a.ID.String()) {
		return false
	}
	for _, x := range a.Idents {
		if x.Kind.String() != "serial" {
			continue
		}
		for _, y := range b.Idents {
			if y.Kind.String() == "serial" && y.Value != x.Value {
				return false
			}
		}
	}
	return true
}

func (e *Engine) markAmbiguous(a *Asset, at Stamp, with string) {
	if a.Identity == symAmbiguous {
		return
	}
	a.Identity = symAmbiguous
	if a.Status == symNew {
		a.Status = symUnknown
	}
	e.markDirty(a)
	d := map[string]string{"reason": "observations point at more than one asset"}
	if with != "" {
		d["other_asset"] = with
	}
	e.emit(a, at, EventAmbiguous, d)
}

func (e *Engine) newAsset(at Stamp) *Asset {
	a := &Asset{ID: e.newID(), Status: symNew, Identity: symWeak, FirstSeen: at, LastSeen: at, fresh: true}
	e.assets[a.ID] = a
	e.markDirty(a)
	e.emit(a, at, EventCreated, nil)
	return a
}

// touch records that o saw a: times, source.
func (e *Engine) touch(a *Asset, o *discovery.Observation, mac string) {
	if st(o).Before(a.FirstSeen) {
		a.FirstSeen = st(o)
	}
	if st(o).After(a.LastSeen) {
		a.LastSeen = st(o)
	}
	if a.Missing {
		a.Missing = false
		e.emit(a, st(o), EventChanged, map[string]string{"change": "seen_again"})
	}
	e.markDirty(a)
	src := S(o.Source)
	i := slices.IndexFunc(a.SourceList, func(s SourceRec) bool { return s.Source == src })
	if i < 0 {
		a.SourceList = append(a.SourceList, SourceRec{Source: src, FirstSeen: st(o), LastSeen: st(o)})
	} else {
		stretch(&a.SourceList[i].FirstSeen, &a.SourceList[i].LastSeen, st(o))
	}
	if mac != "" {
		e.bindMAC(a, mac, o)
	}
}

func stretch(first, last *Stamp, t Stamp) {
	if t.Before(*first) {
		*first = t
	}
	if t.After(*last) {
		*last = t
	}
}

func (e *Engine) bindMAC(a *Asset, mac string, o *discovery.Observation) {
	local := discovery.LocallyAdministered(mac)
	macV := AddrOf(mac)
	i := slices.IndexFunc(a.MACHistory, func(m Address) bool { return m.Value == macV })
	if i >= 0 {
		m := &a.MACHistory[i]
		stretch(&m.FirstSeen, &m.LastSeen, st(o))
		if local && !m.Current && m.LastSeen.Equal(st(o)) {
			e.currentLocalMAC(a, mac)
		}
		return
	}
	a.MACHistory = append(a.MACHistory, Address{Value: macV, VLAN: uint16(o.VLAN), Source: S(o.Source), FirstSeen: st(o), LastSeen: st(o), Current: true})
	if local {
		e.byKey.set("lmac:"+mac, a)
		e.currentLocalMAC(a, mac)
	} else {
		e.byKey.set("mac:"+mac, a)
	}
	if len(a.MACHistory) > 1 {
		e.emit(a, st(o), EventChanged, map[string]string{"change": "new_mac", "mac": mac})
	}
}

// currentLocalMAC keeps the newest randomised MAC current and retires older
// ones: a phone that rotates its MAC holds one at a time.
func (e *Engine) currentLocalMAC(a *Asset, mac string) {
	var newest *Address
	for i := range a.MACHistory {
		m := &a.MACHistory[i]
		if !m.Value.local() {
			continue
		}
		if newest == nil || m.LastSeen.After(newest.LastSeen) {
			newest = m
		}
	}
	for i := range a.MACHistory {
		m := &a.MACHistory[i]
		if m.Value.local() {
			m.Current = m == newest
		}
	}
}

func (e *Engine) bindIdentifiers(a *Asset, o *discovery.Observation, mac string) {
	ids := o.Identifiers
	add := func(kind, value, key string) {
		if value == "" {
			return
		}
		i := slices.IndexFunc(a.Idents, func(x Ident) bool { return x.Kind.String() == kind && x.Value == value })
		if i >= 0 {
			stretch(&a.Idents[i].FirstSeen, &a.Idents[i].LastSeen, st(o))
		} else {
			a.Idents = append(a.Idents, Ident{Kind: S(kind), Value: value, FirstSeen: st(o), LastSeen: st(o)})
		}
		if key != "" {
			if cur := e.byKey.get(key); cur == nil {
				e.byKey.set(key, a)
			}
		}
	}
	if ids.Serial != "" && !e.JunkSerial(ids.Serial) {
		add("serial", ids.Serial, "serial:"+strings.ToLower(ids.Serial))
	}
	add("ssh_hostkey", ids.SSHHostKey, "ssh:"+ids.SSHHostKey)
	add("tls_cert", ids.TLSCert, "tls:"+ids.TLSCert)
	add("dhcp_client_id", ids.DHCPClientID, "")
	add("dhcp_fingerprint", ids.DHCPFingerprint, "")
	for _, h := range o.Hostnames {
		i := slices.IndexFunc(a.Names, func(n Name) bool { return n.Name == h.Name })
		if i >= 0 {
			stretch(&a.Names[i].FirstSeen, &a.Names[i].LastSeen, st(o))
			if a.Names[i].How.IsZero() {
				a.Names[i].How = S(h.How)
			}
			continue
		}
		a.Names = append(a.Names, Name{Name: h.Name, How: S(cmp.Or(h.How, o.Source)), FirstSeen: st(o), LastSeen: st(o)})
		e.byName.add(h.Name, a)
		if a.FirstSeen.Before(st(o)) {
			e.emit(a, st(o), EventChanged, map[string]string{"change": "new_hostname", "hostname": h.Name})
		}
	}
}

// bindIP gives ip to a, taking it from whichever device held it before.
func (e *Engine) bindIP(a *Asset, ip netip.Addr, mac string, o *discovery.Observation) {
	ipV, macV := AddrFromIP(ip), AddrOf(mac)
	if h, ok := e.byIP[ip]; ok && h.asset != a {
		switch {
		case mac != "" && len(h.asset.MACHistory) == 0 && absDur(st(o).Sub(h.last)) <= e.opts.LeaseWindow && e.mergeable(a, h.asset):
			// The holder is known only by this IP (a routed sweep saw it
			// first): by the IP rule it is this device.
			e.merge(a, h.asset, st(o), "identity", "held the same IP within the lease window")
		case st(o).Before(h.last):
			// An older sighting than the current holder's: history only.
			e.recordIP(a, ipV, macV, o, false)
			return
		default:
			e.releaseIP(h.asset, ipV, st(o), a.ID.String())
		}
	}
	if h, ok := e.byIP[ip]; !ok || h.asset != a || st(o).After(h.last) {
		e.byIP[ip] = ipHold{asset: a, last: st(o)}
	}
	isNew := e.recordIP(a, ipV, macV, o, true)
	if isNew && a.FirstSeen.Before(st(o)) {
		e.emit(a, st(o), EventChanged, map[string]string{"change": "new_ip", "ip": ip.String()})
	}
	// A DHCP lease replaces the MAC's previous address of the same family.
	if o.Source == "passive:dhcp" && mac != "" {
		for i := range a.IPHistory {
			r := &a.IPHistory[i]
			if r.Current && r.Value != ipV && (r.Via == macV || !holdsMACAddr(a, r.Via)) && r.LastSeen.Before(st(o)) && r.Value.IP().Is4() == ip.Is4() {
				r.Current = false
				if p := r.Value.IP(); p.IsValid() {
					if h, ok := e.byIP[p]; ok && h.asset == a {
						delete(e.byIP, p)
					}
				}
			}
		}
	}
	if mac != "" && !onLinkSource(o.Source) {
		e.checkGateway(a, mac, st(o))
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// holdsMACAddr says whether a holds mac now.
func holdsMACAddr(a *Asset, mac Addr) bool {
	return !mac.IsZero() && slices.ContainsFunc(a.MACHistory, func(m Address) bool { return m.Value == mac && m.Current })
}

// recordIP adds or refreshes an IP in a's history; it reports whether the IP is new to a.
func (e *Engine) recordIP(a *Asset, ipV, macV Addr, o *discovery.Observation, current bool) bool {
	i := slices.IndexFunc(a.IPHistory, func(r Address) bool { return r.Value == ipV })
	if i >= 0 {
		r := &a.IPHistory[i]
		stretch(&r.FirstSeen, &r.LastSeen, st(o))
		if current {
			r.Current = true
			if !macV.IsZero() {
				r.Via = macV
			}
		}
		return false
	}
	a.IPHistory = append(a.IPHistory, Address{Value: ipV, VLAN: uint16(o.VLAN), Via: macV, Source: S(o.Source), FirstSeen: st(o), LastSeen: st(o), Current: current})
	return true
}

// releaseIP records that a no longer holds the IP (another device took it).
func (e *Engine) releaseIP(a *Asset, ipV Addr, at Stamp, to string) {
	for i := range a.IPHistory {
		if a.IPHistory[i].Value == ipV && a.IPHistory[i].Current {
			a.IPHistory[i].Current = false
			e.markDirty(a)
			e.emit(a, at, EventChanged, map[string]string{"change": "ip_moved", "ip": ipV.String(), "to_asset": to})
		}
	}
}

// checkGateway turns a MAC with many IPs into a gateway: the IPs it carried
// from routed traffic are released, to become devices of their own.
func (e *Engine) checkGateway(a *Asset, mac string, at Stamp) {
	if _, ok := e.gateways[mac]; ok {
		return
	}
	macV := AddrOf(mac)
	n := 0
	for _, r := range a.IPHistory {
		if r.Via == macV && r.Current {
			n++
		}
	}
	if n <= e.opts.GatewayIPs {
		return
	}
	e.gateways[mac] = a
	a.rw().Gateways = append(a.rw().Gateways, mac)
	if a.DeviceType.IsZero() {
		a.DeviceType = S("router")
	}
	released := 0
	for i := range a.IPHistory {
		r := &a.IPHistory[i]
		if r.Via == macV && r.Current && !onLinkSource(r.Source.String()) {
			r.Current = false
			released++
			if p := r.Value.IP(); p.IsValid() {
				if h, ok := e.byIP[p]; ok && h.asset == a {
					delete(e.byIP, p)
				}
			}
		}
	}
	e.emit(a, at, EventChanged, map[string]string{"change": "gateway", "mac": mac, "released_ips": strconv.Itoa(released)})
}

// observeDetails records services, vendor, OS and hints.
func (e *Engine) observeDetails(a *Asset, o *discovery.Observation) {
	for _, s := range o.Services {
		i := slices.IndexFunc(a.ServiceList, func(r ServiceRec) bool { return r.Port == s.Port && r.Proto.String() == s.Proto })
		if i < 0 {
			a.ServiceList = append(a.ServiceList, ServiceRec{Port: s.Port, Proto: S(s.Proto), Name: S(s.Name), Product: S(s.Product),
				Version: S(s.Version), CPE: S(s.CPE), Banner: s.Banner, FirstSeen: st(o), LastSeen: st(o), Open: true})
			e.emit(a, st(o), EventChanged, map[string]string{"change": "new_service", "service": fmt.Sprintf("%d/%s", s.Port, s.Proto), "product": s.Product, "version": s.Version})
			continue
		}
		r := &a.ServiceList[i]
		newer := !st(o).Before(r.LastSeen)
		stretch(&r.FirstSeen, &r.LastSeen, st(o))
		if !newer {
			continue
		}
		if !r.Open {
			r.Open = true
			e.emit(a, st(o), EventChanged, map[string]string{"change": "new_service", "service": fmt.Sprintf("%d/%s", s.Port, s.Proto), "reopened": "true"})
		}
		rp, rv := r.Product.String(), r.Version.String()
		if s.Version != "" && s.Version != rv && rv != "" || s.Product != "" && s.Product != rp && rp != "" {
			e.emit(a, st(o), EventChanged, map[string]string{"change": "service_version", "service": fmt.Sprintf("%d/%s", s.Port, s.Proto),
				"before": strings.TrimSpace(rp + " " + rv), "after": strings.TrimSpace(s.Product + " " + s.Version)})
		}
		r.Name, r.Product, r.Version = S(cmp.Or(s.Name, r.Name.String())), S(cmp.Or(s.Product, rp)), S(cmp.Or(s.Version, rv))
		r.CPE, r.Banner = S(cmp.Or(s.CPE, r.CPE.String())), cmp.Or(s.Banner, r.Banner)
	}
	if o.PortsScanned != "" {
		scanned := parsePorts(o.PortsScanned)
		for i := range a.ServiceList {
			r := &a.ServiceList[i]
			if !r.Open || r.Proto.String() != "tcp" || !scanned(r.Port) || !r.LastSeen.Before(st(o)) {
				continue
			}
			if slices.ContainsFunc(o.Services, func(s discovery.Service) bool { return s.Port == r.Port && s.Proto == r.Proto.String() }) {
				continue
			}
			r.Open = false
			e.emit(a, st(o), EventChanged, map[string]string{"change": "closed_service", "service": fmt.Sprintf("%d/%s", r.Port, r.Proto)})
		}
	}
	if o.Vendor != "" && o.Vendor != a.Vendor.String() {
		if !a.Vendor.IsZero() {
			e.emit(a, st(o), EventChanged, map[string]string{"change": "vendor", "before": a.Vendor.String(), "after": o.Vendor})
		}
		a.Vendor = S(o.Vendor)
	}
	if o.OS != "" && o.OS != a.OS.String() {
		if !a.OS.IsZero() {
			e.emit(a, st(o), EventChanged, map[string]string{"change": "os", "before": a.OS.String(), "after": o.OS})
		}
		a.OS = S(o.OS)
	}
	for _, h := range o.Hints {
		x := a.rw()
		i := slices.IndexFunc(x.Hints, func(r HintRec) bool { return r.Kind.String() == h.Kind })
		// An OS hint names the OS when no source states one and it is the
		// surest so far; an equally sure hint that disagrees does not flip it.
		if h.Kind == "os" && o.OS == "" && h.Value != a.OS.String() && (i < 0 || h.Confidence > x.Hints[i].Confidence) {
			if !a.OS.IsZero() {
				e.emit(a, st(o), EventChanged, map[string]string{"change": "os", "before": a.OS.String(), "after": h.Value})
			}
			a.OS = S(h.Value)
		}
		if i < 0 {
			x.Hints = append(x.Hints, HintRec{Kind: S(h.Kind), Value: S(h.Value), Confidence: h.Confidence, Source: S(h.Source), LastSeen: st(o)})
		} else if h.Confidence >= x.Hints[i].Confidence {
			x.Hints[i] = HintRec{Kind: S(h.Kind), Value: S(h.Value), Confidence: h.Confidence, Source: S(h.Source), LastSeen: st(o)}
		}
		if h.Kind == "device_type" && (a.DeviceType.IsZero() || h.Confidence >= 0.5) {
			a.DeviceType = S(h.Value)
		}
	}
}

// parsePorts reads nmap port syntax ("22,80,1000-2000") into a membership test.
func parsePorts(spec string) func(int) bool {
	type span struct{ lo, hi int }
	var spans []span
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "T:")
		lo, hi, isRange := strings.Cut(part, "-")
		l, err1 := strconv.Atoi(lo)
		h := l
		var err2 error
		if isRange {
			h, err2 = strconv.Atoi(hi)
		}
		if err1 == nil && err2 == nil {
			spans = append(spans, span{l, h})
		}
	}
	return func(p int) bool {
		for _, s := range spans {
			if p >= s.lo && p <= s.hi {
				return true
			}
		}
		return false
	}
}

func (e *Engine) refreshIdentity(a *Asset) {
	if a.Identity == symAmbiguous {
		return
	}
	strong := slices.ContainsFunc(a.Idents, func(x Ident) bool {
		k := x.Kind.String()
		return k == "serial" || k == "ssh_hostkey" || k == "tls_cert"
	}) || slices.ContainsFunc(a.MACHistory, func(m Address) bool { return !m.Value.local() })
	if strong {
		a.Identity = symStrong
	} else {
		a.Identity = symWeak
	}
}

// mergeAddresses folds the records of from into into: one record per
// address, spanning both, current if either was.
func mergeAddresses(into, from []Address) []Address {
	for _, r := range from {
		i := slices.IndexFunc(into, func(x Address) bool { return x.Value == r.Value })
		if i < 0 {
			into = append(into, r)
			continue
		}
		x := &into[i]
		stretch(&x.FirstSeen, &x.LastSeen, r.FirstSeen)
		stretch(&x.FirstSeen, &x.LastSeen, r.LastSeen)
		x.Current = x.Current || r.Current
	}
	return into
}

// merge moves everything of b into a and forgets b.
func (e *Engine) merge(a, b *Asset, at Stamp, by, reason string) {
	a.MACHistory = mergeAddresses(a.MACHistory, b.MACHistory)
	a.IPHistory = mergeAddresses(a.IPHistory, b.IPHistory)
	for _, n := range b.Names {
		if !slices.ContainsFunc(a.Names, func(x Name) bool { return x.Name == n.Name }) {
			a.Names = append(a.Names, n)
		}
		e.byName.remove(n.Name, b)
		e.byName.add(n.Name, a)
	}
	for _, s := range b.ServiceList {
		if !slices.ContainsFunc(a.ServiceList, func(x ServiceRec) bool { return x.Port == s.Port && x.Proto == s.Proto }) {
			a.ServiceList = append(a.ServiceList, s)
		}
	}
	for _, id := range b.Idents {
		if !slices.ContainsFunc(a.Idents, func(x Ident) bool { return x.Kind == id.Kind && x.Value == id.Value }) {
			a.Idents = append(a.Idents, id)
		}
	}
	for _, s := range b.SourceList {
		if i := slices.IndexFunc(a.SourceList, func(x SourceRec) bool { return x.Source == s.Source }); i >= 0 {
			stretch(&a.SourceList[i].FirstSeen, &a.SourceList[i].LastSeen, s.FirstSeen)
			stretch(&a.SourceList[i].FirstSeen, &a.SourceList[i].LastSeen, s.LastSeen)
		} else {
			a.SourceList = append(a.SourceList, s)
		}
	}
	if b.AssetExtra != nil {
		a.rw().Gateways = append(a.rw().Gateways, b.Gateways...)
		a.rw().KeepApart = append(a.rw().KeepApart, b.KeepApart...)
		if len(a.rw().Hints) == 0 {
			a.rw().Hints = b.Hints
		}
	}
	a.Vendor, a.OS, a.DeviceType = cmp.Or(a.Vendor, b.Vendor), cmp.Or(a.OS, b.OS), cmp.Or(a.DeviceType, b.DeviceType)
	stretch(&a.FirstSeen, &a.LastSeen, b.FirstSeen)
	stretch(&a.FirstSeen, &a.LastSeen, b.LastSeen)
	for _, k := range assetKeys(b) {
		if e.byKey.get(k) == b {
			e.byKey.set(k, a)
		}
	}
	for _, r := range b.IPHistory {
		if p := r.Value.IP(); p.IsValid() {
			if h, ok := e.byIP[p]; ok && h.asset == b {
				e.byIP[p] = ipHold{asset: a, last: h.last}
			}
		}
	}
	for _, mac := range b.ro().Gateways {
		e.gateways[mac] = a
	}
	delete(e.assets, b.ID)
	if b.fresh {
		// b was never written nor shown: it leaves no record, and its
		// pending events go with it.
		e.discarded[b.ID.String()] = struct{}{}
		e.markDirty(a)
		e.refreshIdentity(a)
		return
	}
	e.merged[b.ID.String()] = a.ID.String()
	e.mergesPending = append(e.mergesPending, [2]string{b.ID.String(), a.ID.String()})
	e.markDirty(a)
	e.refreshIdentity(a)
	e.emit(a, at, EventMerged, map[string]string{"merged_asset": b.ID.String(), "by": by, "reason": reason})
	e.events = append(e.events, Event{AssetID: b.ID.String(), Time: at.Time(), Kind: EventMergedAway, Detail: map[string]string{"into": a.ID.String(), "by": by}})
}
