package passive

import "encoding/binary"

// A TLS 1.2 server's certificate rarely fits the segment that carries its
// ServerHello. The decoder follows such a flow's next in-order segments,
// up to maxFlowBytes, until the leaf certificate is whole; at most
// maxFlows flows at a time, each for at most flowTTL seconds of capture
// time, with buffers recycled so that the steady state does not allocate.
// A server whose certificate was read within the resight window is not
// followed again.
const (
	maxFlows     = 256
	maxFlowBytes = 16 << 10
	flowTTL      = 30
)

type flowKey struct {
	src, dst     [16]byte
	sport, dport uint16
}

type tlsFlow struct {
	next  uint32 // the sequence number the next segment must carry
	buf   []byte
	start int64
}

func (d *Decoder) flowKey() flowKey {
	f := &d.fr
	return flowKey{src: f.srcIP.As16(), dst: f.dstIP.As16(), sport: f.sport, dport: f.dport}
}

// certKnown reports whether this server port's certificate was read within
// the resight window; it does not record anything.
func (d *Decoder) certKnown() bool {
	k := d.key(kindTLSCert)
	k.h = 1<<32 | uint64(d.fr.sport)
	last, ok := d.seen[k]
	now := d.fr.ci.Timestamp.Unix()
	return ok && now-last < int64(d.opts.Resight.Seconds()) && now >= last
}

func (d *Decoder) markCertKnown() {
	k := d.key(kindTLSCert)
	k.h = 1<<32 | uint64(d.fr.sport)
	d.fresh(k)
}

// followTLS starts following a server flight whose certificate is not
// whole in its first segment.
func (d *Decoder) followTLS(tcp []byte) {
	if d.certKnown() {
		return
	}
	if len(d.flows) >= maxFlows {
		d.dropFlows(true)
	}
	p := d.fr.payload
	var buf []byte
	if n := len(d.freeBufs); n > 0 {
		buf, d.freeBufs = d.freeBufs[n-1][:0], d.freeBufs[:n-1]
	} else {
		buf = make([]byte, 0, maxFlowBytes)
	}
	buf = append(buf, p[:min(len(p), maxFlowBytes)]...)
	seq := binary.BigEndian.Uint32(tcp[4:8])
	d.flows[d.flowKey()] = &tlsFlow{next: seq + uint32(len(p)), buf: buf, start: d.fr.ci.Timestamp.Unix()}
}

// onFlowSegment takes a segment of a followed flow; it reports whether the
// segment belonged to one.
func (d *Decoder) onFlowSegment(tcp []byte) bool {
	k := d.flowKey()
	fl, ok := d.flows[k]
	if !ok {
		return false
	}
	seq := binary.BigEndian.Uint32(tcp[4:8])
	p := d.fr.payload
	switch {
	case int32(seq-fl.next) < 0:
		return true // a retransmission of what we have
	case seq != fl.next || d.fr.ci.Timestamp.Unix()-fl.start > flowTTL:
		d.endFlow(k, fl) // a gap: give up rather than guess
		return true
	}
	room := maxFlowBytes - len(fl.buf)
	fl.buf = append(fl.buf, p[:min(len(p), room)]...)
	fl.next += uint32(len(p))
	if der, ok := tlsLeafCertificate(fl.buf); ok {
		d.reportCert(der)
		d.endFlow(k, fl)
	} else if len(fl.buf) >= maxFlowBytes {
		d.endFlow(k, fl)
	}
	return true
}

func (d *Decoder) endFlow(k flowKey, fl *tlsFlow) {
	delete(d.flows, k)
	d.freeBufs = append(d.freeBufs, fl.buf)
}

// dropFlows ends flows past their time, or all of them.
func (d *Decoder) dropFlows(all bool) {
	now := d.fr.ci.Timestamp.Unix()
	for k, fl := range d.flows {
		if all || now-fl.start > flowTTL {
			d.endFlow(k, fl)
		}
	}
}
