//go:build linux

package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// SMBServer starts Samba's smbd on the host's address, port 445, as a
// standalone server with one read-only guest share; its configuration and
// every state folder live in the lab's folder. weak allows SMBv1 (NT1) and
// leaves signing optional; otherwise only SMB3 is offered, and signing and
// encryption are required. It returns once the port answers, and fails the
// test otherwise.
func (h *Host) SMBServer(weak bool) *Proc {
	t := h.lab.t
	t.Helper()
	h.lab.require("smbd")
	p, err := h.smbServer(weak)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) smbServer(weak bool) (*Proc, error) {
	if !h.IP.IsValid() {
		return nil, fmt.Errorf("smbd on %s needs an address", h.Name)
	}
	dir, err := h.dir("smbd")
	if err != nil {
		return nil, err
	}
	share := filepath.Join(dir, "share")
	for _, d := range []string{"lock", "state", "cache", "pid", "private", "ncalrpc", "log", "share"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	security := "server min protocol = SMB3\n   server signing = mandatory\n   server smb encrypt = required\n"
	if weak {
		security = "server min protocol = NT1\n   server signing = auto\n"
	}
	var werr errorCollector
	writeFile(&werr, share, "README", "reckon lab SMB on "+h.Hostname+"\n", 0o644)
	conf := writeFile(&werr, dir, "smb.conf", fmt.Sprintf(`# reckon lab
[global]
   server role = standalone server
   workgroup = RECKONLAB
   netbios name = %[1]s
   interfaces = %[2]s
   bind interfaces only = yes
   smb ports = 445
   disable netbios = yes
   map to guest = Bad User
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes
   lock directory = %[3]s/lock
   state directory = %[3]s/state
   cache directory = %[3]s/cache
   pid directory = %[3]s/pid
   private dir = %[3]s/private
   ncalrpc dir = %[3]s/ncalrpc
   log file = %[3]s/log/smbd.log
   %[4]s
[pub]
   path = %[5]s
   read only = yes
   guest ok = yes
`, smbName(h.Name), h.IP, dir, security, share), 0o644)
	if werr.err != nil {
		return nil, werr.err
	}
	p, err := h.start("smbd", "--foreground", "--no-process-group", "--debug-stdout", "-s", conf)
	if err != nil {
		return nil, err
	}
	if err := h.waitTCP(p, netip.AddrPortFrom(h.IP, 445)); err != nil {
		return nil, err
	}
	h.addService(Service{Port: 445, Proto: "tcp", Name: "microsoft-ds", Product: "Samba smbd"})
	return p, nil
}

// smbName is a NetBIOS name (15 characters at most) for a host.
func smbName(name string) string {
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}
