package nmapfacts

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/assess"
)

// ErrTruncated: nmap's XML stops before </nmaprun> (nmap died, was killed or
// is still writing) or breaks off into something that is not XML. Parse
// still returns every <host> written in full.
var ErrTruncated = errors.New("nmap XML is cut off")

// ErrNotNmapXML: the input is not nmap XML at all.
var ErrNotNmapXML = errors.New("not nmap XML")

// Parse reads nmap -oX output as a stream, one <host> element at a time, and
// returns one Facts per host, each Normalized. On a file cut off mid-way it
// returns the hosts written in full and an error matching ErrTruncated that
// says where the file stopped; on input that is not nmap XML, no facts and
// an error matching ErrNotNmapXML.
func Parse(r io.Reader) ([]assess.Facts, error) {
	var p parser
	err := p.parse(r)
	p.finish()
	return p.facts, err
}

// The XML shapes read from nmap's output. Numbers are read as strings and
// parsed leniently, so one odd attribute does not lose a whole host.
type (
	xHost struct {
		EndTime     string      `xml:"endtime,attr"`
		TimedOut    string      `xml:"timedout,attr"`
		Status      xState      `xml:"status"`
		Addresses   []xAddress  `xml:"address"`
		Hostnames   []xHostname `xml:"hostnames>hostname"`
		Ports       []xPort     `xml:"ports>port"`
		HostScripts []xScript   `xml:"hostscript>script"`
	}
	xState struct {
		State  string `xml:"state,attr"`
		Reason string `xml:"reason,attr"`
	}
	xAddress struct {
		Addr     string `xml:"addr,attr"`
		AddrType string `xml:"addrtype,attr"`
	}
	xHostname struct {
		Name string `xml:"name,attr"`
	}
	xPort struct {
		Protocol string    `xml:"protocol,attr"`
		PortID   string    `xml:"portid,attr"`
		State    xState    `xml:"state"`
		Service  xService  `xml:"service"`
		Scripts  []xScript `xml:"script"`
	}
	xService struct {
		Name      string   `xml:"name,attr"`
		Product   string   `xml:"product,attr"`
		Version   string   `xml:"version,attr"`
		ExtraInfo string   `xml:"extrainfo,attr"`
		Tunnel    string   `xml:"tunnel,attr"`
		CPEs      []string `xml:"cpe"`
	}
	// xScript is one NSE script's result: the text it printed and the
	// structured output, a tree of <table key> and <elem key>.
	xScript struct {
		ID     string `xml:"id,attr"`
		Output string `xml:"output,attr"`
		xTable
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
	xRunStats struct {
		Finished struct {
			Time     string `xml:"time,attr"`
			Exit     string `xml:"exit,attr"`
			ErrorMsg string `xml:"errormsg,attr"`
		} `xml:"finished"`
	}
)

type parser struct {
	facts    []assess.Facts
	sawRun   bool
	smbPort  int       // --script-args smbport=N from the command line
	finished time.Time // runstats' finish time
	runError string    // runstats says nmap ended in an error
}

func (p *parser) parse(r io.Reader) error {
	d := xml.NewDecoder(r)
	for {
		tok, err := d.Token()
		if err != nil {
			return p.stop(d, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !p.sawRun {
				if t.Name.Local != "nmaprun" {
					return fmt.Errorf("%w: the root element is <%s>, want <nmaprun>", ErrNotNmapXML, t.Name.Local)
				}
				p.sawRun = true
				p.smbPort = smbPortArg(attr(t, "args"))
				continue
			}
			if err := p.element(d, t); err != nil {
				return p.stop(d, err)
			}
		case xml.EndElement:
			// Every child of <nmaprun> is consumed whole, so this is
			// </nmaprun>. Whatever follows it is not read.
			return nil
		case xml.CharData:
			if !p.sawRun && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text before the root element", ErrNotNmapXML)
			}
		}
	}
}

// element handles one child of <nmaprun>, consuming it whole.
func (p *parser) element(d *xml.Decoder, t xml.StartElement) error {
	switch t.Name.Local {
	case "host":
		var h xHost
		if err := d.DecodeElement(&h, &t); err != nil {
			return err
		}
		p.facts = append(p.facts, p.host(&h))
		return nil
	case "runstats":
		var rs xRunStats
		if err := d.DecodeElement(&rs, &t); err != nil {
			return err
		}
		p.finished = unixTime(rs.Finished.Time)
		if rs.Finished.Exit == "error" || rs.Finished.ErrorMsg != "" {
			p.runError = cmp.Or(rs.Finished.ErrorMsg, "exit status error")
		}
		return nil
	}
	return d.Skip()
}

// stop turns the error that ended the token stream into Parse's error.
func (p *parser) stop(d *xml.Decoder, err error) error {
	line, col := d.InputPos()
	if !p.sawRun {
		if endOfInput(err) {
			if d.InputOffset() == 0 {
				return fmt.Errorf("%w before <nmaprun>: the input is empty", ErrTruncated)
			}
			return fmt.Errorf("%w before <nmaprun> (%d bytes)", ErrTruncated, d.InputOffset())
		}
		return fmt.Errorf("%w: %w", ErrNotNmapXML, err)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w at line %d, column %d (byte %d) after %d complete hosts: %w",
		ErrTruncated, line, col, d.InputOffset(), len(p.facts), err)
}

// endOfInput says whether the decoder stopped because the input ended.
func endOfInput(err error) bool {
	var se *xml.SyntaxError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &se) && se.Msg == "unexpected EOF")
}

