package netbox

import (
	"context"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/netbox/netboxtest"
)

// BenchmarkCIs100k is the end-to-end target: 100k devices, each
// with an interface, a MAC and an address (so ~100k records on each of
// four endpoints, 400 pages), page size 1000, 4 requests in flight, 20 ms
// added to every request; at most 15 s per read.
func BenchmarkCIs100k(b *testing.B) {
	const n = 100_000
	s, c := setup(b, netboxtest.Generate(n), netboxtest.Options{NoValidate: true},
		Options{PageSize: 1000, Concurrency: 4})
	s.SetLatency(20 * time.Millisecond)
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		got := 0
		err := c.CIs(context.Background(), time.Time{}, func(cmdb.CI) error { got++; return nil })
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("%d CIs, want %d", got, n)
		}
		total += time.Since(start)
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/read")
	b.ReportMetric(float64(n)/per.Seconds(), "CIs/s")
	b.ReportMetric(float64(s.MaxInFlight()), "max-in-flight")
}
