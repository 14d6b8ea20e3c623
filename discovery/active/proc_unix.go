//go:build unix

package active

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts nmap in a process group of its own, so that a
// timeout stops it and anything it started, and nothing else.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the process group led by p.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if p == nil {
		return os.ErrProcessDone
	}
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// setuidRoot says whether path is a setuid-root executable.
func setuidRoot(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
