package active

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func vfsBytes(words ...uint32) []byte {
	b := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func TestDecodeVFSCaps(t *testing.T) {
	const netBoth = 1<<capNetRaw | 1<<capNetAdmin
	for _, c := range []struct {
		name string
		in   []byte
		want vfsCaps
		err  string
	}{
		{"v2 +eip", vfsBytes(0x02000001, netBoth, netBoth, 0, 0), vfsCaps{revision: 2, effective: true, permitted: netBoth, inheritable: netBoth}, ""},
		{"v2 +p", vfsBytes(0x02000000, 1<<capNetRaw, 0, 1, 0), vfsCaps{revision: 2, permitted: 1<<capNetRaw | 1<<32}, ""},
		{"v3", vfsBytes(0x03000001, netBoth, 0, 0, 0, 1000), vfsCaps{revision: 3, effective: true, permitted: netBoth, rootUID: 1000}, ""},
		{"v1", vfsBytes(0x01000001, netBoth, 0), vfsCaps{revision: 1, effective: true, permitted: netBoth}, ""},
		{"short", []byte{1, 0}, vfsCaps{}, "too short"},
		{"v2 short", vfsBytes(0x02000001, netBoth), vfsCaps{}, "revision 2 is 8 bytes"},
		{"v3 short", vfsBytes(0x03000001, netBoth, 0, 0, 0), vfsCaps{}, "revision 3 is 20 bytes"},
		{"v1 long", vfsBytes(0x01000001, netBoth, 0, 0), vfsCaps{}, "revision 1 is 16 bytes"},
		{"unknown", vfsBytes(0x07000001, netBoth, 0, 0, 0), vfsCaps{}, "unknown revision"},
	} {
		got, err := decodeVFSCaps(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %+v, %v; want error %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

// TestFileCapabilities sets real file capabilities with setcap and reads
// them back through the kernel's xattr.
func TestFileCapabilities(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("file capabilities are Linux's")
	}
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip("setcap not installed (Debian's libcap2-bin)")
	}
	bin := filepath.Join(t.TempDir(), "nmap")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, why := fileCapsPrivileged(bin); ok || !strings.Contains(why, "has no file capabilities") {
		t.Errorf("no caps: %v %q", ok, why)
	}
	for _, c := range []struct {
		caps string
		ok   bool
		why  string
	}{
		{"cap_net_raw,cap_net_admin+eip", true, "has file capabilities cap_net_raw,cap_net_admin+ep"},
		{"cap_net_raw,cap_net_admin+ep", true, "has file capabilities"},
		{"cap_net_raw+eip", false, "not both cap_net_raw and cap_net_admin"},
		{"cap_net_raw,cap_net_admin+ip", false, "not effective"},
	} {
		if out, err := exec.Command(setcap, c.caps, bin).CombinedOutput(); err != nil {
			t.Skipf("setcap %s: %v: %s (not root, or no xattrs here)", c.caps, err, out)
		}
		if ok, why := fileCapsPrivileged(bin); ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v %q, want %v %q", c.caps, ok, why, c.ok, c.why)
		}
	}
}

func TestPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		ok, why := Privileges("/nonexistent/nmap")
		if ok || !strings.HasPrefix(why, "not root") {
			t.Errorf("non-root without caps: %v %q", ok, why)
		}
		return
	}
	st, err := procStatus()
	if err != nil {
		t.Skip(err)
	}
	ok, why := Privileges("/nonexistent/nmap")
	if ok != hasCaps(st.eff) || (ok && why != "running as root") {
		t.Errorf("root: %v %q (CapEff %x)", ok, why, st.eff)
	}
}
