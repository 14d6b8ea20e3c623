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
