#!/usr/bin/env bash
# The FRR image of the local cluster: the image the operator renders for the FRR sidecars of the
# speaker pods (bgpBackend: frr), made from Debian's FRR packages, without a Docker engine, and
# pushed to the local registry (hack/registry.sh) under the repository and tag of the operator's
# FRR_IMAGE (manifests/operator/deployment.yaml): the nodes pull every image from that registry
# whatever registry its name says, as `registry.k8s.io/pause:3.10` (hack/test-images.sh).
#
#   hack/frr-image.sh          build (when the packages changed) and push (when the registry lacks it)
#   hack/frr-image.sh build    build only; prints the digest
#
# It is a stand-in, like the pause image: upstream's image is Alpine with the FRR its tag names;
# this one holds Debian 12's FRR (8.4, the version the router of the local cluster and the
# golden-file checks run), so the speaker's configuration is checked by the same FRR everywhere
# on the machine. What the sidecars' scripts (manifests/templates/frr.yaml.hbs) use is where
# upstream's image has it: /bin/bash, /usr/lib/frr/{zebra,bgpd,bfdd,frr-reload.py}, vtysh,
# python3, coreutils and sed, users frr and frrvty.
#
# Content: the files of the .deb packages below (`dpkg-deb -x`, no maintainer scripts), minus
# documentation, glibc's character set converters and the PAM modules but pam_permit, plus
# /etc/passwd, /etc/group, /tmp, /var/tmp and the python3 link; one layer written by
# hack/images/oci.py (sorted, owners 0:0, every time 0), so the same package versions give the
# same digest on any machine. The .deb files are kept in .local/frr-image/debs; the image is
# rebuilt only when a package version or this script or oci.py changes.
#
# Environment: LOCAL_REGISTRY_ADDRESS, LOCAL_REGISTRY_PORT as for hack/registry.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$root/.local/frr-image"
crane="$root/.local/bin/crane"
address="${LOCAL_REGISTRY_ADDRESS:-127.0.0.1}"
[[ "$address" == *:* ]] && address="[$address]"
registry="$address:${LOCAL_REGISTRY_PORT:-5000}"

die() {
	echo "frr-image: $*" >&2
	exit 1
}

# FRR and the shell tools the sidecars' scripts run, with the shared libraries they load. A
# library missing here fails the build (below) with its name.
packages=(
	frr frr-pythontools
	bash coreutils sed
	python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
	libc6 libgcc-s1 libcrypt1 libtinfo6 libreadline8 libpam0g libpam-modules libaudit1 libcap-ng0 libcap2
	libjson-c5 libyang2 libpcre2-8-0 libc-ares2
	libacl1 libattr1 libgmp10 libselinux1
	libexpat1 zlib1g libbz2-1.0 liblzma5 libssl3 libffi8
)

# The repository and tag the operator renders, without the registry name.
image_ref() {
	local ref
	ref="$(awk '/- name: FRR_IMAGE$/ { getline; sub(/^ *value: /, ""); print }' manifests/operator/deployment.yaml)"
	[[ -n "$ref" && "$ref" != *@* ]] || die "manifests/operator/deployment.yaml names no FRR_IMAGE by tag: $ref"
	# quay.io/frrouting/frr:10.5.3 -> frrouting/frr:10.5.3
	echo "${ref#*/}"
}

arch="$(dpkg --print-architecture)"
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"

# name=version of each package, the candidate apt would install (one apt-cache call: each takes
# about half a second).
versions() {
	local list
	list="$(apt-cache policy "${packages[@]}" | awk '/^[^ ].*:$/ { name = substr($1, 1, length($1) - 1) }
		$1 == "Candidate:" && $2 != "(none)" { print name "=" $2 }')"
	[[ "$(wc -l <<<"$list")" == "${#packages[@]}" ]] || die "some packages have no version in apt's lists (apt-get update?): ${packages[*]} -> $list"
	echo "$list"
}

download() {
	local pv name version file
	mkdir -p "$work/debs"
	for pv in "$@"; do
		name="${pv%%=*}"
		version="${pv#*=}"
		# apt-get download names files NAME_VERSION_ARCH.deb with the epoch's colon escaped.
		file="$(ls "$work/debs/${name}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)"
		[[ -n "$file" ]] && continue
		(cd "$work/debs" && apt-get download -q=2 -o APT::Sandbox::User=root "$name=$version") || die "apt-get download $name=$version failed"
	done
}

