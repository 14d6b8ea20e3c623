package netboxtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The JSON shapes below follow NetBox 4.2's serializers as its OpenAPI
// schema (testdata/netbox-openapi.json) describes them, and the real
// example body testdata/ipaddress-detail.json.

type choice struct {
	Value any    `json:"value"`
	Label string `json:"label"`
}

type briefObj struct {
	ID          int    `json:"id"`
	URL         string `json:"url"`
	Display     string `json:"display"`
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Description string `json:"description"`
}

type briefNoSlug struct {
	ID          int    `json:"id"`
	URL         string `json:"url"`
	Display     string `json:"display"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type briefDeviceType struct {
	ID           int      `json:"id"`
	URL          string   `json:"url"`
	Display      string   `json:"display"`
	Manufacturer briefObj `json:"manufacturer"`
	Model        string   `json:"model"`
	Slug         string   `json:"slug"`
	Description  string   `json:"description"`
}

type briefMAC struct {
	ID          int    `json:"id"`
	URL         string `json:"url"`
	Display     string `json:"display"`
	MACAddress  string `json:"mac_address"`
	Description string `json:"description"`
}

// assignedIface is the nested interface NetBox puts in assigned_object.
type assignedIface struct {
	ID             int          `json:"id"`
	URL            string       `json:"url"`
	Display        string       `json:"display"`
	Device         *briefNoSlug `json:"device,omitempty"`
	VirtualMachine *briefNoSlug `json:"virtual_machine,omitempty"`
	Name           string       `json:"name"`
	Description    string       `json:"description"`
	Cable          any          `json:"cable,omitempty"`
	Occupied       *bool        `json:"_occupied,omitempty"`
}

type deviceJSON struct {
	ID                     int             `json:"id"`
	URL                    string          `json:"url"`
	DisplayURL             string          `json:"display_url"`
	Display                string          `json:"display"`
	Name                   *string         `json:"name"`
	DeviceType             briefDeviceType `json:"device_type"`
	Role                   briefObj        `json:"role"`
	Tenant                 *briefObj       `json:"tenant"`
	Platform               any             `json:"platform"`
	Serial                 string          `json:"serial"`
	AssetTag               *string         `json:"asset_tag"`
	Site                   briefObj        `json:"site"`
	Location               any             `json:"location"`
	Rack                   any             `json:"rack"`
	Position               any             `json:"position"`
	ParentDevice           any             `json:"parent_device"`
	Status                 choice          `json:"status"`
	PrimaryIP              any             `json:"primary_ip"`
	PrimaryIP4             any             `json:"primary_ip4"`
	PrimaryIP6             any             `json:"primary_ip6"`
	OOBIP                  any             `json:"oob_ip"`
	Cluster                any             `json:"cluster"`
	VirtualChassis         any             `json:"virtual_chassis"`
	VCPosition             any             `json:"vc_position"`
	VCPriority             any             `json:"vc_priority"`
	Description            string          `json:"description"`
	Comments               string          `json:"comments"`
	ConfigTemplate         any             `json:"config_template"`
	ConfigContext          map[string]any  `json:"config_context"`
	LocalContextData       any             `json:"local_context_data"`
	Tags                   []any           `json:"tags"`
	CustomFields           map[string]any  `json:"custom_fields"`
	Created                string          `json:"created"`
	LastUpdated            string          `json:"last_updated"`
	ConsolePortCount       int             `json:"console_port_count"`
	ConsoleServerPortCount int             `json:"console_server_port_count"`
	PowerPortCount         int             `json:"power_port_count"`
	PowerOutletCount       int             `json:"power_outlet_count"`
	InterfaceCount         int             `json:"interface_count"`
	FrontPortCount         int             `json:"front_port_count"`
	RearPortCount          int             `json:"rear_port_count"`
	DeviceBayCount         int             `json:"device_bay_count"`
	ModuleBayCount         int             `json:"module_bay_count"`
	InventoryItemCount     int             `json:"inventory_item_count"`
}

type vmJSON struct {
	ID               int            `json:"id"`
	URL              string         `json:"url"`
	DisplayURL       string         `json:"display_url"`
	Display          string         `json:"display"`
	Name             string         `json:"name"`
	Status           choice         `json:"status"`
	Site             *briefObj      `json:"site"`
	Cluster          any            `json:"cluster"`
	Device           any            `json:"device"`
	Serial           string         `json:"serial"`
	Role             *briefObj      `json:"role"`
	Tenant           *briefObj      `json:"tenant"`
	Platform         any            `json:"platform"`
	PrimaryIP        any            `json:"primary_ip"`
	PrimaryIP4       any            `json:"primary_ip4"`
	PrimaryIP6       any            `json:"primary_ip6"`
	VCPUs            any            `json:"vcpus"`
	Memory           any            `json:"memory"`
	Disk             any            `json:"disk"`
	Description      string         `json:"description"`
	Comments         string         `json:"comments"`
	ConfigTemplate   any            `json:"config_template"`
	LocalContextData any            `json:"local_context_data"`
	Tags             []any          `json:"tags"`
	CustomFields     map[string]any `json:"custom_fields"`
	ConfigContext    map[string]any `json:"config_context"`
	Created          string         `json:"created"`
	LastUpdated      string         `json:"last_updated"`
	InterfaceCount   int            `json:"interface_count"`
	VirtualDiskCount int            `json:"virtual_disk_count"`
}

type ifaceJSON struct {
	ID                          int            `json:"id"`
	URL                         string         `json:"url"`
	DisplayURL                  string         `json:"display_url"`
	Display                     string         `json:"display"`
	Device                      *briefNoSlug   `json:"device,omitempty"`
	VirtualMachine              *briefNoSlug   `json:"virtual_machine,omitempty"`
	VDCs                        any            `json:"vdcs,omitempty"` // [] on dcim interfaces; absent on VM ones
	Name                        string         `json:"name"`
	Type                        *choice        `json:"type,omitempty"`
	Enabled                     bool           `json:"enabled"`
	Parent                      any            `json:"parent"`
	Bridge                      any            `json:"bridge"`
	MTU                         any            `json:"mtu"`
	MACAddress                  *string        `json:"mac_address"`
	PrimaryMACAddress           *briefMAC      `json:"primary_mac_address"`
	MACAddresses                []briefMAC     `json:"mac_addresses"`
	Description                 string         `json:"description"`
	UntaggedVLAN                any            `json:"untagged_vlan"`
	TaggedVLANs                 []any          `json:"tagged_vlans"`
	VRF                         any            `json:"vrf"`
	Tags                        []any          `json:"tags"`
	CustomFields                map[string]any `json:"custom_fields"`
	Created                     string         `json:"created"`
	LastUpdated                 string         `json:"last_updated"`
	CountIPAddresses            int            `json:"count_ipaddresses"`
	CountFHRPGroups             int            `json:"count_fhrp_groups"`
	MgmtOnly                    *bool          `json:"mgmt_only,omitempty"`
	MarkConnected               *bool          `json:"mark_connected,omitempty"`
	Cable                       any            `json:"cable,omitempty"`
	CableEnd                    *string        `json:"cable_end,omitempty"`
	LinkPeers                   any            `json:"link_peers,omitempty"` // [] on dcim interfaces (required there)
	ConnectedEndpointsReachable *bool          `json:"connected_endpoints_reachable,omitempty"`
	Occupied                    *bool          `json:"_occupied,omitempty"`
}

type macJSON struct {
	ID                 int            `json:"id"`
	URL                string         `json:"url"`
	DisplayURL         string         `json:"display_url"`
	Display            string         `json:"display"`
	MACAddress         string         `json:"mac_address"`
	AssignedObjectType *string        `json:"assigned_object_type"`
	AssignedObjectID   *int           `json:"assigned_object_id"`
	AssignedObject     *assignedIface `json:"assigned_object"`
	Description        string         `json:"description"`
	Comments           string         `json:"comments"`
	Tags               []any          `json:"tags"`
	CustomFields       map[string]any `json:"custom_fields"`
	Created            string         `json:"created"`
	LastUpdated        string         `json:"last_updated"`
}

type ipJSON struct {
	ID                 int            `json:"id"`
	URL                string         `json:"url"`
	DisplayURL         string         `json:"display_url"`
	Display            string         `json:"display"`
	Family             choice         `json:"family"`
	Address            string         `json:"address"`
	VRF                any            `json:"vrf"`
	Tenant             *briefObj      `json:"tenant"`
	Status             choice         `json:"status"`
	AssignedObjectType *string        `json:"assigned_object_type"`
	AssignedObjectID   *int           `json:"assigned_object_id"`
	AssignedObject     *assignedIface `json:"assigned_object"`
	NATInside          any            `json:"nat_inside"`
	NATOutside         []any          `json:"nat_outside"`
	DNSName            string         `json:"dns_name"`
	Description        string         `json:"description"`
	Comments           string         `json:"comments"`
	Tags               []any          `json:"tags"`
	CustomFields       map[string]any `json:"custom_fields"`
	Created            string         `json:"created"`
	LastUpdated        string         `json:"last_updated"`
}

// nestedTag is a tag as records carry it.
type nestedTag struct {
	ID         int    `json:"id"`
	URL        string `json:"url"`
	DisplayURL string `json:"display_url"`
	Display    string `json:"display"`
	Name       string `json:"name"`
	Slug       string `json:"slug"`
	Color      string `json:"color"`
}

const tagColor = "9e9e9e" // NetBox's default tag colour

type tagJSON struct {
	nestedTag
	Description string   `json:"description"`
	ObjectTypes []string `json:"object_types"`
	TaggedItems int      `json:"tagged_items"`
}

type deviceTypeJSON struct {
	briefDeviceType
	ConsolePortTemplateCount       int `json:"console_port_template_count"`
	ConsoleServerPortTemplateCount int `json:"console_server_port_template_count"`
	PowerPortTemplateCount         int `json:"power_port_template_count"`
	PowerOutletTemplateCount       int `json:"power_outlet_template_count"`
	InterfaceTemplateCount         int `json:"interface_template_count"`
	FrontPortTemplateCount         int `json:"front_port_template_count"`
	RearPortTemplateCount          int `json:"rear_port_template_count"`
	DeviceBayTemplateCount         int `json:"device_bay_template_count"`
	ModuleBayTemplateCount         int `json:"module_bay_template_count"`
	InventoryItemTemplateCount     int `json:"inventory_item_template_count"`
}

// deviceType is device type b (model b.Name) of the one manufacturer the
// emulator knows, "Generic".
func deviceType(base string, b *briefObj) briefDeviceType {
	return briefDeviceType{ID: b.ID, URL: b.URL, Display: b.Name,
		Manufacturer: briefObj{ID: 1, URL: base + "/api/dcim/manufacturers/1/", Display: "Generic", Name: "Generic", Slug: "generic"},
		Model:        b.Name, Slug: b.Slug}
}

// timeFormat is how NetBox (Django REST framework) renders datetimes.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

var labels = map[string]string{
	"dhcp": "DHCP", "slaac": "SLAAC", "1000base-t": "1000BASE-T (1GE)",
	"virtual": "Virtual", "10gbase-x-sfpp": "SFP+ (10GE)",
}

func label(v string) string {
	if l, ok := labels[v]; ok {
		return l
	}
	if v == "" {
		return ""
	}
	return strings.ToUpper(v[:1]) + v[1:]
}

func cf(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("netboxtest: render: %v", err))
	}
	return b
}

func ptr[T any](v T) *T { return &v }
