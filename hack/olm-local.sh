#!/usr/bin/env bash
# OLM v0 on the local cluster (docs/operator.md, "Installing with OLM"; docs/testing.md, "OLM").
#
#   hack/olm-local.sh up                    OLM's CRDs, namespace olm, and OLM's two operators
#                                           (catalog, olm; hack/build-olm.sh) as processes on this
#                                           machine, against the local cluster's API server
#   hack/olm-local.sh serve [BUNDLE_DIR...] the file-based catalog of these bundles (default: this
#                                           checkout's bundle/ and the previous release's), served
#                                           by `opm serve` on 127.0.0.1:50051, and the CatalogSource
#                                           `metallb-rs` (namespace olm) pointing at it; waits until
#                                           OLM reads it. Serving again replaces the catalog: OLM sees
#                                           the new content when the connection comes back.
#   hack/olm-local.sh subscribe [NAMESPACE [STARTING_CSV]]
#                                           namespace (default metallb-system), an OperatorGroup
#                                           for it (OwnNamespace) and a Subscription to channel
#                                           stable with automatic approval; waits until the CSV
#                                           OLM installs is Succeeded
#   hack/olm-local.sh uninstall [NAMESPACE] the documented order: the MetalLB resource (waits until
#                                           its finalizer ran), then the Subscription and the CSV,
#                                           then the OperatorGroup
#   hack/olm-local.sh down                  stops opm serve and OLM's operators (hack/local-down.sh
#                                           runs it; the cluster's objects go with the cluster)
#   hack/olm-local.sh status                what runs, the CatalogSource, Subscriptions and CSVs
#
# Why processes and not pods: OLM's operators are built here from Go modules, not shipped as
# images. Why `opm serve` on the machine and bundles inline: OLM v0 installs a bundle that the
# catalog serves with its manifests (hack/catalog.sh without an image) straight from the
# catalog's answer, without the bundle unpack Job (which needs OLM's own images); and a
# CatalogSource with `spec.address` needs no registry pod.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kubectl=("$root/.local/bin/kubectl" --kubeconfig "${KUBECONFIG_LOCAL:-$root/.local/kubeconfig}")
olm_dir="$root/.local/olm"
run="$olm_dir/run"
logs="$root/.local/logs"
ns=olm
catalog_port="${OLM_CATALOG_PORT:-50051}"
package=metallb-rs-operator
source_name=metallb-rs

die() {
	echo "olm-local: $*" >&2
	exit 1
}
now() { date +%s%N; }
elapsed() { local ms=$((($(now) - $1) / 1000000)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }

# wait_for DESCRIPTION SECONDS COMMAND...: runs COMMAND every second until it succeeds.
wait_for() {
	local what="$1" timeout="$2" deadline
	shift 2
	deadline=$(($(date +%s) + timeout))
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) >= deadline)); then
			echo "olm-local: timed out after ${timeout}s waiting for $what" >&2
			return 1
		fi
		sleep 1
	done
}

