//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStateDir is where persistent labs keep their files unless told
// otherwise.
const DefaultStateDir = "/run/reckon-lab"

// PersistOptions name a persistent lab: the standard lab (see Standard),
// built by Up to outlive the program that built it, for a shell or another
// program to use, and removed by Down from any process. Its programs run in
// sessions of their own; their pids are in files in the lab's folder, and
// its namespaces are named rklab-<Name>-*, so a later Status or Down finds
// everything from the name alone.
type PersistOptions struct {
	// Name is the lab's id, [a-z][a-z0-9]{0,11} (no dash, so that no lab's
	// namespaces are another's): namespaces rklab-<Name>-sw,
	// rklab-<Name>-sensor and rklab-<Name>-h-<host>.
	Name string
	// StateDir holds <Name>.json, the ground truth, and <Name>/, the lab's
	// folder (configuration, keys, leases, logs, pid files); the zero value
	// is DefaultStateDir.
	StateDir string
	// Logger says what Up and Down do; nil says nothing.
	Logger *slog.Logger
}

var persistNameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

func (o PersistOptions) check() (PersistOptions, error) {
	if !persistNameRE.MatchString(o.Name) {
		return o, fmt.Errorf("lab name %q: want %s", o.Name, persistNameRE)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o, nil
}

// TruthFile is where Up writes the lab's ground truth.
func (o PersistOptions) TruthFile() string {
	return filepath.Join(o.stateDir(), o.Name+".json")
}

// Dir is the lab's folder.
func (o PersistOptions) Dir() string { return filepath.Join(o.stateDir(), o.Name) }

func (o PersistOptions) stateDir() string {
	if o.StateDir == "" {
		return DefaultStateDir
	}
	return o.StateDir
}

func (o PersistOptions) pidDir() string { return filepath.Join(o.Dir(), "pids") }

// Up builds the standard lab named by o, starts its services and writes its
// ground truth to o.TruthFile(), then returns, leaving it running. When the
// lab is already up and healthy (see Status) it changes nothing and says so
// (existed); when remains of it are there but it is not healthy (a failed
// Up, a killed program, a lost namespace), it tears them down and builds
// afresh. When Up fails, it removes everything it made. Up and Down hold a
// lock on the lab, so two of them never interleave. It needs root.
func Up(ctx context.Context, o PersistOptions) (truth Truth, existed bool, err error) {
	o, err = o.check()
	if err != nil {
		return Truth{}, false, err
	}
	unlock, err := o.lock()
	if err != nil {
		return Truth{}, false, err
	}
	defer unlock()
	st, err := Status(ctx, o)
	if err != nil {
		return Truth{}, false, err
	}
	if st.Healthy() {
		o.Logger.Info("lab is up already", "name", o.Name, "truth", st.TruthFile)
		return *st.Truth, true, nil
	}
	if !st.Empty() {
		o.Logger.Warn("tearing down what is left of the lab", "name", o.Name, "problems", strings.Join(st.Problems, "; "))
		if err := down(o); err != nil {
			return Truth{}, false, fmt.Errorf("tearing down lab %s before building it: %w", o.Name, err)
		}
	}
	if os.Geteuid() != 0 {
		return Truth{}, false, errors.New("a lab needs root (network namespaces, veth, tc)")
	}
	for _, p := range standardPrograms {
		if _, err := exec.LookPath(p); err != nil {
			return Truth{}, false, fmt.Errorf("lab needs %s on PATH (Debian package %s)", p, debPackage(p))
		}
	}
	if _, err := os.Stat(sshdPath); err != nil {
		return Truth{}, false, fmt.Errorf("lab needs %s (Debian package openssh-server)", sshdPath)
	}
	o.Logger.Info("building lab", "name", o.Name, "dir", o.Dir())
	truth, err = up(ctx, o)
	if err != nil {
		if derr := down(o); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", derr))
		}
		return Truth{}, false, fmt.Errorf("lab %s: %w", o.Name, err)
	}
	o.Logger.Info("lab is up", "name", o.Name, "subnet", truth.Subnet, "truth", o.TruthFile())
	return truth, false, nil
}

