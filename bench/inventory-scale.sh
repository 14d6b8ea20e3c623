#!/usr/bin/env bash
# bench/inventory-scale.sh - the inventory at scale, on PostgreSQL:
#   1. fills a fresh database with DEVICES distinct devices (default 1,000,000)
#      through the inventory's ingest path, 30% then marked unmanaged;
#   2. starts `reckon serve` on it and reports the time to load them into
#      memory and the server's resident memory (VmRSS, and its peak VmHWM);
#   3. measures GET /api/v1/assets?status=unmanaged&limit=100 from a second
#      process with wrk (2 threads, 8 connections, 20 s): its p50/p90/p99.
# Needs root (or a PostgreSQL install) and wrk (apt-get install wrk).
#   bench/inventory-scale.sh [DEVICES]
set -euo pipefail
devices=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/pg-throwaway.sh
source "$root/scripts/pg-throwaway.sh"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d); reckon_cleanup_add "rm -rf $work"
cd "$root"
go build -o "$work/reckon" ./cmd/reckon
go build -o "$work/inventoryload" ./bench/inventoryload

# A PostgreSQL sized like a server for a million assets, not the 128 MB default.
if [[ -z ${RECKON_TEST_DATABASE_URL:-} ]]; then PG_THROWAWAY_OPTS=${PG_THROWAWAY_OPTS:-"-c shared_buffers=2GB"} pg_throwaway_start; fi
db=reckon_bench_scale
psql -q -o /dev/null "$RECKON_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
export RECKON_DATABASE_URL=${RECKON_TEST_DATABASE_URL/\/postgres\?//$db?}

echo "== loading $devices devices"
"$work/inventoryload" -db "$RECKON_DATABASE_URL" -devices "$devices" 2>"$work/load.log"

port=$((20000 + RANDOM % 40000))
t0=$(date +%s%N)
RECKON_DATA_DIR=$work/data RECKON_LISTEN=127.0.0.1:$port RECKON_LOG_FORMAT=json RECKON_MEMORY_LIMIT=${RECKON_MEMORY_LIMIT:-1400MiB} "$work/reckon" serve >"$work/serve.log" 2>&1 &
pid=$!
reckon_cleanup_add "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
	kill -0 $pid 2>/dev/null || { tail -n 5 "$work/serve.log"; exit 1; }
	sleep 0.2
done
echo "== serve ready in $((($(date +%s%N) - t0) / 1000000)) ms with $devices assets loaded"
grep -o '"msg":"inventory loaded"[^}]*' "$work/serve.log" || true
token=$(tr -d ' \n' <"$work/data/admin.token")
url="http://127.0.0.1:$port/api/v1/assets?status=unmanaged&limit=100"
curl -fsS -H "Authorization: Bearer $token" "$url" -o "$work/page.json"; head -c 300 "$work/page.json"; echo
echo "== memory after load"
grep -E 'VmRSS|VmHWM' "/proc/$pid/status"
echo "== wrk: GET /api/v1/assets?status=unmanaged&limit=100"
wrk -t2 -c8 -d${WRK_SECONDS:-20}s --latency -H "Authorization: Bearer $token" "$url" | sed -n '/Latency Distribution/,/Requests\/sec/p'
echo "== memory after the load test"
grep -E 'VmRSS|VmHWM' "/proc/$pid/status"
echo "== wrk, 1 thread, 2 connections (closed loop, less queueing)"
wrk -t1 -c2 -d${WRK_SECONDS:-20}s --latency -H "Authorization: Bearer $token" "$url" | sed -n '/Latency Distribution/,/Requests\/sec/p'
hey=$(command -v hey || echo "$HOME/go/bin/hey")
if [[ ! -x $hey ]]; then go install github.com/rakyll/hey@v0.1.4 && hey=$(go env GOPATH)/bin/hey; fi
echo "== hey, 200 requests/s (4 workers x 50/s) for 20 s: latency at a steady load below saturation"
"$hey" -z 20s -c 4 -q 50 -H "Authorization: Bearer $token" "$url" | sed -n '/Latency distribution/,/99%/p;/Requests\/sec/p'
echo "== memory at the end"
grep -E 'VmRSS|VmHWM' "/proc/$pid/status"
