//go:build !linux

package passive

import (
	"context"
	"fmt"
)

// Live captures from a network interface; it needs Linux's AF_PACKET and
// here only returns ErrLiveUnsupported.
func Live(ctx context.Context, opts LiveOptions, handle LiveHandler) error {
	return fmt.Errorf("capture on %s: %w", opts.Interface, ErrLiveUnsupported)
}