build() {
	local list key rootfs pv name version deb missing spec digest
	list="$(versions)"
	key="$({
		echo "$list"
		sha256sum "$root/hack/frr-image.sh" "$root/hack/images/oci.py" | cut -d' ' -f1
	} | sha256sum | cut -d' ' -f1)"
	if [[ -f "$work/key" && "$(cat "$work/key")" == "$key" && -f "$work/digest" ]]; then
		cat "$work/digest"
		return
	fi
	# shellcheck disable=SC2086 # one name=version per word
	download $list >&2
	rootfs="$work/rootfs"
	rm -rf "$rootfs" "$work/layout" "$work/key" "$work/digest"
	mkdir -p "$rootfs"
	for pv in $list; do
		name="${pv%%=*}"
		version="${pv#*=}"
		deb="$(ls "$work/debs/${name}_${version//:/%3a}_"*.deb | head -n 1)"
		dpkg-deb -x "$deb" "$rootfs"
	done
	rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian,bash-completion} "$rootfs"/lib/systemd \
		"$rootfs"/etc/init.d "$rootfs"/etc/logrotate.d "$rootfs"/etc/rsyslog.d \
		"$rootfs"/usr/lib/"$multiarch"/gconv
	# Debian builds vtysh with PAM, and its /etc/pam.d/frr lets everyone in with pam_permit (the
	# vty sockets' group decides): of the PAM modules, that one is needed. Without it vtysh exits
	# silently with status 0, having done nothing.
	find "$rootfs/lib/$multiarch/security" -name 'pam_*.so' ! -name pam_permit.so -delete
	rm -rf "$rootfs/etc/security" "$rootfs/usr/lib/$multiarch/security"
	# Debian's file has no account rule, which vtysh also checks (and complains about).
	printf '%s\n' '# Any user may run vtysh; the vty sockets'"'"' group decides who can use it (Debian'"'"'s rule).' \
		'auth	sufficient	pam_permit.so' 'account	sufficient	pam_permit.so' >"$rootfs/etc/pam.d/frr"
	# What the packages' maintainer scripts or other packages would make.
	ln -s python3.11 "$rootfs/usr/bin/python3"
	mkdir -p -m 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	mkdir -p "$rootfs/var/run/frr" "$rootfs/var/log/frr" "$rootfs/root"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'frr:x:100:101:FRR:/nonexistent:/usr/sbin/nologin' \
		'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$rootfs/etc/passwd"
	printf '%s\n' 'root:x:0:' 'frr:x:101:' 'frrvty:x:102:frr' 'nogroup:x:65534:' >"$rootfs/etc/group"

	# Every shared library the programs and libraries load is in the image (Python's extension
	# modules aside: the ones frr-reload.py imports are checked by running it, below).
	missing="$(find "$rootfs" -type f \( -perm -u+x -o -name '*.so*' \) ! -path '*/lib-dynload/*' -print0 |
		{ xargs -0 -n 50 readelf -d 2>/dev/null || true; } | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u |
		while read -r so; do
			[[ -e "$rootfs/lib/$multiarch/$so" || -e "$rootfs/usr/lib/$multiarch/$so" ||
				-e "$rootfs/usr/lib/$multiarch/frr/$so" || -e "$rootfs/lib64/$so" ]] || echo "$so"
		done)"
	[[ -z "$missing" ]] || die "libraries missing from the image (add their packages; dpkg -S names them):
$missing"
	# The programs run in the root filesystem as they will in the container.
	for check in "/usr/lib/frr/zebra -v" "/usr/lib/frr/bgpd -v" "/usr/lib/frr/bfdd -v" "/usr/bin/vtysh --help" \
		"/usr/lib/frr/frr-reload.py --help" "/bin/bash -c true" "/usr/bin/sha256sum /etc/passwd"; do
		# shellcheck disable=SC2086 # the command's words
		chroot "$rootfs" $check >/dev/null 2>"$work/check.err" || die "'$check' fails in the image: $(cat "$work/check.err")"
	done

	spec="$work/spec.json"
	jq -n --arg root "$rootfs" --arg goarch "$arch" \
		--arg version "$(grep '^frr=' <<<"$list" | cut -d= -f2)" --arg ref "$(image_ref)" '{
		created: "1970-01-01T00:00:00Z", mtime: 0,
		labels: {
			"org.opencontainers.image.title": "frr",
			"org.opencontainers.image.description": ("Debian FRR packages, the local cluster'"'"'s stand-in for " + $ref),
			"org.opencontainers.image.version": $version},
		platforms: [{os: "linux", architecture: $goarch,
			layers: [[{path: "", tree: $root}]],
			config: {User: "0:0", Entrypoint: ["/bin/bash"], WorkingDir: "/",
			         Env: ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/usr/lib/frr"]}}]}' >"$spec"
	digest="$(python3 "$root/hack/images/oci.py" "$spec" "$work/layout")"
	echo "$digest" >"$work/digest"
	echo "$key" >"$work/key"
	echo "$list" >"$work/packages.txt"
	echo "$digest"
}

push() {
	local digest ref have
	digest="$(build)"
	ref="$registry/$(image_ref)"
	[[ -x "$crane" ]] || die "$crane not found: run hack/install-deps.sh"
	have="$("$crane" digest --insecure "$ref" 2>/dev/null || true)"
	if [[ "$have" != "$digest" ]]; then
		"$crane" push --insecure "$work/layout" "$ref" >/dev/null 2>"$work/push.err" || die "pushing $ref failed: $(cat "$work/push.err")"
	fi
	echo "frr-image: $ref -> $digest ($(grep '^frr=' "$work/packages.txt"))"
}

case "${1:-push}" in
build) build ;;
push) push ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
