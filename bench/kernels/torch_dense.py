#!/usr/bin/env python3
"""Times the dense ResNet-101 bottleneck blocks (BatchNorm folded into conv biases, NHWC via
channels_last) and the whole dense ResNet-101 forward with PyTorch/cuDNN, for the same shapes,
batches and precisions as bench_kernels. Medians of CUDA-event-timed runs after warm-up. The
network, its stem and its head are also timed as CUDA graphs (torch.cuda.CUDAGraph, replayed on
a fixed input), so that the batch-1 comparison is not one of launch overheads.
  python3 torch_dense.py --out torch.json [--batches 1,128] [--precisions fp32,tf32]"""
import argparse
import json
import os
import statistics

import torch
from torch import nn

BLOCKS = [  # name, stage, count, H, Cin, Cmid, Cout, stride
    ("layer1.0", 1, 1, 56, 64, 64, 256, 1), ("layer1.x", 1, 2, 56, 256, 64, 256, 1),
    ("layer2.0", 2, 1, 56, 256, 128, 512, 2), ("layer2.x", 2, 3, 28, 512, 128, 512, 1),
    ("layer3.0", 3, 1, 28, 512, 256, 1024, 2), ("layer3.x", 3, 22, 14, 1024, 256, 1024, 1),
    ("layer4.0", 4, 1, 14, 1024, 512, 2048, 2), ("layer4.x", 4, 2, 7, 2048, 512, 2048, 1),
]


class Bottleneck(nn.Module):
    def __init__(self, cin, cmid, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cmid, 1, bias=True)
        self.conv2 = nn.Conv2d(cmid, cmid, 3, stride=stride, padding=1, bias=True)
        self.conv3 = nn.Conv2d(cmid, cout, 1, bias=True)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride, bias=True)
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.relu(self.conv2(y))
        y = self.conv3(y)
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(y + s)


def resnet101():
    layers = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    for name, _stage, count, _h, cin, cmid, cout, stride in BLOCKS:
        if name.endswith(".0"):
            layers.append(Bottleneck(cin, cmid, cout, stride))
        else:
            layers += [Bottleneck(cin, cmid, cout, 1) for _ in range(count)]
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000))
    return nn.Sequential(*layers), head


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


def graph_ms(fn, x, runs, warmup):
    """Median of CUDA-event-timed replays of fn(x) captured as one CUDA graph (fixed input)."""
    static_x = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # cudnn.benchmark's choices and the allocator settle before capture
            fn(static_x)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn(static_x)
    return time_ms(lambda _: g.replay(), [None], max(runs, 20), warmup)


def inputs_for(shape, budget=100e6):
    n = max(1, min(32, int(budget // (4 * shape[0] * shape[1] * shape[2] * shape[3])) + 1))
    return [torch.rand(shape, device="cuda").mul_(2).sub_(1).contiguous(
        memory_format=torch.channels_last) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="torch.json")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--precisions", default="fp32,tf32")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "runs": a.runs, "results": []}
    for prec in a.precisions.split(","):
        tf32 = prec == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for batch in [int(b) for b in a.batches.split(",")]:
            with torch.no_grad():
                for name, stage, count, h, cin, cmid, cout, stride in BLOCKS:
                    blk = Bottleneck(cin, cmid, cout, stride).cuda().eval().to(
                        memory_format=torch.channels_last)
                    t = time_ms(blk, inputs_for((batch, cin, h, h)), a.runs, a.warmup)
                    res["results"].append({"kind": "block", "block": name, "stage": stage,
                                           "count": count, "batch": batch, "precision": prec,
                                           "total_ms": t})
                    print(f"torch {name:9s} n={batch:<3d} {prec} dense {t:8.3f} ms", flush=True)
                body, head = resnet101()
                body = body.cuda().eval().to(memory_format=torch.channels_last)
                head = head.cuda().eval()
                net = lambda x: head(body(x))
                stem = nn.Sequential(*list(body)[:3])
                x = inputs_for((batch, 3, 224, 224))
                t_net = time_ms(net, x, a.runs, a.warmup)
                t_stem = time_ms(stem, x, a.runs, a.warmup)
                feat = [torch.rand((batch, 2048, 7, 7), device="cuda").contiguous(
                    memory_format=torch.channels_last)]
                t_head = time_ms(head, feat, a.runs, a.warmup)
                g_net = graph_ms(net, x[0], a.runs, a.warmup)
                g_stem = graph_ms(stem, x[0], a.runs, a.warmup)
                g_head = graph_ms(head, feat[0], a.runs, a.warmup)
                res["results"].append({"kind": "network", "batch": batch, "precision": prec,
                                       "total_ms": t_net, "stem_ms": t_stem, "head_ms": t_head,
                                       "graph_ms": g_net, "stem_graph_ms": g_stem,
                                       "head_graph_ms": g_head})
                print(f"torch resnet101 n={batch:<3d} {prec} {t_net:8.3f} ms "
                      f"(stem {t_stem:.3f}, head {t_head:.3f}); CUDA graph {g_net:.3f} ms "
                      f"(stem {g_stem:.3f}, head {g_head:.3f})", flush=True)
                del body, head
                torch.cuda.empty_cache()
    tmp = a.out + ".tmp"  # temp file + rename: a reader never sees half a file
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
