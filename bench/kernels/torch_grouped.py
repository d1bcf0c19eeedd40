#!/usr/bin/env python3
"""PyTorch/cuDNN baseline for bench_grouped: the dense conv2 (3x3, groups, stride, pad 1, bias;
no ReLU, which PyTorch would run as a second kernel) of the RegNetY-400MF/800MF and MobileNetV2 stage blocks, NHWC (channels_last), fp32
(tf32 off), batch 1 and 128. Median of CUDA-event-timed runs after warm-up, inputs rotated so
that together they exceed the L2. Written with temp file + rename.
  python3 torch_grouped.py --out torch_grouped.json [--batches 1,128] [--runs 50]"""
import argparse
import json
import os
import statistics

import torch
import torch.nn.functional as F

# net, block, H (conv2 input), Cmid, stride, group width (1: depthwise); as bench_grouped.cpp.
CONVS = [
    ("regnety_400mf", "s1.0", 112, 48, 2, 8), ("regnety_400mf", "s2.0", 56, 104, 2, 8),
    ("regnety_400mf", "s2.x", 28, 104, 1, 8), ("regnety_400mf", "s3.0", 28, 208, 2, 8),
    ("regnety_400mf", "s3.x", 14, 208, 1, 8), ("regnety_400mf", "s4.0", 14, 440, 2, 8),
    ("regnety_400mf", "s4.x", 7, 440, 1, 8),
    ("regnety_800mf", "s1.0", 112, 64, 2, 16), ("regnety_800mf", "s2.0", 56, 128, 2, 16),
    ("regnety_800mf", "s2.x", 28, 128, 1, 16), ("regnety_800mf", "s3.0", 28, 320, 2, 16),
    ("regnety_800mf", "s3.x", 14, 320, 1, 16), ("regnety_800mf", "s4.0", 14, 768, 2, 16),
    ("regnety_800mf", "s4.x", 7, 768, 1, 16),
    ("mobilenetv2", "b1.0", 112, 32, 1, 1), ("mobilenetv2", "b2.0", 112, 96, 2, 1),
    ("mobilenetv2", "b2.x", 56, 144, 1, 1), ("mobilenetv2", "b3.0", 56, 144, 2, 1),
    ("mobilenetv2", "b3.x", 28, 192, 1, 1), ("mobilenetv2", "b4.0", 28, 192, 2, 1),
    ("mobilenetv2", "b4.x", 14, 384, 1, 1), ("mobilenetv2", "b5.0", 14, 384, 1, 1),
    ("mobilenetv2", "b5.x", 14, 576, 1, 1), ("mobilenetv2", "b6.0", 14, 576, 2, 1),
    ("mobilenetv2", "b6.x", 7, 960, 1, 1), ("mobilenetv2", "b7.0", 7, 960, 1, 1),
]


def time_ms(fn, inputs, runs, warmup):
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    torch.cuda.synchronize()
    start = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    end = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for i in range(runs):
        start[i].record()
        fn(inputs[i % len(inputs)])
        end[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(start, end))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="torch_grouped.json")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "precision": "fp32", "runs": a.runs,
           "results": []}
    with torch.no_grad():
        for batch in [int(b) for b in a.batches.split(",")]:
            for net, block, h, c, stride, gw in CONVS:
                groups = c // gw
                w = torch.rand((c, gw, 3, 3), device="cuda").mul_(2).sub_(1).contiguous(
                    memory_format=torch.channels_last)
                b = torch.rand((c,), device="cuda")
                n_in = max(1, min(32, int(100e6 // (4 * batch * c * h * h)) + 1))
                xs = [torch.rand((batch, c, h, h), device="cuda").mul_(2).sub_(1).contiguous(
                    memory_format=torch.channels_last) for _ in range(n_in)]
                conv = lambda x: F.conv2d(x, w, b, stride=stride, padding=1, groups=groups)
                t_conv = time_ms(conv, xs, a.runs, a.warmup)
                res["results"].append({"net": net, "block": block, "batch": batch,
                                       "conv2_ms": t_conv})
                print(f"torch {net:14s} {block:5s} n={batch:<3d} conv2 {t_conv:8.4f} ms",
                      flush=True)
                del xs
                torch.cuda.empty_cache()
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
