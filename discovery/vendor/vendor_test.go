package vendor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEmbedded(t *testing.T) {
	tab := Default()
	if tab.Len() < 30000 {
		t.Fatalf("embedded table has %d vendors", tab.Len())
	}
	for mac, want := range map[[6]byte]string{
		{0x00, 0x0c, 0x29, 1, 2, 3}: "VMware, Inc.",
		{0x00, 0x19, 0x06, 1, 2, 3}: "Cisco Systems, Inc",
		{0x02, 0x0c, 0x29, 1, 2, 3}: "", // locally administered: no maker
	} {
		if got := tab.Lookup(mac); got != want {
			t.Errorf("Lookup(%x) = %q, want %q", mac, got, want)
		}
	}
}

func TestLoadNewerFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "oui.csv")
	os.WriteFile(p, []byte("Registry,Assignment,Organization Name,Organization Address\nMA-L,A8CDEF,\"Example, Ltd\",Somewhere\n"), 0o600)
	tab, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Lookup([6]byte{0xa8, 0xcd, 0xef, 0, 0, 1}); got != "Example, Ltd" {
		t.Fatalf("Lookup = %q", got)
	}
	os.WriteFile(p, []byte("nothing here\n"), 0o600)
	if _, err := Load(p); err == nil {
		t.Fatal("a file with no assignments loaded")
	}
}
