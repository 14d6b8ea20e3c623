#!/usr/bin/env bash
# bench/sweep-overhead.sh - wall time of `reckon sweep` of the standard test
# network against plain nmap with the same flags, run alternately from the
# lab's scanner host; prints the median of each and the overhead.
#
#   bench/sweep-overhead.sh          env: RUNS=7 PORTS=21,22,80,443 LAB=bench
# Needs root, nmap and the lab's packages (scripts/lab.sh builds the lab
# and leaves it up; `make lab-down` or scripts/lab.sh down --name bench
# removes it). Every probe stays inside the lab's namespaces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-7}
PORTS=${PORTS:-21,22,80,443}
LAB=${LAB:-bench}
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, raw sockets)" >&2; exit 1; }
command -v nmap >/dev/null || { echo "needs nmap (apt-get install nmap)" >&2; exit 1; }
"$root/scripts/lab.sh" up --name "$LAB" >/dev/null
state=${RECKON_LAB_STATE:-/run/reckon-lab}/$LAB.json
read -r subnet scanner < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["subnet"], [h["netns"] for h in d["hosts"] if h["name"]=="scanner"][0])' "$state")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
go build -o "$work/reckon" "$root/cmd/reckon"
# The flags reckon sweep gives nmap for these options (see reckon sweep -v),
# but for -iL and --stats-every, which are reckon's own work.
ip netns exec "$scanner" "$work/reckon" sweep -v --targets "$subnet" --ports "$PORTS" --no-dns --timing 4 --format jsonl >"$work/out" 2>"$work/err"
grep '^chunk 0:' "$work/err" >&2
plain=(nmap "$subnet" -sS -p "$PORTS" -sV -T4 -n --no-stylesheet -oX "$work/plain.xml")
ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $((($(date +%s%N) - s) / 1000000)); }
r=(); n=()
for _ in $(seq "$RUNS"); do
	n+=("$(ms ip netns exec "$scanner" "${plain[@]}")")
	r+=("$(ms ip netns exec "$scanner" "$work/reckon" sweep --targets "$subnet" --ports "$PORTS" --no-dns --timing 4 --format jsonl)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mn=$(median "${n[@]}"); mr=$(median "${r[@]}")
echo "subnet $subnet from the scanner host, ports $PORTS, -sV -T4 -n, $RUNS runs each, alternating"
echo "plain nmap:   median ${mn} ms  (${n[*]})"
echo "reckon sweep: median ${mr} ms  (${r[*]})"
python3 -c "print(f'overhead: {($mr-$mn)/$mn*100:+.1f}%')"
