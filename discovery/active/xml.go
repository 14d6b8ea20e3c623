package active

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// DefaultSource is the Observation.Source of nmap sweeps.
const DefaultSource = "active:nmap"

// ErrTruncated: nmap's XML stops before </nmaprun> (nmap died, was killed or
// is still writing). ParseXML still returns every complete <host>.
var ErrTruncated = errors.New("nmap XML is cut off")

// ParseXML reads nmap -oX output as a stream, one <host> element at a time,
// so a file cut off mid-way (nmap killed, disk full) still yields every host
// written in full. On a cut-off file it returns the Result with Partial set
// and an error matching ErrTruncated that says where the file stopped; on
// input that is not nmap XML at all, an empty Result and an error. source
// and sensor go into each observation (source "" is DefaultSource).
func ParseXML(r io.Reader, source, sensor string) (Result, error) {
	p := newParser(source, sensor, nil)
	err := p.parse(r)
	return p.result(), err
}

// The XML shapes read from nmap's output. Numbers are read as strings and
// parsed leniently, so one odd attribute does not lose a whole host.
type (
	xHost struct {
		StartTime   string      `xml:"starttime,attr"`
		EndTime     string      `xml:"endtime,attr"`
		TimedOut    string      `xml:"timedout,attr"`
		Status      xStatus     `xml:"status"`
		Addresses   []xAddress  `xml:"address"`
		Hostnames   []xHostname `xml:"hostnames>hostname"`
		Ports       []xPort     `xml:"ports>port"`
		OSMatches   []xOSMatch  `xml:"os>osmatch"`
		HostScripts []xScript   `xml:"hostscript>script"`
	}
	xStatus struct {
		State string `xml:"state,attr"`
	}
	xAddress struct {
		Addr     string `xml:"addr,attr"`
		AddrType string `xml:"addrtype,attr"`
		Vendor   string `xml:"vendor,attr"`
	}
	xHostname struct {
		Name string `xml:"name,attr"`
		Type string `xml:"type,attr"`
	}
	xPort struct {
		Protocol string    `xml:"protocol,attr"`
		PortID   string    `xml:"portid,attr"`
		State    xStatus   `xml:"state"`
		Service  xService  `xml:"service"`
		Scripts  []xScript `xml:"script"`
	}
	xService struct {
		Name     string   `xml:"name,attr"`
		Product  string   `xml:"product,attr"`
		Version  string   `xml:"version,attr"`
		Hostname string   `xml:"hostname,attr"`
		CPEs     []string `xml:"cpe"`
	}
	xScript struct {
		ID     string   `xml:"id,attr"`
		Elems  []xElem  `xml:"elem"`
		Tables []xTable `xml:"table"`
	}
	xTable struct {
		Key    string   `xml:"key,attr"`
		Elems  []xElem  `xml:"elem"`
		Tables []xTable `xml:"table"`
	}
	xElem struct {
		Key   string `xml:"key,attr"`
		Value string `xml:",chardata"`
	}
	xOSMatch struct {
		Name     string     `xml:"name,attr"`
		Accuracy string     `xml:"accuracy,attr"`
		Classes  []xOSClass `xml:"osclass"`
	}
	xOSClass struct {
		Type string `xml:"type,attr"`
	}
	xRunStats struct {
		Finished struct {
			Time     string `xml:"time,attr"`
			Exit     string `xml:"exit,attr"`
			ErrorMsg string `xml:"errormsg,attr"`
		} `xml:"finished"`
		Hosts struct {
			Up   string `xml:"up,attr"`
			Down string `xml:"down,attr"`
		} `xml:"hosts"`
	}
)

type parser struct {
	source, sensor string
	onProgress     func(Progress)

	res             Result
	sawRun, sawEnd  bool
	sawStats        bool
	hostsUp, hostsN int
	timedOut        []string
	last            time.Time // the latest time nmap wrote, for hosts without an endtime
	progress        Progress
}

func newParser(source, sensor string, onProgress func(Progress)) *parser {
	if source == "" {
		source = DefaultSource
	}
	return &parser{source: source, sensor: sensor, onProgress: onProgress}
}

func (p *parser) parse(r io.Reader) error {
	d := xml.NewDecoder(r)
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return p.stop(d, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if t.Name.Local != "nmaprun" {
					return fmt.Errorf("not nmap XML: the root element is <%s>, want <nmaprun>", t.Name.Local)
				}
				p.sawRun = true
				p.res.Started = unixAttr(attr(t, "start"))
				p.seen(p.res.Started)
				depth++
				continue
			}
			if err := p.element(d, t); err != nil {
				return p.stop(d, err)
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				p.sawEnd = true
				return nil
			}
		}
	}
}

