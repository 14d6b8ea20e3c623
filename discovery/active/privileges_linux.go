//go:build linux

package active

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileCapsPrivileged reads the binary's security.capability attribute.
func fileCapsPrivileged(path string) (bool, string) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, "security.capability", buf)
	if err != nil {
		if errors.Is(err, unix.ENODATA) {
			return false, path + " has no file capabilities (setcap cap_net_raw,cap_net_admin+eip " + path + ")"
		}
		return false, fmt.Sprintf("cannot read the file capabilities of %s: %v", path, err)
	}
	c, err := decodeVFSCaps(buf[:n])
	if err != nil {
		return false, fmt.Sprintf("%s: %v", path, err)
	}
	switch {
	case !hasCaps(c.permitted):
		return false, path + " has file capabilities, but not both cap_net_raw and cap_net_admin permitted"
	case !c.effective:
		return false, path + " has cap_net_raw and cap_net_admin permitted but not effective (+eip needed: nmap does not raise them itself)"
	}
	return true, path + " has file capabilities cap_net_raw,cap_net_admin+ep"
}

// procStatus reads this process's effective and bounding capability sets
// and no_new_privs from /proc/self/status.
func procStatus() (procCaps, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return procCaps{}, err
	}
	defer f.Close()
	var c procCaps
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff", "CapBnd":
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return procCaps{}, fmt.Errorf("/proc/self/status %s: %w", k, err)
			}
			if k == "CapEff" {
				c.eff = n
			} else {
				c.bnd = n
			}
			found++
		case "NoNewPrivs":
			c.noNewPrivs = v == "1"
		}
	}
	if err := sc.Err(); err != nil {
		return procCaps{}, err
	}
	if found < 2 {
		return procCaps{}, errors.New("/proc/self/status has no CapEff/CapBnd")
	}
	return c, nil
}
