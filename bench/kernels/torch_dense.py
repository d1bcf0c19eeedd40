#!/usr/bin/env python3
"""The PyTorch baseline a user would pick, beside bench_kernels: the dense ResNet-101 bottleneck
blocks and the whole dense ResNet-101 forward (stem + 33 blocks + head, BatchNorm folded into
the conv biases), per precision (fp32, tf32, fp16, bf16) and batch, each timed as

  eager_nchw, eager_channels_last      the module called from Python (cuDNN, cudnn.benchmark on)
  graph_nchw, graph_channels_last      the same forward captured as one torch.cuda.CUDAGraph
  compiled_<mode>, compiled_<mode>_graph  torch.compile(mode) in the faster eager layout, called
                                       from Python and captured as a CUDA graph by us

Every time is the median (and p10 / p90) of --runs CUDA-event-timed runs after --warmup runs,
with the L2 flushed before each run (a write of twice its size, outside the event pair) and the
inputs rotated among fresh random copies (a graph's static input is refilled, also outside).
Per entry: the faster layout, "best eager" (what cuDNN gives without a graph or a compiler) and
the user's pick (the fastest variant of all), and the floor: FLOPs / peak, bytes / bandwidth and
their per-step roofline sum, from a hardware profile (--hw) or this script's own measurements.

The eager and graph variants of every entry come first; torch.compile runs after them, in the
order a user deploying would care about (the networks in fp16, bf16, tf32, fp32, large batches
first, then the blocks), as long as --deadline-s allows; a compile that fails is recorded with
its error, and the rest of the run goes on. The JSON is rewritten after every entry, so a run cut
off keeps what it measured.
  python3 torch_dense.py --out torch.json [--batches 1,128] [--precisions fp32,tf32,fp16,bf16]
      [--runs 50] [--warmup 10] [--hw hardware_profiles/h100.json] [--compile-modes MODES]
      [--deadline-s 280] [--quick]
  python3 torch_dense.py --self-test      (CPU only: BN folding, floors, percentiles, picks)"""
import argparse
import json
import math
import os
import statistics
import sys
import threading
import time

import torch
from torch import nn

BLOCKS = [  # name, stage, count, H, Cin, Cmid, Cout, stride
    ("layer1.0", 1, 1, 56, 64, 64, 256, 1), ("layer1.x", 1, 2, 56, 256, 64, 256, 1),
    ("layer2.0", 2, 1, 56, 256, 128, 512, 2), ("layer2.x", 2, 3, 28, 512, 128, 512, 1),
    ("layer3.0", 3, 1, 28, 512, 256, 1024, 2), ("layer3.x", 3, 22, 14, 1024, 256, 1024, 1),
    ("layer4.0", 4, 1, 14, 1024, 512, 2048, 2), ("layer4.x", 4, 2, 7, 2048, 512, 2048, 1),
]
QUICK_BLOCKS = ("layer1.0", "layer3.x")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}
LAYOUTS = ("nchw", "channels_last")
# torch.compile modes, cheapest first. "default" captured in a CUDA graph by this script is what
# "reduce-overhead" gives (inductor's kernels replayed as one graph) and is what a user deploying
# tries first; "max-autotune-no-cudagraphs" adds inductor's GEMM/conv autotuning (PyTorch's mode
# for the fastest model, minutes of compile) and again leaves the graph to this script, so that
# one compile yields both the Python-launched and the graphed forward (docs/kernels.md).
DEFAULT_COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")  # inductor captures these itself
# Guesses of one compile's seconds before one of its kind and mode is measured (cold caches).
FIRST_COMPILE_GUESS_S = {"network": 60.0, "block": 10.0}
AUTOTUNE_GUESS_FACTOR = 3.0  # max-autotune* modes


def compile_guess_s(kind, mode):
    return FIRST_COMPILE_GUESS_S[kind] * (AUTOTUNE_GUESS_FACTOR if "autotune" in mode else 1.0)


def compile_tasks(results, modes, quick):
    """(entry, mode) in the order a user deploying cares about, so that a deadline cuts the
    least useful: the networks before the blocks; the cheapest mode first; large batches
    first; fp16 (the user's pick on tensor cores), tf32 (ours' fastest), bf16, fp32."""
    rank = {p: i for i, p in enumerate(("fp16", "tf32", "bf16", "fp32"))}
    todo = [(e, i, m) for e in results if (e["kind"] == "network" or not quick)
            and "error" not in e for i, m in enumerate(modes)]
    todo.sort(key=lambda t: (t[0]["kind"] != "network", t[1], -t[0]["batch"],
                             rank[t[0]["precision"]]))
    return [(e, m) for e, _, m in todo]


