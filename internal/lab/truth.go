//go:build linux

package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// Service is something a host answers on, as its helper started it: what a
// sweep of the lab should find. The identifiers are set for the services
// that have them.
type Service struct {
	Port uint16 `json:"port"`
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// Name is what runs there: "ssh", "http", "https", "snmp", "ftp",
	// "dhcps" (a DHCP server), or "dhcpc" (a DHCP client's socket on udp
	// 68, which a UDP scan sees as open|filtered like a service's).
	Name string `json:"name"`
	// Product is the program: OpenSSH, nginx, net-snmp, vsftpd, dnsmasq,
	// isc-dhclient.
	Product string `json:"product,omitempty"`

	// SSHHostKeyType ("ssh-ed25519") and SSHHostKeySHA256 ("SHA256:...",
	// as ssh-keygen -lf prints it) identify an ssh service's host key.
	SSHHostKeyType   string `json:"ssh_hostkey_type,omitempty"`
	SSHHostKeySHA256 string `json:"ssh_hostkey_sha256,omitempty"`
	// TLSCertSHA256 is the lowercase hex SHA-256 of an https service's
	// certificate (DER).
	TLSCertSHA256 string `json:"tls_cert_sha256,omitempty"`
	// SNMPCommunity reads the snmp service's sysName.0 and sysDescr.0.
	SNMPCommunity string `json:"snmp_community,omitempty"`
	SNMPSysName   string `json:"snmp_sysname,omitempty"`
	SNMPSysDescr  string `json:"snmp_sysdescr,omitempty"`
	// FTPAnonymous says an ftp service lets "anonymous" in.
	FTPAnonymous bool `json:"ftp_anonymous,omitempty"`
}

// Truth is what a lab is made of, for tests (and people) to check a
// discovery against; WriteGroundTruth writes it as JSON.
type Truth struct {
	// Lab is the lab's id: every namespace it made is named
	// rklab-<Lab>-something.
	Lab    string       `json:"lab"`
	Subnet netip.Prefix `json:"subnet"`
	// Dir is the lab's folder: configuration, logs, leases, pid files.
	Dir    string      `json:"dir"`
	Switch TruthSwitch `json:"switch"`
	Sensor TruthSensor `json:"sensor"`
	Hosts  []TruthHost `json:"hosts"`
}

// TruthSwitch is where the bridge is.
type TruthSwitch struct {
	Netns  string `json:"netns"`
	Bridge string `json:"bridge"`
}

// TruthSensor is where the mirror of the bridge's traffic comes out.
type TruthSensor struct {
	Netns string `json:"netns"`
	Iface string `json:"iface"`
}

// TruthHost is one host of a lab.
type TruthHost struct {
	Name     string `json:"name"`
	Netns    string `json:"netns"`
	Iface    string `json:"iface"`
	MAC      string `json:"mac"`
	Hostname string `json:"hostname"`
	// IPv4 is the static address or the leased one; absent for a DHCP
	// host that has none yet.
	IPv4 netip.Addr `json:"ipv4,omitzero"`
	// DHCP says the address is leased.
	DHCP     bool      `json:"dhcp,omitempty"`
	Services []Service `json:"services"`
}

// Host returns the named host's truth, and whether there is one.
func (t Truth) Host(name string) (TruthHost, bool) {
	i := slices.IndexFunc(t.Hosts, func(h TruthHost) bool { return h.Name == name })
	if i < 0 {
		return TruthHost{}, false
	}
	return t.Hosts[i], true
}

// Service returns the host's service of that name, and whether it has one.
func (h TruthHost) Service(name string) (Service, bool) {
	i := slices.IndexFunc(h.Services, func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, false
	}
	return h.Services[i], true
}

// Services returns what the host's helpers started so far, in that order.
func (h *Host) Services() []Service {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return slices.Clone(h.services)
}

func (h *Host) addService(s Service) {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	h.services = append(h.services, s)
}

// GroundTruth describes the lab as it is now: its hosts, their addresses
// (a DHCP host's once leased) and the services their helpers started.
func (l *Lab) GroundTruth() Truth {
	t := Truth{
		Lab:    l.ID,
		Subnet: l.Subnet,
		Dir:    l.dir,
		Switch: TruthSwitch{Netns: l.SwitchNetns, Bridge: "br0"},
		Sensor: TruthSensor{Netns: l.SensorNetns, Iface: l.SensorIface},
		Hosts:  []TruthHost{},
	}
	for _, h := range l.hosts {
		th := TruthHost{Name: h.Name, Netns: h.Netns, Iface: h.Iface, MAC: h.MAC.String(), Hostname: h.Hostname,
			IPv4: h.IP, DHCP: h.dhcp, Services: h.Services()}
		if th.Services == nil {
			th.Services = []Service{}
		}
		t.Hosts = append(t.Hosts, th)
	}
	return t
}

// WriteGroundTruth writes GroundTruth to path as indented JSON, replacing
// the file whole (a reader never sees half of it).
func (l *Lab) WriteGroundTruth(path string) error {
	b, err := json.MarshalIndent(l.GroundTruth(), "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

// TruthFile is where NewStandard or Up wrote the lab's ground truth; empty
// for other labs.
func (l *Lab) TruthFile() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.truthFile
}

// ReadGroundTruth reads a file WriteGroundTruth wrote.
func ReadGroundTruth(path string) (Truth, error) {
	var t Truth
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("ground truth %s: %w", path, err)
	}
	return t, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
