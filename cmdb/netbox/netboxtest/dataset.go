package netboxtest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Device is a seeded dcim.device. Site, Tenant and Role are names; the
// emulator creates the site, tenant and role objects (ids, slugs) itself.
type Device struct {
	ID           int
	Name         string // empty renders as null, as NetBox allows
	Serial       string
	AssetTag     string // empty renders as null
	Site         string // required by NetBox; "default" when empty
	Tenant       string
	Role         string // required by NetBox; "server" when empty
	Status       string // default "active"
	DeviceType   string // model name; "Generic" when empty
	Description  string
	Tags         []string // tag names (slug derived)
	CustomFields map[string]any
	Created      time.Time
	LastUpdated  time.Time
}

// VM is a seeded virtualization.virtualmachine.
type VM struct {
	ID           int
	Name         string
	Serial       string
	Site         string
	Tenant       string
	Role         string
	Status       string
	CustomFields map[string]any
	Created      time.Time
	LastUpdated  time.Time
}

// Interface is a seeded dcim.interface (DeviceID set) or
// virtualization.vminterface (VMID set). PrimaryMACID names the MAC object
// that is the interface's primary_mac_address (0 for none).
type Interface struct {
	ID           int
	DeviceID     int
	VMID         int
	Name         string
	Type         string // dcim only; default "1000base-t"
	PrimaryMACID int
	LastUpdated  time.Time
}

// MAC is a seeded dcim.macaddress, assigned to a device interface
// (InterfaceID), a VM interface (VMInterfaceID) or nothing.
type MAC struct {
	ID            int
	Address       string // any case; rendered upper-case like NetBox
	InterfaceID   int
	VMInterfaceID int
	LastUpdated   time.Time
}

// IPAddress is a seeded ipam.ipaddress with its mask ("10.0.0.5/24").
type IPAddress struct {
	ID            int
	Address       string
	Status        string // active (default), reserved, deprecated, dhcp, slaac
	InterfaceID   int
	VMInterfaceID int
	Tenant        string
	DNSName       string
	Description   string
	Tags          []string
	CustomFields  map[string]any
	LastUpdated   time.Time
}

// Dataset is everything the emulator serves. Ids are the caller's; device
// interfaces and VM interfaces are separate id spaces, as in NetBox.
type Dataset struct {
	Devices      []Device
	VMs          []VM
	Interfaces   []Interface // device interfaces
	VMInterfaces []Interface // VM interfaces
	MACs         []MAC
	IPs          []IPAddress
	// Objects that exist besides those the records above name (names; the
	// slug is derived): what a write may refer to.
	Sites, Roles, Tenants, Tags, DeviceTypes []string
}

// clone copies d deeply enough that writes to the emulator's copy do not
// change the caller's.
func (d Dataset) clone() Dataset {
	c := d
	c.Devices = slices.Clone(d.Devices)
	for i := range c.Devices {
		c.Devices[i].CustomFields = maps.Clone(c.Devices[i].CustomFields)
		c.Devices[i].Tags = slices.Clone(c.Devices[i].Tags)
	}
	c.VMs = slices.Clone(d.VMs)
	c.Interfaces = slices.Clone(d.Interfaces)
	c.VMInterfaces = slices.Clone(d.VMInterfaces)
	c.MACs = slices.Clone(d.MACs)
	c.IPs = slices.Clone(d.IPs)
	for i := range c.IPs {
		c.IPs[i].CustomFields = maps.Clone(c.IPs[i].CustomFields)
		c.IPs[i].Tags = slices.Clone(c.IPs[i].Tags)
	}
	return c
}

// Epoch is the timestamp Generate and Example use for created/last_updated.
var Epoch = time.Date(2025, 1, 20, 9, 30, 0, 123456000, time.UTC)

