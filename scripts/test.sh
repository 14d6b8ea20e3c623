#!/usr/bin/env bash
#
# scripts/test.sh - run the whole reckon test suite.
#
# This is THE test command (CI runs exactly this via .ci/run). On a fresh
# Debian machine, after git clone, as root:
#
#   scripts/test.sh                         # vet + staticcheck + go test ./...
#   scripts/test.sh -run TestX ./api/...    # args replace ./... for go test
#
# What it does:
#   1. installs missing Debian packages the tests need (root only; otherwise
#      warns, or fails when CI=true),
#   2. starts a throwaway PostgreSQL unless RECKON_TEST_DATABASE_URL is set,
#   3. runs go vet, staticcheck (go tool) and go test -race -count=1.
# Exits non-zero if any step fails.
set -euo pipefail

# Debian packages the test suite needs. Extend this list as needed.
# gcc/libc6-dev: go test -race and libpcap bindings need cgo.
DEB_PACKAGES=(
	postgresql
	nmap
	libpcap-dev
	iproute2
	ca-certificates
	curl
	python3
	gcc
	libc6-dev
	# the test network (internal/lab): namespaced hosts running real services,
	# a mirror port, and the tools that make traffic between them
	tcpdump
	dnsmasq-base
	isc-dhcp-client
	openssh-server
	openssh-client
	nginx-light
	iputils-ping
	iputils-arping
	tcpreplay
	# the standard lab's other services (snmpd, vsftpd), and the clients its
	# test checks them with (snmpget; openssl s_client for the certificate)
	snmpd
	snmp
	vsftpd
	openssl
	# the assessment tests' SMB servers (SMBv1 and signing, weak and hardened)
	samba
)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

# shellcheck source=scripts/pg-throwaway.sh
source "$REPO_ROOT/scripts/pg-throwaway.sh"

is_ci() { [[ ${CI:-} == true ]]; }
header() { printf '\n==> %s\n' "$*"; }
warn() { echo "WARNING: $*" >&2; }
die() {
	echo "ERROR: $*" >&2
	exit 1
}

# --- 1. Debian packages ------------------------------------------------------

header "checking Debian packages: ${DEB_PACKAGES[*]}"
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -eq 0 ]]; then
		echo "installing missing packages: ${missing[*]}"
		apt-get update
		# The tests run sshd and nginx themselves, inside namespaces; the
		# packages must not start system-wide services on install.
		norc=""
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && norc=1
		fi
		rc=0
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" || rc=$?
		if [[ -n $norc ]]; then rm -f /usr/sbin/policy-rc.d; fi
		((rc == 0)) || die "apt-get install failed (exit $rc)"
	elif is_ci; then
		die "missing Debian packages (and not root, cannot install): ${missing[*]}
       install them with: apt-get install -y --no-install-recommends ${missing[*]}"
	else
		warn "missing Debian packages: ${missing[*]} (not root, not installing; some tests may fail or skip)"
	fi
else
	echo "all present"
fi

# --- Go toolchain -------------------------------------------------------------

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH (nor at /usr/local/go/bin/go)"
echo "using $(go version) from $(command -v go)"

# --- 2. PostgreSQL --------------------------------------------------------------

header "PostgreSQL"
if [[ -n ${RECKON_TEST_DATABASE_URL:-} ]]; then
	echo "using RECKON_TEST_DATABASE_URL from the environment"
elif pg_throwaway_start; then
	echo "RECKON_TEST_DATABASE_URL=$RECKON_TEST_DATABASE_URL"
elif is_ci; then
	die "could not start a throwaway PostgreSQL and CI=true; refusing to skip the PostgreSQL tests"
else
	warn "could not start a throwaway PostgreSQL; PostgreSQL tests will be skipped"
	warn "(set RECKON_TEST_DATABASE_URL to use an existing server)"
fi

# --- 3. vet, staticcheck, tests ----------------------------------------------------

failed=()
run_step() {
	local name=$1
	shift
	header "$name: $*"
	if "$@"; then
		return 0
	fi
	echo "FAILED: $name" >&2
	failed+=("$name")
}

run_step "go vet" go vet ./...

if go tool -n staticcheck >/dev/null 2>&1; then
	run_step "staticcheck" go tool staticcheck ./...
else
	header "staticcheck"
	warn "staticcheck is not available as a Go tool yet (go tool -n staticcheck failed); skipping"
	warn "(add it with: go get -tool honnef.co/go/tools/cmd/staticcheck)"
fi

if (($# > 0)); then
	run_step "go test" go test -race -count=1 "$@"
else
	run_step "go test" go test -race -count=1 ./...
fi

if ((${#failed[@]} > 0)); then
	printf '\n==> FAILED: %s\n' "${failed[*]}" >&2
	exit 1
fi
printf '\n==> all steps passed\n'