// element handles one child of <nmaprun>, consuming it whole.
func (p *parser) element(d *xml.Decoder, t xml.StartElement) error {
	switch t.Name.Local {
	case "scaninfo":
		if attr(t, "protocol") == "tcp" {
			p.res.PortsScanned = canonicalTCP(attr(t, "services"))
		}
	case "taskbegin", "taskend", "taskprogress":
		ts := unixAttr(attr(t, "time"))
		p.seen(ts)
		p.progress.Task = attr(t, "task")
		p.progress.Remaining = 0
		switch t.Name.Local {
		case "taskbegin":
			p.progress.Percent = 0
		case "taskend":
			p.progress.Percent = 100
		default:
			p.progress.Percent, _ = strconv.ParseFloat(attr(t, "percent"), 64)
			if s, err := strconv.Atoi(attr(t, "remaining")); err == nil && s > 0 {
				p.progress.Remaining = time.Duration(s) * time.Second
			} else if etc := unixAttr(attr(t, "etc")); !etc.IsZero() && !ts.IsZero() && etc.After(ts) {
				p.progress.Remaining = etc.Sub(ts)
			}
		}
		p.report()
	case "host":
		var h xHost
		if err := d.DecodeElement(&h, &t); err != nil {
			return err
		}
		p.host(&h)
		p.report()
		return nil
	case "runstats":
		var rs xRunStats
		if err := d.DecodeElement(&rs, &t); err != nil {
			return err
		}
		p.sawStats = true
		p.res.Finished = unixAttr(rs.Finished.Time)
		p.seen(p.res.Finished)
		p.res.HostsUp, _ = strconv.Atoi(rs.Hosts.Up)
		p.res.HostsDown, _ = strconv.Atoi(rs.Hosts.Down)
		if rs.Finished.Exit == "error" || rs.Finished.ErrorMsg != "" {
			p.res.Partial = true
			p.res.Failure = "nmap reported an error: " + rs.Finished.ErrorMsg
		}
		return nil
	}
	return d.Skip()
}

// stop turns the error that ended the token stream into ParseXML's error.
func (p *parser) stop(d *xml.Decoder, err error) error {
	if !p.sawRun {
		if endOfInput(err) {
			return fmt.Errorf("%w before <nmaprun> (%d bytes)", ErrTruncated, d.InputOffset())
		}
		return fmt.Errorf("not nmap XML: %w", err)
	}
	p.res.Partial = true
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w at byte %d after %d complete hosts: %w", ErrTruncated, d.InputOffset(), p.hostsN, err)
}

// endOfInput says whether the decoder stopped because the input ended.
func endOfInput(err error) bool {
	var se *xml.SyntaxError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Msg == "unexpected EOF")
}

func (p *parser) seen(t time.Time) {
	if t.After(p.last) {
		p.last = t
	}
}

func (p *parser) report() {
	if p.onProgress == nil {
		return
	}
	p.progress.HostsUp, p.progress.HostsDone = p.hostsUp, p.hostsN
	p.onProgress(p.progress)
}

// result finishes the observations: a time for hosts nmap gave none, the
// ports scanned, host counts when runstats never came.
func (p *parser) result() Result {
	res := p.res
	end := res.Finished
	if end.IsZero() {
		end = p.last
	}
	for i := range res.Observations {
		o := &res.Observations[i]
		if o.Time.IsZero() {
			o.Time = end
		}
	}
	if !p.sawStats {
		res.HostsUp, res.HostsDown = p.hostsUp, p.hostsN-p.hostsUp
	}
	if len(p.timedOut) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d hosts timed out (--host-timeout), their services are incomplete and not recorded as a full scan: %s",
			len(p.timedOut), strings.Join(p.timedOut, ", ")))
	}
	res.setPortsScanned(p.timedOut)
	return res
}

// setPortsScanned sets PortsScanned on every observation except hosts that
// timed out: their port lists are incomplete, so a missing service there
// must not read as closed.
func (r *Result) setPortsScanned(timedOut []string) {
	for i := range r.Observations {
		o := &r.Observations[i]
		o.PortsScanned = r.PortsScanned
		for _, ip := range timedOut {
			if o.IP == ip {
				o.PortsScanned = ""
			}
		}
	}
}

