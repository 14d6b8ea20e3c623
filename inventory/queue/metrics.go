package queue

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

type metrics struct {
	jobs      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	heartbeat prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reckon_queue_jobs_total",
			Help: "Jobs that finished an attempt, by kind and outcome (completed, failed, cancelled, snoozed).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reckon_queue_job_duration_seconds",
			Help:    "How long a job attempt ran, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"kind"}),
		heartbeat: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reckon_queue_heartbeat_timestamp_seconds",
			Help: "When the periodic heartbeat job last ran (Unix time): stale means schedules or workers are stuck.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.duration, m.heartbeat)
	}
	return m
}

func (m *metrics) observe(ev *river.Event) {
	if ev == nil || ev.Job == nil {
		return
	}
	var outcome string
	switch ev.Kind {
	case river.EventKindJobCompleted:
		outcome = "completed"
	case river.EventKindJobFailed:
		outcome = "failed"
	case river.EventKindJobCancelled:
		outcome = "cancelled"
	case river.EventKindJobSnoozed:
		outcome = "snoozed"
	default:
		return
	}
	m.jobs.WithLabelValues(ev.Job.Kind, outcome).Inc()
	if ev.JobStats != nil {
		m.duration.WithLabelValues(ev.Job.Kind).Observe(ev.JobStats.RunDuration.Seconds())
	}
}
