package active

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// ErrNmapNotFound: no nmap binary to run.
var ErrNmapNotFound = errors.New("nmap not found: install Debian's nmap package (apt-get install nmap)")

// FindNmap looks nmap up in PATH.
func FindNmap() (string, error) {
	p, err := exec.LookPath("nmap")
	if err != nil {
		return "", ErrNmapNotFound
	}
	return p, nil
}

// Linux capability numbers (linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// Privileges says whether nmap at nmapPath may send raw packets (SYN scans,
// ARP and ICMP discovery, OS detection), and why. It may if this process is
// root with CAP_NET_RAW and CAP_NET_ADMIN effective (a container's root may
// lack them), if the binary is setuid root, or if the binary carries the
// file capabilities cap_net_raw,cap_net_admin+eip (setcap) and this
// process's bounding set keeps them and no_new_privs is off. With file
// capabilities nmap still needs --privileged, which Run passes.
func Privileges(nmapPath string) (bool, string) {
	st, stErr := procStatus()
	if os.Geteuid() == 0 {
		if stErr == nil && !hasCaps(st.eff) {
			return false, "running as root without CAP_NET_RAW and CAP_NET_ADMIN (a restricted container?)"
		}
		return true, "running as root"
	}
	if setuidRoot(nmapPath) {
		return true, nmapPath + " is setuid root"
	}
	ok, why := fileCapsPrivileged(nmapPath)
	if !ok {
		return false, "not root and " + why
	}
	if stErr == nil && st.noNewPrivs {
		return false, "not root, and no_new_privs is set, so the file capabilities of " + nmapPath + " do not apply"
	}
	if stErr == nil && !hasCaps(st.bnd) {
		return false, "not root, and the capability bounding set drops cap_net_raw or cap_net_admin, so the file capabilities of " + nmapPath + " do not apply"
	}
	return true, why
}

func hasCaps(set uint64) bool {
	return set&(1<<capNetRaw) != 0 && set&(1<<capNetAdmin) != 0
}

// vfsCaps is the security.capability attribute (linux/capability.h,
// struct vfs_cap_data / vfs_ns_cap_data): a little-endian magic word holding
// the revision and the effective flag, then permitted and inheritable
// words, one pair (revision 1) or two (revisions 2 and 3; 3 adds the root
// uid of the user namespace it applies to).
type vfsCaps struct {
	revision    int
	effective   bool
	permitted   uint64
	inheritable uint64
	rootUID     uint32
}

func decodeVFSCaps(b []byte) (vfsCaps, error) {
	const (
		revMask  = 0xff000000
		rev1     = 0x01000000
		rev2     = 0x02000000
		rev3     = 0x03000000
		flagEff  = 0x000001
		rev1Size = 4 + 2*4
		rev2Size = 4 + 2*2*4
		rev3Size = rev2Size + 4
	)
	if len(b) < 4 {
		return vfsCaps{}, errors.New("security.capability is too short")
	}
	magic := binary.LittleEndian.Uint32(b)
	c := vfsCaps{effective: magic&flagEff != 0}
	rev, want := magic&revMask, 0
	switch rev {
	case rev1:
		want = rev1Size
	case rev2:
		want = rev2Size
	case rev3:
		want = rev3Size
	default:
		return vfsCaps{}, fmt.Errorf("security.capability has unknown revision %#x", rev)
	}
	if len(b) != want {
		return vfsCaps{}, fmt.Errorf("security.capability revision %d is %d bytes, want %d", rev>>24, len(b), want)
	}
	word := func(i int) uint64 { return uint64(binary.LittleEndian.Uint32(b[4+4*i:])) }
	c.revision, c.permitted, c.inheritable = int(rev>>24), word(0), word(1)
	if rev != rev1 {
		c.permitted |= word(2) << 32
		c.inheritable |= word(3) << 32
	}
	if rev == rev3 {
		c.rootUID = binary.LittleEndian.Uint32(b[rev2Size:])
	}
	return c, nil
}

type procCaps struct {
	eff, bnd   uint64
	noNewPrivs bool
}
