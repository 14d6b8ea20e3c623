//go:build !unix

package ship

import "os"

// lockDir does not lock where flock is missing: run one sensor per spool.
func lockDir(string) (*os.File, error) { return nil, nil }

func unlockDir(*os.File) {}
