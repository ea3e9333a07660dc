#!/usr/bin/env python3
"""Writes the SPDX 2.3 (JSON) software bill of materials of one image, without the network.

Rust components: what each binary of the image links, per platform.

    sbom.py rust --name metallb-speaker --version v0.1.0 --created 2026-12-05T23:00:00Z \
        --source https://github.com/metallb-rs/metallb-rs --revision SHA \
        --binary linux/amd64=x86_64-unknown-linux-musl=target/.../metallb-speaker \
        --binary linux/arm64=aarch64-unknown-linux-musl=target/.../metallb-speaker

  For each binary, `cargo tree -p NAME --target TRIPLE -e normal,no-proc-macro` (offline, locked)
  lists the packages compiled into it: normal dependencies only, with the features cargo resolves
  for that package alone, without proc-macros and build scripts, which run at build time and are
  not linked. Checksums come from Cargo.lock.

Go binaries (opm in the catalog image): the modules recorded in the binary's build information.

    sbom.py go --name metallb-rs-operator-catalog ... --binary linux/amd64=.local/bin/opm

  `go version -m BINARY` lists the main module and every module linked, with go.sum hashes.

The document is deterministic: packages and relationships are sorted, the creation time is the
commit's, and the namespace is derived from the content.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spdx_id(*parts):
    # SPDX identifiers: letters, digits, '.' and '-'.
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", "-".join(parts))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def spdx_license(expression):
    """Cargo's license field as an SPDX expression: the legacy `MIT/Apache-2.0` means OR."""
    if not expression:
        return "NOASSERTION"
    return " OR ".join(part.strip() for part in expression.split("/"))


def lock_checksums():
    with open(os.path.join(ROOT, "Cargo.lock"), "rb") as f:
        lock = tomllib.load(f)
    return {(p["name"], p["version"]): p.get("checksum") for p in lock["package"]}


TREE_LINE = re.compile(r"^(?P<name>\S+) v(?P<version>\S+)(?: \((?P<path>[^)]*)\))?\t(?P<license>.*?)(?: \(\*\))?$")


def rust_packages(name, triple):
    """(name, version, license, is_workspace) of every package linked into NAME for TRIPLE."""
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--offline", "-p", name, "--target", triple,
         "-e", "normal,no-proc-macro", "--prefix", "none", "-f", "{p}\t{l}"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = TREE_LINE.match(line)
        if not m:
            raise SystemExit(f"sbom.py: cannot read cargo tree line {line!r}")
        key = (m["name"], m["version"])
        found[key] = (m["name"], m["version"], m["license"], m["path"] is not None)
    return sorted(found.values())


def go_modules(binary):
    """(path, version, go.sum hash) of the main module and every module linked into BINARY."""
    out = subprocess.run(["go", "version", "-m", binary], check=True, capture_output=True,
                         text=True).stdout
    modules = []
    for line in out.splitlines():
        fields = line.strip().split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            modules.append((fields[1], fields[2], fields[3] if len(fields) > 3 else None))
        elif fields[0] == "=>":
            # A replaced module: the replacement is what was linked.
            modules[-1] = (fields[1], fields[2], fields[3] if len(fields) > 3 else None)
    return sorted(set(modules))


def document(args, binaries, describe):
    """binaries: [(platform, path, [package dicts])]; describe: a package dict per dependency."""
    image_id = spdx_id("Image", args.name)
    packages = {
        image_id: {
            "SPDXID": image_id,
            "name": args.name,
            "versionInfo": args.version,
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": "CONTAINER",
            "supplier": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "filesAnalyzed": False,
        }
    }
    relationships = [("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    for platform, path, deps in binaries:
        binary_id = spdx_id("Binary", os.path.basename(path), platform)
        packages[binary_id] = {
            "SPDXID": binary_id,
            "name": f"{os.path.basename(path)} ({platform})",
            "versionInfo": args.version,
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": "APPLICATION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": sha256_file(path)}],
            "supplier": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "filesAnalyzed": False,
        }
        relationships.append((image_id, "CONTAINS", binary_id))
        for dep in deps:
            package = describe(dep)
            packages[package["SPDXID"]] = package
            relationships.append((binary_id, "STATIC_LINK", package["SPDXID"]))
    body = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{args.name} {args.version}",
        "creationInfo": {
            "created": args.created,
            "creators": ["Tool: metallb-rs hack/images/sbom.py", "Organization: metallb-rs"],
        },
        "packages": [packages[k] for k in sorted(packages)],
        "relationships": [
            {"spdxElementId": a, "relationshipType": t, "relatedSpdxElement": b}
            for a, t, b in sorted(set(relationships))
        ],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    body["documentNamespace"] = f"{args.source}/spdx/{args.name}-{args.version}-{digest}"
    return body


def rust(args):
    checksums = lock_checksums()
    binaries = []
    for spec in args.binary:
        platform, triple, path = spec.split("=", 2)
        binaries.append((platform, path, rust_packages(os.path.basename(path), triple)))

    def describe(dep):
        name, version, license, workspace = dep
        package = {
            "SPDXID": spdx_id("Crate", name, version),
            "name": name,
            "versionInfo": version,
            "supplier": "NOASSERTION",
            "licenseConcluded": spdx_license(license),
            "licenseDeclared": spdx_license(license),
            "copyrightText": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "LIBRARY",
        }
        if workspace:
            # This repository's own crates, at the image's commit.
            package["downloadLocation"] = f"git+{args.source}@{args.revision}"
        else:
            package["downloadLocation"] = "NOASSERTION"
            package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER",
                                        "referenceType": "purl",
                                        "referenceLocator": f"pkg:cargo/{name}@{version}"}]
            checksum = checksums.get((name, version))
            if checksum:
                package["checksums"] = [{"algorithm": "SHA256", "checksumValue": checksum}]
        return package

    return document(args, binaries, describe)


def go(args):
    binaries = []
    for spec in args.binary:
        platform, path = spec.split("=", 1)
        binaries.append((platform, path, go_modules(path)))

    def describe(module):
        path, version, _sum = module
        return {
            "SPDXID": spdx_id("GoModule", path, version),
            "name": path,
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "supplier": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": f"pkg:golang/{path}@{version}"}],
        }

    return document(args, binaries, describe)


def main():
    parser = argparse.ArgumentParser(description="SPDX SBOM of one image")
    parser.add_argument("kind", choices=["rust", "go"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--created", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--binary", action="append", required=True)
    args = parser.parse_args()
    sbom = rust(args) if args.kind == "rust" else go(args)
    json.dump(sbom, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