func up(ctx context.Context, o PersistOptions) (truth Truth, err error) {
	defer func() {
		// A helper that fails a test fails a persistent lab with a panic
		// (see detached); Up's own path uses none, so this is a backstop.
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	opts := Standard()
	l, err := newLab(detached{o.Logger}, o.Name, opts.Subnet)
	if err != nil {
		return Truth{}, err
	}
	l.persist = true
	l.dir = o.Dir()
	if err := os.MkdirAll(o.pidDir(), 0o755); err != nil {
		return Truth{}, err
	}
	if err := l.build(opts.Hosts); err != nil {
		return Truth{}, err
	}
	if err := l.startStandard(ctx); err != nil {
		return Truth{}, err
	}
	l.truthFile = o.TruthFile()
	if err := l.WriteGroundTruth(l.truthFile); err != nil {
		return Truth{}, err
	}
	return l.GroundTruth(), nil
}

// Down stops the programs of the lab named by o (by their pid files, each
// checked to still be in one of the lab's namespaces), kills whatever else
// runs in its namespaces, deletes the namespaces (and with them the
// bridge and veths), and removes its folder and ground truth. Nothing there
// is no error.
func Down(o PersistOptions) error {
	o, err := o.check()
	if err != nil {
		return err
	}
	unlock, err := o.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return down(o)
}

func down(o PersistOptions) error {
	nss, err := labNamespaces(o.Name)
	if err != nil {
		return err
	}
	inNS := map[uint64]bool{}
	for _, ns := range nss {
		if ino, err := nsInode(filepath.Join("/run/netns", ns)); err == nil {
			inNS[ino] = true
		}
	}
	procs, _ := readPidFiles(o.pidDir())
	var live []int
	for _, p := range procs {
		if ino, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", p.PID)); err == nil && inNS[ino] && procAlive(p.PID) {
			live = append(live, p.PID)
		}
	}
	// Each program leads a session and a process group of its own: the
	// signal reaches the children it forked (sshd's, vsftpd's) too.
	signalAll(live, syscall.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && slices.ContainsFunc(live, procAlive) {
		time.Sleep(50 * time.Millisecond)
	}
	signalAll(slices.DeleteFunc(live, func(pid int) bool { return !procAlive(pid) }), syscall.SIGKILL)

	var errs []error
	for _, ns := range nss {
		// Whatever else still runs there (a daemon's forks, a shell
		// someone left): those whose every thread is in the lab's
		// namespaces. A program elsewhere with one thread in the lab (one
		// that joined it to dial, as Do does) lists here too, and is not
		// the lab's to kill.
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() && allThreadsIn(pid, inNS) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, ns := range nss {
		if err := run(exec.Command("ip", "netns", "del", ns)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(o.Dir()); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(o.TruthFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(nss) > 0 || len(live) > 0 {
		o.Logger.Info("lab is down", "name", o.Name, "namespaces", len(nss), "programs", len(live))
	}
	return errors.Join(errs...)
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = syscall.Kill(-pid, sig)
		_ = syscall.Kill(pid, sig)
	}
}

// LabStatus is what Status found of a persistent lab.
type LabStatus struct {
	Name string
	// TruthFile is where the ground truth is, or would be.
	TruthFile string
	// Truth is the ground truth; nil when there is none.
	Truth *Truth
	// Namespaces of the lab that exist.
	Namespaces []string
	// Procs are the programs in the lab's pid files.
	Procs []ProcStatus
	// DirExists says the lab's folder is there.
	DirExists bool
	// Problems say why the lab is not healthy; none when it is, or when
	// nothing of it is there.
	Problems []string
}

// ProcStatus is a program of a persistent lab.
type ProcStatus struct {
	// Name is host/program, as Proc.Name.
	Name  string
	PID   int
	Netns string
	// Running says the pid is a live process (not a zombie) in Netns.
	Running bool
}

// Healthy says the lab is all there: its ground truth, every namespace it
// lists and no other, every program running, every host holding its
// address and every TCP service answering.
func (s LabStatus) Healthy() bool { return s.Truth != nil && len(s.Problems) == 0 }

// Empty says nothing of the lab is there.
func (s LabStatus) Empty() bool {
	return s.Truth == nil && len(s.Namespaces) == 0 && len(s.Procs) == 0 && !s.DirExists
}

// Status looks at the lab named by o, without changing anything.
func Status(ctx context.Context, o PersistOptions) (LabStatus, error) {
	o, err := o.check()
	if err != nil {
		return LabStatus{}, err
	}
	st := LabStatus{Name: o.Name, TruthFile: o.TruthFile()}
	if st.Namespaces, err = labNamespaces(o.Name); err != nil {
		return st, err
	}
	if fi, err := os.Stat(o.Dir()); err == nil && fi.IsDir() {
		st.DirExists = true
	}
	problem := func(format string, args ...any) { st.Problems = append(st.Problems, fmt.Sprintf(format, args...)) }

	procs, err := readPidFiles(o.pidDir())
	if err != nil {
		problem("%v", err)
	}
	for _, p := range procs {
		ino, err1 := nsInode(filepath.Join("/run/netns", p.Netns))
		pino, err2 := nsInode(fmt.Sprintf("/proc/%d/ns/net", p.PID))
		p.Running = err1 == nil && err2 == nil && ino == pino && procAlive(p.PID)
		if !p.Running {
			problem("%s (pid %d) is not running", p.Name, p.PID)
		}
		st.Procs = append(st.Procs, p)
	}

	t, err := ReadGroundTruth(st.TruthFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !st.Empty() {
			problem("no ground truth at %s", st.TruthFile)
		}
		return st, nil
	case err != nil:
		problem("%v", err)
		return st, nil
	}
	st.Truth = &t
	want := []string{t.Switch.Netns, t.Sensor.Netns}
	for _, h := range t.Hosts {
		want = append(want, h.Netns)
	}
	for _, ns := range want {
		if !slices.Contains(st.Namespaces, ns) {
			problem("namespace %s is missing", ns)
		}
	}
	for _, ns := range st.Namespaces {
		if !slices.Contains(want, ns) {
			problem("namespace %s is not the ground truth's", ns)
		}
	}
	if len(st.Procs) == 0 {
		problem("no programs recorded in %s", o.pidDir())
	}
	for _, h := range t.Hosts {
		if !slices.Contains(st.Namespaces, h.Netns) {
			continue
		}
		if !h.IPv4.IsValid() {
			problem("%s: no address in the ground truth", h.Name)
			continue
		}
		ip, err := (&Host{Name: h.Name, Netns: h.Netns, Iface: h.Iface}).Addr(ctx)
		if err != nil || ip != h.IPv4 {
			problem("%s: %s has %v (%v), want %s", h.Name, h.Iface, ip, err, h.IPv4)
			continue
		}
		for _, s := range h.Services {
			if s.Proto != "tcp" {
				continue
			}
			addr := netip.AddrPortFrom(h.IPv4, s.Port).String()
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := (&Host{Netns: h.Netns}).DialContext(dctx, "tcp", addr)
			cancel()
			if err != nil {
				problem("%s: %s on %s does not answer: %v", h.Name, s.Name, addr, err)
				continue
			}
			c.Close()
		}
	}
	return st, nil
}

// lock takes the lab's lock file in the state folder, waiting for another
// Up or Down to finish.
func (o PersistOptions) lock() (unlock func(), err error) {
	if err := os.MkdirAll(o.stateDir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(o.stateDir(), "."+o.Name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// labNamespaces lists the namespaces named rklab-<id>-*.
func labNamespaces(id string) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), Prefix+id+"-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// writePidFile records a persistent lab's program: <n>-<host>-<program>.pid
// holding "<pid> <netns>".
func writePidFile(dir string, n int, h *Host, program string, pid int) error {
	name := fmt.Sprintf("%d-%s-%s.pid", n, h.Name, filepath.Base(program))
	return writeAtomic(filepath.Join(dir, "pids", name), fmt.Appendf(nil, "%d %s\n", pid, h.Netns))
}

func readPidFiles(dir string) ([]ProcStatus, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, err
	}
	var out []ProcStatus
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var p ProcStatus
		if _, err := fmt.Sscan(string(b), &p.PID, &p.Netns); err != nil || p.PID <= 1 {
			errs = append(errs, fmt.Errorf("pid file %s: %q", f, bytes.TrimSpace(b)))
			continue
		}
		// 3-web-sshd.pid: host web, program sshd
		base := strings.TrimSuffix(filepath.Base(f), ".pid")
		if _, rest, ok := strings.Cut(base, "-"); ok {
			base = rest
		}
		if host, prog, ok := strings.Cut(base, "-"); ok {
			base = host + "/" + prog
		}
		p.Name = base
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ProcStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

// allThreadsIn says every thread of pid is in one of the namespaces.
func allThreadsIn(pid int, inodes map[uint64]bool) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		ino, err := nsInode(fmt.Sprintf("/proc/%d/task/%s/ns/net", pid, t.Name()))
		if err != nil || !inodes[ino] {
			return false
		}
	}
	return true
}

// procAlive says pid is a process, and not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// nsInode is the inode of a network namespace file (/run/netns/NAME or
// /proc/PID/ns/net): equal inodes, same namespace.
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// detached stands in for a test for a persistent lab: it logs, and what
// would fail a test panics with fatal, which Up recovers.
type detached struct{ log *slog.Logger }

type fatal struct{ err error }

func (detached) Helper() {}
func (d detached) Logf(format string, args ...any) {
	d.log.Info(fmt.Sprintf(format, args...))
}
func (d detached) Errorf(format string, args ...any) {
	d.log.Error(fmt.Sprintf(format, args...))
}
func (detached) Fatalf(format string, args ...any) { panic(fatal{fmt.Errorf(format, args...)}) }
func (detached) Failed() bool                      { return false }

// Cleanup is never called for a persistent lab: its processes outlive the
// program, and Down removes the rest.
func (detached) Cleanup(func()) {}