// finish applies what only the end of the run says to every host.
func (p *parser) finish() {
	for i := range p.facts {
		f := &p.facts[i]
		if f.Collected.IsZero() {
			f.Collected = p.finished
		}
		if p.runError != "" {
			f.Errors = append(f.Errors, "nmap: the run ended in an error: "+p.runError)
		}
	}
}

// host turns one <host> into its facts.
func (p *parser) host(h *xHost) assess.Facts {
	f := assess.Facts{Target: target(h.Addresses), Collected: unixTime(h.EndTime)}
	for _, hn := range h.Hostnames {
		if name := strings.TrimSpace(hn.Name); name != "" && !slices.Contains(f.Hostnames, name) {
			f.Hostnames = append(f.Hostnames, name)
		}
	}
	if st := h.Status.State; st != "" && st != "up" {
		f.Errors = append(f.Errors, fmt.Sprintf("nmap: host is %s (%s)", st, cmp.Or(h.Status.Reason, "no reason given")))
	}
	if h.TimedOut == "true" {
		f.Errors = append(f.Errors, "nmap: host timed out (--host-timeout), its ports and scripts are incomplete")
	}
	b := builder{f: &f}
	for i := range h.Ports {
		b.port(&h.Ports[i])
	}
	b.smbServices()
	b.hostScripts(h.HostScripts, p.smbPort)
	slices.SortStableFunc(f.TLS, func(a, b assess.TLS) int { return a.Port - b.Port })
	slices.SortStableFunc(f.SSH, func(a, b assess.SSH) int { return a.Port - b.Port })
	slices.SortStableFunc(f.HTTP, func(a, b assess.HTTP) int { return a.Port - b.Port })
	slices.SortStableFunc(f.FTP, func(a, b assess.FTP) int { return a.Port - b.Port })
	slices.SortStableFunc(f.SNMP, func(a, b assess.SNMP) int { return a.Port - b.Port })
	slices.SortStableFunc(f.SMB, func(a, b assess.SMB) int { return a.Port - b.Port })
	f.Normalize()
	return f
}

// target is the host's IP address, IPv4 preferred.
func target(addrs []xAddress) string {
	var out string
	for _, a := range addrs {
		if a.AddrType != "ipv4" && a.AddrType != "ipv6" {
			continue
		}
		s := strings.TrimSpace(a.Addr)
		if ip, err := netip.ParseAddr(s); err == nil {
			s = ip.Unmap().String()
		}
		if out == "" || (a.AddrType == "ipv4" && strings.Contains(out, ":")) {
			out = s
		}
	}
	return out
}

// builder fills one host's facts, one port and one script at a time.
type builder struct {
	f *assess.Facts
}

