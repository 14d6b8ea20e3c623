package notify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	delivered *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	pending   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reckon_notify_delivered_total",
			Help: "Notifications a sink accepted.",
		}, []string{"sink"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reckon_notify_dropped_total",
			Help: "Notifications given up, by sink and reason (permanent: the sink refused them; expired: older than the maximum age).",
		}, []string{"sink", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reckon_notify_send_attempts_total",
			Help: "Batches sent to a sink, by outcome (ok, retry, permanent).",
		}, []string{"sink", "outcome"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reckon_notify_outbox_pending",
			Help: "Notifications in the outbox waiting for delivery, by sink (refreshed every minute).",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.dropped, m.attempts, m.pending)
	}
	return m
}
