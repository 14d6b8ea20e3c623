//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn in the named network namespace (one made by `ip netns add`,
// such as Lab.SensorNetns) and returns its error. fn runs on an OS thread of
// its own that joins the namespace; sockets fn opens there stay in it and
// may be used from any goroutine afterwards, and programs it starts are
// born there. Goroutines fn starts run elsewhere, in the process's own
// namespace. The thread is thrown away when fn returns.
func Do(netns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: a goroutine that ends locked takes its thread
		// with it, so no other goroutine ever runs in the lab namespace.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The process's main thread, which Go never ends but parks
			// for good: it would stay in netns, and the whole process look
			// as if it lived there (ip netns pids reads the main
			// thread's), to be killed with the lab. Another thread does
			// it: no other goroutine may run here while this one is locked.
			defer runtime.UnlockOSThread()
			errc <- Do(netns, fn)
			return
		}
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("lab.Do in %s: panic: %v", netns, r)
			}
		}()
		f, err := os.Open(filepath.Join("/run/netns", netns))
		if err != nil {
			errc <- fmt.Errorf("lab.Do: %w", err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("lab.Do: setns %s: %w", netns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialContext connects from inside the host's namespace, as a program on
// the host would; the connection may be used from any goroutine. It fits
// http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := Do(h.Netns, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}
