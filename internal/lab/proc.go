//go:build linux

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a background program running in a host. It is stopped when the
// test ends; its output goes to a log file, shown when the test failed.
type Proc struct {
	Name string
	// LogFile holds the program's stdout and stderr.
	LogFile string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	stop    sync.Once
}

// Start runs argv in the background inside the host's namespace, and stops
// it when the test ends. It fails the test if the program cannot start.
func (h *Host) Start(argv ...string) *Proc {
	h.lab.t.Helper()
	p, err := h.start(argv...)
	if err != nil {
		h.lab.t.Fatalf("lab: %v", err)
	}
	return p
}

func (h *Host) start(argv ...string) (*Proc, error) {
	l := h.lab
	l.mu.Lock()
	l.nproc++
	n := l.nproc
	l.mu.Unlock()
	name := fmt.Sprintf("%s/%s", h.Name, filepath.Base(argv[0]))
	logf, err := os.Create(filepath.Join(l.dir, fmt.Sprintf("%s-%s-%d.log", h.Name, filepath.Base(argv[0]), n)))
	if err != nil {
		return nil, err
	}
	// `ip netns exec` execs argv, so the pid is the program's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Netns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so Stop reaches the program's children; and
	// killed should the test binary die before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if l.persist {
		// A session of its own, away from the terminal's signals, and no
		// parent-death signal: it outlives the program that started it.
		// Down finds it by its pid file.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Proc{Name: name, LogFile: logf.Name(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if l.persist {
		if err := writePidFile(l.dir, n, h, argv[0], cmd.Process.Pid); err != nil {
			p.Stop()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return p, nil
	}
	l.t.Cleanup(func() {
		p.Stop()
		if l.t.Failed() {
			l.t.Logf("lab: %s (%s) log:\n%s", p.Name, strings.Join(argv, " "), tail(p.Log(), 4000))
		}
	})
	return p, nil
}

// The parent-death signal fires when the thread that forked the child
// ends, not the process, and Go ends threads: Do throws its threads away,
// and any thread that once ran the test may become one of them. So every
// background program is forked from one thread that never ends.
var spawner struct {
	once sync.Once
	reqs chan func()
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // for good: no other goroutine runs here
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- cmd.Start() } // stdout and stderr are files: Start forks here and starts nothing else
	return <-errc
}

// Stop ends the program (SIGTERM, then SIGKILL after 3s) and waits for it.
// It is safe to call twice.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return // its pid may be another's by now
		default:
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// Done is closed when the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the program exited, once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Log returns the program's output so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