// port records one <port>: the open port itself, the family entries its
// service implies and what its scripts say.
func (b *builder) port(x *xPort) {
	if x.State.State != "open" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(x.PortID))
	if err != nil || n < 0 || n > 65535 {
		return
	}
	svc := x.Service
	p := assess.Port{
		Port:      n,
		Protocol:  x.Protocol,
		Service:   svc.Name,
		Tunnel:    svc.Tunnel,
		Product:   svc.Product,
		Version:   svc.Version,
		ExtraInfo: svc.ExtraInfo,
	}
	for _, c := range svc.CPEs {
		if c = strings.TrimSpace(c); c != "" {
			p.CPE = append(p.CPE, c)
		}
	}
	b.f.Ports = append(b.f.Ports, p)

	name := strings.ToLower(svc.Name)
	tlsOn := svc.Tunnel == "ssl" || name == "https" || name == "https-alt"
	has := func(pred func(id string) bool) bool {
		return slices.ContainsFunc(x.Scripts, func(s xScript) bool { return pred(s.ID) })
	}
	if tlsOn || has(func(id string) bool { return id == "ssl-enum-ciphers" || id == "ssl-cert" }) {
		b.tls(n)
	}
	if httpServices[name] || has(func(id string) bool { return strings.HasPrefix(id, "http-") }) {
		b.http(n).TLS = tlsOn
	}
	if name == "ssh" || has(func(id string) bool { return strings.HasPrefix(id, "ssh") }) {
		sshFromService(b.ssh(n), svc)
	}
	if name == "ftp" || name == "ftps" || has(func(id string) bool { return strings.HasPrefix(id, "ftp-") }) {
		b.ftp(n)
	}
	if name == "snmp" || has(func(id string) bool { return strings.HasPrefix(id, "snmp-") }) {
		b.snmp(n)
	}

	for _, s := range x.Scripts {
		if msg, failed := scriptError(s); failed {
			b.f.Errors = append(b.f.Errors, fmt.Sprintf("%s: %s on %d/%s", s.ID, msg, n, x.Protocol))
			continue
		}
		b.script(n, name, s)
	}
}

// httpServices are the service names nmap gives HTTP servers.
var httpServices = map[string]bool{"http": true, "https": true, "http-proxy": true, "http-alt": true, "https-alt": true}

// script reads one port script into the family entries of port n.
func (b *builder) script(n int, service string, s xScript) {
	switch s.ID {
	case "ssl-enum-ciphers":
		t := b.tls(n)
		t.Versions, t.Ciphers, t.LeastStrength, t.Warnings = sslEnumCiphers(s)
	case "ssl-cert":
		c, problems := sslCert(s)
		t := b.tls(n)
		t.Cert = c
		leaf := c
		leaf.SANs = slices.Clone(c.SANs)
		t.Chain = []assess.Cert{leaf}
		for _, pr := range problems {
			b.f.Errors = append(b.f.Errors, fmt.Sprintf("ssl-cert: %s on %d", pr, n))
		}
	case "ssh2-enum-algos":
		sshAlgos(b.ssh(n), s)
	case "ssh-hostkey":
		b.ssh(n).HostKeys = sshHostKeys(s)
	case "ssh-auth-methods":
		b.ssh(n).AuthMethods = sshAuthMethods(s)
	case "http-headers":
		h := b.http(n)
		h.Headers, h.Status = httpHeaders(s.Output)
		if loc := h.Headers["location"]; loc != "" && h.Location == "" {
			h.Location = loc
		}
		if h.Server == "" {
			h.Server = h.Headers["server"]
		}
	case "http-server-header":
		if v := httpServerHeader(s); v != "" {
			b.http(n).Server = v
		}
	case "http-methods":
		b.http(n).Methods = httpMethods(s)
	case "http-title":
		h := b.http(n)
		var redirect string
		h.Title, redirect = httpTitle(s)
		if redirect != "" {
			h.Location = redirect
		}
	case "ftp-anon":
		b.ftp(n).Anonymous = ftpAnonymous(s)
	case "banner":
		banner := firstLine(s.Output)
		switch {
		case strings.HasPrefix(banner, "SSH-") || service == "ssh":
			sshFromBanner(b.ssh(n), banner)
		case service == "ftp" || service == "ftps" || slices.ContainsFunc(b.f.FTP, func(f assess.FTP) bool { return f.Port == n }):
			b.ftp(n).Banner = banner
		}
	case "snmp-brute":
		b.snmp(n).DefaultCommunities = snmpCommunities(s)
	case "snmp-sysdescr":
		if d := firstLine(s.Output); d != "" {
			b.snmp(n).SysDescr = d
		}
	}
	// After headers and title, in either order: a plain-HTTP service that
	// points at https:// redirects to HTTPS.
	if strings.HasPrefix(s.ID, "http-") {
		h := b.http(n)
		h.RedirectsToHTTPS = !h.TLS && strings.HasPrefix(strings.ToLower(h.Location), "https://")
	}
}

