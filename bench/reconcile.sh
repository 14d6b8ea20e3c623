#!/usr/bin/env bash
# bench/reconcile.sh - time and memory of reconcile.Reconcile: 100k assets
# against 100k CIs (target: at most 2 s and 500 MB) and 1M against 1M.
#
#   bench/reconcile.sh            env: BENCH='Reconcile(100k|1M)' COUNT=1
# Metrics: ns/op, alloc-MB/op (bytes allocated by one Reconcile),
# inputs-MB (live heap holding the generated assets and CIs), peak-heap-MB
# (live heap sampled every 2 ms during the run, inputs included) and
# peak-over-inputs-MB (what Reconcile itself adds at its peak).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go test -run '^$' -bench "${BENCH:-Reconcile(100k|1M)}" -benchtime 1x -count "${COUNT:-1}" -benchmem ./cmdb/reconcile/
