package ship

import (
	"testing"
	"time"
)

// Add is on the capture's path: what one observation costs to spool.
func BenchmarkAdd(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), Server: "http://127.0.0.1:1", Token: "x", BatchSize: 1000, FlushInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	o := obs(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Add(o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
