// Package nmapfacts turns nmap's XML output (-oX), with the output of the
// NSE scripts the assessment runs, into the typed facts of package assess.
//
// Parse reads the XML as a stream, one <host> at a time, and returns one
// assess.Facts per host. A file cut off mid-way still yields every host
// written in full, with an error matching ErrTruncated; input that is not
// nmap XML gives ErrNotNmapXML.
//
// The assessment runs nmap twice on a host: -sV first, then the NSE scripts
// on the ports that fit. Merge folds the second run's facts into the first.
//
// # What is read
//
// Every open port becomes an assess.Port. A service also becomes an entry in
// its family even without scripts, so a -sV-only run already lists them:
//
//   - ssh → SSH (Software and Protocol from -sV's product, version and
//     "protocol 2.0" extra info; Banner only from the banner script);
//   - http, https, http-proxy, http-alt, https-alt → HTTP;
//   - TLS tunnel (ssl/http ...) or https → TLS, with Source "nmap";
//   - ftp, ftps → FTP; snmp → SNMP;
//   - microsoft-ds → SMB; netbios-ssn → SMB when no microsoft-ds port is
//     open on the host (both are the same smbd on a normal host).
//
// Scripts fill the entries: ssl-enum-ciphers and ssl-cert (TLS);
// ssh2-enum-algos, ssh-hostkey and ssh-auth-methods (SSH); http-headers,
// http-server-header, http-methods and http-title (HTTP); ftp-anon and
// banner (FTP, and SSH for banner); snmp-brute and snmp-sysdescr (SNMP); and
// the host scripts smb-protocols, smb2-security-mode and smb-security-mode
// (SMB). http-security-headers is ignored: it prints nothing when there are
// no security headers and misses some (Referrer-Policy in 7.93), so the raw
// http-headers output is what counts.
//
// SMB scripts are host scripts in nmap, not tied to a port. Their facts go
// to the port given with --script-args smbport=N (read from the run's
// command line), else the open microsoft-ds port, else the open
// netbios-ssn port, else the single open port scanned, else port 0.
//
// A script that printed an "ERROR: ..." line, a host nmap saw as down or
// that hit --host-timeout, and an nmap run that ended in an error are
// recorded in Facts.Errors, so a check with missing facts does not pass
// silently.
//
// Fingerprints: the certificate's SHA-256 is computed from the PEM that
// ssl-cert prints; an SSH host key's fingerprint is computed from the key
// blob ("SHA256:...", as ssh-keygen -l prints it) and falls back to nmap's
// MD5 fingerprint written as ssh-keygen -E md5 prints it ("MD5:8b:48:...").
//
// The fixtures in testdata are real nmap 7.93 runs; see testdata/README.md.
package nmapfacts