// host turns one <host> into an observation when the host is up.
func (p *parser) host(h *xHost) {
	p.hostsN++
	if h.Status.State != "up" {
		return
	}
	p.hostsUp++
	o := discovery.Observation{Source: p.source, Sensor: p.sensor}
	o.Time = unixAttr(h.EndTime)
	p.seen(o.Time)
	p.seen(unixAttr(h.StartTime))
	for _, a := range h.Addresses {
		switch a.AddrType {
		case "ipv4", "ipv6":
			if ip, err := netip.ParseAddr(a.Addr); err == nil && (o.IP == "" || (ip.Is4() && !strings.Contains(o.IP, "."))) {
				o.IP = ip.Unmap().String()
			}
		case "mac":
			if mac, err := discovery.CanonicalMAC(a.Addr); err == nil && o.MAC == "" {
				o.MAC, o.Vendor = mac, a.Vendor
			}
		}
	}
	if o.IP == "" && o.MAC == "" {
		return
	}
	names := map[string]bool{}
	addName := func(name, how string) {
		name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
		if name == "" || names[name+"\x00"+how] {
			return
		}
		names[name+"\x00"+how] = true
		o.Hostnames = append(o.Hostnames, discovery.Hostname{Name: name, How: how})
	}
	for _, hn := range h.Hostnames {
		switch hn.Type {
		case "PTR":
			addName(hn.Name, "dns-ptr")
		case "user":
			addName(hn.Name, "nmap-user")
		}
	}
	var sshKeys []sshKey
	for _, port := range h.Ports {
		if port.State.State != "open" {
			continue
		}
		n, err := strconv.Atoi(port.PortID)
		if err != nil || n < 0 || n > 65535 {
			continue
		}
		svc := discovery.Service{
			Port:    n,
			Proto:   port.Protocol,
			Name:    port.Service.Name,
			Product: port.Service.Product,
			Version: port.Service.Version,
		}
		if len(port.Service.CPEs) > 0 {
			svc.CPE = strings.TrimSpace(port.Service.CPEs[0])
		}
		o.Services = append(o.Services, svc)
		if port.Service.Hostname != "" {
			addName(port.Service.Hostname, "nmap-service")
		}
		for _, s := range port.Scripts {
			switch s.ID {
			case "ssh-hostkey":
				sshKeys = append(sshKeys, parseSSHHostKeys(s)...)
			case "ssl-cert":
				if o.Identifiers.TLSCert == "" {
					o.Identifiers.TLSCert = certSHA256(s)
				}
			}
		}
	}
	o.Identifiers.SSHHostKey = pickSSHKey(sshKeys)
	if len(h.OSMatches) > 0 {
		best := h.OSMatches[0] // nmap lists matches best first; keep the first of equals
		bestAcc, _ := strconv.Atoi(best.Accuracy)
		for _, m := range h.OSMatches[1:] {
			if acc, _ := strconv.Atoi(m.Accuracy); acc > bestAcc {
				best, bestAcc = m, acc
			}
		}
		if best.Name != "" {
			conf := min(max(float64(bestAcc)/100, 0), 1)
			o.OS = best.Name
			o.Hints = append(o.Hints, discovery.Hint{Kind: "os", Value: best.Name, Confidence: conf, Source: "nmap-os"})
			if len(best.Classes) > 0 && best.Classes[0].Type != "" {
				o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: best.Classes[0].Type, Confidence: conf, Source: "nmap-os"})
			}
		}
	}
	if h.TimedOut == "true" {
		p.timedOut = append(p.timedOut, o.IP)
	}
	p.res.Observations = append(p.res.Observations, o)
}

type sshKey struct{ typ, fp string }

// parseSSHHostKeys reads the ssh-hostkey script's tables (one per key:
// type, bits, fingerprint, key) into OpenSSH-style "SHA256:<base64>"
// fingerprints of the key blob, as `ssh-keygen -lf` prints them. Without a
// usable blob it falls back to nmap's MD5 fingerprint as "MD5:aa:bb:...".
func parseSSHHostKeys(s xScript) []sshKey {
	var out []sshKey
	for _, t := range s.Tables {
		var typ, blob, md5 string
		for _, e := range t.Elems {
			v := strings.TrimSpace(e.Value)
			switch e.Key {
			case "type":
				typ = v
			case "key":
				// The blob alone, or "type blob" in some nmap versions.
				if f := strings.Fields(v); len(f) > 0 {
					blob = f[len(f)-1]
				}
			case "fingerprint":
				md5 = v
			}
		}
		if raw, err := base64.StdEncoding.DecodeString(blob); err == nil && len(raw) > 0 {
			sum := sha256.Sum256(raw)
			out = append(out, sshKey{typ, "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])})
			continue
		}
		if b, err := hex.DecodeString(md5); err == nil && len(b) == 16 {
			pairs := make([]string, len(b))
			for i, c := range b {
				pairs[i] = fmt.Sprintf("%02x", c)
			}
			out = append(out, sshKey{typ, "MD5:" + strings.Join(pairs, ":")})
		}
	}
	return out
}

// pickSSHKey chooses the host's identity among its keys: ed25519 if it has
// one (every modern OpenSSH does, and it survives RSA key rotation), else
// the first key of the lowest port.
func pickSSHKey(keys []sshKey) string {
	for _, k := range keys {
		if k.typ == "ssh-ed25519" {
			return k.fp
		}
	}
	if len(keys) > 0 {
		return keys[0].fp
	}
	return ""
}

// certSHA256 is the lower-case hex SHA-256 of the leaf certificate's DER,
// decoded from the ssl-cert script's pem element: the same form the passive
// sensor records.
func certSHA256(s xScript) string {
	for _, e := range s.Elems {
		if e.Key != "pem" {
			continue
		}
		b, _ := pem.Decode([]byte(strings.TrimSpace(e.Value)))
		if b == nil || b.Type != "CERTIFICATE" {
			return ""
		}
		sum := sha256.Sum256(b.Bytes)
		return hex.EncodeToString(sum[:])
	}
	return ""
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func unixAttr(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}
