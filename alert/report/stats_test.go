package report

import (
	"fmt"
	"testing"
	"time"
)

// Nearest rank, no interpolation: the p-th percentile of n sorted values is
// the one at rank ceil(p*n/100).
func TestPercentiles(t *testing.T) {
	for _, c := range []struct {
		n, median, p90 int // ranks, 1-based
	}{
		{1, 1, 1}, {2, 1, 2}, {3, 2, 3}, {4, 2, 4}, {5, 3, 5}, {6, 3, 6}, {10, 5, 9}, {11, 6, 10}, {20, 10, 18}, {21, 11, 19},
	} {
		ds := make([]time.Duration, c.n)
		for i := range ds {
			ds[i] = time.Duration(c.n-i) * time.Second // descending: durationRow sorts
		}
		row := durationRow("g", ds)
		if row["median_s"] != float64(c.median) || row["p90_s"] != float64(c.p90) || row["min_s"] != 1.0 || row["max_s"] != float64(c.n) {
			t.Errorf("n=%d: %v, want median %d, p90 %d", c.n, row, c.median, c.p90)
		}
		if want := float64(c.n+1) / 2; row["mean_s"] != want {
			t.Errorf("n=%d: mean %v, want %v", c.n, row["mean_s"], want)
		}
	}
	// Sub-second durations keep their milliseconds.
	row := durationRow("g", []time.Duration{1500 * time.Millisecond, 1250 * time.Microsecond})
	if got := fmt.Sprint(row["min_s"], " ", row["max_s"], " ", row["mean_s"]); got != "0.001 1.5 0.751" {
		t.Errorf("sub-second figures: %s", got)
	}
}
