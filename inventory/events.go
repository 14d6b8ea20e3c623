package inventory

import "time"

// Event kinds. They are kept in the store (the asset timeline) and read by
// later stages: the assessment queue, alerts.
const (
	EventCreated    = "asset_created"
	EventChanged    = "asset_changed"
	EventNotSeen    = "asset_not_seen"
	EventMerged     = "asset_merged"
	EventMergedAway = "asset_merged_away"
	EventSplit      = "asset_split"
	EventAmbiguous  = "identity_ambiguous"
)

// Event is a change to an asset. Detail says what changed: for
// asset_changed, "change" is new_ip, new_mac, new_service, closed_service,
// service_version, new_hostname, ip_moved, os, vendor, gateway or seen_again.
type Event struct {
	ID      int64             `json:"id,omitempty"`
	AssetID string            `json:"asset_id"`
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"`
	Detail  map[string]string `json:"detail,omitempty"`
}

// EventVerdict is a change of an asset's CMDB verdict (managed, unmanaged,
// unknown, conflict); Detail has "from", "to" and "reason".
const EventVerdict = "cmdb_verdict"
