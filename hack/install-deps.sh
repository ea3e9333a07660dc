#!/usr/bin/env bash
# Installs what the local cluster and the images need and builds it; idempotent and quick when
# nothing is missing. Debian packages are installed only if missing (one `apt-get update` then),
# then the Rust targets of the images (rustup), the image tools (hack/build-tools.sh: crane, the
# registry, cosign, opm), OLM and its validators (hack/build-olm.sh), the control plane with the
# kubelet and kube-proxy (hack/build-testcluster.sh), the nodes' containerd
# (hack/build-node-runtime.sh) and the workspace binaries are built.
# Run as root (or with sudo available); works on a fresh machine with CI=true.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

packages=(
	iproute2       # ip: namespaces, veths, bridges, routes
	nftables       # nft: the Service data path in every node
	frr            # the router (zebra, bgpd, bfdd) and the speakers' FRR mode
	frr-pythontools
	iputils-arping # L2 checks from the client
	iputils-ping
	ndisc6         # ndisc6: NDP checks from the client
	curl           # HTTP checks and httpGet probes
	tcpdump
	util-linux     # unshare, nsenter, setsid, mount, runuser
	procps
	psmisc
	ethtool
	jq
	# The nodes (e2e/src/node.rs): runc under containerd, the CNI plugins (ptp, host-local,
	# portmap), busybox for the test image localhost/busybox (hack/test-images.sh).
	runc
	containernetworking-plugins
	busybox-static
	python3-yaml   # hack/verify-bundle_test.sh edits copies of the bundle's CSV
	# The images (hack/images.sh): static musl binaries for linux/amd64 and linux/arm64. ring and
	# psm compile C and assembly: musl-gcc for x86_64, the aarch64 cross compiler (which also
	# links) for aarch64; binutils' readelf checks the result.
	musl-tools
	gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross
	binutils
)

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	sudo=(sudo)
fi

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} > 0)); then
	echo "install-deps: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "install-deps: Debian packages present"
fi

# The Rust standard libraries of the image targets.
rust_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
installed_targets="$(rustup target list --installed)"
missing=()
for target in "${rust_targets[@]}"; do
	grep -qx "$target" <<<"$installed_targets" || missing+=("$target")
done
if ((${#missing[@]} > 0)); then
	echo "install-deps: rustup target add ${missing[*]}"
	rustup target add "${missing[@]}"
else
	echo "install-deps: Rust targets present (${rust_targets[*]})"
fi

"$root/hack/build-tools.sh"
# OLM v0 (the local cluster's MLB_INSTALL=olm) and OLM's bundle validators (hack/verify.sh).
"$root/hack/build-olm.sh"

"$root/hack/build-testcluster.sh"
"$root/hack/build-node-runtime.sh"

# --- cargo-machete (begin): the unused-dependency check of hack/test.sh, at a pinned version.
# It reads Cargo.toml files and sources as text, so a dependency used only through a macro or a
# feature can look unused: such a true false positive goes, with the reason in a comment, into
# `[package.metadata.cargo-machete] ignored = [...]` of that crate's Cargo.toml.
machete_version=0.9.2
if [[ "$(cargo machete --version 2>/dev/null)" != "$machete_version" ]]; then
	echo "install-deps: cargo install cargo-machete $machete_version"
	cargo install --quiet --locked cargo-machete --version "$machete_version"
else
	echo "install-deps: cargo-machete $machete_version present"
fi
# --- cargo-machete (end)

echo "install-deps: cargo build --workspace --bins"
cargo build --quiet --workspace --bins
