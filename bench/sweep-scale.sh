#!/usr/bin/env bash
# bench/sweep-scale.sh - a /16 with few hosts: one nmap run against reckon's
# chunks on 2 workers. Builds its own network in namespaces it names
# rkscale-*: a bridge, a scanner, and three hosts spread over 10.78.0.0/16
# with a web server each; everything is deleted at exit and nothing leaves
# the namespaces.
#
#   bench/sweep-scale.sh     env: CHUNK=8192 WORKERS=2 PORTS=22,80 PREFIX=10.78 RATE=2000 (per nmap)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CHUNK=${CHUNK:-8192}
WORKERS=${WORKERS:-2}
PORTS=${PORTS:-22,80}
PREFIX=${PREFIX:-10.78}
RATE=${RATE:-2000}
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, raw sockets)" >&2; exit 1; }
for t in ip nmap python3; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
id=rkscale-$$
work=$(mktemp -d)
cleanup() {
	for p in "$work"/*.pid; do [[ -f $p ]] && kill "$(cat "$p")" 2>/dev/null; done
	for ns in $(ip netns list | awk '{print $1}' | grep "^$id-"); do ip netns delete "$ns"; done
	rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM
ip netns add "$id-sw"
ip -n "$id-sw" link add br0 type bridge
ip -n "$id-sw" link set br0 up
hosts=(scan:$PREFIX.0.5 h1:$PREFIX.3.17 h2:$PREFIX.120.40 h3:$PREFIX.250.9)
for h in "${hosts[@]}"; do
	name=${h%%:*} ip=${h#*:}
	ip netns add "$id-$name"
	ip -n "$id-$name" link set lo up
	ip -n "$id-sw" link add "p-$name" type veth peer name eth0 netns "$id-$name"
	ip -n "$id-sw" link set "p-$name" master br0 up
	ip -n "$id-$name" addr add "$ip/16" dev eth0
	ip -n "$id-$name" link set eth0 up
	if [[ $name != scan ]]; then
		mkdir -p "$work/$name"
		ip netns exec "$id-$name" python3 -m http.server 80 --bind "$ip" --directory "$work/$name" >/dev/null 2>&1 &
		echo $! >"$work/$name.pid"
	fi
done
sleep 1
go build -o "$work/reckon" "$root/cmd/reckon"
ms() { local s; s=$(date +%s%N); "$@" >"$work/last.out" 2>"$work/last.err"; echo $((($(date +%s%N) - s) / 1000000)); }
# --min-rate for both: with no answer from most addresses nmap's congestion
# control slows its ARP pings to some 50 a second, three quarters of an
# hour for a /16.
one=$(ms ip netns exec "$id-scan" nmap -n -T4 --min-rate "$RATE" -sS -p "$PORTS" "$PREFIX.0.0/16" -oX "$work/one.xml")
up1=$(python3 -c 'import sys, xml.etree.ElementTree as E; print(len({h.find("address").get("addr") for h in E.parse(sys.argv[1]).getroot().iter("host") if h.find("status").get("state") == "up"}))' "$work/one.xml")
chunked=$(ms ip netns exec "$id-scan" "$work/reckon" sweep --targets "$PREFIX.0.0/16" --ports "$PORTS" --no-dns --timing 4 \
	--min-rate "$RATE" --service-detection=false --chunk-size "$CHUNK" --workers "$WORKERS" --format jsonl)
up2=$(grep -c '"ips"' "$work/last.out" || true)
echo "a /16 ($PREFIX.0.0/16, 4 hosts up incl. the scanner), ports $PORTS, -sS -T4 -n --min-rate $RATE (each nmap), from the scanner host"
echo "one nmap run:                       ${one} ms, $up1 distinct addresses up"
echo "reckon, chunks of $CHUNK on $WORKERS workers: ${chunked} ms, $up2 hosts up"
python3 -c "print(f'ratio (one nmap / reckon chunked): {$one/$chunked:.2f}x')"
