package passive_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// TestCompileBPF compiles expressions with tcpdump and runs the programs in
// x/net/bpf's VM over an ARP request and an IPv4 UDP frame.
func TestCompileBPF(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		storetest.RequireIntegration(t, "no tcpdump to compile filters (apt-get install tcpdump)")
	}
	arp := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06},
		0, 1, 0x08, 0x00, 6, 4, 0, 1), make([]byte, 20)...)
	dhcp := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
		0, 68, 0, 67, 0, 8, 0, 0}, make([]byte, 16)...)
	for _, tc := range []struct {
		expr           string
		wantARP, wantD bool
	}{
		{"arp", true, false},
		{"udp port 67", false, true},
		{"arp or (udp and port 67)", true, true},
		{"tcp", false, false},
	} {
		raw, err := passive.CompileBPF(context.Background(), tc.expr)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		prog, ok := bpf.Disassemble(raw)
		if !ok {
			t.Fatalf("%q: tcpdump gave instructions x/net/bpf cannot read: %v", tc.expr, raw)
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		for _, f := range []struct {
			name  string
			frame []byte
			want  bool
		}{{"arp", arp, tc.wantARP}, {"dhcp", dhcp, tc.wantD}} {
			n, err := vm.Run(f.frame)
			if err != nil || (n > 0) != f.want {
				t.Errorf("%q on the %s frame: kept %d bytes (%v), want kept=%v", tc.expr, f.name, n, err, f.want)
			}
		}
	}
}

func TestCompileBPFErrors(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err == nil {
		_, err := passive.CompileBPF(context.Background(), "port 67 and and")
		if err == nil || !strings.Contains(err.Error(), `filter "port 67 and and"`) || !strings.Contains(err.Error(), "syntax error") ||
			strings.Contains(err.Error(), "Warning") {
			t.Errorf("bad expression: %v", err)
		}
		_, err = passive.CompileBPF(context.Background(), "-w /tmp/x")
		if err == nil {
			t.Error("an expression that looks like an option was taken")
		}
	}
	t.Setenv("PATH", t.TempDir())
	_, err := passive.CompileBPF(context.Background(), "arp")
	if err == nil || !strings.Contains(err.Error(), "needs tcpdump (Debian package tcpdump)") {
		t.Errorf("without tcpdump: %v", err)
	}
}
