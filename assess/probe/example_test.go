package probe_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/reckon-dev/reckon/assess/probe"
)

// A plain HTTP service that sends everyone to HTTPS.
func ExampleHTTP() {
	srv := httptest.NewServer(http.RedirectHandler("https://www.example.test/", http.StatusMovedPermanently))
	defer srv.Close()
	addr := srv.Listener.Addr().(*net.TCPAddr).AddrPort()

	h, err := probe.HTTP(context.Background(), addr, false, probe.Options{Timeout: 2 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Status, h.RedirectsToHTTPS, h.Location)
	// Output: 301 true https://www.example.test/
}
