// Package reconcile matches inventory assets against CMDB configuration items
// and gives each asset a verdict (managed, unmanaged, unknown, conflict) and
// each CI a stale flag. It is pure and in memory: the server reads the CIs
// (package cmdb's clients) and the assets, calls Reconcile, and stores the
// Report. A CMDB read that failed must never reach Reconcile: an incomplete
// CI list would turn managed assets unmanaged.
//
// # The ladder
//
// Each asset walks down the rungs below; the first rung that finds any CI
// decides. Exactly one CI there is the match; several CIs are a conflict
// naming them all (never a silent pick).
//
//  1. reckon_id: a CI whose ReckonID is the asset's id (reckon wrote it back).
//  2. serial: a serial or asset tag of the asset equals a CI's Serial or
//     AssetTag (case-insensitive, trimmed; junk serials ignored on both sides).
//  3. mac: a universal MAC of the asset is one of the CI's MACs. Locally
//     administered (randomised) MACs, group MACs, junk MACs and shared
//     virtual-router MACs (VRRP, HSRP, GLBP) never match.
//  4. hostname_site: a hostname of the asset equals the CI's name, when the
//     sites agree or either side has no site. Names compare case-insensitively,
//     without a trailing dot; a short name matches an FQDN whose first label
//     it is, but two FQDNs in different domains do not match.
//  5. static_ip: an IP of the asset is one the CI records as static. Gateway
//     assets skip this rung: the IPs they carry are the devices behind them.
//
// # Verdicts
//
// One CI matched: the asset's other attributes are compared with the CI's.
// Disagreeing serial (both sides have valid ones and none is shared),
// disagreeing universal MACs (both sides have some and none is shared),
// disagreeing hostname, disagreeing site (both sides set) and a ReckonID
// written for another asset make the verdict conflict, with Disagree naming
// each attribute; IPs are never compared (DHCP). Otherwise managed.
//
// A CI matched (singly) by several assets makes every one of them conflict,
// each naming the CI and the other assets, except that an asset the CI names
// by reckon id keeps it, and only the others are conflicts.
//
// No CI matched: unknown when the inventory calls the identity ambiguous, or
// the asset has no valid serial, universal MAC or hostname (only a randomised
// MAC and a DHCP address, say); otherwise unmanaged.
//
// # Stale CIs
//
// A CI that some asset matched (at any rung, conflicts included) is stale
// when the latest LastSeen of those assets is older than StaleAfter. A CI
// that no asset matched is stale when its record has not changed
// (LastUpdated) within StaleAfter either: a record created yesterday for a
// device not yet cabled is not stale yet. CIs whose Status says they are not
// expected on the network (planned, staged, inventory, offline,
// decommissioning, retired) are never stale. The reconciler is stateless, so
// "silent for the window" is judged from these timestamps alone.
package reconcile
