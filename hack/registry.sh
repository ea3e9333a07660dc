#!/usr/bin/env bash
# The local OCI registry (distribution, built by hack/build-tools.sh) that hack/images.sh pushes
# to and the local cluster pulls from. Plain HTTP, no authentication: it listens on 127.0.0.1 by
# default and holds only what this checkout built.
#
#   hack/registry.sh start    start it unless it runs (idempotent); waits until it answers
#   hack/registry.sh stop     stop it (idempotent); the stored images stay for the next start
#   hack/registry.sh status   say whether it runs and where; exit 0 when it runs, 3 when not
#   hack/registry.sh clean    stop it and delete the stored images
#
# LOCAL_REGISTRY_ADDRESS (default 127.0.0.1) and LOCAL_REGISTRY_PORT (default 5000) choose where it
# listens, e.g. the machine's address on the test topology's management bridge for the nodes.
# (Not REGISTRY_*: the registry itself reads those as overrides of its configuration.)
# Storage, configuration, log and pid file are under .local/registry/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.local/registry"
bin="$root/.local/bin/registry"
address="${LOCAL_REGISTRY_ADDRESS:-127.0.0.1}"
port="${LOCAL_REGISTRY_PORT:-5000}"
pidfile="$dir/registry.pid"
log="$dir/registry.log"
# An IPv6 address needs brackets in a host:port pair.
host="$address"
[[ "$address" == *:* ]] && host="[$address]"
endpoint="$host:$port"

say() { echo "registry: $*"; }

# The pid of our registry when it runs: the pid file names a live process running our binary.
running_pid() {
	local pid
	[[ -f "$pidfile" ]] || return 1
	pid="$(<"$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$bin" ]] || return 1
	echo "$pid"
}

answers() { curl -fsS -o /dev/null --max-time 2 "http://$endpoint/v2/" 2>/dev/null; }

start() {
	local t0 pid i
	t0="$(date +%s%N)"
	if pid="$(running_pid)"; then
		if answers; then
			say "already running on $endpoint (pid $pid)"
			return 0
		fi
		say "pid $pid runs but does not answer on $endpoint: its address differs or it is stuck; hack/registry.sh stop first" >&2
		return 1
	fi
	if [[ ! -x "$bin" ]]; then
		say "$bin is missing: run hack/build-tools.sh registry (or hack/install-deps.sh)" >&2
		return 1
	fi
	if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
		say "port $port is taken by another process; choose another with LOCAL_REGISTRY_PORT" >&2
		return 1
	fi
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<EOF
# Written by hack/registry.sh at each start.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $endpoint
  draintimeout: 2s
EOF
	# setsid: the registry outlives this script and the terminal; stop ends it by its pid.
	# Only 0-2 are passed on: a descriptor the caller holds (a `flock` lock around a test run)
	# would otherwise stay open, and the lock held, for as long as the registry runs.
	(
		for fd in /proc/self/fd/*; do
			fd="${fd##*/}"
			((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
		done
		exec setsid "$bin" serve "$dir/config.yml" >>"$log" 2>&1 </dev/null
	) &
	pid=$!
	echo "$pid" >"$pidfile"
	for i in $(seq 100); do
		if answers; then
			say "started on $endpoint (pid $pid) in $((($(date +%s%N) - t0) / 1000000)) ms; storage ${dir#"$root"/}/data, log ${log#"$root"/}"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	say "did not start on $endpoint; the end of ${log#"$root"/}:" >&2
	tail -n 20 "$log" >&2
	stop >/dev/null || true
	return 1
}

stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		rm -f "$pidfile"
		say "not running"
		return 0
	fi
	kill -TERM "$pid"
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid did not stop within 10 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	say "stopped (pid $pid)"
}

status() {
	local pid
	if pid="$(running_pid)"; then
		if answers; then
			say "running on $endpoint (pid $pid)"
			return 0
		fi
		say "pid $pid runs but does not answer on $endpoint"
		return 1
	fi
	say "not running"
	return 3
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
clean)
	stop
	rm -rf "$dir"
	say "storage deleted"
	;;
*)
	echo "usage: hack/registry.sh start|stop|status|clean" >&2
	exit 2
	;;
esac
