// Package assess assesses hosts against the organisation's standard
// configuration: the assessment queue and its workers, the collectors (nmap
// NSE scripts, native Go probes), the CEL policy engine and drift between
// assessments.
package assess
