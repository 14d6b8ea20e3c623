package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// ErrNotFound is returned for an asset id the inventory does not have.
var ErrNotFound = errors.New("asset not found")

// ErrInvalid is returned for a correction that cannot be done as asked.
var ErrInvalid = errors.New("invalid correction")

// Merge folds asset other into asset into, as an analyst asked.
func (e *Engine) Merge(into, other, by string, when time.Time) (*Asset, error) {
	at := StampOf(when)
	a, ok := e.Get(into)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, into)
	}
	b, ok := e.Get(other)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, other)
	}
	if a == b {
		return nil, fmt.Errorf("%w: an asset cannot be merged into itself", ErrInvalid)
	}
	b.fresh = false // an analyst's merge is always on the record
	if a.AssetExtra != nil {
		a.KeepApart = slices.DeleteFunc(a.KeepApart, func(id string) bool { return id == other })
	}
	if b.AssetExtra != nil {
		b.KeepApart = slices.DeleteFunc(b.KeepApart, func(id string) bool { return id == into })
	}
	e.merge(a, b, at, by, "analyst")
	if a.Identity == symAmbiguous {
		a.Identity = Sym{}
		e.refreshIdentity(a)
	}
	return a, nil
}

// SplitSpec says what moves to the new asset.
type SplitSpec struct {
	MACs        []string `json:"macs"`
	IPs         []string `json:"ips"`
	Hostnames   []string `json:"hostnames"`
	Identifiers []string `json:"identifiers"` // values of serial, ssh_hostkey, tls_cert, dhcp ids
}

// Split moves what spec names out of asset id into a new asset, and keeps
// the two apart from then on.
func (e *Engine) Split(id string, spec SplitSpec, by string, when time.Time) (*Asset, *Asset, error) {
	at := StampOf(when)
	a, ok := e.Get(id)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	for i, m := range spec.MACs {
		c, err := discovery.CanonicalMAC(m)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: macs[%d]: %q is not a MAC", ErrInvalid, i, m)
		}
		spec.MACs[i] = c
	}
	for i, ip := range spec.IPs {
		p, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: ips[%d]: %q is not an IP", ErrInvalid, i, ip)
		}
		spec.IPs[i] = p.Unmap().String()
	}
	for i := range spec.Hostnames {
		spec.Hostnames[i] = strings.ToLower(strings.TrimSpace(spec.Hostnames[i]))
	}
	b := &Asset{ID: e.newID(), Status: symNew, Identity: symWeak, FirstSeen: at, LastSeen: 0}
	moved := 0
	move := func(list []Address, names []string) (keep, out []Address) {
		for _, r := range list {
			if slices.Contains(names, r.Value.String()) {
				out = append(out, r)
			} else {
				keep = append(keep, r)
			}
		}
		return keep, out
	}
	a.MACHistory, b.MACHistory = move(a.MACHistory, spec.MACs)
	a.IPHistory, b.IPHistory = move(a.IPHistory, spec.IPs)
	for _, n := range a.Names {
		if slices.Contains(spec.Hostnames, n.Name) {
			b.Names = append(b.Names, n)
		}
	}
	a.Names = slices.DeleteFunc(a.Names, func(n Name) bool { return slices.Contains(spec.Hostnames, n.Name) })
	for _, x := range a.Idents {
		if slices.Contains(spec.Identifiers, x.Value) {
			b.Idents = append(b.Idents, x)
		}
	}
	a.Idents = slices.DeleteFunc(a.Idents, func(x Ident) bool { return slices.Contains(spec.Identifiers, x.Value) })
	moved = len(b.MACHistory) + len(b.IPHistory) + len(b.Names) + len(b.Idents)
	if moved == 0 {
		return nil, nil, fmt.Errorf("%w: asset %s holds none of the addresses, names or identifiers given", ErrInvalid, id)
	}
	if len(a.MACHistory)+len(a.IPHistory)+len(a.Names)+len(a.Idents) == 0 {
		// Undo: nothing would be left on the original.
		a.MACHistory, a.IPHistory, a.Names, a.Idents = b.MACHistory, b.IPHistory, b.Names, b.Idents
		return nil, nil, fmt.Errorf("%w: the split would leave asset %s with nothing", ErrInvalid, id)
	}
	// Times and sources of the new asset come from what it took.
	for _, r := range slices.Concat(b.MACHistory, b.IPHistory) {
		span(b, r.FirstSeen, r.LastSeen)
		if !r.Source.IsZero() && !slices.ContainsFunc(b.SourceList, func(s SourceRec) bool { return s.Source == r.Source }) {
			b.SourceList = append(b.SourceList, SourceRec{Source: r.Source, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen})
		}
	}
	for _, n := range b.Names {
		span(b, n.FirstSeen, n.LastSeen)
	}
	for _, x := range b.Idents {
		span(b, x.FirstSeen, x.LastSeen)
	}
	if b.LastSeen.IsZero() {
		b.LastSeen = at
	}
	e.assets[b.ID] = b
	e.markDirty(b)
	for _, k := range assetKeys(b) {
		e.byKey.set(k, b)
	}
	for _, r := range b.IPHistory {
		if p := r.Value.IP(); p.IsValid() {
			if h, ok := e.byIP[p]; ok && h.asset == a {
				e.byIP[p] = ipHold{asset: b, last: h.last}
			}
		}
	}
	for _, n := range b.Names {
		e.byName.remove(n.Name, a)
		e.byName.add(n.Name, b)
	}
	a.rw().KeepApart = append(a.rw().KeepApart, b.ID.String())
	b.rw().KeepApart = append(b.rw().KeepApart, a.ID.String())
	if a.Identity == symAmbiguous {
		a.Identity = Sym{}
		if a.Status == symUnknown {
			a.Status = symNew
		}
	}
	e.refreshIdentity(a)
	e.refreshIdentity(b)
	e.markDirty(a)
	e.emit(a, at, EventSplit, map[string]string{"new_asset": b.ID.String(), "by": by})
	e.emit(b, at, EventCreated, map[string]string{"split_from": a.ID.String(), "by": by})
	return a, b, nil
}

