// Package cmdb reconciles the inventory with a CMDB over REST: the client
// interface, one package per CMDB (netbox, servicenow, file) and the
// reconciler that gives each asset a verdict (managed, unmanaged, unknown,
// conflict) and each CI a stale flag.
package cmdb
