package reconcile

import (
	"fmt"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
)

func mac(prefix byte, i int) string {
	return fmt.Sprintf("%02x:1b:%02x:%02x:%02x:%02x", prefix, byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// benchData makes n CIs and n assets: 60% of the assets match by MAC, 20%
// by serial, 10% by hostname and 10% match nothing; the last 10% of the CIs
// match no asset. About 1% are conflicts (renamed hosts, duplicate names).
func benchData(n int) ([]Asset, []cmdb.CI) {
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sites := []string{"ams", "fra", "lon", "nyc"}
	cis := make([]cmdb.CI, n)
	for i := range cis {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		cis[i] = cmdb.CI{
			ID:          fmt.Sprintf("dcim.device:%d", i+1),
			Class:       "device",
			Name:        fmt.Sprintf("host-%d.example.com", i),
			Serial:      fmt.Sprintf("SN%08d", i),
			MACs:        []string{mac(0x00, 2*i), mac(0x00, 2*i+1)},
			IPs:         []netip.Addr{a},
			Static:      []bool{i%3 == 0},
			Site:        sites[i%len(sites)],
			Status:      "active",
			LastUpdated: base.Add(-time.Duration(i%60) * 24 * time.Hour),
		}
		if i%10 == 0 {
			cis[i].Serial = "To Be Filled By O.E.M."
		}
		if i%50 == 0 {
			cis[i].Status = "planned"
		}
	}
	assets := make([]Asset, n)
	for i := range assets {
		a := Asset{
			ID:       fmt.Sprintf("asset-%d", i),
			MACs:     []string{mac(0xda, i)}, // a randomised MAC
			IPs:      []netip.Addr{netip.AddrFrom4([4]byte{172, byte(i >> 16), byte(i >> 8), byte(i)})},
			Site:     sites[i%len(sites)],
			LastSeen: base.Add(-time.Duration(i%20) * 24 * time.Hour),
		}
		switch c := i; i % 10 {
		case 0, 1, 2, 3, 4, 5: // MAC
			a.MACs = append(a.MACs, mac(0x00, 2*c))
			a.Hostnames = []string{fmt.Sprintf("host-%d", c)}
			a.Serials = []string{"Default String"}
			if i%100 == 3 {
				// Renamed in the CMDB: a hostname conflict.
				a.Hostnames[0] = fmt.Sprintf("old-%d", c)
			}
		case 6, 7: // serial
			if cis[c].Serial[0] == 'T' {
				cis[c].Serial = fmt.Sprintf("SN%08d", c)
			}
			a.Serials = []string{fmt.Sprintf("sn%08d", c)}
		case 8: // hostname
			if i%1000 == 8 {
				// Two CIs with the name: a conflict naming both.
				cis[c+1].Name, cis[c+1].Site = cis[c].Name, cis[c].Site
			}
			a.Hostnames = []string{fmt.Sprintf("host-%d.example.com", c)}
		case 9: // nothing
			a.Serials = []string{fmt.Sprintf("XX%08d", i)}
			a.MACs = append(a.MACs, mac(0x08, i))
			a.Hostnames = []string{fmt.Sprintf("laptop-%d", i)}
		}
		if i >= n*9/10 && i%10 != 9 {
			// The last 10% of CIs match nothing: these assets are unmatched too.
			a.Serials = []string{fmt.Sprintf("YY%08d", i)}
			a.MACs = []string{mac(0x0c, i)}
			a.Hostnames = []string{fmt.Sprintf("pc-%d", i)}
		}
		assets[i] = a
	}
	return assets, cis
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func benchReconcile(b *testing.B, n int) {
	assets, cis := benchData(n)
	o := Options{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), StaleAfter: 14 * 24 * time.Hour}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	inputs := heapBytes()
	before := ms.TotalAlloc

	// Sample the live heap while Reconcile runs (runtime/metrics does not
	// stop the world).
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	b.ResetTimer()
	var rep Report
	for range b.N {
		rep = Reconcile(assets, cis, o)
	}
	b.StopTimer()
	if h := heapBytes(); h > peak.Load() {
		peak.Store(h)
	}
	close(done)
	<-stopped
	runtime.ReadMemStats(&ms)
	const mb = 1 << 20
	b.ReportMetric(float64(ms.TotalAlloc-before)/mb/float64(b.N), "alloc-MB/op")
	b.ReportMetric(float64(inputs)/mb, "inputs-MB")
	b.ReportMetric(float64(peak.Load())/mb, "peak-heap-MB")
	b.ReportMetric(float64(peak.Load()-inputs)/mb, "peak-over-inputs-MB")
	b.Logf("n=%d counts %v", n, rep.Counts)
	runtime.KeepAlive(rep)
}

func BenchmarkReconcile100k(b *testing.B) { benchReconcile(b, 100_000) }

func BenchmarkReconcile1M(b *testing.B) { benchReconcile(b, 1_000_000) }
