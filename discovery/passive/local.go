package passive

import (
	"net/netip"
	"sync"
)

// localNets knows which addresses are on-link, so that an address seen only
// behind a router's MAC is not given that MAC: configured prefixes, prefixes
// learned from DHCP acknowledgements (address and mask) and from router
// advertisements (on-link prefixes), and single hosts learned from ARP with
// the MAC that answered for them.
//
// The decoders of one sensor (one per fanout worker) share one: a DHCP ack
// seen by one worker makes the prefix on-link for the flows of all.
type localNets struct {
	mu         sync.RWMutex
	prefixes   []netip.Prefix
	configured int
	hosts      map[netip.Addr][6]byte
}

// Shared is what the decoders of one sensor learn together: which
// addresses are on-link. It is safe for concurrent use.
type Shared struct{ local *localNets }

// NewShared returns the shared knowledge of a sensor whose configured
// on-link prefixes are given.
func NewShared(configured []netip.Prefix) *Shared {
	l := &localNets{}
	l.init(configured)
	return &Shared{local: l}
}

const (
	maxLearnedPrefixes = 1024
	maxLearnedHosts    = 1 << 18
)

func (l *localNets) init(configured []netip.Prefix) {
	for _, p := range configured {
		l.prefixes = append(l.prefixes, p.Masked())
	}
	l.configured = len(l.prefixes)
	l.hosts = map[netip.Addr][6]byte{}
}

// owns says whether a frame from mac carrying source address ip was sent by
// the owner of ip: link-local addresses always are; an address that ARP
// bound to another MAC is not; an address inside an on-link prefix is.
func (l *localNets) owns(ip netip.Addr, mac [6]byte) bool {
	ip = ip.Unmap()
	if ip.IsLinkLocalUnicast() {
		return true
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if m, ok := l.hosts[ip]; ok {
		return m == mac
	}
	return l.containsLocked(ip)
}

func (l *localNets) contains(ip netip.Addr) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.containsLocked(ip)
}

func (l *localNets) containsLocked(ip netip.Addr) bool {
	for _, p := range l.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *localNets) learnHost(ip netip.Addr, mac [6]byte) {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return
	}
	l.mu.RLock()
	m, ok := l.hosts[ip]
	l.mu.RUnlock()
	if ok && m == mac {
		return // the common case: nothing new, no write lock
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hosts) >= maxLearnedHosts {
		clear(l.hosts)
	}
	l.hosts[ip] = mac
}

// learnPrefix adds an on-link prefix; a prefix too wide to be one segment
// (shorter than /8 for IPv4, /32 for IPv6) is ignored, as a lie or a typo.
func (l *localNets) learnPrefix(p netip.Prefix) {
	p = p.Masked()
	if !p.IsValid() || (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 32) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range l.prefixes {
		if q == p {
			return
		}
	}
	if len(l.prefixes)-l.configured >= maxLearnedPrefixes {
		l.prefixes = l.prefixes[:l.configured]
	}
	l.prefixes = append(l.prefixes, p)
}

// Learned lists the on-link prefixes the decoder knows, configured first.
func (d *Decoder) Learned() []netip.Prefix {
	d.local.mu.RLock()
	defer d.local.mu.RUnlock()
	return append([]netip.Prefix(nil), d.local.prefixes...)
}
