#!/usr/bin/env python3
"""Merge lasnet measurement files (calibrate/validate --save-measurements) into one.

Usage: merge_measurements.py OUT FIRST [MORE...]
The header (device, kernels version, sampling) is FIRST's; blocks are taken in file order and a
key already taken is skipped, so FIRST's timing of a configuration wins. Every file must be a
lasnet.measurements of one kernels version (a fit across kernel versions would mix what it
measures). OUT is written whole (temp file, then rename).
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: {e}")
    if data.get("schema") != "lasnet.measurements" or not isinstance(data.get("blocks"), list):
        sys.exit(f"{path}: not a lasnet.measurements file (schema, blocks)")
    return data


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    merged = load(paths[0])
    seen = {b["key"] for b in merged["blocks"]}
    for path in paths[1:]:
        data = load(path)
        if data.get("kernels_version") != merged.get("kernels_version"):
            sys.exit(f"{path}: kernels version {data.get('kernels_version')} differs from "
                     f"{paths[0]}'s {merged.get('kernels_version')}")
        for b in data["blocks"]:
            if b["key"] not in seen:
                seen.add(b["key"])
                merged["blocks"].append(b)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=1)
    os.replace(tmp, out)
    print(f"{out}: {len(merged['blocks'])} block configurations from {len(paths)} files")


if __name__ == "__main__":
    main()
