package cmdb

import (
	"context"
	"net/netip"
	"time"
)

// CI is one configuration item as reckon reads it from any CMDB: what the
// matching ladder needs, and what reports and routing keep on the asset.
// Every CMDB package fills it from its own records; fields it lacks stay
// empty.
type CI struct {
	// ID is the CMDB's own key (a NetBox "dcim.device:17", a ServiceNow
	// sys_id); Class says what kind of record ("device",
	// "virtual_machine", "ip_address", or a ServiceNow class name).
	ID    string `json:"id"`
	Class string `json:"class"`
	// Name is the record's name (a hostname or FQDN, lower-cased).
	Name string `json:"name"`
	// URL links to the record in the CMDB's own UI, when known.
	URL string `json:"url,omitempty"`
	// ReckonID is reckon's asset id when reckon wrote it back (a NetBox
	// unique custom field, a ServiceNow source native key).
	ReckonID string `json:"reckon_id,omitempty"`
	Serial   string `json:"serial,omitempty"`
	AssetTag string `json:"asset_tag,omitempty"`
	// MACs are canonical lower-case colon form.
	MACs []string `json:"macs,omitempty"`
	// IPs are the CI's addresses without their masks; Static says which
	// of them the CMDB records as static (not DHCP), by index into IPs.
	IPs    []netip.Addr `json:"ips,omitempty"`
	Static []bool       `json:"static,omitempty"`
	// Site, BusinessUnit (a NetBox tenant), Owner and Role are kept on the
	// matched asset for reports and routing.
	Site         string `json:"site,omitempty"`
	BusinessUnit string `json:"business_unit,omitempty"`
	Owner        string `json:"owner,omitempty"`
	Role         string `json:"role,omitempty"`
	// Status is the CMDB's lifecycle state (active, planned, retired ...).
	Status      string    `json:"status,omitempty"`
	LastUpdated time.Time `json:"last_updated"`
}

// Client reads a CMDB. Implementations page through the CMDB's API with
// retries, rate limits and timeouts of their own; an error means the read
// is incomplete and nothing may be concluded from the CIs seen so far.
type Client interface {
	// Kind names the CMDB ("netbox", "servicenow", "file").
	Kind() string
	// CIs calls fn for every CI, or, when since is not zero, for every CI
	// changed since then (an incremental run).
	CIs(ctx context.Context, since time.Time, fn func(CI) error) error
}

// Asset is what a push sends to a CMDB: one reconciled reckon asset.
type Asset struct {
	ID      string `json:"asset_id"`
	Verdict string `json:"verdict"`
	// CIID is the matched CI's ID (CI.ID) when the asset is managed.
	CIID       string       `json:"ci_id,omitempty"`
	Name       string       `json:"name,omitempty"` // best hostname, lower-case
	Serial     string       `json:"serial,omitempty"`
	MACs       []string     `json:"macs,omitempty"` // canonical lower-case colon form
	IPs        []netip.Addr `json:"ips,omitempty"`
	Vendor     string       `json:"vendor,omitempty"`
	Model      string       `json:"model,omitempty"`
	OS         string       `json:"os,omitempty"`
	DeviceType string       `json:"device_type,omitempty"`
	FirstSeen  time.Time    `json:"first_seen"`
	LastSeen   time.Time    `json:"last_seen"`
}

// Change is one write a push made or, in a dry run, would make.
type Change struct {
	AssetID string `json:"asset_id"`
	// Action is "create" or "update".
	Action string `json:"action"`
	// Object is the CMDB's record type: "ipam.ipaddress", "dcim.device",
	// "dcim.macaddress", or a ServiceNow class such as "cmdb_ci_computer".
	Object string `json:"object"`
	// ID is the record's CMDB id: the one updated, or the one created
	// (empty in a dry run).
	ID string `json:"id,omitempty"`
	// Fields are the values written (only those that change).
	Fields  map[string]any `json:"fields"`
	Message string         `json:"message"`
	// Error is the CMDB's answer when this one write failed; the others
	// still went ahead.
	Error string `json:"error,omitempty"`
}

// PushOptions says how a push writes.
type PushOptions struct {
	// DryRun computes and returns the changes without writing anything.
	DryRun bool
	// Owns lists the CMDB fields reckon may overwrite. Every other field
	// it writes only when the record has it empty: a field a person
	// curated is never overwritten.
	Owns []string
	// Message is the change message every write carries.
	Message string
}

// Pusher writes reckon's view of assets back to a CMDB.
type Pusher interface {
	// Push sends assets to the CMDB and returns the changes made (or that
	// would be made). A per-record failure is reported in its Change; the
	// error is for a push that could not go on (auth, CMDB down).
	Push(ctx context.Context, assets []Asset, opt PushOptions) ([]Change, error)
}
