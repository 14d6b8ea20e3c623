package runner_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// stamp is a collector that notes when each asset's assessment started and
// returns at once (a no-op collector).
type stamp struct {
	mu     sync.Mutex
	began  map[string]time.Time
	notify chan string
}

func (s *stamp) Collect(_ context.Context, t runner.Target) (assess.Facts, []assess.Evidence, error) {
	now := time.Now()
	s.mu.Lock()
	if _, ok := s.began[t.AssetID]; !ok {
		s.began[t.AssetID] = now
	}
	s.mu.Unlock()
	if s.notify != nil {
		s.notify <- t.AssetID
	}
	return assess.Facts{Ports: []assess.Port{{Port: 22, Protocol: "tcp", Service: "ssh"}}}, nil, nil
}

type benchRig struct {
	st    *store.Store
	inv   *inventory.Inventory
	svc   *runner.Service
	q     *queue.Queue
	stamp *stamp
}

// newBenchRig wires the service as serve does, with serve's default
// intervals: the inventory flushes every 200 ms, the queue polls every
// 200 ms.
func newBenchRig(b *testing.B, k store.Kind, workers int, auto bool) *benchRig {
	b.Helper()
	st := storetest.Open(b, k)
	ctx := context.Background()
	inv, err := inventory.Open(ctx, inventory.ServiceOptions{Store: st, Identity: inventory.DefaultOptions(), FlushInterval: 200 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	inv.Start(ctx)
	b.Cleanup(func() { _ = inv.Stop(context.Background()) })
	sc := &stamp{began: map[string]time.Time{}, notify: make(chan string, 100000)}
	svc := runner.New(runner.Options{Store: st, Inventory: inv, Collector: sc, Policy: tinyPolicy{}, Scopes: scope(b), AutoQueue: auto})
	q, err := queue.New(queue.Options{Store: st, Workers: 2, Queues: map[string]int{runner.Queue: workers}, PollInterval: 200 * time.Millisecond,
		Register: svc.RegisterJobs})
	if err != nil {
		b.Fatal(err)
	}
	svc.SetClient(q.Client)
	if err := q.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		svc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return &benchRig{st: st, inv: inv, svc: svc, q: q, stamp: sc}
}

func addrOf(i int) string {
	return netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}).String()
}

// BenchmarkNewAssetToJobStart measures, for hosts appearing one every
// 50 ms, the time from the inventory taking the observation that creates
// the asset to its assessment starting in a worker. Target: p99 <= 1 s on
// both stores.
func BenchmarkNewAssetToJobStart(b *testing.B) {
	for _, k := range storetest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			r := newBenchRig(b, k, 4, true)
			ctx := context.Background()
			n := max(b.N, 50)
			seen := map[string]time.Time{}
			b.ResetTimer()
			for i := range n {
				ip := addrOf(i + 1)
				mac := fmt.Sprintf("02:00:00:00:%02x:%02x", (i+1)>>8, (i+1)&0xff)
				start := time.Now()
				if _, err := r.inv.Ingest(ctx, "lat-"+ip, "bench", []discovery.Observation{{Source: "passive:arp", Time: time.Now().UTC(), MAC: mac, IP: ip}}, false); err != nil {
					b.Fatal(err)
				}
				seen[ip] = start
				time.Sleep(50 * time.Millisecond)
			}
			deadline := time.After(60 * time.Second)
			for got := 0; got < n; got++ {
				select {
				case <-r.stamp.notify:
				case <-deadline:
					b.Fatalf("%d of %d assessments started", got, n)
				}
			}
			b.StopTimer()
			byIP := map[string]time.Time{}
			r.inv.EachAsset(func(a *inventory.Asset) {
				s := a.Summary()
				r.stamp.mu.Lock()
				if t, ok := r.stamp.began[s.ID]; ok && len(s.IPs) > 0 {
					byIP[s.IPs[0]] = t
				}
				r.stamp.mu.Unlock()
			})
			var lat []time.Duration
			for ip, st := range seen {
				if t, ok := byIP[ip]; ok {
					lat = append(lat, t.Sub(st))
				}
			}
			if len(lat) != n {
				b.Fatalf("%d latencies for %d hosts", len(lat), n)
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() * 1000 }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(lat[len(lat)-1].Seconds()*1000, "max-ms")
			b.ReportMetric(float64(n), "hosts")
		})
	}
}

// BenchmarkQueueThroughput measures assessment jobs worked per second with
// a no-op collector: every job still looks the asset up, stores its
// assessment row, evaluates the policy, reads the previous assessment and
// writes the result with its events. Target: >= 1,000 jobs/s on
// PostgreSQL.
func BenchmarkQueueThroughput(b *testing.B) {
	for _, k := range storetest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			workers := 32
			if k == store.SQLite {
				workers = 4 // one connection: more workers only queue on it
			}
			r := newBenchRig(b, k, workers, false)
			ctx := context.Background()
			n := max(b.N, 2000)
			obs := make([]discovery.Observation, 0, n)
			for i := range n {
				obs = append(obs, discovery.Observation{Source: "passive:arp", Time: time.Now().UTC(),
					MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff), IP: netip.AddrFrom4([4]byte{127, byte(2 + i>>16), byte(i >> 8), byte(i)}).String()})
			}
			if _, err := r.inv.Ingest(ctx, "tp", "bench", obs, true); err != nil {
				b.Fatal(err)
			}
			var ids []string
			r.inv.EachAsset(func(a *inventory.Asset) { ids = append(ids, a.ID.String()) })
			b.ResetTimer()
			start := time.Now()
			for chunk := range slices.Chunk(ids, 500) {
				if _, err := r.svc.Enqueue(ctx, chunk, runner.TriggerManual, runner.PriorityChanged); err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.After(5 * time.Minute)
			for got := 0; got < len(ids); got++ {
				select {
				case <-r.stamp.notify:
				case <-deadline:
					b.Fatalf("%d of %d jobs worked", got, len(ids))
				}
			}
			// Wait for the last results to be written, not just started.
			for {
				var done int
				if err := r.st.DB.GetContext(ctx, &done, `SELECT COUNT(*) FROM assessments WHERE state = 'succeeded'`); err != nil {
					b.Fatal(err)
				}
				if done == len(ids) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(len(ids))/el.Seconds(), "jobs/s")
			b.ReportMetric(float64(len(ids)), "jobs")
		})
	}
}
