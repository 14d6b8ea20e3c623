#!/usr/bin/env bash
#
# scripts/lab.sh - the standard test network, left running for a shell.
#
#   scripts/lab.sh up     [--name demo] [--state-dir /run/reckon-lab]
#   scripts/lab.sh status [--name demo] [--state-dir /run/reckon-lab]
#   scripts/lab.sh down   [--name demo] [--state-dir /run/reckon-lab]
#
# As root. up builds the standard lab of internal/lab (hosts in network
# namespaces rklab-NAME-*, on a bridge with a mirror port, running dnsmasq,
# dhclient, sshd, nginx with TLS, snmpd and vsftpd) and leaves it running;
# its ground truth (hosts, MACs, addresses, services, key fingerprints) is
# STATE_DIR/NAME.json. up is idempotent, and cleans up after a failure;
# down removes everything, and succeeds when there is nothing. `make lab-up`
# and `make lab-down` call this.
#
# It builds cmd/reckon-lab into a cache path (RECKON_LAB_BIN, default
# ~/.cache/reckon/reckon-lab); go build relinks only when the source changed.
set -euo pipefail

die() {
	echo "ERROR: $*" >&2
	exit 1
}

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

case ${1:-} in
up | down | status) ;;
-h | --help | help)
	sed -n '3,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*) die "usage: scripts/lab.sh up|down|status [--name NAME] [--state-dir DIR]" ;;
esac
[[ $(id -u) -eq 0 ]] || die "the lab needs root (network namespaces, veth, tc): run as root"

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH (nor at /usr/local/go/bin/go)"

bin=${RECKON_LAB_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/reckon/reckon-lab}
mkdir -p "$(dirname "$bin")"
go build -o "$bin" ./cmd/reckon-lab || die "building cmd/reckon-lab failed"
exec "$bin" "$@"
