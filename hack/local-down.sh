#!/usr/bin/env bash
# Stops the local cluster and removes every network namespace, link, process, mount and cgroup
# it created (logs stay in .local/logs; the local registry keeps running: hack/registry.sh
# stop). Succeeds when nothing is up.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

# OLM's operators and the catalog server (hack/olm-local.sh), when MLB_INSTALL=olm started them.
"$root/hack/olm-local.sh" down

if [[ -x "$target/debug/mlb-testbed" ]]; then
	exec "$target/debug/mlb-testbed" down
fi

# Nothing built, so nothing can have been started by mlb-testbed; sweep our prefix anyway.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^mlb-/ { print $1 }'); do
	pids="$(ip netns pids "$ns" || true)"
	if [[ -n "$pids" ]]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	fi
	ip netns del "$ns"
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep '^mlb-' || true); do
	ip link del "$link" 2>/dev/null || true
done
for cgroup in /sys/fs/cgroup/*/mlb-*; do
	[[ -d "$cgroup" ]] && find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
echo "the local cluster is down"
