#!/usr/bin/env bash
# bench/passive-offline.sh - offline throughput of the passive sensor beside
# prads, p0f and arpwatch (Debian packages), all pinned to one core, on a
# multi-million-packet capture built from the project's pcap corpus.
#
# The capture: every Ethernet capture of the corpus that capinfos reads and
# that holds a packet, in C-locale name order, except the two that would
# dominate the mix with unrepresentative traffic (ndpi__synscan.pcap, 2011
# SYN-scan packets, and ndpi__ip_fragmented_garbage.pcap); concatenated
# (mergecap -a), doubled DOUBLINGS times (10: x1024, about 2.2 M packets,
# 840 MB), timestamps rewritten to rise 10 us a packet (editcap -S), since
# the sources come from different years. Built once under $BENCH_DIR and
# kept there; never committed.
#
#   bench/passive-offline.sh            env: SRC=<pcap dir> BENCH_DIR=/tmp/reckon-bench DOUBLINGS=10 RUNS=3
# Needs: root (for the namespace), wireshark-common (capinfos, mergecap,
# editcap), prads, p0f, arpwatch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-$root/../shared/testdata/pcap}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/reckon-bench}
DOUBLINGS=${DOUBLINGS:-10}
RUNS=${RUNS:-3}
pcap=$BENCH_DIR/bench.pcap
for t in capinfos mergecap editcap prads p0f arpwatch taskset; do
	command -v "$t" >/dev/null || { echo "need $t (apt-get install wireshark-common prads p0f arpwatch)" >&2; exit 1; }
done
mkdir -p "$BENCH_DIR"
if [[ ! -s $pcap ]]; then
	[[ -d $SRC ]] || { echo "no capture corpus at $SRC (set SRC)" >&2; exit 1; }
	work=$(mktemp -d "$BENCH_DIR/build.XXXXXX"); trap 'rm -rf "$work"' EXIT
	mapfile -t files < <(cd "$SRC" && LC_ALL=C ls -1 | grep -E '\.(pcap|pcapng|cap)$' |
		grep -Ev '^(ndpi__synscan\.pcap|ndpi__ip_fragmented_garbage\.pcap)$' | while read -r f; do
			line=$(capinfos -T -r -E -c "$f" 2>/dev/null) || continue
			[[ $(cut -f2 <<<"$line") == ether && $(cut -f3 <<<"$line") -gt 0 ]] && echo "$SRC/$f"
		done)
	mergecap -F pcap -a -w "$work/x0.pcap" "${files[@]}"
	for i in $(seq 1 "$DOUBLINGS"); do
		mergecap -F pcap -a -w "$work/x$i.pcap" "$work/x$((i - 1)).pcap" "$work/x$((i - 1)).pcap"
		rm -f "$work/x$((i - 1)).pcap"
	done
	editcap -F pcap -S -0.00001 "$work/x$DOUBLINGS.pcap" "$pcap"
	echo "built $pcap from ${#files[@]} captures" >&2
fi
pkts=$(capinfos -T -r -c "$pcap" | cut -f2)
bytes=$(stat -c %s "$pcap")
go build -o "$BENCH_DIR/reckon" "$root/cmd/reckon"
cat "$pcap" >/dev/null # page cache warm for everyone alike

# best RUNS... prints the fastest of RUNS runs in milliseconds.
best() {
	local b=0 s ms
	for _ in $(seq "$RUNS"); do
		s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; ms=$((($(date +%s%N) - s) / 1000000))
		((b == 0 || ms < b)) && b=$ms
	done
	echo "$b"
}
iso=$(mktemp -d)
# Every tool runs in an empty network namespace: arpwatch looks names up and
# mails reports, and nothing a benchmark runs may reach another machine.
ns=reckon-bench-$$
ip netns add "$ns" && ip netns exec "$ns" ip link set lo up
trap 'rm -rf "$iso"; ip netns delete "$ns" 2>/dev/null' EXIT
isolated() { ip netns exec "$ns" "$@"; }
echo "capture: $pcap, $pkts packets, $((bytes / 1000000)) MB; one core (taskset -c 0), best of $RUNS"
printf '%-10s %10s %14s\n' tool ms packets/s
declare -A ms
ms[reckon]=$(best isolated taskset -c 0 "$BENCH_DIR/reckon" sensor --read "$pcap" --format jsonl)
ms[prads]=$(best isolated taskset -c 0 prads -r "$pcap" -l /dev/null)
ms[p0f]=$(best isolated taskset -c 0 p0f -r "$pcap")
: >"$iso/arp.dat"
ms[arpwatch]=$(best isolated taskset -c 0 arpwatch -d -N -Q -f "$iso/arp.dat" -r "$pcap")
for t in reckon prads p0f arpwatch; do
	printf '%-10s %10d %14d\n' "$t" "${ms[$t]}" $((pkts * 1000 / (ms[$t] > 0 ? ms[$t] : 1)))
done
echo "reckon is $(python3 -c "print(round(${ms[prads]}/max(${ms[reckon]},1),1))")x prads, $(python3 -c "print(round(${ms[p0f]}/max(${ms[reckon]},1),1))")x p0f"
