#!/usr/bin/env bash
# bench/startup.sh - time from `reckon serve` starting to /readyz answering 200,
# on the embedded SQLite store and on PostgreSQL, first start (migrations
# applied) and later starts. Needs root or a PostgreSQL install for the
# PostgreSQL half (it starts a throwaway server with scripts/pg-throwaway.sh).
#   bench/startup.sh [RUNS]
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/pg-throwaway.sh
source "$root/scripts/pg-throwaway.sh"
work=$(mktemp -d); reckon_cleanup_add "rm -rf $work"
go build -o "$work/reckon" "$root/cmd/reckon"

port() { local p; while :; do p=$((20000 + RANDOM % 40000)); (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }

# once DATA_DIR: prints milliseconds from exec to the first 200 from /readyz.
once() {
	local dir=$1 p; p=$(port)
	local t0; t0=$(date +%s%N)
	RECKON_DATA_DIR=$dir RECKON_LISTEN=127.0.0.1:$p "$work/reckon" serve >"$dir.log" 2>&1 &
	local pid=$!
	until curl -fsS "http://127.0.0.1:$p/readyz" >/dev/null 2>&1; do
		kill -0 $pid 2>/dev/null || { echo "serve exited: $(tail -n 2 "$dir.log")" >&2; return 1; }
		sleep 0.005
	done
	echo $((($(date +%s%N) - t0) / 1000000))
	kill $pid; wait $pid 2>/dev/null || true
}

report() { # label values...
	local label=$1; shift
	printf '%-34s %s ms (runs: %s)\n' "$label" "$(printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" "$*"
}

first=(); again=()
for i in $(seq "$runs"); do
	first+=("$(once "$work/sqlite-$i")"); again+=("$(once "$work/sqlite-$i")")
done
report "SQLite, first start (median)" "${first[@]}"
report "SQLite, later start (median)" "${again[@]}"

if [[ -z ${RECKON_TEST_DATABASE_URL:-} ]]; then pg_throwaway_start; fi
first=(); again=()
for i in $(seq "$runs"); do
	db="reckon_bench_startup_$i"
	psql -q -o /dev/null "$RECKON_TEST_DATABASE_URL" 2>/dev/null -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	export RECKON_DATABASE_URL=${RECKON_TEST_DATABASE_URL/\/postgres\?//$db?}
	first+=("$(once "$work/pg-$i")"); again+=("$(once "$work/pg-$i")")
	unset RECKON_DATABASE_URL
done
report "PostgreSQL, first start (median)" "${first[@]}"
report "PostgreSQL, later start (median)" "${again[@]}"