func span(a *Asset, first, last Stamp) {
	if a.FirstSeen.IsZero() || first.Before(a.FirstSeen) {
		a.FirstSeen = first
	}
	if last.After(a.LastSeen) {
		a.LastSeen = last
	}
}

// MarkMissing flags assets no source has seen for the missing window, as of
// now, and returns how many it flagged.
func (e *Engine) MarkMissing(now time.Time) int {
	n := 0
	at := StampOf(now)
	for _, a := range e.assets {
		if !a.Missing && at.Sub(a.LastSeen) > e.opts.MissingAfter {
			a.Missing = true
			e.markDirty(a)
			e.emit(a, at, EventNotSeen, map[string]string{"last_seen": a.LastSeen.Time().Format(time.RFC3339)})
			n++
		}
	}
	return n
}

// Load puts a stored asset back into the engine, rebuilding the indexes.
func (e *Engine) Load(a *Asset) {
	e.assets[a.ID] = a
	for _, k := range assetKeys(a) {
		if e.byKey.get(k) == nil {
			e.byKey.set(k, a)
		}
	}
	for _, r := range a.IPHistory {
		if !r.Current {
			continue
		}
		if p := r.Value.IP(); p.IsValid() {
			if h, ok := e.byIP[p]; !ok || r.LastSeen.After(h.last) {
				e.byIP[p] = ipHold{asset: a, last: r.LastSeen}
			}
		}
	}
	for _, n := range a.Names {
		e.byName.add(n.Name, a)
	}
	for _, mac := range a.ro().Gateways {
		e.gateways[mac] = a
	}
}

// LoadMerged records that an absorbed asset went into another.
func (e *Engine) LoadMerged(from, to string) { e.merged[from] = to }