# The PID in run/NAME.pid if that process still runs BINARY.
alive() {
	local name="$1" binary="$2" pid
	pid="$(cat "$run/$name.pid" 2>/dev/null)" || return 1
	[[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$binary" ]] && echo "$pid"
}

# start NAME BINARY ARGS...: a process of its own session, output in .local/logs/olm-NAME.log.
start() {
	local name="$1" binary="$2"
	shift 2
	mkdir -p "$run" "$logs"
	setsid "$binary" "$@" >>"$logs/olm-$name.log" 2>&1 </dev/null &
	echo $! >"$run/$name.pid"
}

stop() {
	local name="$1" binary="$2" pid i
	if pid="$(alive "$name" "$binary")"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			[[ -d "/proc/$pid" ]] || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		echo "olm-local: stopped $name (pid $pid)"
	fi
	rm -f "$run/$name.pid"
}

up() {
	local t0
	t0="$(now)"
	[[ -x "$olm_dir/bin/olm" && -x "$olm_dir/bin/catalog" && -d "$olm_dir/crds" ]] || "$root/hack/build-olm.sh"
	"${kubectl[@]}" get --raw /readyz >/dev/null || die "the local cluster is not up (hack/local-up.sh)"
	# Server-side: the ClusterServiceVersion CRD is too large for client-side apply's annotation.
	"${kubectl[@]}" apply --server-side --force-conflicts -f "$olm_dir/crds" >/dev/null
	"${kubectl[@]}" wait --for=condition=Established --timeout=60s -f "$olm_dir/crds" >/dev/null
	"${kubectl[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: operators.coreos.com/v1
kind: OLMConfig
metadata: {name: cluster}
YAML
	# Both operators serve health and metrics on :8080 without TLS and :8443 with it: the
	# catalog operator gets a throwaway certificate so that the two do not collide.
	if [[ ! -f "$run/tls.crt" ]]; then
		mkdir -p "$run"
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=olm-catalog-operator \
			-keyout "$run/tls.key" -out "$run/tls.crt" 2>/dev/null
	fi
	alive catalog "$olm_dir/bin/catalog" >/dev/null ||
		start catalog "$olm_dir/bin/catalog" --namespace "$ns" --kubeconfig "${kubectl[2]}" \
			--tls-cert "$run/tls.crt" --tls-key "$run/tls.key" --writeStatusName ""
	alive olm "$olm_dir/bin/olm" >/dev/null ||
		KUBECONFIG="${kubectl[2]}" OPERATOR_NAMESPACE="$ns" OPERATOR_NAME=olm-operator \
			start olm "$olm_dir/bin/olm" --namespace "$ns" --writeStatusName "" \
			--writePackageServerStatusName ""
	wait_for "OLM's olm operator to be healthy" 60 curl -fsS http://127.0.0.1:8080/healthz
	wait_for "OLM's catalog operator to be healthy" 60 curl -fsSk https://127.0.0.1:8443/healthz
	echo "olm-local: OLM $("$olm_dir/bin/olm" --version | awk '/OLM version/ { print $3 }') up (olm pid $(cat "$run/olm.pid"), catalog pid $(cat "$run/catalog.pid")) in $(elapsed "$t0")"
}

catalog_ready() {
	[[ "$("${kubectl[@]}" -n "$ns" get catalogsource "$source_name" \
		-o jsonpath='{.status.connectionState.lastObservedState}')" == READY ]]
}

serve() {
	local t0 bundles=("$@") previous
	t0="$(now)"
	if ((${#bundles[@]} == 0)); then
		previous="$olm_dir/previous"
		"$root/hack/previous-release.sh" source "$previous"
		bundles=("$root/bundle" "$previous/bundle")
	fi
	[[ -x "$root/.local/bin/opm" ]] || "$root/hack/build-tools.sh" opm
	OPM="$root/.local/bin/opm" "$root/hack/catalog.sh" "$olm_dir/catalog.new" "${bundles[@]}"
	stop opm "$root/.local/bin/opm"
	rm -rf "$olm_dir/catalog"
	mv "$olm_dir/catalog.new" "$olm_dir/catalog"
	# No --cache-dir: opm builds its cache in a temporary directory at start. --pprof-addr "":
	# no profiling listener.
	start opm "$root/.local/bin/opm" serve "$olm_dir/catalog" --port "$catalog_port" --pprof-addr ""
	wait_for "opm serve to listen on 127.0.0.1:$catalog_port" 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$catalog_port"
	"${kubectl[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata: {name: $source_name, namespace: $ns}
spec:
  sourceType: grpc
  address: 127.0.0.1:$catalog_port
  displayName: metallb-rs (local)
  publisher: metallb-rs
YAML
	wait_for "CatalogSource $source_name to be READY" 120 catalog_ready
	echo "olm-local: catalog served on 127.0.0.1:$catalog_port, CatalogSource $ns/$source_name READY, in $(elapsed "$t0")"
}

# The CSV the Subscription in NAMESPACE installed, once OLM recorded it.
installed_csv() {
	"${kubectl[@]}" -n "$1" get subscription "$package" -o jsonpath='{.status.installedCSV}'
}

csv_succeeded() {
	local csv
	csv="$(installed_csv "$1")"
	[[ -n "$csv" && "$("${kubectl[@]}" -n "$1" get csv "$csv" -o jsonpath='{.status.phase}')" == Succeeded ]]
}

subscribe() {
	local namespace="${1:-metallb-system}" starting="${2:-}" t0
	t0="$(now)"
	"${kubectl[@]}" apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $namespace}
---
apiVersion: operators.coreos.com/v1
kind: OperatorGroup
metadata: {name: metallb-rs, namespace: $namespace}
spec:
  targetNamespaces: [$namespace]
---
apiVersion: operators.coreos.com/v1alpha1
kind: Subscription
metadata: {name: $package, namespace: $namespace}
spec:
  name: $package
  channel: stable
  source: $source_name
  sourceNamespace: $ns
  installPlanApproval: Automatic
${starting:+  startingCSV: $starting}
YAML
	if ! wait_for "the CSV of Subscription $namespace/$package to be Succeeded" 300 csv_succeeded "$namespace"; then
		"${kubectl[@]}" -n "$namespace" get subscription,installplan,csv -o wide >&2 || true
		die "see .local/logs/olm-{olm,catalog,opm}.log"
	fi
	echo "olm-local: $(installed_csv "$namespace") Succeeded in $namespace in $(elapsed "$t0")"
}

uninstall() {
	local namespace="${1:-metallb-system}" csv
	csv="$(installed_csv "$namespace" 2>/dev/null || true)"
	# The MetalLB resource first: its finalizer needs the operator (docs/operator.md, "Uninstall").
	"${kubectl[@]}" -n "$namespace" delete metallb --all --wait=true --timeout=180s
	"${kubectl[@]}" -n "$namespace" delete subscription "$package" --ignore-not-found --wait=true
	if [[ -n "$csv" ]]; then
		"${kubectl[@]}" -n "$namespace" delete csv "$csv" --ignore-not-found --wait=true --timeout=180s
	fi
	"${kubectl[@]}" -n "$namespace" delete operatorgroup metallb-rs --ignore-not-found --wait=true
	echo "olm-local: uninstalled ${csv:-nothing} from $namespace"
}

down() {
	stop opm "$root/.local/bin/opm"
	stop olm "$olm_dir/bin/olm"
	stop catalog "$olm_dir/bin/catalog"
}

status() {
	local name binary pid
	for name in catalog olm opm; do
		binary="$olm_dir/bin/$name"
		[[ "$name" == opm ]] && binary="$root/.local/bin/opm"
		if pid="$(alive "$name" "$binary")"; then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
	done
	"${kubectl[@]}" get catalogsource,subscription,installplan,csv -A 2>/dev/null || true
}

case "${1:-}" in
up) up ;;
serve) shift && serve "$@" ;;
subscribe) shift && subscribe "$@" ;;
uninstall) shift && uninstall "$@" ;;
down) down ;;
status) status ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
