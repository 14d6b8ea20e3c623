// Package discovery holds what every discovery source shares: the
// Observation type and the Source interface. Passive capture lives in
// discovery/passive and nmap sweeps in discovery/active; neither knows the
// inventory that folds their observations into assets.
package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Observation is one source's report of one device at one time: who saw
// what, when and how. Its JSON names are a contract with sensors, scripts
// and the CMDB feed; fields may be added, never renamed.
type Observation struct {
	// Source says how it was learned: passive:arp, passive:dhcp, active:nmap ...
	Source string `json:"source"`
	// Sensor is the sensor or sweep that saw it.
	Sensor string    `json:"sensor,omitempty"`
	Time   time.Time `json:"time"`
	// Segment names the L2 segment (a sensor interface or site); VLAN its tag.
	Segment string `json:"segment,omitempty"`
	VLAN    int    `json:"vlan,omitempty"`
	MAC     string `json:"mac,omitempty"`
	IP      string `json:"ip,omitempty"`
	// Hostnames are names the device goes by, each with how it was learned.
	Hostnames   []Hostname  `json:"hostnames,omitempty"`
	Vendor      string      `json:"vendor,omitempty"`
	OS          string      `json:"os,omitempty"`
	Hints       []Hint      `json:"hints,omitempty"`
	Services    []Service   `json:"services,omitempty"`
	Identifiers Identifiers `json:"identifiers,omitzero"`
	// PortsScanned, from an active source, lists the TCP ports it probed
	// (nmap syntax: "22,80,1000-2000"); a service seen before on one of them
	// and missing from Services now is closed.
	PortsScanned string `json:"ports_scanned,omitempty"`
}

// Hostname is a name and how it was learned (dhcp, mdns, netbios, dns, ...).
// In JSON it is a plain string when How is empty, else {"name", "how"}; both
// forms are accepted.
type Hostname struct {
	Name string `json:"name"`
	How  string `json:"how,omitempty"`
}

func (h Hostname) MarshalJSON() ([]byte, error) {
	if h.How == "" {
		return json.Marshal(h.Name)
	}
	type plain Hostname
	return json.Marshal(plain(h))
}

func (h *Hostname) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		h.How = ""
		return json.Unmarshal(b, &h.Name)
	}
	type plain Hostname
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("a hostname is a string or {\"name\", \"how\"}: %w", err)
	}
	*h = Hostname(p)
	return nil
}

// Hint is a guess at the OS, device type or vendor, with how sure it is.
type Hint struct {
	Kind       string  `json:"kind"` // os, device_type, vendor, model
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"` // 0..1
	Source     string  `json:"source,omitempty"`
}

// Service is something listening on the device.
type Service struct {
	Port    int    `json:"port"`
	Proto   string `json:"proto"` // tcp, udp
	Name    string `json:"name,omitempty"`
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	CPE     string `json:"cpe,omitempty"`
	Banner  string `json:"banner,omitempty"`
}

// Identifiers are the strong identities a source may see.
type Identifiers struct {
	Serial          string `json:"serial,omitempty"`
	SSHHostKey      string `json:"ssh_hostkey,omitempty"`
	TLSCert         string `json:"tls_cert,omitempty"`
	DHCPClientID    string `json:"dhcp_client_id,omitempty"`
	DHCPFingerprint string `json:"dhcp_fingerprint,omitempty"`
}

// Source is a discovery mechanism. Run sends batches of observations to out
// until ctx is done or the source is exhausted; it never closes out.
type Source interface {
	Run(ctx context.Context, out chan<- []Observation) error
}