# ---- the pure parts: costs, floors, statistics, picks (tested on the CPU by --self-test) ----

def block_steps(batch, h, cin, cmid, cout, stride, esize):
    """(name, FLOPs, fewest DRAM bytes) per step of a bias-conv bottleneck, counted as
    kernels/src/runner.cu counts ours: each step reads its inputs once and writes its output
    once; the residual is read by conv3's epilogue; a strided shortcut reads only the pixels it
    samples; biases are left out."""
    ho = (h - 1) // stride + 1
    px_in, px_out = batch * h * h, batch * ho * ho
    steps = [("conv1", 2.0 * px_in * cin * cmid, esize * (px_in * cin + cin * cmid + px_in * cmid)),
             ("conv2", 2.0 * px_out * 9 * cmid * cmid,
              esize * (px_in * cmid + 9 * cmid * cmid + px_out * cmid))]
    if stride != 1 or cin != cout:
        steps.append(("shortcut", 2.0 * px_out * cin * cout,
                      esize * (px_out * cin + cin * cout + px_out * cout)))
    steps.append(("conv3", 2.0 * px_out * cmid * cout,
                  esize * (px_out * cmid + cmid * cout + 2 * px_out * cout)))
    return steps


def image_shape():
    """(C, H, W) of the network's input: the stem quarters the map the first block reads."""
    return (3, 4 * BLOCKS[0][3], 4 * BLOCKS[0][3])


