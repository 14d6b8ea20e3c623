#!/usr/bin/env bash
# bench/live-drops.sh - how many frames the live sensor loses at a given rate.
#
# Two network namespaces of the script's own joined by a veth pair: tcpreplay
# sends the benchmark capture out of one end at PPS packets a second, and
# bench/livedrops (passive.Live feeding one decoder per worker) captures the
# other end. Prints the packets tcpreplay sent, those the sensor's sockets
# saw, received and dropped (the kernel's ring statistics), and the drop
# share. Nothing leaves the two namespaces, which are deleted at exit.
#
#   bench/live-drops.sh     env: PCAP=/tmp/reckon-bench/bench.pcap PPS=200000 (0: top speed)
#                                LOOP=1 WORKERS=2 BLOCKS=32 (1 MiB blocks per worker)
#                                TX_CPU= SENSOR_CPUS= (taskset lists, e.g. 0 and 1)
# The capture is built by shared/bench/make-bench-pcap.sh (SRC=<pcap dir>) when
# missing. Needs: root, iproute2, tcpreplay; wireshark-common to build the capture.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PCAP=${PCAP:-/tmp/reckon-bench/bench.pcap}
PPS=${PPS:-200000}
LOOP=${LOOP:-1}
WORKERS=${WORKERS:-2}
BLOCKS=${BLOCKS:-32}
TX_CPU=${TX_CPU:-}
SENSOR_CPUS=${SENSOR_CPUS:-}
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, AF_PACKET)" >&2; exit 1; }
for t in ip tcpreplay go; do command -v "$t" >/dev/null || { echo "need $t (apt-get install iproute2 tcpreplay)" >&2; exit 1; }; done
if [[ ! -s $PCAP ]]; then
	maker=$root/../shared/bench/make-bench-pcap.sh
	[[ -x $maker ]] || { echo "no capture at $PCAP and no $maker to build it" >&2; exit 1; }
	"$maker" "$PCAP"
fi

work=$(mktemp -d)
tx=rkbench-$$-tx
rx=rkbench-$$-rx
sensor_pid=
cleanup() {
	[[ -n $sensor_pid ]] && kill "$sensor_pid" 2>/dev/null && wait "$sensor_pid" 2>/dev/null
	ip netns del "$tx" 2>/dev/null || true
	ip netns del "$rx" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/livedrops" "$root/bench/livedrops"

ip netns add "$tx"
ip netns add "$rx"
for ns in "$tx" "$rx"; do
	# Quiet ends: no IPv6 chatter, no addresses, so the receiver's stack
	# answers nothing and the sender's sends only the capture.
	ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6'
done
ip -n "$tx" link add eth0 type veth peer name eth0 netns "$rx"
# The corpus holds frames captured above 1500 bytes (offloads).
ip -n "$tx" link set eth0 mtu 65535 up
ip -n "$rx" link set eth0 mtu 65535 up

pin() { if [[ -n $1 ]]; then echo taskset -c "$1"; fi; }
# shellcheck disable=SC2046
ip netns exec "$rx" $(pin "$SENSOR_CPUS") "$work/livedrops" -i eth0 -workers "$WORKERS" -blocks "$BLOCKS" \
	>"$work/sensor.out" 2>"$work/sensor.log" &
sensor_pid=$!
for _ in $(seq 100); do
	grep -q 'msg="live capture"' "$work/sensor.log" && break
	kill -0 "$sensor_pid" 2>/dev/null || { cat "$work/sensor.log" >&2; exit 1; }
	sleep 0.1
done

rate=(--pps="$PPS")
[[ $PPS == 0 ]] && rate=(--topspeed)
echo "replaying $PCAP x$LOOP at ${PPS/#0/top speed} pps; sensor: $WORKERS workers x $BLOCKS MiB ring" >&2
# shellcheck disable=SC2046
ip netns exec "$tx" $(pin "$TX_CPU") tcpreplay -i eth0 -K --loop="$LOOP" "${rate[@]}" "$PCAP" >"$work/tcpreplay.out" 2>&1 ||
	{ cat "$work/tcpreplay.out" >&2; exit 1; }
sleep 1 # let the last blocks retire (64ms) and the readers drain them
kill -INT "$sensor_pid"
wait "$sensor_pid" || { cat "$work/sensor.log" >&2; exit 1; }
sensor_pid=

sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$work/tcpreplay.out")
failed=$(sed -n 's/.*Failed packets: *\([0-9]*\).*/\1/p' "$work/tcpreplay.out")
actual=$(grep -m1 'Rated:' "$work/tcpreplay.out" | sed 's/^ *//')
read -r received kernel drops freezes observations < <(sed 's/[a-z]*=//g' "$work/sensor.out")
echo "tcpreplay: $actual"
printf '%-14s %12s\n' sent "$sent" "send failed" "$failed" "sockets saw" "$kernel" received "$received" \
	"kernel drops" "$drops" "ring freezes" "$freezes" observations "$observations"
python3 -c "k=$kernel; d=$drops; s=$sent; print(f'drop: {100*d/max(k,1):.2f}% of what the sockets saw; {100*(s-($kernel-d))/max(s,1):.2f}% of what was sent never reached the decoder')"
