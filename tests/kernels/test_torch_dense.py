#!/usr/bin/env python3
"""bench/kernels/torch_dense.py on the CPU: its self-test (BN folding, floors, percentiles,
picks, the profile's errors), and a dry run of its timing code on a tiny network with a
stand-in for torch.cuda (events read the host clock, a graph replay does nothing), which checks
what it writes, how torch.compile's success, failure and the deadline are recorded, and that
summarize.py reads the result. Exit 77 (skipped) where this python has no torch."""
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import types
import unittest
from unittest import mock

try:
    import torch
except ImportError:
    torch = None

SOURCE = os.environ.get("LASNET_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BENCH = os.path.join(SOURCE, "bench", "kernels")

# Three small blocks (image 32x32 -> 8x8 after the stem) keep a CPU forward in milliseconds.
TINY_BLOCKS = [("layer1.0", 1, 1, 8, 64, 8, 32, 1), ("layer1.x", 1, 2, 8, 32, 8, 32, 1),
               ("layer2.0", 2, 1, 8, 32, 16, 64, 2)]


class Event:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, end):
        return 1e3 * (end.t - self.t)


class Stream:
    def wait_stream(self, other):
        pass


class Graph:
    def replay(self):
        pass


FAKE_CUDA = dict(is_available=lambda: True, get_device_name=lambda *a: "CPU stand-in",
                 Event=Event, synchronize=lambda: None, Stream=Stream,
                 current_stream=lambda: Stream(), stream=lambda s: contextlib.nullcontext(),
                 CUDAGraph=Graph, graph=lambda g: contextlib.nullcontext(),
                 empty_cache=lambda: None)


def identity_compile(module, mode=None, dynamic=None):
    return module


def failing_compile(module, mode=None, dynamic=None):
    raise RuntimeError("Cannot find a working triton installation")


def slow_compile(module, mode=None, dynamic=None):
    time.sleep(5)
    return module


def dry_main(td, compile_fn, args):
    with mock.patch.multiple(torch.cuda, **FAKE_CUDA), \
            mock.patch.object(torch, "compile", compile_fn, create=True), \
            mock.patch.object(torch, "_dynamo", types.SimpleNamespace(reset=lambda: None),
                              create=True), \
            mock.patch.object(td, "DEVICE", "cpu"), \
            mock.patch.object(td, "BLOCKS", TINY_BLOCKS), \
            contextlib.redirect_stdout(io.StringIO()):
        return td.main(args)


def cut_off_child(out, hw):
    """In a child process: a compile that outlasts --deadline-s (every guess set to 0 s)."""
    sys.path.insert(0, BENCH)
    import torch_dense
    with mock.patch.object(torch_dense, "compile_guess_s", lambda kind, mode: 0.0):
        dry_main(torch_dense, slow_compile, ["--precisions", "fp32", "--batches", "1", "--runs",
                                             "2", "--hw", hw, "--deadline-s", "2", "--out", out])
    sys.exit(3)  # not reached: the watchdog ends the process


