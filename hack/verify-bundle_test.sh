#!/usr/bin/env bash
# Proves that hack/verify-bundle.sh (run by hack/verify.sh) fails when OLM's validators find a
# fault: each case breaks a copy of bundle/ and expects a failure with OLM's message; the
# unchanged copy must pass, so no case passes merely because the copy is broken some other way.
# hack/test.sh runs it after hack/verify.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

# edit CASE PYTHON: a copy of bundle/ in $tmp/CASE whose CSV (the variable csv, a dict) the
# Python statements change.
edit() {
	local case="$1" code="$2"
	rm -rf "$tmp/$case"
	cp -r "$root/bundle" "$tmp/$case"
	python3 - "$tmp/$case"/manifests/*.clusterserviceversion.yaml "$code" <<'PY'
import sys, yaml
path, code = sys.argv[1], sys.argv[2]
csv = yaml.safe_load(open(path))
exec(code)
yaml.safe_dump(csv, open(path, "w"), sort_keys=False)
PY
}

# expect CASE STATUS TEXT: verify-bundle.sh on $tmp/CASE exits with STATUS (0 or "non-zero")
# and, for a failure, prints TEXT.
expect() {
	local case="$1" want="$2" text="${3:-}" status=0
	"$root/hack/verify-bundle.sh" "$tmp/$case" >"$tmp/$case.out" 2>&1 || status=$?
	local as_expected=0
	if [[ "$want" == 0 ]]; then
		[[ "$status" == 0 ]] && as_expected=1
	elif [[ "$status" != 0 ]] && grep -qF -- "$text" "$tmp/$case.out"; then
		as_expected=1
	fi
	if ((as_expected)); then
		echo "ok: $case (exit $status)${text:+: $(grep -F -m1 -- "$text" "$tmp/$case.out" | cut -c1-150)}"
	else
		echo "FAILED: $case: expected exit $want${text:+ and \"$text\"}, got exit $status:" >&2
		sed 's/^/  | /' "$tmp/$case.out" >&2
		failures=$((failures + 1))
	fi
}

edit unchanged 'pass'
expect unchanged 0

# An error of the CSV validator.
edit no-install-modes 'del csv["spec"]["installModes"]'
expect no-install-modes non-zero 'install modes not found'

# An owned CRD that the bundle does not ship: the bundle validator's error.
edit missing-crd 'pass'
rm "$tmp/missing-crd/manifests/metallb.io_communities.yaml"
expect missing-crd non-zero 'communities.metallb.io'

# A new warning that docs/operator.md does not explain (the icon is gone).
edit no-icon 'del csv["spec"]["icon"]'
expect no-icon non-zero 'csv.Spec.Icon not specified'

# An explained warning that no longer occurs: the explanation is stale.
edit no-crd-patch 'for p in csv["spec"]["install"]["spec"]["clusterPermissions"]:
    p["rules"] = [r for r in p["rules"] if "apiextensions.k8s.io" not in r.get("apiGroups", [])]'
expect no-crd-patch non-zero 'explains a warning that no validator gives any more'

# A broken upgrade graph: opm validate refuses the catalog.
edit replaces-itself 'csv["spec"]["replaces"] = csv["metadata"]["name"]'
expect replaces-itself non-zero 'opm validate refused the catalog'

if ((failures > 0)); then
	echo "verify-bundle_test: $failures case(s) failed" >&2
	exit 1
fi
echo "verify-bundle_test: every case as expected"