// FieldError names a bad field of an observation.
type FieldError struct {
	Field  string
	Detail string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// Normalize checks o and puts it in canonical form (MAC lower-case with
// colons, IP without zone or mapping, names trimmed). It returns every
// problem, each naming its field.
func (o *Observation) Normalize() []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	o.Source = strings.TrimSpace(o.Source)
	if o.Source == "" {
		bad("source", "required (passive:arp, active:nmap, ...)")
	} else if len(o.Source) > 64 {
		bad("source", "longer than 64 characters")
	}
	if o.Time.IsZero() {
		bad("time", "required, RFC 3339")
	} else {
		o.Time = o.Time.UTC()
	}
	if o.VLAN < 0 || o.VLAN > 4095 {
		bad("vlan", "%d is not a VLAN id (0-4095)", o.VLAN)
	}
	if o.MAC != "" {
		mac, err := CanonicalMAC(o.MAC)
		switch {
		case err != nil:
			bad("mac", "%q is not a MAC address", o.MAC)
		case Multicast(mac):
			bad("mac", "%s is a group (multicast or broadcast) address, not a device", mac)
		case mac == "00:00:00:00:00:00":
			bad("mac", "the all-zero address names no device")
		}
		o.MAC = mac
	}
	if o.IP != "" {
		a, err := netip.ParseAddr(strings.TrimSpace(o.IP))
		if err != nil || a.Zone() != "" {
			bad("ip", "%q is not an IP address", o.IP)
		} else {
			o.IP = a.Unmap().String()
		}
	}
	ids := &o.Identifiers
	if o.MAC == "" && o.IP == "" && ids.Serial == "" && ids.SSHHostKey == "" && ids.TLSCert == "" && ids.DHCPClientID == "" && len(o.Hostnames) == 0 {
		bad("(observation)", "names no device: give at least one of mac, ip, hostnames or identifiers")
	}
	for i := range o.Hostnames {
		h := &o.Hostnames[i]
		h.Name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h.Name), "."))
		if h.Name == "" || len(h.Name) > 253 {
			bad(fmt.Sprintf("hostnames[%d]", i), "empty or longer than 253 characters")
		}
	}
	for i := range o.Services {
		s := &o.Services[i]
		s.Proto = strings.ToLower(strings.TrimSpace(s.Proto))
		if s.Proto == "" {
			s.Proto = "tcp"
		}
		if s.Port < 0 || s.Port > 65535 {
			bad(fmt.Sprintf("services[%d].port", i), "%d is not a port (0-65535)", s.Port)
		}
		switch s.Proto {
		case "tcp", "udp", "sctp", "ip":
		default:
			bad(fmt.Sprintf("services[%d].proto", i), "%q: want tcp, udp or sctp", s.Proto)
		}
	}
	for i, h := range o.Hints {
		if h.Confidence < 0 || h.Confidence > 1 {
			bad(fmt.Sprintf("hints[%d].confidence", i), "%v is not between 0 and 1", h.Confidence)
		}
	}
	ids.Serial = strings.TrimSpace(ids.Serial)
	ids.SSHHostKey = strings.TrimSpace(ids.SSHHostKey)
	ids.TLSCert = strings.ToLower(strings.TrimSpace(ids.TLSCert))
	ids.DHCPClientID = strings.ToLower(strings.TrimSpace(ids.DHCPClientID))
	ids.DHCPFingerprint = strings.TrimSpace(ids.DHCPFingerprint)
	return errs
}

// CanonicalMAC returns a 48-bit MAC as lower-case hex pairs joined by colons.
func CanonicalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		if err == nil {
			err = fmt.Errorf("not a 48-bit MAC")
		}
		return "", err
	}
	return hw.String(), nil
}

// LocallyAdministered says whether a canonical MAC has the locally
// administered bit set: randomised (private) addresses, VMs, containers.
func LocallyAdministered(mac string) bool {
	b, ok := firstOctet(mac)
	return ok && b&0x02 != 0
}

// Multicast says whether a canonical MAC is a group address.
func Multicast(mac string) bool {
	b, ok := firstOctet(mac)
	return ok && b&0x01 != 0
}

func firstOctet(mac string) (byte, bool) {
	if len(mac) < 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(mac[:2], 16, 8)
	return byte(v), err == nil
}
