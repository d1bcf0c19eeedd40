#!/usr/bin/env python3
"""Markdown table of bench_grouped's JSON (old direct kernel vs depthwise/grouped kernels, with
floors) beside torch_grouped.py's cuDNN times of the same dense conv2.
  python3 summarize_grouped.py grouped.json [torch_grouped.json] > summary.md"""
import json
import sys


def main():
    g = json.load(open(sys.argv[1]))
    torch = {}
    if len(sys.argv) > 2:
        t = json.load(open(sys.argv[2]))
        torch = {(r["net"], r["block"], r["batch"]): r["conv2_ms"] for r in t["results"]}
    print(f"Device {g['device']}, fp32, medians of {g['runs']} CUDA-event-timed runs after "
          f"{g['warmup']} warm-up runs; floors = max(bytes / 2975 GB/s, FLOPs / 51.4 TFLOP/s) "
          "(block floor: sum over its steps). Dynamic: density 0.5 at the spec's S, "
          "masker+gather+scatter with cuBLASLt conv1 (m+g+s Lt: conv2 reads conv1's map through the "
          "active-patch rows) and gather+scatter (g+s: conv2 reads the gathered halo rows). cuDNN: PyTorch F.conv2d (bias, no ReLU), dense only.\n")
    print("| net | block | batch | mode | new kernel | conv2 old ms | conv2 new ms | speedup | "
          "conv2 floor ms | new/floor | cuDNN conv2 ms | block old ms | block new ms | "
          "block floor ms |")
    print("|" + "---|" * 14)
    speed = {}
    for r in g["results"]:
        c, b = r["conv2"], r["whole_block"]
        s = ""
        if r["mode"] == "dynamic":
            form = "m+g+s Lt" if r["fusion"].endswith("(cuBLASLt conv1)") else "g+s"
            s = f"S={r['granularity']} {form}"
        tc = torch.get((r["net"], r["block"], r["batch"])) if r["mode"] == "dense" else None
        print(f"| {r['net']} | {r['block']} | {r['batch']} | {r['mode']} {s} | "
              f"{c['new_kernel']} | {c['old_ms']:.4f} | {c['new_ms']:.4f} | "
              f"{c['speedup']:.2f}x | {c['floor_ms']:.4f} | {c['new_over_floor']:.2f} | "
              f"{'' if tc is None else f'{tc:.4f}'} | {b['old_ms']:.4f} | {b['new_ms']:.4f} | "
              f"{b['floor_ms']:.4f} |")
        key = (r["net"], r["batch"], r["mode"] if r["mode"] == "dense" else s.split(" ", 1)[1])
        speed.setdefault(key, []).append((c["speedup"], c["new_over_floor"]))
    print("\n| net | batch | mode | conv2 speedup (min-max) | new conv2 / floor (min-max) |")
    print("|---|---|---|---|---|")
    for (net, batch, mode), v in speed.items():
        sp = [x[0] for x in v]
        fl = [x[1] for x in v]
        print(f"| {net} | {batch} | {mode} | {min(sp):.2f}-{max(sp):.2f}x | "
              f"{min(fl):.2f}-{max(fl):.2f} |")


if __name__ == "__main__":
    main()