// Generate builds n devices, each with one interface, one MAC (primary)
// and one IPv4 address in 10.0.0.0/8; device i (1-based) is "dev-<i>",
// serial "SN<i>", MAC 02:00:xx:xx:xx:xx from i, IP 10.x.y.z from i.
func Generate(n int) Dataset {
	d := Dataset{
		Devices:    make([]Device, n),
		Interfaces: make([]Interface, n),
		MACs:       make([]MAC, n),
		IPs:        make([]IPAddress, n),
	}
	for i := 1; i <= n; i++ {
		d.Devices[i-1] = Device{ID: i, Name: fmt.Sprintf("dev-%d", i), Serial: fmt.Sprintf("SN%d", i),
			Site: "dc1", Role: "server", LastUpdated: Epoch}
		d.Interfaces[i-1] = Interface{ID: i, DeviceID: i, Name: "eth0", PrimaryMACID: i}
		d.MACs[i-1] = MAC{ID: i, Address: GeneratedMAC(i), InterfaceID: i}
		d.IPs[i-1] = IPAddress{ID: i, Address: GeneratedIP(i).String() + "/8", InterfaceID: i, LastUpdated: Epoch}
	}
	return d
}

// GeneratedMAC is the MAC Generate gives device i (lower-case colon form).
func GeneratedMAC(i int) string {
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// GeneratedIP is the address Generate gives device i.
func GeneratedIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// Example is a small dataset around the real NetBox documentation sample
// testdata/ipaddress-detail.json (device 2230 "router1", interface 114771
// "et-0/1/2", IP 2954 192.168.0.42/26), plus a VM, a DHCP address, a
// secondary MAC and an unassigned address:
//
//   - device 2230 router1: site "AMS1", tenant "Acme", role "router",
//     serial "FOC1234X", asset tag "A-0042", custom fields
//     reckon_asset_id "r-1" and owner "netops"; interface 114771 with MACs
//     00:1B:17:00:01:12 (primary, id 501) and 00:1B:17:00:01:13 (id 502);
//     IPs 192.168.0.42/26 (active) and 2001:db8::42/64 (slaac)
//   - VM 77 "Web-01": site "AMS1", tenant "Acme", role "web", status
//     "planned"; VM interface 9001 with MAC 52:54:00:AA:BB:CC (id 503,
//     primary); IP 192.168.1.10/24 (dhcp, id 2955)
//   - IP 2956 192.168.0.99/26 reserved, unassigned, dns "printer.example".
//   - tag "reckon", device type "Generic" (what a push refers to).
func Example() Dataset {
	t := time.Date(2020, 8, 4, 14, 12, 39, 666885000, time.UTC)
	return Dataset{
		Devices: []Device{{ID: 2230, Name: "router1", Serial: "FOC1234X", AssetTag: "A-0042", Site: "AMS1",
			Tenant: "Acme", Role: "router", Status: "active",
			CustomFields: map[string]any{"reckon_asset_id": "r-1", "owner": "netops"}, Created: t, LastUpdated: t}},
		VMs: []VM{{ID: 77, Name: "Web-01", Site: "AMS1", Tenant: "Acme", Role: "web", Status: "planned",
			CustomFields: map[string]any{"reckon_asset_id": nil}, LastUpdated: t.Add(time.Hour)}},
		Interfaces:   []Interface{{ID: 114771, DeviceID: 2230, Name: "et-0/1/2", Type: "10gbase-x-sfpp", PrimaryMACID: 501}},
		VMInterfaces: []Interface{{ID: 9001, VMID: 77, Name: "eth0", PrimaryMACID: 503}},
		MACs: []MAC{
			{ID: 501, Address: "00:1b:17:00:01:12", InterfaceID: 114771},
			{ID: 502, Address: "00:1B:17:00:01:13", InterfaceID: 114771},
			{ID: 503, Address: "52:54:00:AA:BB:CC", VMInterfaceID: 9001},
		},
		IPs: []IPAddress{
			{ID: 2954, Address: "192.168.0.42/26", Status: "active", InterfaceID: 114771, Description: "Example IP address", LastUpdated: t},
			{ID: 2957, Address: "2001:db8::42/64", Status: "slaac", InterfaceID: 114771, LastUpdated: t},
			{ID: 2955, Address: "192.168.1.10/24", Status: "dhcp", VMInterfaceID: 9001, LastUpdated: t},
			{ID: 2956, Address: "192.168.0.99/26", Status: "reserved", DNSName: "printer.example", Tenant: "Acme", LastUpdated: t.Add(2 * time.Hour)},
		},
		Tags:        []string{"reckon"},
		DeviceTypes: []string{"Generic"},
	}
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
