// Package active runs nmap sweeps and turns their results into
// discovery.Observations.
//
// The path of a sweep, and where each safety check sits:
//
//	user strings ── ParseTarget ──> []Target           syntax only: no '-' first, no spaces, [A-Za-z0-9.:/_-]
//	             ── Scope.Resolve ─> []netip.Prefix    hostnames resolved, every address inside an Allow,
//	                                                    Excludes cut out, at most MaxAddresses
//	             ── Chunk ─────────> [][]netip.Prefix  one family per chunk, at most N addresses each
//	Spec{Targets: chunk, Ports: ParsePorts(...), ...}
//	             ── Run ───────────> Result            Validate again; targets go to an -iL file,
//	                                                    never to argv; nmap writes -oX FILE
//
// Run treats nmap's XML file as the truth. It tails the file while nmap
// runs (the --stats-every lines become Progress), and when nmap dies, is
// killed or runs out of time, every <host> element written in full is kept:
// ParseXML streams one host at a time and stops cleanly at a cut. The
// library's own Run is not used for that reason (a context deadline there
// returns ErrScanTimeout and loses the results); the library builds the
// argv.
//
// Without raw-packet privileges (root, or file capabilities on the nmap
// binary: see Privileges) a sweep falls back to a TCP connect scan, drops
// OS detection, ARP and ICMP discovery and UDP ports, and says so in
// Result.Warnings.
package active
