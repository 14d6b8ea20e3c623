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
	ID         ID    `json:"id"`
	Status     Sym   `json:"status"`
	Identity   Sym   `json:"identity"`
	DeviceType Sym   `json:"device_type,omitzero"`
	Vendor     Sym   `json:"vendor,omitzero"`
	OS         Sym   `json:"os,omitzero"`
	FirstSeen  Stamp `json:"first_seen"`
	LastSeen   Stamp `json:"last_seen"`
	// Missing is set when no source has seen the asset for the configured window.
	Missing bool `json:"missing,omitempty"`

	MACHistory  []Address    `json:"mac_history"`
	IPHistory   []Address    `json:"ip_history"`
	Names       []Name       `json:"hostname_history"`
	ServiceList []ServiceRec `json:"service_history"`
	Idents      []Ident      `json:"identifiers"`
	SourceList  []SourceRec  `json:"source_history"`
	// AssetExtra holds what few assets have, allocated only for them.
	*AssetExtra

	dirty bool
	// fresh: created and not yet taken for writing.
	fresh bool
	// writtenIPs is a hash of the current IPs as last written to the store.
	writtenIPs uint64
}

// AssetExtra is the rarely filled part of an asset.
type AssetExtra struct {
	Hints []HintRec `json:"hints,omitempty"`
	// Gateways lists this asset's MACs that carry many IPs: routers, whose
	// routed traffic names other devices' IPs.
	Gateways []string `json:"gateway_macs,omitempty"`
	// KeepApart lists assets an analyst split from this one: never merged
	// back automatically.
	KeepApart []string `json:"keep_apart,omitempty"`
	// CMDB is what the last successful reconciliation said of the asset.
	CMDB *CMDBLink `json:"cmdb,omitempty"`
}

// CMDBLink is the CMDB's side of an asset: the CI it matched, and the CI's
// owner, business unit, site and role, kept for reports and routing.
type CMDBLink struct {
	CIID         string   `json:"ci_id,omitempty"`
	CIName       string   `json:"ci_name,omitempty"`
	URL          string   `json:"url,omitempty"`
	Site         string   `json:"site,omitempty"`
	BusinessUnit string   `json:"business_unit,omitempty"`
	Owner        string   `json:"owner,omitempty"`
	Role         string   `json:"role,omitempty"`
	Rung         string   `json:"rung,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	Disagree     []string `json:"disagree,omitempty"`
	// CIs are the CIs matched when they were several (a conflict).
	CIs []string `json:"cis,omitempty"`
	// Others are the other assets that matched the same CI.
	Others  []string  `json:"others,omitempty"`
	Checked time.Time `json:"checked"`
}

var noExtra AssetExtra

// ro is the extra part for reading: a shared empty one when there is none.
// Never write through it.
func (a *Asset) ro() *AssetExtra {
	if a.AssetExtra == nil {
		return &noExtra
	}
	return a.AssetExtra
}

// rw is the extra part for writing, allocated on first use.
func (a *Asset) rw() *AssetExtra {
	if a.AssetExtra == nil {
		a.AssetExtra = &AssetExtra{}
	}
	return a.AssetExtra
}

// Address is a MAC or IP the asset has held.
type Address struct {
	Value Addr   `json:"value"`
	VLAN  uint16 `json:"vlan,omitempty"`
	// Via is, for an IP, the MAC it was bound to; Source says how it was learned.
	Via       Addr  `json:"via,omitzero"`
	Source    Sym   `json:"source,omitzero"`
	FirstSeen Stamp `json:"first_seen"`
	LastSeen  Stamp `json:"last_seen"`
	// Current is true while the asset holds it; an IP taken by another device,
	// or a randomised MAC replaced by a newer one, is no longer current.
	Current bool `json:"current"`
}

// Name is a hostname and how it was learned.
type Name struct {
	Name      string `json:"name"`
	How       Sym    `json:"how,omitzero"`
	FirstSeen Stamp  `json:"first_seen"`
	LastSeen  Stamp  `json:"last_seen"`
}

// ServiceRec is a service with its history.
type ServiceRec struct {
	Port      int    `json:"port"`
	Proto     Sym    `json:"proto"`
	Name      Sym    `json:"name,omitzero"`
	Product   Sym    `json:"product,omitzero"`
	Version   Sym    `json:"version,omitzero"`
	CPE       Sym    `json:"cpe,omitzero"`
	Banner    string `json:"banner,omitempty"`
	FirstSeen Stamp  `json:"first_seen"`
	LastSeen  Stamp  `json:"last_seen"`
	Open      bool   `json:"open"`
}

// Ident is a strong or corroborating identifier: serial, ssh_hostkey,
// tls_cert, dhcp_client_id, dhcp_fingerprint.
type Ident struct {
	Kind      Sym    `json:"kind"`
	Value     string `json:"value"`
	FirstSeen Stamp  `json:"first_seen"`
	LastSeen  Stamp  `json:"last_seen"`
}

// SourceRec is a discovery source that saw the asset.
type SourceRec struct {
	Source    Sym   `json:"source"`
	FirstSeen Stamp `json:"first_seen"`
	LastSeen  Stamp `json:"last_seen"`
}

// HintRec is the best guess per kind (os, device_type, model ...).
type HintRec struct {
	Kind       Sym     `json:"kind"`
	Value      Sym     `json:"value"`
	Confidence float64 `json:"confidence"`
	Source     Sym     `json:"source,omitzero"`
	LastSeen   Stamp   `json:"last_seen"`
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
	CMDB       *CMDBLink `json:"cmdb,omitempty"`
}

// Summary returns the list view of a.
func (a *Asset) Summary() Summary {
	s := Summary{ID: a.ID.String(), Status: a.Status.String(), Identity: a.Identity.String(), DeviceType: a.DeviceType.String(),
		Vendor: a.Vendor.String(), OS: a.OS.String(),
		FirstSeen: a.FirstSeen.Time(), LastSeen: a.LastSeen.Time(), Missing: a.Missing, CMDB: a.ro().CMDB,
		MACs: []string{}, IPs: []string{}, Hostnames: []string{}, Services: []Service{}, Sources: []string{}}
	for _, m := range a.MACHistory {
		if m.Current {
			s.MACs = append(s.MACs, m.Value.String())
		}
	}
	for _, ip := range a.IPHistory {
		if ip.Current {
			s.IPs = append(s.IPs, ip.Value.String())
		}
	}
	for _, n := range a.Names {
		if !slices.Contains(s.Hostnames, n.Name) {
			s.Hostnames = append(s.Hostnames, n.Name)
		}
	}
	for _, sv := range a.ServiceList {
		if sv.Open {
			s.Services = append(s.Services, Service{Port: sv.Port, Proto: sv.Proto.String(), Name: sv.Name.String(),
				Product: sv.Product.String(), Version: sv.Version.String(), CPE: sv.CPE.String()})
		}
	}
	for _, src := range a.SourceList {
		s.Sources = append(s.Sources, src.Source.String())
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
	return Detail{Summary: a.Summary(), MACHistory: orEmpty(a.MACHistory), IPHistory: orEmpty(a.IPHistory),
		Names: orEmpty(a.Names), ServiceList: orEmpty(a.ServiceList), Idents: orEmpty(a.Idents),
		SourceList: orEmpty(a.SourceList), Hints: orEmpty(a.ro().Hints), Gateways: orEmpty(a.ro().Gateways),
		KeepApart: orEmpty(a.ro().KeepApart), Timeline: orEmpty(timeline)}
}

// orEmpty keeps JSON lists as [] rather than null.
func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
