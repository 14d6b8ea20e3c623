package inventory

import "github.com/prometheus/client_golang/prometheus"

type invMetrics struct {
	assets         prometheus.Gauge
	observations   prometheus.Counter
	batches        *prometheus.CounterVec
	events         prometheus.Counter
	flushDuration  prometheus.Histogram
	ingestDuration prometheus.Histogram
}

func newInvMetrics(reg prometheus.Registerer) *invMetrics {
	m := &invMetrics{
		assets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "reckon_inventory_assets", Help: "Assets tracked."}),
		observations: prometheus.NewCounter(prometheus.CounterOpts{Name: "reckon_inventory_observations_total",
			Help: "Observations accepted."}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reckon_inventory_batches_total",
			Help: "Observation batches received, by outcome (accepted, duplicate)."}, []string{"outcome"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "reckon_inventory_events_total",
			Help: "Asset change events stored."}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reckon_inventory_flush_duration_seconds",
			Help: "Time to write one coalesced set of asset changes.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "reckon_inventory_ingest_duration_seconds",
			Help: "Time from receiving a batch to its assets being stored.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.assets, m.observations, m.batches, m.events, m.flushDuration, m.ingestDuration)
	}
	return m
}
