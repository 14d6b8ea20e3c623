# shellcheck shell=bash
#
# scripts/pg-throwaway.sh - start a throwaway PostgreSQL server for tests and
# benchmarks. Source this file, then call pg_throwaway_start:
#
#   source scripts/pg-throwaway.sh
#   pg_throwaway_start || echo "no postgres" >&2
#   go test ./...   # sees RECKON_TEST_DATABASE_URL
#
# pg_throwaway_start:
#   * finds the highest installed PostgreSQL under /usr/lib/postgresql/*/bin
#     (override with RECKON_PG_BIN=/path/to/bin),
#   * runs initdb in a fresh `mktemp -d` directory (as the `postgres` user when
#     running as root, as the current user otherwise),
#   * starts it on a free 127.0.0.1 port (retrying with other ports),
#   * passes PG_THROWAWAY_OPTS (e.g. "-c shared_buffers=1GB") to the server,
#   * exports RECKON_TEST_DATABASE_URL and PG_THROWAWAY_{DIR,PORT},
#   * registers a cleanup that stops the server and removes the directory when
#     the shell exits.
# It returns non-zero (after printing why) if the server cannot be started;
# deciding whether that is fatal is up to the caller.
#
# Cleanups are composable: use reckon_cleanup_add 'command' to register more
# work for shell exit. Cleanups run in reverse registration order, and an EXIT
# trap that was already installed before the first reckon_cleanup_add is kept
# (it runs last). Do not replace the EXIT trap after calling reckon_cleanup_add;
# add to the list instead.

# ---------------------------------------------------------------------------
# Composable EXIT cleanups
# ---------------------------------------------------------------------------

if [[ -z ${_RECKON_CLEANUP_LOADED:-} ]]; then
	_RECKON_CLEANUP_LOADED=1
	_RECKON_CLEANUPS=()
	_RECKON_CLEANUP_TRAP_INSTALLED=
fi

# reckon_cleanup_add CMD - run CMD (evaluated as a string) when the shell exits.
reckon_cleanup_add() {
	_reckon_cleanup_install
	_RECKON_CLEANUPS+=("$1")
}

# Runs all registered cleanups (newest first) exactly once, preserving the
# exit status the shell was going to exit with.
_reckon_cleanup_run() {
	local rc=$? i
	local -a cleanups=("${_RECKON_CLEANUPS[@]}")
	_RECKON_CLEANUPS=()
	for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do
		eval "${cleanups[i]}" || true
	done
	return "$rc"
}

_reckon_cleanup_on_signal() {
	local sig=$1 code=$2
	echo "pg-throwaway: caught SIG$sig, cleaning up" >&2
	# exit triggers the EXIT trap, which runs the cleanups.
	exit "$code"
}

