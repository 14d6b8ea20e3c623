// Package lab builds a throwaway Ethernet segment of real Linux hosts for
// tests: network namespaces joined by a bridge, with a mirror port that hands
// a copy of every frame to a sensor namespace, and helpers that run real
// Debian services (dnsmasq, dhclient, sshd, nginx with and without TLS,
// snmpd, vsftpd) and traffic (ping, arping, curl, ssh-keyscan) inside the
// hosts. Each service helper records what it started (port, protocol,
// product, and identifiers such as the SSH host key's fingerprint and the
// TLS certificate's SHA-256): GroundTruth and WriteGroundTruth give the lab
// as a discovery of it should find it.
//
//	          switch namespace
//	host a ── p0 ─┐
//	host b ── p1 ─┼─ br0        every port's ingress is mirrored (tc mirred)
//	host c ── p2 ─┘             to "mirror" ── eth0 of the sensor namespace
//
// Every namespace, interface and process belongs to the test that made it:
// names carry a random lab id, the bridge and every veth are created inside
// the lab's namespaces (never in the root namespace), and t.Cleanup kills the
// processes and deletes the namespaces, taking the veths with them, even
// when the test fails. Traffic never leaves the lab.
//
// NewStandard builds the standard lab (Standard: a DHCP server, a web
// server, an SNMP and FTP server, a scanner host to run nmap from, and two
// DHCP clients) with every service started and its ground truth written.
// Up builds the same lab to outlive the program that built it, named
// rklab-<name>-*, for a shell (cmd/reckon-lab, `make lab-up`); Status and
// Down find it again from its name.
//
// A lab needs root and iproute2; without them New calls
// storetest.RequireIntegration, which skips the test, or fails it under
// CI=true. The package is Linux only.
package lab
