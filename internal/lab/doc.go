// Package lab builds a throwaway Ethernet segment of real Linux hosts for
// tests: network namespaces joined by a bridge, with a mirror port that hands
// a copy of every frame to a sensor namespace, and helpers that run real
// Debian services (dnsmasq, dhclient, sshd, nginx) and traffic (ping, arping,
// curl, ssh-keyscan) inside the hosts.
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
// A lab needs root and iproute2; without them New calls
// storetest.RequireIntegration, which skips the test, or fails it under
// CI=true. The package is Linux only.
package lab
