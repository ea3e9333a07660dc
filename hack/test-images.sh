#!/usr/bin/env bash
# Builds the test images of the local cluster and pushes them to the local registry
# (hack/registry.sh starts it; LOCAL_REGISTRY_ADDRESS and LOCAL_REGISTRY_PORT as there):
#   echo:latest   mlb-echo (e2e/echo), the echo server tests and the demo deploy as
#                 localhost/echo:latest; one static binary, user 65532
#   pause:3.10    the pod sandbox every node's containerd pins as registry.k8s.io/pause:3.10
#                 (e2e/pause, Go, standard library only), user 65535
#   busybox:latest  a shell and the usual tools for tests (localhost/busybox:latest): Debian's
#                 busybox-static with a link per applet, user root as busybox's own image
# The nodes pull every image from this registry whatever registry its name says (a
# containerd `_default` mirror, e2e/src/node.rs), so `localhost/echo:latest` is repository
# `echo` here. Images are assembled with crane from single-layer tarballs with fixed
# timestamps, owners and order: the same binaries give the same digests. Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
address="${LOCAL_REGISTRY_ADDRESS:-127.0.0.1}"
[[ "$address" == *:* ]] && address="[$address]"
registry="$address:${LOCAL_REGISTRY_PORT:-5000}"
crane="$root/.local/bin/crane"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$root/.local/test-images"

now() { date +%s%N; }
t0="$(now)"
if [[ ! -x "$crane" ]]; then
	echo "test-images: $crane not found: run hack/install-deps.sh (it builds the pinned tools)" >&2
	exit 1
fi
if ! curl -fsS --max-time 2 -o /dev/null "http://$registry/v2/"; then
	echo "test-images: no registry at $registry: run hack/registry.sh start" >&2
	exit 1
fi
arch="$(go env GOARCH)"
rm -rf "$work"
mkdir -p "$work/echo" "$work/pause" "$work/busybox/bin" "$work/busybox/tmp"

# A static binary of the echo server (glibc, statically linked: the image has no libc).
rust_target="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
	--target "$rust_target" -p metallb-e2e-echo
install -m 0755 "$target/$rust_target/release/mlb-echo" "$work/echo/mlb-echo"
strip "$work/echo/mlb-echo"

(cd e2e/pause && GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$work/pause/pause" .)

install -m 0755 /bin/busybox "$work/busybox/bin/busybox"
for applet in $(/bin/busybox --list); do
	[[ "$applet" == busybox ]] || ln -s busybox "$work/busybox/bin/$applet"
done
chmod 1777 "$work/busybox/tmp"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$work/busybox/passwd"
mkdir -p "$work/busybox/etc" && mv "$work/busybox/passwd" "$work/busybox/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/busybox/etc/group"

# image NAME DIR ENTRYPOINT USER: one layer with DIR's files at /.
image() {
	local name="$1" dir="$2" entrypoint="$3" user="$4" ref
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$dir.tar" .
	ref="$("$crane" append --insecure --platform "linux/$arch" -f "$dir.tar" -t "$registry/$name" 2>/dev/null)"
	ref="$("$crane" mutate --insecure "$ref" --set-platform "linux/$arch" --entrypoint "$entrypoint" \
		--user "$user" -t "$registry/$name" 2>/dev/null)"
	echo "test-images: $registry/$name -> ${ref#*@}"
}
image echo:latest "$work/echo" /mlb-echo 65532:65532
image pause:3.10 "$work/pause" /pause 65535:65535
image busybox:latest "$work/busybox" /bin/sh 0:0

t1="$(now)"
printf 'test-images: done in %d.%03ds\n' $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 1000000) % 1000))
