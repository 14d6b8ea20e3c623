// Package alert runs the alert process: deduplication, the workflow from new
// through triage and escalation to close, routing, notifications and the
// reports on time to detect and time to resolve.
package alert
