#!/usr/bin/env python3
"""Compares our generated CRDs (manifests/crd) with MetalLB's (config/crd/bases of a MetalLB
git checkout, at a tag) and prints every difference: property paths present on one side only,
per-field schema details (type, default, enum, bounds, format, pattern, lengths, required),
CEL rules, and scope / names / versions / printer columns. docs/api-compatibility.md records
the result.

    hack/api-compat.py METALLB_GIT_DIR [TAG]      (TAG defaults to the newest v* tag)

Needs python3-yaml. Reads only; writes nothing.
"""

import glob
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETAILS = ["type", "default", "enum", "minimum", "maximum", "format", "pattern", "maxLength", "minLength",
           "maxItems", "minItems", "x-kubernetes-int-or-string", "nullable"]


def walk(schema, prefix, fields, rules):
    for rule in schema.get("x-kubernetes-validations", []):
        rules.add((prefix, rule.get("rule")))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        detail = {k: sub[k] for k in DETAILS if k in sub}
        if name in schema.get("required", []):
            detail["required"] = True
        fields[path] = detail
        if sub.get("type") == "array" and "items" in sub:
            fields[path + "[]"] = {k: sub["items"][k] for k in DETAILS if k in sub["items"]}
            walk(sub["items"], path + "[]", fields, rules)
        else:
            walk(sub, path, fields, rules)


def load(text):
    kinds = {}
    for doc in yaml.safe_load_all(text):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        names = doc["spec"]["names"]
        versions = {}
        for v in doc["spec"]["versions"]:
            fields, rules = {}, set()
            walk(v["schema"]["openAPIV3Schema"], "", fields, rules)
            fields = {p: d for p, d in fields.items() if not p.startswith(("metadata", "apiVersion", "kind"))}
            meta = (v["served"], v["storage"], [c["name"] for c in v.get("additionalPrinterColumns", [])],
                    "status" in v.get("subresources", {}))
            versions[v["name"]] = (fields, rules, meta)
        kinds[names["kind"]] = (doc["spec"]["scope"], names.get("shortNames"), names.get("categories"), versions)
    return kinds


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    repo = sys.argv[1]
    git = ["git", "-C", repo]
    tag = sys.argv[2] if len(sys.argv) > 2 else subprocess.run(
        git + ["tag", "--list", "v*", "--sort=-v:refname"], capture_output=True, text=True, check=True).stdout.split()[0]
    theirs = {}
    files = subprocess.run(git + ["ls-tree", "--name-only", tag, "config/crd/bases/"], capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        theirs.update(load(subprocess.run(git + ["show", f"{tag}:{f}"], capture_output=True, text=True,
                                          check=True).stdout))
    ours = {}
    for f in glob.glob(os.path.join(ROOT, "manifests/crd/metallb.io_*.yaml")):
        ours.update(load(open(f).read()))
    print(f"MetalLB {tag}: {len(theirs)} kinds")
    differences = 0

    def say(text):
        nonlocal differences
        differences += 1
        print(text)

    for kind in sorted(set(theirs) | set(ours)):
        if kind not in ours:
            say(f"{kind}: missing here")
            continue
        if kind not in theirs:
            print(f"{kind}: ours only")
            continue
        (t_scope, t_short, t_cat, t_versions), (o_scope, o_short, o_cat, o_versions) = theirs[kind], ours[kind]
        if (t_scope, t_short, t_cat) != (o_scope, o_short, o_cat):
            say(f"{kind}: scope/names MetalLB {(t_scope, t_short, t_cat)} ours {(o_scope, o_short, o_cat)}")
        if list(t_versions) != list(o_versions):
            say(f"{kind}: versions MetalLB {list(t_versions)} ours {list(o_versions)}")
        for version in sorted(set(t_versions) | set(o_versions)):
            if version not in o_versions or version not in t_versions:
                say(f"{kind} {version}: served by one side only")
                continue
            (t_fields, t_rules, t_meta), (o_fields, o_rules, o_meta) = t_versions[version], o_versions[version]
            if t_meta != o_meta:
                say(f"{kind} {version}: served/storage/columns/status MetalLB {t_meta} ours {o_meta}")
            for path in sorted(set(t_fields) - set(o_fields)):
                say(f"{kind} {version} {path}: MetalLB only {json.dumps(t_fields[path])}")
            for path in sorted(set(o_fields) - set(t_fields)):
                say(f"{kind} {version} {path}: ours only {json.dumps(o_fields[path])}")
            for path in sorted(set(t_fields) & set(o_fields)):
                if t_fields[path] != o_fields[path]:
                    say(f"{kind} {version} {path}: MetalLB {json.dumps(t_fields[path])} ours {json.dumps(o_fields[path])}")
            for path, _ in sorted(t_rules - o_rules, key=str):
                if path not in {p for p, _ in o_rules}:
                    say(f"{kind} {version} {path}: CEL rule of MetalLB's with none here")
    print(f"{differences} differences")


if __name__ == "__main__":
    main()