def feature_shape():
    """(C, H, W) the head reads: the last block's output."""
    _name, _stage, _count, h, _cin, _cmid, cout, stride = BLOCKS[-1]
    return (cout, (h - 1) // stride + 1, (h - 1) // stride + 1)


def stem_steps(batch, esize):
    """conv 7x7/2 (3 -> 64, 224 -> 112) + ReLU, then max-pool 3x3/2 (112 -> 56); the pool's
    comparisons are not counted as FLOPs."""
    c, hi, _ = image_shape()
    ho, cs = hi // 2, BLOCKS[0][4]
    px = batch * ho * ho
    return [("stem.conv", 2.0 * px * cs * c * 49,
             esize * (batch * hi * hi * c + 49 * c * cs + px * cs)),
            ("stem.pool", 0.0, esize * (px * cs + batch * (ho // 2) ** 2 * cs))]


def head_steps(batch, esize, classes=1000):
    """global average pool (2048 x 7 x 7) and the 2048 -> 1000 classifier."""
    c, h, w = feature_shape()
    return [("head.pool", 0.0, esize * (batch * h * w * c + batch * c)),
            ("head.fc", 2.0 * batch * c * classes,
             esize * (batch * c + c * classes + batch * classes))]


def network_steps(batch, esize):
    steps = stem_steps(batch, esize)
    for name, _stage, count, h, cin, cmid, cout, stride in BLOCKS:
        for i in range(count):
            steps += [(f"{name}[{i}].{s}", f, b)
                      for s, f, b in block_steps(batch, h, cin, cmid, cout, stride, esize)]
    return steps + head_steps(batch, esize)


def floor_of(steps, peak_flops_per_s, bandwidth_bytes_per_s):
    """The floor of an entry: all FLOPs at the peak, all bytes at the bandwidth, and the
    roofline sum (per step the larger of the two), which no implementation of these steps as
    separate kernels beats."""
    flops = sum(f for _, f, _ in steps)
    nbytes = sum(b for _, _, b in steps)
    roof = sum(max(f / peak_flops_per_s, b / bandwidth_bytes_per_s) for _, f, b in steps)
    return {"flops": flops, "bytes": nbytes, "compute_floor_ms": 1e3 * flops / peak_flops_per_s,
            "memory_floor_ms": 1e3 * nbytes / bandwidth_bytes_per_s, "floor_ms": 1e3 * roof}


def percentile(sorted_values, q):
    """Linear interpolation between the closest ranks (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def time_stats(times_ms):
    v = sorted(times_ms)
    return {"median_ms": statistics.median(v), "p10_ms": percentile(v, 0.1),
            "p90_ms": percentile(v, 0.9), "runs": len(v)}


def picks(variants):
    """From {variant: stats or {"error": ...}}: the faster layout eager and as a graph, the best
    eager time and the user's pick (the fastest variant that ran)."""
    ok = {k: v["median_ms"] for k, v in variants.items() if "median_ms" in v}
    out = {}
    for kind in ("eager", "graph"):
        cands = {lay: ok[f"{kind}_{lay}"] for lay in LAYOUTS if f"{kind}_{lay}" in ok}
        if cands:
            lay = min(cands, key=cands.get)
            out[f"best_layout_{kind}"] = lay
            out[f"best_{kind}_ms"] = cands[lay]
    if ok:
        best = min(ok, key=ok.get)
        out["user_pick"] = {"variant": best, "ms": ok[best]}
    return out


class ProfileError(Exception):
    pass


def ceilings_from_profile(doc, path, precisions):
    """Bandwidth, per-precision peaks and L2 size from a lasnet hardware profile (the fields of
    hardware_profiles/*.json). bf16 takes fp16's peak where the profile has none (the same
    tensor-core rate on Ampere and Hopper), tf32 fp32's (no tf32 units before Ampere)."""
    def number(obj, key, where):
        v = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ProfileError(f"{path}: {where}/{key}: expected a positive number, got "
                               f"{json.dumps(v)}")
        return float(v)
    if not isinstance(doc, dict):
        raise ProfileError(f"{path}: /: expected an object (a lasnet hardware profile)")
    peaks_doc = doc.get("peak_flops_per_s")
    if not isinstance(peaks_doc, dict):
        raise ProfileError(f"{path}: /peak_flops_per_s: expected an object of peaks per precision")
    out = {"source": path, "bandwidth_bytes_per_s": number(doc, "dram_bandwidth_bytes_per_s", ""),
           "l2_size_bytes": int(number(doc, "l2_size_bytes", "")), "peak_flops_per_s": {},
           "notes": []}
    fallback = {"bf16": "fp16", "tf32": "fp32"}
    for p in precisions:
        key = p if p in peaks_doc or p not in fallback else fallback[p]
        if key != p:
            out["notes"].append(f"{p} peak: the profile has none, its {key} peak is used")
        out["peak_flops_per_s"][p] = number(peaks_doc, key, "/peak_flops_per_s")
    return out


def load_profile(path, precisions):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ProfileError(f"{path}: cannot read: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ProfileError(f"{path}: not JSON: {e}") from e
    return ceilings_from_profile(doc, path, precisions)


# ---- the model: ResNet-101's blocks with BatchNorm folded into the conv biases ----

def fold_bn(conv, bn):
    """The conv with bias equal to conv -> BatchNorm in eval mode:
    w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        out.weight.copy_(conv.weight.detach() * scale.reshape(-1, 1, 1, 1))
        out.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return out


def conv_bn(cin, cout, k, stride=1):
    """A conv (no bias) and a BatchNorm with random inference statistics, folded."""
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
    bn = nn.BatchNorm2d(cout).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.0)
        bn.bias.uniform_(-0.1, 0.1)
        bn.running_mean.normal_(0.0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    return fold_bn(conv, bn)


class Bottleneck(nn.Module):
    def __init__(self, cin, cmid, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cmid, 1)
        self.conv2 = conv_bn(cmid, cmid, 3, stride)
        self.conv3 = conv_bn(cmid, cout, 1)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.relu(self.conv2(y))
        y = self.conv3(y)
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(y + s)


def resnet101():
    """(stem, blocks, head) of the dense ResNet-101 with folded BatchNorm."""
    stem = nn.Sequential(conv_bn(3, BLOCKS[0][4], 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    blocks = []
    for name, _stage, count, _h, cin, cmid, cout, stride in BLOCKS:
        if name.endswith(".0"):
            blocks.append(Bottleneck(cin, cmid, cout, stride))
        else:
            blocks += [Bottleneck(cin, cmid, cout, 1) for _ in range(count)]
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(feature_shape()[0], 1000))
    return stem, nn.Sequential(*blocks), head


# ---- timing on the GPU ----

DEVICE = "cuda"  # the test runs the timing code on the CPU, under a stand-in for torch.cuda
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
          "bf16": torch.bfloat16}


def precision_api():
    """PyTorch 2.9 on has per-backend fp32_precision flags; mixing them with the legacy
    allow_tf32 flags makes PyTorch (and inductor's lowering) raise, so only one kind is set."""
    return "fp32_precision" if has_flag(torch.backends.cuda.matmul) else "allow_tf32"


def has_flag(flags):
    try:  # older torch.backends.cuda.matmul raises AssertionError for unknown names
        getattr(flags, "fp32_precision")
        return True
    except Exception:
        return False


def set_precision(prec):
    """tf32 on for cuDNN's convs and cuBLAS's matmuls alike in "tf32", off otherwise (fp16 and
    bf16 do not read it)."""
    tf32 = prec == "tf32"
    b = torch.backends
    if precision_api() == "fp32_precision":
        for flags in (b.cuda.matmul, b.cudnn, getattr(b.cudnn, "conv", None),
                      getattr(b.cudnn, "rnn", None)):
            if flags is not None and has_flag(flags):
                flags.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        b.cuda.matmul.allow_tf32 = tf32
        b.cudnn.allow_tf32 = tf32


def memory_format(layout):
    return torch.channels_last if layout == "channels_last" else torch.contiguous_format


def make_inputs(shape, dtype, layout, budget_bytes=100e6):
    """Fresh uniform [-1, 1) inputs (never zeros), at least two so that runs alternate."""
    nbytes = math.prod(shape) * torch.tensor([], dtype=dtype).element_size()
    n = max(2, min(8, int(budget_bytes // nbytes) + 1))
    return [torch.rand(shape, device=DEVICE, dtype=torch.float32).mul_(2).sub_(1).to(dtype)
            .contiguous(memory_format=memory_format(layout)) for _ in range(n)]


class Timer:
    def __init__(self, runs, warmup, flush_bytes):
        self.runs, self.warmup = runs, warmup
        self.flush = (torch.empty(max(1, flush_bytes // 4), dtype=torch.float32, device=DEVICE)
                      if flush_bytes else None)

    def times_ms(self, fn, feed, warmup=None):
        """fn(feed(i)) for the warm-up and the timed runs; feed(i) and the L2 flush run before
        the start event, so neither is timed."""
        warmup = self.warmup if warmup is None else warmup
        for i in range(warmup):
            fn(feed(i))
        torch.cuda.synchronize()
        start = [torch.cuda.Event(enable_timing=True) for _ in range(self.runs)]
        end = [torch.cuda.Event(enable_timing=True) for _ in range(self.runs)]
        for i in range(self.runs):
            arg = feed(warmup + i)
            if self.flush is not None:
                self.flush.zero_()
            start[i].record()
            fn(arg)
            end[i].record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) for s, e in zip(start, end)]

    def eager(self, fn, inputs):
        return time_stats(self.times_ms(fn, lambda i: inputs[i % len(inputs)]))

    def graph(self, fn, inputs):
        """fn captured as one CUDA graph on a static input that is refilled before each
        replay from the rotating inputs (outside the event pair)."""
        static_x = inputs[0].clone(memory_format=torch.preserve_format)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # cudnn.benchmark's choices and the allocator settle first
                fn(static_x)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            static_out = fn(static_x)

        def feed(i):
            static_x.copy_(inputs[i % len(inputs)])

        # The calls before the capture warmed cuDNN and the allocator: 3 replays suffice.
        stats = time_stats(self.times_ms(lambda _: g.replay(), feed, min(self.warmup, 3)))
        del static_out  # kept alive while the graph replays into it
        return stats


def error_text(e):
    text = f"{type(e).__name__}: {e}".strip()
    return text if len(text) <= 600 else text[:600] + " ..."


class Run:
    """The results document, rewritten (temp + rename) after every entry; a watchdog writes it
    one last time and ends the process when --deadline-s passes mid-entry."""

    def __init__(self, args, doc):
        self.args, self.doc = args, doc
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.current = "start"
        self.watchdog = None
        if args.deadline_s:
            self.watchdog = threading.Timer(args.deadline_s, self.cut_off)
            self.watchdog.daemon = True
            self.watchdog.start()

    def close(self):
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.current = "the end"
        self.write()

    def elapsed(self):
        return time.monotonic() - self.t0

    def left(self):
        return self.args.deadline_s - self.elapsed() if self.args.deadline_s else math.inf

    def write(self):
        with self.lock:
            self.doc["elapsed_s"] = round(self.elapsed(), 1)
            tmp = self.args.out + ".tmp"  # temp file + rename: a reader never sees half a file
            with open(tmp, "w") as f:
                json.dump(self.doc, f, indent=1)
            os.replace(tmp, self.args.out)

    def cut_off(self):
        self.doc["cut_off"] = f"--deadline-s {self.args.deadline_s} passed during {self.current}"
        for _ in range(3):  # the main thread may be changing the document right now
            try:
                self.write()
                break
            except RuntimeError:
                time.sleep(0.05)
        print(f"torch_dense.py: {self.doc['cut_off']}; results so far in {self.args.out}",
              flush=True)
        os._exit(0)


def measure_ceilings(precisions):
    """This GPU's copy bandwidth (256 MiB device-to-device) and GEMM rate per precision
    (8192^3, cuBLAS), medians of 10 timed runs."""
    timer = Timer(10, 3, 0)
    n_el = 64 << 20
    src = torch.rand(n_el, device=DEVICE)
    dst = torch.empty_like(src)
    copy_ms = timer.eager(lambda _: dst.copy_(src), [None])["median_ms"]
    out = {"source": "measured by torch_dense.py (copy 256 MiB; GEMM 8192^3 per precision)",
           "bandwidth_bytes_per_s": 2 * 4 * n_el / (copy_ms * 1e-3),
           "l2_size_bytes": getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0)
           or 50 << 20, "peak_flops_per_s": {}, "notes": []}
    n = 8192
    for p in precisions:
        set_precision(p)
        a = torch.rand(n, n, device=DEVICE, dtype=DTYPES[p])
        b = torch.rand(n, n, device=DEVICE, dtype=DTYPES[p])
        ms = timer.eager(lambda _: torch.mm(a, b), [None])["median_ms"]
        out["peak_flops_per_s"][p] = 2.0 * n ** 3 / (ms * 1e-3)
    torch.cuda.empty_cache()
    return out


def log_entry(e):
    v = e["variants"]
    parts = [f"{k} {x['median_ms']:.3f}" if "median_ms" in x else f"{k} ERROR"
             for k, x in v.items()]
    name = e.get("block", "resnet101")
    pick = e.get("user_pick", {})
    print(f"torch {name:9s} n={e['batch']:<3d} {e['precision']}: " + ", ".join(parts)
          + (f"; pick {pick['variant']} {pick['ms']:.3f} ms" if pick else "")
          + f"; floor {e['floor']['floor_ms']:.3f} ms", flush=True)


def time_layouts(timer, module, shape, dtype):
    """The eager and graph variants of module in both layouts."""
    variants = {}
    for layout in LAYOUTS:
        module.to(memory_format=memory_format(layout))
        inputs = make_inputs(shape, dtype, layout)
        for kind, how in (("eager", timer.eager), ("graph", timer.graph)):
            try:
                variants[f"{kind}_{layout}"] = how(module, inputs)
            except Exception as e:  # an OOM or a capture failure is a result, not the end
                variants[f"{kind}_{layout}"] = {"error": error_text(e)}
        del inputs
    return variants


def finish_entry(entry):
    entry.update(picks(entry["variants"]))
    # Today's keys: total_ms is the best eager time (cuDNN without graph or compiler).
    entry["total_ms"] = entry.get("best_eager_ms")


def block_entry(timer, spec, batch, prec, peak, bw):
    name, stage, count, h, cin, cmid, cout, stride = spec
    torch.manual_seed(1)
    blk = Bottleneck(cin, cmid, cout, stride).to(DEVICE).eval().to(DTYPES[prec])
    return {"kind": "block", "block": name, "stage": stage, "count": count, "batch": batch,
            "precision": prec,
            "floor": floor_of(block_steps(batch, h, cin, cmid, cout, stride, ELEMENT_BYTES[prec]),
                              peak, bw),
            "variants": time_layouts(timer, blk, (batch, cin, h, h), DTYPES[prec])}


def network_entry(timer, batch, prec, peak, bw):
    dtype = DTYPES[prec]
    torch.manual_seed(1)
    stem, body, head = resnet101()
    net = nn.Sequential(stem, body, head).to(DEVICE).eval().to(dtype)
    entry = {"kind": "network", "batch": batch, "precision": prec,
             "floor": floor_of(network_steps(batch, ELEMENT_BYTES[prec]), peak, bw),
             "variants": time_layouts(timer, net, (batch, *image_shape()), dtype)}
    # Stem and head alone, channels_last: what composes with our NHWC chain.
    net.to(memory_format=torch.channels_last)
    x = make_inputs((batch, *image_shape()), dtype, "channels_last")
    feat = make_inputs((batch, *feature_shape()), dtype, "channels_last")
    for key, mod, inp in (("stem", stem, x), ("head", head, feat)):
        try:
            entry[f"{key}_ms"] = timer.eager(mod, inp)["median_ms"]
            entry[f"{key}_graph_ms"] = timer.graph(mod, inp)["median_ms"]
        except Exception as e:
            entry[f"{key}_error"] = error_text(e)
    return entry


def eager_phase(run, timer, ceilings, blocks):
    """The eager and graph variants of every entry; an entry that fails outside its variants
    (building the module, an input) is recorded with its error and the run goes on."""
    a, doc = run.args, run.doc
    bw = ceilings["bandwidth_bytes_per_s"]
    for prec in a.precisions:
        set_precision(prec)
        peak = ceilings["peak_flops_per_s"][prec]
        for batch in a.batches:
            todo = [("block", b) for b in blocks] + [("network", None)]
            for kind, spec in todo:
                name = spec[0] if spec else "resnet101"
                run.current = f"{name} n={batch} {prec} (eager/graph)"
                try:
                    with torch.no_grad():
                        entry = (block_entry(timer, spec, batch, prec, peak, bw) if spec else
                                 network_entry(timer, batch, prec, peak, bw))
                except Exception as e:
                    entry = {"kind": kind, "batch": batch, "precision": prec,
                             "error": error_text(e), "variants": {}}
                    if spec:
                        entry.update(block=name, stage=spec[1], count=spec[2])
                    print(f"torch {name} n={batch} {prec}: {entry['error']}", flush=True)
                finish_entry(entry)
                if kind == "network":
                    entry["graph_ms"] = entry.get("best_graph_ms")
                doc["results"].append(entry)
                if "error" not in entry:
                    log_entry(entry)
                run.write()
                torch.cuda.empty_cache()


def compile_entry(run, timer, entry, mode):
    """torch.compile of the entry's module in its faster eager layout, then its eager-launched
    and (where the mode leaves graphs to us) CUDA-graphed times."""
    prec, batch = entry["precision"], entry["batch"]
    set_precision(prec)
    dtype = DTYPES[prec]
    layout = entry.get("best_layout_eager", "channels_last")
    torch._dynamo.reset()  # no recompiles against an earlier module, no cache-size fallback
    torch.manual_seed(1)
    if entry["kind"] == "network":
        module, shape = nn.Sequential(*resnet101()), (batch, *image_shape())
    else:
        spec = next(b for b in BLOCKS if b[0] == entry["block"])
        module, shape = Bottleneck(*spec[4:8]), (batch, spec[4], spec[3], spec[3])
    module = module.to(DEVICE).eval().to(dtype).to(memory_format=memory_format(layout))
    inputs = make_inputs(shape, dtype, layout)
    info = {"mode": mode, "layout": layout}
    key = f"compiled_{mode}"
    try:
        compiled = torch.compile(module, mode=mode, dynamic=False)
        t0 = time.monotonic()
        compiled(inputs[0])
        torch.cuda.synchronize()
        info["compile_s"] = round(time.monotonic() - t0, 1)
    except Exception as e:
        info["error"] = error_text(e)
        return info
    own_graph = mode not in CUDAGRAPH_MODES
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def call(x):
        if not own_graph and mark is not None:
            mark()
        return compiled(x)

    for variant, how in ((key, timer.eager), (key + "_graph", timer.graph if own_graph else None)):
        if how is None:
            continue
        try:
            entry["variants"][variant] = how(call, inputs)
        except Exception as e:
            entry["variants"][variant] = {"error": error_text(e)}
    return info


def compile_phase(run, timer):
    a, doc = run.args, run.doc
    if not a.compile_modes:
        return
    if not hasattr(torch, "compile"):
        doc["compile_error"] = f"torch {torch.__version__} has no torch.compile"
        return
    spent = {}  # (kind, mode) -> the longest compile seen
    stop = None
    for entry, mode in compile_tasks(doc["results"], a.compile_modes, a.quick):
        where = f"{entry.get('block', 'resnet101')} n={entry['batch']} {entry['precision']}"
        guess = spent.get((entry["kind"], mode), compile_guess_s(entry["kind"], mode))
        compiles = entry.setdefault("compile", [])
        if stop is not None:
            compiles.append({"mode": mode, "skipped": stop})
            continue
        if run.left() < guess:  # a later, cheaper task may still fit
            compiles.append({"mode": mode, "skipped": f"not started: {run.left():.0f} s left of "
                             f"--deadline-s, a {entry['kind']} compile takes ~{guess:.0f} s"})
            continue
        run.current = f"{where} torch.compile(mode={mode})"
        try:
            with torch.no_grad():
                info = compile_entry(run, timer, entry, mode)
        except Exception as e:  # building the module or its inputs
            info = {"mode": mode, "error": error_text(e)}
        compiles.append(info)
        if "error" in info:
            # The usual causes (no triton, an unsupported GPU) fail every compile alike.
            stop = f"not started: an earlier compile failed ({where}, {mode})"
            doc["compile_error"] = info["error"]
        else:
            spent[(entry["kind"], mode)] = max(spent.get((entry["kind"], mode), 0.0),
                                               info["compile_s"])
        finish_entry(entry)
        print(f"torch.compile {where} mode={mode}: " + (
            f"compile {info['compile_s']} s" if "compile_s" in info else info["error"]),
            flush=True)
        log_entry(entry)
        run.write()
        torch.cuda.empty_cache()


# ---- the self-test: the pure parts against numbers worked out by hand, on the CPU ----

def self_test():
    failures = []

    def check(what, got, want, tol=1e-9):
        if abs(got - want) > tol * max(1.0, abs(want)):
            failures.append(f"{what}: got {got}, want {want}")

    # BN folding, one channel, 1x1: w = 2, b = 1, gamma = 3, beta = 0.5, mean = 1,
    # var + eps = 4 -> scale = 3 / 2, w' = 2 * 1.5 = 3, b' = (1 - 1) * 1.5 + 0.5 = 0.5.
    conv = nn.Conv2d(1, 1, 1, bias=True)
    bn = nn.BatchNorm2d(1, eps=0.0).eval()
    with torch.no_grad():
        conv.weight.fill_(2.0), conv.bias.fill_(1.0)
        bn.weight.fill_(3.0), bn.bias.fill_(0.5), bn.running_mean.fill_(1.0)
        bn.running_var.fill_(4.0)
    f = fold_bn(conv, bn)
    check("folded weight", f.weight.item(), 3.0)
    check("folded bias", f.bias.item(), 0.5)
    # ... and on a random 3x3/2 conv without bias: folded == conv -> bn, to float precision.
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    bn = nn.BatchNorm2d(6).eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
        x = torch.randn(2, 4, 9, 9)
        diff = (fold_bn(conv, bn)(x) - bn(conv(x))).abs().max().item()
    check("fold_bn(conv, bn)(x) - bn(conv(x))", diff, 0.0, tol=1e-5)

    # A tiny block: batch 1, 2x2 map, 4 -> 2 -> 4 channels, stride 1 (no shortcut conv), fp32.
    # conv1: 2*4*4*2 = 64 FLOPs, 4*(4*4 + 4*2 + 4*2) = 128 B
    # conv2: 2*4*9*2*2 = 288 FLOPs, 4*(4*2 + 9*2*2 + 4*2) = 208 B
    # conv3: 2*4*2*4 = 64 FLOPs, 4*(4*2 + 2*4 + 2*4*4) = 192 B (residual read + output)
    steps = block_steps(1, 2, 4, 2, 4, 1, 4)
    check("steps", len(steps), 3)
    check("conv2 FLOPs", steps[1][1], 288)
    check("conv3 bytes", steps[2][2], 192)
    # At 1000 FLOP/s and 1000 B/s: compute 416 ms, memory 528 ms, roofline per step
    # max(64, 128) + max(288, 208) + max(64, 192) = 128 + 288 + 192 = 608 ms.
    fl = floor_of(steps, 1000.0, 1000.0)
    check("flops", fl["flops"], 416)
    check("bytes", fl["bytes"], 528)
    check("compute floor", fl["compute_floor_ms"], 416)
    check("memory floor", fl["memory_floor_ms"], 528)
    check("floor", fl["floor_ms"], 608)
    # Stride 2, 4x4 -> 2x2, 4 -> 2 -> 8, fp16: the shortcut reads the 4 sampled pixels only:
    # 2*4*4*8 = 256 FLOPs, 2*(4*4 + 4*8 + 4*8) = 160 B.
    steps = block_steps(1, 4, 4, 2, 8, 2, 2)
    check("shortcut FLOPs", steps[2][1], 256)
    check("shortcut bytes", steps[2][2], 160)
    # The network: stem (conv + pool), 33 blocks of 3 steps + the 4 shortcut convs, head (pool
    # + fc); the stem conv at batch 1: 2 * 112*112 * 64 * 3*7*7 = 2 * 12544 * 9408 = 236027904.
    net = network_steps(1, 4)
    check("network steps", len(net), 2 + 3 * 33 + 4 + 2)
    check("stem conv FLOPs", net[0][1], 236027904)

    # Percentiles of 1..10: median 5.5; p10 at rank 0.9 -> 1.9; p90 at rank 8.1 -> 9.1.
    st = time_stats([float(v) for v in (7, 1, 9, 3, 5, 2, 10, 4, 8, 6)])
    check("median", st["median_ms"], 5.5)
    check("p10", st["p10_ms"], 1.9)
    check("p90", st["p90_ms"], 9.1)

    p = picks({"eager_nchw": {"median_ms": 3.0}, "eager_channels_last": {"median_ms": 4.0},
               "graph_nchw": {"error": "x"}, "graph_channels_last": {"median_ms": 2.5},
               "compiled_default": {"median_ms": 2.0}})
    if (p.get("best_layout_eager"), p.get("best_layout_graph"), p["user_pick"]["variant"]) != (
            "nchw", "channels_last", "compiled_default"):
        failures.append(f"picks: {p}")
    check("best eager", p["best_eager_ms"], 3.0)

    prof = {"dram_bandwidth_bytes_per_s": 2e12, "l2_size_bytes": 50 << 20,
            "peak_flops_per_s": {"fp32": 5e13, "tf32": 4e14, "fp16": 7e14}}
    c = ceilings_from_profile(prof, "p.json", PRECISIONS)
    check("bf16 peak = fp16 peak", c["peak_flops_per_s"]["bf16"], 7e14)
    check("bandwidth", c["bandwidth_bytes_per_s"], 2e12)
    for bad, where in (({**prof, "dram_bandwidth_bytes_per_s": "fast"},
                        "p.json: /dram_bandwidth_bytes_per_s: expected a positive number"),
                       ({**prof, "peak_flops_per_s": {"tf32": 1.0}},
                        "p.json: /peak_flops_per_s/fp32: expected a positive number")):
        try:
            ceilings_from_profile(bad, "p.json", PRECISIONS)
            failures.append(f"no error for {where}")
        except ProfileError as e:
            if not str(e).startswith(where):
                failures.append(f"error text: {e}")

    for msg in failures:
        print("FAIL", msg)
    print(f"torch_dense.py --self-test: {'FAILED' if failures else 'passed'}")
    return 1 if failures else 0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="torch.json")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--runs", type=int, help="timed runs per variant (default 50; --quick 10)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per variant (default 10; --quick 2)")
    ap.add_argument("--hw", help="hardware profile JSON for the floors (default: measure here)")
    ap.add_argument("--compile-modes",
                    help=f"comma list of torch.compile modes, or 'none' (default "
                         f"{','.join(DEFAULT_COMPILE_MODES)}; --quick: default)")
    ap.add_argument("--deadline-s", type=float, default=0,
                    help="stop starting compiles that would not end before it; at it, write "
                         "the results and exit 0 (0: none)")
    ap.add_argument("--no-flush", action="store_true", help="do not flush the L2 between runs")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {', '.join(QUICK_BLOCKS)} and the network, fewer runs, "
                         "the networks compiled only")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return a
    a.runs = a.runs or (10 if a.quick else 50)
    a.warmup = a.warmup if a.warmup is not None else (2 if a.quick else 10)
    if a.compile_modes is None:
        a.compile_modes = "default" if a.quick else ",".join(DEFAULT_COMPILE_MODES)
    a.compile_modes = [] if a.compile_modes == "none" else a.compile_modes.split(",")
    a.precisions = a.precisions.split(",")
    bad = [p for p in a.precisions if p not in PRECISIONS]
    if bad:
        ap.error(f"unknown precision {bad[0]} (fp32, tf32, fp16, bf16)")
    try:
        a.batches = [int(b) for b in a.batches.split(",")]
    except ValueError:
        ap.error(f"--batches wants a comma list of integers, got '{a.batches}'")
    if a.runs < 1 or a.warmup < 0 or min(a.batches) < 1:
        ap.error("--runs and --batches must be positive, --warmup not negative")
    return a


def main(argv):
    a = parse_args(argv)
    if a.self_test:
        return self_test()
    if not torch.cuda.is_available():
        print("torch_dense.py: no CUDA device", file=sys.stderr)
        return 2
    try:
        ceilings = load_profile(a.hw, a.precisions) if a.hw else None
    except ProfileError as e:
        print(f"torch_dense.py: {e}", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    ceilings = ceilings or measure_ceilings(a.precisions)
    flush_bytes = 0 if a.no_flush else 2 * ceilings["l2_size_bytes"]
    blocks = [b for b in BLOCKS if not a.quick or b[0] in QUICK_BLOCKS]
    doc = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "tf32_flags": precision_api(),
           "runs": a.runs, "warmup": a.warmup,
           "l2_flush_bytes": flush_bytes, "quick": a.quick, "compile_modes": a.compile_modes,
           "deadline_s": a.deadline_s, "ceilings": ceilings, "results": []}
    run = Run(a, doc)
    timer = Timer(a.runs, a.warmup, flush_bytes)
    try:
        eager_phase(run, timer, ceilings, blocks)
        doc["eager_phase_s"] = round(run.elapsed(), 1)  # what is left for compiling
        compile_phase(run, timer)
    finally:
        run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
