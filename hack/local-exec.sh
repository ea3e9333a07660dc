#!/usr/bin/env bash
# Runs a command in one of the local cluster's network namespaces:
#   hack/local-exec.sh NAME -- CMD...
# NAME: node-1 .. node-4, client, router, client2, lan. Without CMD: an interactive bash.
# In the router, `vtysh` talks to its FRR: hack/local-exec.sh router -- vtysh -c "show bgp summary"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

if (($# < 1)); then
	echo "usage: $0 NAME -- CMD...   (NAME: node-1..node-4, client, router, client2, lan)" >&2
	exit 2
fi
name="$1"
shift
if (($# > 0)) && [[ "$1" == "--" ]]; then
	shift
fi
exec "$target/debug/mlb-testbed" exec "$name" -- "$@"
