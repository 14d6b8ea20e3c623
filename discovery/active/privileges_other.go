//go:build !linux

package active

import "errors"

// Off Linux only root and setuid root count: file capabilities are a Linux
// feature.
func fileCapsPrivileged(path string) (bool, string) {
	return false, path + " is not setuid root (file capabilities are read on Linux only)"
}

func procStatus() (procCaps, error) { return procCaps{}, errors.New("no /proc/self/status") }
