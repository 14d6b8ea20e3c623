// Package policy loads assessment policies and checks hosts against them.
//
// A policy is a YAML file of checks, each a few CEL expressions over
// assess.Facts, plus the standard builds (which ports and services a host of
// a role may expose) and the rules that give a host a role when the CMDB
// gives none:
//
//	version: "2026-12-05"
//	checks:
//	  - id: TLS-001
//	    title: TLS 1.0 and 1.1 are disabled
//	    severity: high
//	    rationale: ...
//	    family: tls
//	    applies: "tls.size() > 0"
//	    expect: "tls.all(t, !('TLSv1.0' in t.versions) && !('TLSv1.1' in t.versions))"
//	    evidence: "tls.filter(t, 'TLSv1.0' in t.versions).map(t, t.port)"
//	builds:
//	  - role: web-server
//	    allow: ["tcp/22", "tcp/443", "http", "ssh"]
//	roles:
//	  - role: web-server
//	    when: "ports.exists(p, p.service == 'http')"
//
// Every top-level field of assess.Facts is a CEL variable named by its JSON
// tag (target, asset_id, role, managed, hostnames, collected, ports, tls,
// ssh, http, ftp, snmp, smb, errors), with its Go type: a field that does not
// exist (t.verzions) or an operation the types do not allow is an error when
// the policy loads, not when it runs. time.Time fields are CEL timestamps and
// `now` is the evaluation time, so `c.not_after < now + duration('720h')`
// reads as it should. cel-go's strings, lists and sets extensions and
// optional types are available.
//
// Every expression is compiled when the policy loads and every problem found
// is reported at once, each naming the file and the check. A program runs
// under a cost limit; a check that exceeds it is an error, never a pass.
//
// Evaluation is built for fleets: the baseline runs at tens of thousands
// of hosts a second on one core (BenchmarkBaseline). Two things make that
// so, neither changing a result:
//   - cost tracking is skipped for an expression whose estimated worst cost
//     (cel-go's estimator, over generous bounds on the sizes of the facts)
//     is within the limit, on a host whose facts are within those bounds;
//     elsewhere the tracker runs and enforces the limit;
//   - such expressions, when they use only the common part of CEL, run as
//     Go closures compiled from their checked AST (fast.go) rather than in
//     cel-go's interpreter; on any error they are rerun in cel-go, and the
//     tests hold both to the same results on thousands of hosts.
//
// Options.AlwaysTrackCost and Options.NoFastPath turn either off.
package policy
