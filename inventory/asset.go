package inventory

import (
	"slices"
	"time"
)

// Asset statuses. Reconciliation with the CMDB sets managed, unmanaged,
// unknown and conflict; until then an asset is new, or unknown when its
// identity is ambiguous.
const (
	StatusNew       = "new"
	StatusManaged   = "managed"
	StatusUnmanaged = "unmanaged"
	StatusUnknown   = "unknown"
	StatusConflict  = "conflict"
)

// Identity strengths.
const (
	// IdentityStrong: a serial, SSH host key, TLS certificate or universal MAC.
	IdentityStrong = "strong"
	// IdentityWeak: only an IP, a randomised MAC or a hostname.
	IdentityWeak = "weak"
	// IdentityAmbiguous: observations pointed at more than one asset and were
	// not merged; an analyst should merge or split.
	IdentityAmbiguous = "ambiguous"
)

// Asset is one real device as far as reckon can tell. Its JSON is both the
// stored document and the API's detail view; the JSON names of the list
// view (id, status, macs, ips, hostnames, vendor, os, services, sources,
// first_seen, last_seen) are a contract.
type Asset struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Identity   string    `json:"identity"`
	DeviceType string    `json:"device_type,omitempty"`
	Vendor     string    `json:"vendor,omitempty"`
	OS         string    `json:"os,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// Missing is set when no source has seen the asset for the configured window.
	Missing bool `json:"missing,omitempty"`

	MACHistory  []Address    `json:"mac_history"`
	IPHistory   []Address    `json:"ip_history"`
	Names       []Name       `json:"hostname_history"`
	ServiceList []ServiceRec `json:"service_history"`
	Idents      []Ident      `json:"identifiers"`
	SourceList  []SourceRec  `json:"source_history"`
	Hints       []HintRec    `json:"hints,omitempty"`
	// Gateways lists this asset's MACs that carry many IPs: routers, whose
	// routed traffic names other devices' IPs.
	Gateways []string `json:"gateway_macs,omitempty"`
	// KeepApart lists assets an analyst split from this one: never merged
	// back automatically.
	KeepApart []string `json:"keep_apart,omitempty"`

	dirty bool
	// writtenIPs are the current IPs as last written to the store.
	writtenIPs string
}

// Address is a MAC or IP the asset has held.
type Address struct {
	Value string `json:"value"`
	VLAN  int    `json:"vlan,omitempty"`
	// Via is, for an IP, the MAC it was bound to; Source says how it was learned.
	Via       string    `json:"via,omitempty"`
	Source    string    `json:"source,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Current is true while the asset holds it; an IP taken by another device,
	// or a randomised MAC replaced by a newer one, is no longer current.
	Current bool `json:"current"`
}

// Name is a hostname and how it was learned.
type Name struct {
	Name      string    `json:"name"`
	How       string    `json:"how,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// ServiceRec is a service with its history.
type ServiceRec struct {
	Port      int       `json:"port"`
	Proto     string    `json:"proto"`
	Name      string    `json:"name,omitempty"`
	Product   string    `json:"product,omitempty"`
	Version   string    `json:"version,omitempty"`
	CPE       string    `json:"cpe,omitempty"`
	Banner    string    `json:"banner,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Open      bool      `json:"open"`
}

// Ident is a strong or corroborating identifier: serial, ssh_hostkey,
// tls_cert, dhcp_client_id, dhcp_fingerprint.
type Ident struct {
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// SourceRec is a discovery source that saw the asset.
type SourceRec struct {
	Source    string    `json:"source"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// HintRec is the best guess per kind (os, device_type, model ...).
type HintRec struct {
	Kind       string    `json:"kind"`
	Value      string    `json:"value"`
	Confidence float64   `json:"confidence"`
	Source     string    `json:"source,omitempty"`
	LastSeen   time.Time `json:"last_seen"`
}

// Service is the list view of an open service.
type Service struct {
	Port    int    `json:"port"`
	Proto   string `json:"proto"`
	Name    string `json:"name,omitempty"`
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	CPE     string `json:"cpe,omitempty"`
}

// Summary is the list view of an asset: what it holds now.
type Summary struct {
	ID         string    `json:"id"`
	Status     string    `json:"status"`
	Identity   string    `json:"identity"`
	DeviceType string    `json:"device_type,omitempty"`
	MACs       []string  `json:"macs"`
	IPs        []string  `json:"ips"`
	Hostnames  []string  `json:"hostnames"`
	Vendor     string    `json:"vendor,omitempty"`
	OS         string    `json:"os,omitempty"`
	Services   []Service `json:"services"`
	Sources    []string  `json:"sources"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Missing    bool      `json:"missing,omitempty"`
}

// Summary returns the list view of a.
func (a *Asset) Summary() Summary {
	s := Summary{ID: a.ID, Status: a.Status, Identity: a.Identity, DeviceType: a.DeviceType, Vendor: a.Vendor, OS: a.OS,
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, Missing: a.Missing,
		MACs: []string{}, IPs: []string{}, Hostnames: []string{}, Services: []Service{}, Sources: []string{}}
	for _, m := range a.MACHistory {
		if m.Current {
			s.MACs = append(s.MACs, m.Value)
		}
	}
	for _, ip := range a.IPHistory {
		if ip.Current {
			s.IPs = append(s.IPs, ip.Value)
		}
	}
	for _, n := range a.Names {
		if !slices.Contains(s.Hostnames, n.Name) {
			s.Hostnames = append(s.Hostnames, n.Name)
		}
	}
	for _, sv := range a.ServiceList {
		if sv.Open {
			s.Services = append(s.Services, Service{Port: sv.Port, Proto: sv.Proto, Name: sv.Name, Product: sv.Product, Version: sv.Version, CPE: sv.CPE})
		}
	}
	for _, src := range a.SourceList {
		s.Sources = append(s.Sources, src.Source)
	}
	return s
}

// Detail is the detail view: what the asset holds now, every history with
// first and last seen, and the timeline of changes.
type Detail struct {
	Summary
	MACHistory  []Address    `json:"mac_history"`
	IPHistory   []Address    `json:"ip_history"`
	Names       []Name       `json:"hostname_history"`
	ServiceList []ServiceRec `json:"service_history"`
	Idents      []Ident      `json:"identifiers"`
	SourceList  []SourceRec  `json:"source_history"`
	Hints       []HintRec    `json:"hints"`
	Gateways    []string     `json:"gateway_macs"`
	KeepApart   []string     `json:"keep_apart"`
	Timeline    []Event      `json:"timeline"`
}

// Detail returns the detail view of a with the given timeline.
func (a *Asset) Detail(timeline []Event) Detail {
	nz := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	d := Detail{Summary: a.Summary(), MACHistory: a.MACHistory, IPHistory: a.IPHistory, Names: a.Names,
		ServiceList: a.ServiceList, Idents: a.Idents, SourceList: a.SourceList, Hints: a.Hints,
		Gateways: nz(a.Gateways), KeepApart: nz(a.KeepApart), Timeline: timeline}
	if d.MACHistory == nil {
		d.MACHistory = []Address{}
	}
	if d.IPHistory == nil {
		d.IPHistory = []Address{}
	}
	if d.Names == nil {
		d.Names = []Name{}
	}
	if d.ServiceList == nil {
		d.ServiceList = []ServiceRec{}
	}
	if d.Idents == nil {
		d.Idents = []Ident{}
	}
	if d.SourceList == nil {
		d.SourceList = []SourceRec{}
	}
	if d.Hints == nil {
		d.Hints = []HintRec{}
	}
	if d.Timeline == nil {
		d.Timeline = []Event{}
	}
	return d
}
