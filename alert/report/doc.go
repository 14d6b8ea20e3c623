// Package report computes the alert process's reports from reckon's
// database: how long detection, the pipeline, people and fixes take, how
// often alerts are false positives or come back, by week or by what the
// alerts are about. [Run] computes one report for a period; a [Report]
// writes itself as JSON (its fields) or CSV ([Report.WriteCSV]).
//
// # The period
//
// A report covers [From, To): alert reports take the alerts created in
// it, new_host_assessment the assets first seen in it. A reopened alert
// keeps its created_at, so it stays in the period it was first raised in,
// and its clocks (acknowledge, resolve) still start there.
//
// # Duration reports
//
// Each row has count, median_s, p90_s, mean_s, min_s and max_s in seconds
// (rounded to the millisecond), and median, p90 and mean as a human string
// ("12h 10m"). Percentiles are nearest-rank: of the n durations sorted
// ascending, the p-th percentile is the one at (1-based) rank ceil(p*n/100),
// so the median is rank ceil(n/2) (the lower middle one when n is even)
// and p90 rank ceil(0.9*n); no interpolation, so every figure is a
// duration that happened.
//
//   - time_to_detect: drift and check_failed alerts: first_fired_at minus
//     the finished_at of the last good assessment, which is the alert's
//     previous_assessment_id, else the previous assessment (previous_id) of
//     its assessment_id. Both ids are read from the detail of the alert's
//     first firing occurrence (the one that raised it), or from the alert's
//     detail when it has no occurrence. Alerts with no last good assessment
//     (a new host's first assessment) or whose one has not finished are
//     left out.
//   - pipeline_latency: alerts whose detail (read as above) names an
//     assessment: created_at minus that assessment's finished_at.
//   - new_host_assessment: assets first seen in the period that have an
//     assessment: the first assessment's (earliest created_at) started_at,
//     or its created_at when it never started, minus the asset's
//     first_seen. Assets not assessed yet are left out.
//   - time_to_acknowledge: acknowledged alerts: acked_at minus created_at.
//   - time_to_resolve: closed alerts: closed_at minus created_at.
//   - time_to_verified_fix: alerts closed as fixed: cleared_at (when an
//     observation showed the condition gone) minus created_at.
//
// # Rate reports
//
// Rates are ratios from 0 to 1, rounded to 4 decimals.
//
//   - false_positive_rate: closed alerts: closed, false_positives (closed
//     as false_positive) and rate. Without group_by it is by check (the
//     check id, or the kind for alerts of no check).
//   - regression_rate: alerts closed at least once (closed now, or
//     reopened since): closed, regressions (reopened after a close:
//     regression set or reopened_count above 0) and rate.
//
// # Groups
//
// group_by splits the rows: all (one row, also the default except for
// false_positive_rate), week (ISO week of created_at, or of first_seen for
// new_host_assessment: "2026-W49"), device_type, software (the asset's OS,
// else the product of its lowest open port that names one), site,
// business_unit and owner (from the asset's CMDB link), network (the /24
// of the asset's first IPv4, "10.1.2.0/24"), and for alert reports kind,
// severity, team and check. Alerts follow their asset through merges; a
// value that is missing is "(none)". Rows are sorted by group (networks by
// address).
package report
