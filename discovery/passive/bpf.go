package passive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// CompileBPF compiles a tcpdump filter expression for Ethernet frames into
// classic BPF by running `tcpdump -y EN10MB -ddd EXPR`.
//
// Why tcpdump: the sensor must build without cgo, so libpcap's compiler
// cannot be linked in, and the pure-Go compilers on offer cover a subset of
// the language (no untagged pseudo-version is worth a filter that silently
// drops traffic). Debian's tcpdump carries libpcap's own compiler, so an
// expression means exactly what it means to tcpdump; it is needed only when
// a filter is set.
func CompileBPF(ctx context.Context, expr string) ([]bpf.RawInstruction, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("filter %q: compiling a filter needs tcpdump (Debian package tcpdump): %w", expr, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-y", "EN10MB", "-ddd", "--", expr)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("filter %q: %s", expr, tcpdumpMessage(stderr.String(), err))
	}
	prog, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("filter %q: reading tcpdump -ddd: %w", expr, err)
	}
	return prog, nil
}

// tcpdumpMessage keeps tcpdump's complaint, without its warnings.
func tcpdumpMessage(stderr string, err error) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Warning:") {
			continue
		}
		lines = append(lines, strings.TrimPrefix(l, "tcpdump: "))
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}

// parseDDD reads tcpdump -ddd output: a count, then one "code jt jf k"
// line per instruction, all decimal.
func parseDDD(s string) ([]bpf.RawInstruction, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n < 1 || n > 4096 {
		return nil, fmt.Errorf("instruction count %q", lines[0])
	}
	if len(lines) != n+1 {
		return nil, fmt.Errorf("%d instructions announced, %d given", n, len(lines)-1)
	}
	prog := make([]bpf.RawInstruction, n)
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 {
			return nil, fmt.Errorf("instruction %d: %q", i, l)
		}
		op, err1 := strconv.ParseUint(f[0], 10, 16)
		jt, err2 := strconv.ParseUint(f[1], 10, 8)
		jf, err3 := strconv.ParseUint(f[2], 10, 8)
		k, err4 := strconv.ParseUint(f[3], 10, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("instruction %d: %q: %w", i, l, err)
		}
		prog[i] = bpf.RawInstruction{Op: uint16(op), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return prog, nil
}