_reckon_cleanup_install() {
	[[ -n $_RECKON_CLEANUP_TRAP_INSTALLED ]] && return 0
	_RECKON_CLEANUP_TRAP_INSTALLED=1

	# Keep whatever EXIT trap was there before us: `trap -p EXIT` prints
	# "trap -- 'CMD' EXIT"; re-parse it with the shell's own quoting rules.
	local prev
	prev=$(trap -p EXIT)
	if [[ -n $prev ]]; then
		local -a words
		eval "words=(${prev})"
		if [[ ${#words[@]} -ge 4 && -n ${words[2]} ]]; then
			_RECKON_CLEANUPS=("${words[2]}" "${_RECKON_CLEANUPS[@]}")
		fi
	fi
	trap _reckon_cleanup_run EXIT

	# Make sure INT/TERM/HUP end up running the EXIT trap too, but only where
	# nobody else has claimed the signal already.
	local sig code
	for sig in INT:130 TERM:143 HUP:129; do
		code=${sig#*:}
		sig=${sig%%:*}
		if [[ -z $(trap -p "$sig") ]]; then
			# shellcheck disable=SC2064
			trap "_reckon_cleanup_on_signal $sig $code" "$sig"
		fi
	done
}

# ---------------------------------------------------------------------------
# Throwaway PostgreSQL
# ---------------------------------------------------------------------------

_pg_throwaway_log() { echo "pg-throwaway: $*" >&2; }

# _pg_throwaway_bindir - print the bin dir of the highest installed PostgreSQL.
_pg_throwaway_bindir() {
	if [[ -n ${RECKON_PG_BIN:-} ]]; then
		echo "$RECKON_PG_BIN"
		return 0
	fi
	local d
	# shellcheck disable=SC2012 # version dirs are plain numbers
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[[ -n $d ]] || return 1
	echo "$d"
}

# _pg_throwaway_port_free PORT - true if nothing listens on 127.0.0.1:PORT.
_pg_throwaway_port_free() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -z $(ss -ltnH "sport = :$p" 2>/dev/null) ]] || return 1
	fi
	# Double check (or the only check without ss): can we connect to it?
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		return 1
	fi
	return 0
}

_pg_throwaway_pick_port() {
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		if _pg_throwaway_port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# _pg_throwaway_as_owner CMD... - run CMD as the user owning the cluster.
_pg_throwaway_as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		# cd first so postgres is not left in a directory it cannot read.
		(cd "$PG_THROWAWAY_DIR" && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# _pg_throwaway_stop DIR BINDIR - stop the server in DIR and remove DIR.
_pg_throwaway_stop() {
	local dir=$1 bindir=$2
	[[ -n $dir && -d $dir ]] || return 0
	if [[ -f $dir/data/postmaster.pid ]]; then
		local pid
		pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
		PG_THROWAWAY_DIR=$dir _pg_throwaway_as_owner \
			"$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		# Belt and braces: if that postmaster is still there, kill it.
		if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
			[[ $(cat "/proc/$pid/comm" 2>/dev/null || true) == postgres ]]; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -rf -- "$dir"
}

# pg_throwaway_start - see the header of this file.
pg_throwaway_start() {
	local bindir dir port attempt
	if ! bindir=$(_pg_throwaway_bindir); then
		_pg_throwaway_log "no PostgreSQL found under /usr/lib/postgresql/*/bin (install the postgresql package)"
		return 1
	fi
	if [[ ! -x $bindir/initdb || ! -x $bindir/pg_ctl ]]; then
		_pg_throwaway_log "$bindir has no initdb/pg_ctl"
		return 1
	fi
	if [[ $(id -u) -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
		_pg_throwaway_log "running as root but there is no 'postgres' user to run the server as"
		return 1
	fi

	dir=$(mktemp -d "${TMPDIR:-/tmp}/reckon-pg.XXXXXXXX") || return 1
	# Register cleanup right away so a failure below still removes the dir.
	reckon_cleanup_add "_pg_throwaway_stop $(printf '%q' "$dir") $(printf '%q' "$bindir")"
	PG_THROWAWAY_DIR=$dir

	if [[ $(id -u) -eq 0 ]]; then
		chown postgres: "$dir" || return 1
		if ! runuser -u postgres -- test -w "$dir"; then
			_pg_throwaway_log "user postgres cannot write to $dir (TMPDIR=${TMPDIR:-}); try TMPDIR=/tmp"
			return 1
		fi
	fi

	if ! _pg_throwaway_as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres \
		-E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
		_pg_throwaway_log "initdb failed:"
		sed 's/^/    /' "$dir/initdb.log" >&2
		return 1
	fi

	for attempt in 1 2 3 4 5; do
		if ! port=$(_pg_throwaway_pick_port); then
			_pg_throwaway_log "could not find a free port"
			return 1
		fi
		if _pg_throwaway_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${PG_THROWAWAY_OPTS:-}" \
			start >"$dir/pg_ctl.log" 2>&1; then
			PG_THROWAWAY_PORT=$port
			RECKON_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			export PG_THROWAWAY_DIR PG_THROWAWAY_PORT RECKON_TEST_DATABASE_URL
			_pg_throwaway_log "PostgreSQL $("$bindir/postgres" -V 2>/dev/null | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
			return 0
		fi
		_pg_throwaway_log "start on port $port failed (attempt $attempt/5)"
		# Make sure a half-started server is gone before retrying.
		_pg_throwaway_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	done
	_pg_throwaway_log "giving up; last server log:"
	tail -n 30 "$dir/postgres.log" 2>/dev/null | sed 's/^/    /' >&2 || true
	tail -n 10 "$dir/pg_ctl.log" 2>/dev/null | sed 's/^/    /' >&2 || true
	return 1
}
