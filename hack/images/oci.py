#!/usr/bin/env python3
"""Writes a multi-platform OCI image as an OCI image layout, deterministically.

    oci.py SPEC.json OUT_DIR        prints the digest of the image index

SPEC (JSON) describes one image index:

    {
      "created": "2026-12-05T23:00:00Z",          # every timestamp in the image (the commit's)
      "mtime": 1796511600,                         # file times in the layers (the same instant)
      "labels": {"org.opencontainers.image.source": "...", ...},
      "platforms": [
        {"os": "linux", "architecture": "arm64", "variant": "v8",
         "layers": [[{"path": "usr/local/bin/x", "source": "/path/to/file", "mode": 493},
                     {"path": "tmp", "dir": true, "mode": 1023},
                     {"path": "bin/sh", "symlink": "bash"},
                     {"path": "", "tree": "/path/to/rootfs"}]],
         "config": {"User": "65534:65534", "Entrypoint": ["/usr/local/bin/x"]}}
      ]
    }

A `tree` entry stands for every directory, regular file and symbolic link below a directory of
this machine, at `path` in the layer, with its permission bits (owners and times are ours, as for
every entry); a hard link becomes a copy.

OUT_DIR becomes an OCI image layout (`oci-layout`, `index.json` naming the image index,
`blobs/sha256/`) that `crane push OUT_DIR REF` pushes as it is, so the digest printed here is the
digest in the registry.

Why our own writer and not `crane append`/`mutate`: every byte is decided here, so the same
inputs give the same digests on any machine with the same zlib: layers are tar archives with
entries sorted by path, parent directories listed, owner 0:0 with no user or group names, one
fixed mtime, no extended headers; gzip streams carry no file name and mtime 0; JSON is written
with sorted keys and no spaces; the labels go into each image config and, as annotations, onto
the index.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    """An OCI image layout being written: content-addressed blobs under blobs/sha256."""

    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def blob(self, data, media_type, annotations=None, platform=None):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = os.path.join(self.root, "blobs", "sha256", digest[len("sha256:"):])
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        descriptor = {"mediaType": media_type, "digest": digest, "size": len(data)}
        if annotations:
            descriptor["annotations"] = annotations
        if platform:
            descriptor["platform"] = platform
        return descriptor

    def finish(self, index_descriptor):
        with open(os.path.join(self.root, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                    "manifests": [index_descriptor]}))


def expand_tree(entry):
    """The entries of a `tree` entry: everything below its directory, in no particular order."""
    top, prefix = entry["tree"], entry["path"].strip("/")
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            source = os.path.join(dirpath, name)
            rel = os.path.relpath(source, top)
            path = f"{prefix}/{rel}" if prefix else rel
            st = os.lstat(source)
            mode = st.st_mode & 0o7777
            if os.path.islink(source):
                yield {"path": path, "symlink": os.readlink(source)}
            elif os.path.isdir(source):
                yield {"path": path, "dir": True, "mode": mode}
            elif os.path.isfile(source):
                yield {"path": path, "source": source, "mode": mode}
            else:
                raise SystemExit(f"oci.py: {source} is neither a file, a directory nor a link")


def layer_tar(entries, mtime):
    """A tar archive of `entries`, sorted, with their parent directories, owned by 0:0."""
    items = {}
    flat = []
    for entry in entries:
        flat.extend(expand_tree(entry) if "tree" in entry else [entry])
    for entry in flat:
        path = entry["path"].strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            items.setdefault("/".join(parts[:i]), {"dir": True, "mode": 0o755})
        if path in items and not items[path].get("dir"):
            raise SystemExit(f"oci.py: {path} is listed twice")
        items[path] = entry
    out = io.BytesIO()
    # USTAR: no PAX headers (they would carry times and names of their own); every path here is
    # short enough.
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(items):
            entry = items[path]
            info = tarfile.TarInfo(path)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            info.mode = entry.get("mode", 0o755 if entry.get("dir") else 0o644)
            if entry.get("dir"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif "symlink" in entry:
                info.type = tarfile.SYMTYPE
                info.linkname = entry["symlink"]
                info.mode = 0o777
                tar.addfile(info)
            else:
                with open(entry["source"], "rb") as f:
                    data = f.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gzip_bytes(data):
    # mtime=0 and no file name: the stream depends only on the data (and zlib's version).
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def build(spec, root):
    layout = Layout(root)
    created = spec["created"]
    labels = spec.get("labels", {})
    manifests = []
    for plat in spec["platforms"]:
        layer_descriptors, diff_ids = [], []
        for entries in plat["layers"]:
            tar = layer_tar(entries, spec["mtime"])
            diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
            layer_descriptors.append(layout.blob(gzip_bytes(tar), MEDIA_LAYER))
        platform = {"architecture": plat["architecture"], "os": plat["os"]}
        if plat.get("variant"):
            platform["variant"] = plat["variant"]
        config = dict(plat.get("config", {}))
        if labels:
            config["Labels"] = labels
        image_config = dict(platform)
        image_config.update({
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": created, "created_by": "hack/images.sh"}
                        for _ in diff_ids],
        })
        config_descriptor = layout.blob(canonical_json(image_config), MEDIA_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                    "config": config_descriptor, "layers": layer_descriptors}
        manifests.append(layout.blob(canonical_json(manifest), MEDIA_MANIFEST, platform=platform))
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}
    if labels:
        index["annotations"] = labels
    index_descriptor = layout.blob(canonical_json(index), MEDIA_INDEX)
    layout.finish(index_descriptor)
    return index_descriptor["digest"]


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        spec = json.load(f)
    print(build(spec, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
