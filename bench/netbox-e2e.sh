#!/usr/bin/env bash
# bench/netbox-e2e.sh - the NetBox client end to end against the emulator
# (cmdb/netbox/netboxtest, OpenAPI validation off) with 20 ms added to every
# request: 100k devices with an interface, a MAC and an address each (about
# 100k records on each of four endpoints), page size 1000, 4 requests in
# flight. The issue's target is at most 15 s per read. The emulator runs in
# the same process and shares the CPUs with the client.
#   bench/netbox-e2e.sh [RUNS]
set -euo pipefail
runs=${1:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(go test -run '^$' -bench CIs100k -benchtime "${runs}x" -benchmem ./cmdb/netbox/)
echo "$out" | grep -E '^(Benchmark|cpu:)' || { echo "$out" >&2; exit 1; }
secs=$(echo "$out" | awk '/^BenchmarkCIs100k/ { for (i = 1; i <= NF; i++) if ($(i+1) == "s/read") print $i }')
echo "netbox e2e: 100k CIs in ${secs} s per read (target <= 15 s)"
awk -v s="$secs" 'BEGIN { exit !(s <= 15) }' || { echo "over the 15 s target" >&2; exit 1; }