class TorchDense(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, BENCH)
        import torch_dense
        cls.td = torch_dense
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hw = os.path.join(cls.tmp.name, "hw.json")
        with open(cls.hw, "w") as f:
            json.dump({"dram_bandwidth_bytes_per_s": 2e12, "l2_size_bytes": 1024,
                       "peak_flops_per_s": {"fp32": 5e13, "tf32": 4e14, "fp16": 7e14}}, f)
        cls.kernels = os.path.join(cls.tmp.name, "kernels.json")  # no results of ours
        with open(cls.kernels, "w") as f:
            json.dump({"results": []}, f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def dry_run(self, name, compile_fn, *extra):
        out = os.path.join(self.tmp.name, name + ".json")
        rc = dry_main(self.td, compile_fn,
                      ["--precisions", "fp32,tf32", "--batches", "1,2", "--runs", "3",
                       "--warmup", "1", "--hw", self.hw, "--compile-modes", "default",
                       "--out", out, *extra])
        self.assertEqual(rc, 0)
        with open(out) as f:
            return out, json.load(f)

    def test_self_test(self):
        with contextlib.redirect_stdout(io.StringIO()) as text:
            self.assertEqual(self.td.self_test(), 0, text.getvalue())

    def test_dry_run_writes_every_variant_and_pick(self):
        _, doc = self.dry_run("ok", identity_compile)
        self.assertEqual(doc["l2_flush_bytes"], 2048)  # twice the profile's L2
        self.assertEqual(doc["ceilings"]["source"], self.hw)
        res = doc["results"]
        # 2 precisions x 2 batches x (3 blocks + the network)
        self.assertEqual(len(res), 16)
        for e in res:
            v = e["variants"]
            self.assertEqual(set(v), {"eager_nchw", "eager_channels_last", "graph_nchw",
                                      "graph_channels_last", "compiled_default",
                                      "compiled_default_graph"}, e)
            for stats in v.values():
                self.assertEqual(stats["runs"], 3)
                self.assertLessEqual(stats["p10_ms"], stats["median_ms"])
                self.assertLessEqual(stats["median_ms"], stats["p90_ms"])
            self.assertEqual(e["total_ms"], e["best_eager_ms"])
            self.assertEqual(e["best_eager_ms"],
                             v["eager_" + e["best_layout_eager"]]["median_ms"])
            self.assertEqual(e["user_pick"]["ms"], min(x["median_ms"] for x in v.values()))
            self.assertEqual(e["compile"][0]["mode"], "default")
            self.assertIn("compile_s", e["compile"][0])
            self.assertEqual(e["compile"][0]["layout"], e["best_layout_eager"])
            self.assertGreater(e["floor"]["floor_ms"], 0)
        net = [e for e in res if e["kind"] == "network"]
        self.assertEqual(len(net), 4)
        for e in net:
            for key in ("stem_ms", "head_ms", "stem_graph_ms", "head_graph_ms", "graph_ms"):
                self.assertIn(key, e)
        # Every FLOP count is proportional to the batch: batch 2 has twice batch 1's.
        f1 = next(e for e in net if e["batch"] == 1 and e["precision"] == "fp32")["floor"]
        f2 = next(e for e in net if e["batch"] == 2 and e["precision"] == "fp32")["floor"]
        self.assertAlmostEqual(f2["flops"], 2 * f1["flops"])

    def test_an_entry_that_fails_is_recorded_and_the_run_goes_on(self):
        real = self.td.block_entry

        def flaky(timer, spec, *args):
            if spec[0] == "layer1.x":
                raise RuntimeError("CUDA out of memory")
            return real(timer, spec, *args)

        with mock.patch.object(self.td, "block_entry", flaky):
            out, doc = self.dry_run("flaky", identity_compile)
        bad = [e for e in doc["results"] if "error" in e]
        self.assertEqual(len(bad), 4)  # layer1.x at 2 batches x 2 precisions
        for e in bad:
            self.assertEqual((e["block"], e["error"]), ("layer1.x",
                                                        "RuntimeError: CUDA out of memory"))
            self.assertIsNone(e["total_ms"])
            self.assertNotIn("compile", e)
        self.assertEqual(sum("user_pick" in e for e in doc["results"]), 12)
        p = subprocess.run([sys.executable, os.path.join(BENCH, "summarize.py"), self.kernels,
                            out], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_compile_failure_is_recorded_and_the_rest_skipped(self):
        _, doc = self.dry_run("fail", failing_compile)
        self.assertIn("working triton", doc["compile_error"])
        first = [e for e in doc["results"] if "error" in e["compile"][0]]
        self.assertEqual(len(first), 1)
        # The first compile tried is the largest batch's network in the first precision of the
        # order fp16, bf16, tf32, fp32 that ran.
        self.assertEqual((first[0]["kind"], first[0]["batch"], first[0]["precision"]),
                         ("network", 2, "tf32"))
        skipped = [e for e in doc["results"] if "skipped" in e["compile"][0]]
        self.assertEqual(len(skipped), 15)
        for e in doc["results"]:
            self.assertNotIn("compiled_default", e["variants"])
            self.assertNotEqual(e["user_pick"]["variant"][:8], "compiled")

    def test_deadline_skips_compiles_that_would_not_fit(self):
        # 25 s left: less than a network compile's first guess (60 s default mode, 180 s
        # max-autotune) and a block's max-autotune one (30 s), more than a block's default (10 s).
        _, doc = self.dry_run("deadline", identity_compile, "--deadline-s", "25",
                              "--compile-modes", "default,max-autotune-no-cudagraphs")
        for e in doc["results"]:
            modes = [c["mode"] for c in e["compile"]]
            self.assertEqual(modes, ["default", "max-autotune-no-cudagraphs"])
            if e["kind"] == "network":
                self.assertIn("not started: ", e["compile"][0]["skipped"])
            else:
                self.assertIn("compile_s", e["compile"][0])
                self.assertIn("compiled_default_graph", e["variants"])
            self.assertIn("a " + e["kind"] + " compile takes ~", e["compile"][1]["skipped"])
        self.assertNotIn("cut_off", doc)

    def test_a_compile_cut_off_by_the_deadline_keeps_the_results(self):
        out = os.path.join(self.tmp.name, "cut.json")
        code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
                f"import test_torch_dense as t; t.cut_off_child({out!r}, {self.hw!r})")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            doc = json.load(f)
        self.assertEqual(doc["cut_off"], "--deadline-s 2.0 passed during resnet101 n=1 fp32 "
                         "torch.compile(mode=default)")
        self.assertEqual(len(doc["results"]), 4)  # every eager entry was written before
        self.assertIn("eager_nchw", doc["results"][-1]["variants"])

    def test_tf32_is_set_through_one_api_only(self):
        ns = types.SimpleNamespace
        new = ns(cuda=ns(matmul=ns(fp32_precision="none")),
                 cudnn=ns(fp32_precision="none", conv=ns(fp32_precision="none"),
                          rnn=ns(fp32_precision="none")))
        flags = (new.cuda.matmul, new.cudnn, new.cudnn.conv, new.cudnn.rnn)
        with mock.patch.object(torch, "backends", new):
            self.td.set_precision("tf32")
            self.assertEqual([f.fp32_precision for f in flags], ["tf32"] * 4)
            self.td.set_precision("fp16")
            self.assertEqual([f.fp32_precision for f in flags], ["ieee"] * 4)
        self.assertFalse(any(hasattr(f, "allow_tf32") for f in flags))
        legacy = ns(cuda=ns(matmul=ns()), cudnn=ns())
        with mock.patch.object(torch, "backends", legacy):
            self.td.set_precision("tf32")
        self.assertEqual((legacy.cuda.matmul.allow_tf32, legacy.cudnn.allow_tf32), (True, True))
        self.assertFalse(hasattr(legacy.cuda.matmul, "fp32_precision"))

    def test_bad_profile_is_one_message(self):
        bad = os.path.join(self.tmp.name, "bad.json")
        with open(bad, "w") as f:
            json.dump({"dram_bandwidth_bytes_per_s": 2e12, "l2_size_bytes": 1024,
                       "peak_flops_per_s": {"fp32": -1}}, f)
        err = io.StringIO()
        with mock.patch.multiple(torch.cuda, **FAKE_CUDA), contextlib.redirect_stderr(err):
            rc = self.td.main(["--hw", bad, "--out", os.path.join(self.tmp.name, "x.json")])
        self.assertEqual(rc, 2)
        self.assertEqual(err.getvalue().strip(), f"torch_dense.py: {bad}: /peak_flops_per_s/fp32: "
                         "expected a positive number, got -1")

    def test_summarize_reads_the_dry_run(self):
        out, _ = self.dry_run("for_summary", identity_compile)
        p = subprocess.run([sys.executable, os.path.join(BENCH, "summarize.py"), self.kernels,
                            out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("user's pick", p.stdout)


if __name__ == "__main__":
    if torch is None:
        print("SKIPPED: this python has no torch")
        sys.exit(77)
    unittest.main(verbosity=2)