// smbServices adds an SMB entry for each open microsoft-ds port, or, when
// there is none, for each open netbios-ssn port: on a normal host 139 and
// 445 are the same server, and nmap's SMB scripts prefer 445.
func (b *builder) smbServices() {
	for _, name := range []string{"microsoft-ds", "netbios-ssn"} {
		found := false
		for _, p := range b.f.Ports {
			if p.Protocol == "tcp" && p.Service == name {
				b.smb(p.Port)
				found = true
			}
		}
		if found {
			return
		}
	}
}

// hostScripts reads the <hostscript> scripts: the SMB ones, which nmap does
// not tie to a port.
func (b *builder) hostScripts(scripts []xScript, smbPortArg int) {
	var protocols, smb2, smb1 *xScript
	for i := range scripts {
		s := &scripts[i]
		if msg, failed := scriptError(*s); failed {
			b.f.Errors = append(b.f.Errors, fmt.Sprintf("%s: %s on the host", s.ID, msg))
			continue
		}
		switch s.ID {
		case "smb-protocols":
			protocols = s
		case "smb2-security-mode":
			smb2 = s
		case "smb-security-mode":
			smb1 = s
		}
	}
	if protocols == nil && smb2 == nil && smb1 == nil {
		return
	}
	e := b.smb(b.smbPort(smbPortArg))
	if protocols != nil {
		e.Dialects, e.SMBv1 = smbDialects(*protocols)
	}
	if smb2 != nil {
		e.Signing = smb2Signing(*smb2)
	}
	if smb1 != nil {
		signing, guest := smbSecurityMode(*smb1)
		e.GuestAccess = guest
		if e.Signing == "" {
			e.Signing = signing
		}
	}
}

// smbPort is the port nmap's SMB host scripts ran against: smbport=N from
// the command line, else the open microsoft-ds port, else the open
// netbios-ssn port, else the only open port, else 0.
func (b *builder) smbPort(arg int) int {
	if arg > 0 {
		return arg
	}
	for _, name := range []string{"microsoft-ds", "netbios-ssn"} {
		for _, p := range b.f.Ports {
			if p.Protocol == "tcp" && p.Service == name {
				return p.Port
			}
		}
	}
	if len(b.f.Ports) == 1 {
		return b.f.Ports[0].Port
	}
	return 0
}

// The family entries of one port, created on first use. The pointers are
// good until the next entry of the same family is created.

func (b *builder) tls(n int) *assess.TLS {
	return entry(&b.f.TLS, n, func(t *assess.TLS) *int { return &t.Port }, func(t *assess.TLS) { t.Source = "nmap" })
}

func (b *builder) ssh(n int) *assess.SSH {
	return entry(&b.f.SSH, n, func(s *assess.SSH) *int { return &s.Port }, nil)
}

func (b *builder) http(n int) *assess.HTTP {
	return entry(&b.f.HTTP, n, func(h *assess.HTTP) *int { return &h.Port }, nil)
}

func (b *builder) ftp(n int) *assess.FTP {
	return entry(&b.f.FTP, n, func(f *assess.FTP) *int { return &f.Port }, nil)
}

func (b *builder) snmp(n int) *assess.SNMP {
	return entry(&b.f.SNMP, n, func(s *assess.SNMP) *int { return &s.Port }, nil)
}

func (b *builder) smb(n int) *assess.SMB {
	return entry(&b.f.SMB, n, func(s *assess.SMB) *int { return &s.Port }, nil)
}

// entry finds the element of *list for port n, appending a new one (made
// with init, when given) if there is none.
func entry[T any](list *[]T, n int, port func(*T) *int, init func(*T)) *T {
	for i := range *list {
		if *port(&(*list)[i]) == n {
			return &(*list)[i]
		}
	}
	var v T
	*port(&v) = n
	if init != nil {
		init(&v)
	}
	*list = append(*list, v)
	return &(*list)[len(*list)-1]
}

// scriptError reports a script whose output is nmap's error line
// ("ERROR: Script execution failed (use -d to debug)").
func scriptError(s xScript) (string, bool) {
	out := strings.TrimSpace(s.Output)
	if strings.HasPrefix(out, "ERROR:") && len(s.Elems) == 0 && len(s.Tables) == 0 {
		return firstLine(out), true
	}
	return "", false
}

var smbPortRE = regexp.MustCompile(`(?:^|[\s,'"])smbport=(\d+)`)

// smbPortArg reads --script-args smbport=N from nmap's command line.
func smbPortArg(args string) int {
	m := smbPortRE.FindStringSubmatch(args)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 || n > 65535 {
		return 0
	}
	return n
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// unixTime reads nmap's Unix-seconds attributes; zero when absent or odd.
func unixTime(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// firstLine is the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}
