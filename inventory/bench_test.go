package inventory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// fleet makes observations of n distinct devices as a network shows them:
// each device is seen by ARP, by DHCP with its hostname and client id, and
// by an nmap sweep with a service, in shuffled order.
func fleet(n int, seed uint64) []discovery.Observation {
	r := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	obs := make([]discovery.Observation, 0, 3*n)
	for i := range n {
		mac := fmt.Sprintf("00:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		ip := fmt.Sprintf("10.%d.%d.%d", 64+i>>16&0x3f, i>>8&0xff, i&0xff)
		t := base.Add(time.Duration(r.IntN(86400)) * time.Second)
		name := fmt.Sprintf("host-%06d", i)
		obs = append(obs,
			discovery.Observation{Source: "passive:arp", Time: t, MAC: mac, IP: ip},
			discovery.Observation{Source: "passive:dhcp", Time: t.Add(time.Second), MAC: mac, IP: ip,
				Hostnames:   []discovery.Hostname{{Name: name, How: "dhcp-option-12"}},
				Identifiers: discovery.Identifiers{DHCPClientID: "01:" + mac, DHCPFingerprint: "1,3,6,15,31,33,43,44,46,47,119,121,249,252"}},
			discovery.Observation{Source: "active:nmap", Time: t.Add(time.Minute), IP: ip,
				Services: []discovery.Service{{Port: 22, Proto: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1"}}},
		)
	}
	r.Shuffle(len(obs), func(i, j int) { obs[i], obs[j] = obs[j], obs[i] })
	for i := range obs {
		obs[i].Normalize()
	}
	return obs
}

// resightings makes n later observations of the fleet's devices, as a
// network repeats itself: ARP refreshes and DHCP renewals.
func resightings(devices, n int, seed uint64) []discovery.Observation {
	r := rand.New(rand.NewPCG(seed, 2))
	base := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	obs := make([]discovery.Observation, n)
	for j := range obs {
		i := r.IntN(devices)
		mac := fmt.Sprintf("00:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		ip := fmt.Sprintf("10.%d.%d.%d", 64+i>>16&0x3f, i>>8&0xff, i&0xff)
		src := "passive:arp"
		if j%4 == 0 {
			src = "passive:dhcp"
		}
		obs[j] = discovery.Observation{Source: src, Time: base.Add(time.Duration(j) * time.Millisecond), MAC: mac, IP: ip}
		obs[j].Normalize()
	}
	return obs
}

// BenchmarkIngest100k streams observations of 100,000 distinct devices into
// a fresh store in batches of 5,000, as sensors send them: first each device
// found (ARP, DHCP with hostname and client id, an nmap service, shuffled),
// then re-sightings (RECKON_BENCH_RESIGHTINGS, default 1,200,000). It reports
// the sustained rate end to end, obs/s: the batch log, identity, and the
// coalesced asset writes, including the final drain of every pending write.
func BenchmarkIngest100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("RECKON_BENCH_DEVICES")); err == nil {
		n = v
	}
	more := 1_200_000
	if v, err := strconv.Atoi(os.Getenv("RECKON_BENCH_RESIGHTINGS")); err == nil {
		more = v
	}
	obs := append(fleet(n, 7), resightings(n, more, 9)...)
	for _, k := range storetest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			const batch = 5000
			for range b.N {
				b.StopTimer()
				s := storetest.Open(b, k)
				inv, err := inventory.Open(context.Background(), inventory.ServiceOptions{Store: s, FlushInterval: 250 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				inv.Start(context.Background())
				b.StartTimer()
				start := time.Now()
				for i := 0; i < len(obs); i += batch {
					res, err := inv.Ingest(context.Background(), fmt.Sprintf("b%d", i), "bench", obs[i:min(i+batch, len(obs))], false)
					if err != nil || res.Accepted == 0 {
						b.Fatalf("ingest: %v %+v", err, res)
					}
				}
				accepted := time.Since(start)
				if err := inv.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start)
				b.ReportMetric(float64(len(obs))/el.Seconds(), "obs/s")
				b.ReportMetric(float64(len(obs))/accepted.Seconds(), "accepted-obs/s")
				rows, flushes := inv.WriteStats()
				b.ReportMetric(float64(rows), "rows")
				b.ReportMetric(float64(flushes), "flushes")
				if inv.Len() != n {
					b.Fatalf("%d assets, want %d", inv.Len(), n)
				}
			}
		})
	}
}

// BenchmarkEngineMemory1M tracks 1,000,000 devices in the identity engine
// and reports the heap they hold (the server keeps this in memory).
func BenchmarkEngineMemory1M(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		e := inventory.NewEngine(inventory.Options{})
		const n = 1_000_000
		base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		for i := range n {
			mac := fmt.Sprintf("00:16:3e:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
			o := discovery.Observation{Source: "passive:dhcp", Time: base.Add(time.Duration(i) * time.Millisecond), MAC: mac, IP: ip,
				Hostnames:   []discovery.Hostname{{Name: fmt.Sprintf("host-%07d", i)}},
				Identifiers: discovery.Identifiers{DHCPClientID: "01:" + mac}}
			e.Apply(&o)
			o2 := discovery.Observation{Source: "active:nmap", Time: o.Time.Add(time.Minute), IP: ip,
				Services: []discovery.Service{{Port: 22, Proto: "tcp", Name: "ssh", Product: "OpenSSH", Version: "9.2p1"}}}
			e.Apply(&o2)
			if i%100_000 == 0 {
				e.TakeEvents()
				e.TakeDirty()
			}
		}
		e.TakeEvents()
		e.TakeDirty()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if e.Len() != n {
			b.Fatalf("%d assets", e.Len())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/device")
		if p := os.Getenv("RECKON_HEAP_PROFILE"); p != "" {
			f, _ := os.Create(p)
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
		runtime.KeepAlive(e)
	}
}
