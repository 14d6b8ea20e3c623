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
package policy
