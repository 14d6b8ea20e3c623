package passive

import (
	"encoding/binary"
	"strconv"

	"github.com/reckon-dev/reckon/discovery"
)

const (
	tcpSYN = 0x02
	tcpACK = 0x10
	tcpRST = 0x04
)

// onTCP reads what a TCP segment says about its ends: a SYN carries the
// client's stack signature (initial TTL, window, MSS and option order: an
// OS hint), a SYN-ACK says a service listens on the server's port, and the
// first bytes of a stream may be a TLS or HTTP head.
func (d *Decoder) onTCP(b []byte, off int) {
	flags := b[13]
	switch {
	case flags&(tcpSYN|tcpACK|tcpRST) == tcpSYN:
		d.onSYN(b, off)
	case flags&(tcpSYN|tcpACK|tcpRST) == tcpSYN|tcpACK:
		d.onSYNACK()
	case len(d.fr.payload) > 0:
		if len(d.flows) > 0 && d.onFlowSegment(b) {
			return
		}
		d.onStream(b)
	}
}

// synSig is a SYN's stack signature, rendered "ittl:window:layout" where
// ittl is the TTL rounded up to the usual initial values and layout lists
// the options in order: M<mss>, S (SACK permitted), T (timestamps), N
// (no-op), W<scale>, E (end of list), ?<kind> for others.
type synSig struct {
	ittl   uint8
	window uint16
	mss    uint16
	layout [64]byte
	n      int
}

func (s *synSig) put(c byte) {
	if s.n < len(s.layout) {
		s.layout[s.n] = c
		s.n++
	}
}

func (s *synSig) putNum(v int) {
	var buf [5]byte
	for _, c := range strconv.AppendInt(buf[:0], int64(v), 10) {
		s.put(c)
	}
}

func initialTTL(ttl uint8) uint8 {
	switch {
	case ttl <= 32:
		return 32
	case ttl <= 64:
		return 64
	case ttl <= 128:
		return 128
	}
	return 255
}

func parseSYN(b []byte, off int, ttl uint8) (s synSig) {
	s.ittl = initialTTL(ttl)
	s.window = binary.BigEndian.Uint16(b[14:16])
	opts := b[20:off]
	for i := 0; i < len(opts); {
		if s.n > 0 {
			s.put(',')
		}
		kind := opts[i]
		switch kind {
		case 0:
			s.put('E')
			i = len(opts)
			continue
		case 1:
			s.put('N')
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			s.put('!') // a malformed option ends the walk
			break
		}
		l := int(opts[i+1])
		switch {
		case kind == 2 && l == 4:
			s.mss = binary.BigEndian.Uint16(opts[i+2 : i+4])
			s.put('M')
			s.putNum(int(s.mss))
		case kind == 3 && l == 3:
			s.put('W')
			s.putNum(int(opts[i+2]))
		case kind == 4:
			s.put('S')
		case kind == 8:
			s.put('T')
		default:
			s.put('?')
			s.putNum(int(kind))
		}
		i += l
	}
	return s
}

func (s *synSig) String() string {
	return strconv.Itoa(int(s.ittl)) + ":" + strconv.Itoa(int(s.window)) + ":" + string(s.layout[:s.n])
}

func (d *Decoder) onSYN(b []byte, off int) {
	f := &d.fr
	sig := parseSYN(b, off, f.ttl)
	k := d.key(kindSYN)
	var hb [68]byte
	hb[0], hb[1], hb[2] = sig.ittl, byte(sig.window>>8), byte(sig.window)
	n := 3 + copy(hb[3:], sig.layout[:sig.n])
	k.h = d.hash(hb[:n])
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:tcp-syn", f.srcIP)
	if !ok {
		return
	}
	v := sig.String()
	o.Hints = append(o.Hints, discovery.Hint{Kind: "tcp_syn", Value: v, Confidence: 1, Source: "tcp-syn"})
	d.sigs.syn(&o, &sig)
	d.send(o)
}

func (d *Decoder) onSYNACK() {
	f := &d.fr
	k := d.key(kindService)
	k.h = uint64(f.sport)
	if !d.fresh(k) {
		return
	}
	o, ok := d.base("passive:tcp", f.srcIP)
	if !ok || o.IP == "" {
		return
	}
	o.Services = append(o.Services, discovery.Service{Port: int(f.sport), Proto: "tcp", Name: wellKnownTCP[f.sport]})
	d.send(o)
}

// wellKnownTCP names the services a SYN-ACK most often comes from; others
// stay unnamed rather than guessed.
var wellKnownTCP = map[uint16]string{
	21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "domain", 80: "http", 110: "pop3", 111: "rpcbind",
	135: "msrpc", 139: "netbios-ssn", 143: "imap", 161: "snmp", 389: "ldap", 443: "https", 445: "microsoft-ds",
	465: "smtps", 515: "printer", 548: "afp", 554: "rtsp", 587: "submission", 631: "ipp", 636: "ldaps",
	993: "imaps", 995: "pop3s", 1433: "ms-sql-s", 1521: "oracle", 2049: "nfs", 3306: "mysql", 3389: "ms-wbt-server",
	5432: "postgresql", 5900: "vnc", 6379: "redis", 8080: "http-proxy", 8443: "https-alt", 9100: "jetdirect",
}
