#!/usr/bin/env python3
"""bench/kernels/summarize.py's tables of ours beside the baseline a user would pick, on a tiny
hand-made pair of bench_kernels and torch_dense.py results (standard library only)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("LASNET_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SUMMARIZE = os.path.join(SOURCE, "bench", "kernels", "summarize.py")

# Ours: layer1.0 at batch 128 in fp32, dense 2.0 ms, best dynamic at d=0.5 1.5 ms; the chained
# network dense 40 ms / dynamic 25 ms as CUDA graphs.
KERNELS = {"results": [
    {"mode": "dense", "block": "layer1.0", "stage": 1, "count": 1, "batch": 128,
     "precision": "fp32", "total_ms": 2.0, "floor_ms": 1.0},
    {"mode": "dynamic", "block": "layer1.0", "stage": 1, "count": 1, "batch": 128,
     "precision": "fp32", "density": 0.5, "granularity": 4, "fusion": "m+g+s",
     "total_ms": 1.5, "floor_ms": 0.5},
    {"mode": "network", "batch": 128, "precision": "fp32",
     "dense": {"eager_ms": 50.0, "graph_ms": 40.0},
     "dynamic": {"eager_ms": 30.0, "graph_ms": 25.0,
                 "density_per_block": [{"density": 0.5}]}}]}


def entry(kind, prec, best_eager, pick_variant, pick_ms, floor_ms, **extra):
    e = {"kind": kind, "batch": 128, "precision": prec, "total_ms": best_eager,
         "best_eager_ms": best_eager, "best_layout_eager": "nchw",
         "user_pick": {"variant": pick_variant, "ms": pick_ms},
         "floor": {"floor_ms": floor_ms, "compute_floor_ms": floor_ms,
                   "memory_floor_ms": floor_ms / 2},
         "compile": [{"mode": "default", "layout": "channels_last", "compile_s": 12.5}],
         "variants": {}}
    e.update(extra)
    return e


# Theirs: the block in fp32 (best eager 4.0 ms in NCHW, pick 3.0 ms as a graph, floor 1.0) and
# fp16 (pick 1.0 ms); the network in fp32 (eager 60 ms; stem + head 2 + 1 eager, 1.5 + 0.5 as
# graphs; pick 20 ms compiled) and in fp16 (pick 9 ms, compiled and graphed).
TORCH = {"results": [
    entry("block", "fp32", 4.0, "graph_nchw", 3.0, 1.0, block="layer1.0", stage=1, count=1),
    entry("block", "fp16", 2.0, "graph_nchw", 1.0, 0.25, block="layer1.0", stage=1, count=1),
    entry("network", "fp32", 60.0, "compiled_default_graph", 20.0, 10.0, stem_ms=2.0,
          head_ms=1.0, graph_ms=55.0, stem_graph_ms=1.5, head_graph_ms=0.5),
    entry("network", "fp16", 30.0, "compiled_default_graph", 9.0, 3.0, stem_ms=1.0,
          head_ms=0.5, graph_ms=25.0, stem_graph_ms=0.8, head_graph_ms=0.2)]}


class Summarize(unittest.TestCase):
    def run_summarize(self, torch_doc, kernels=KERNELS):
        with tempfile.TemporaryDirectory() as tmp:
            paths = [os.path.join(tmp, n) for n in ("kernels.json", "torch.json", "s.json")]
            for p, doc in zip(paths, (kernels, torch_doc)):
                with open(p, "w") as f:
                    json.dump(doc, f)
            p = subprocess.run([sys.executable, SUMMARIZE, paths[0], paths[1], "--out", paths[2]],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(paths[2]) as f:
                return p.stdout.splitlines(), json.load(f)

    def test_ours_beside_the_pick(self):
        lines, doc = self.run_summarize(TORCH)
        # pick/floor 3.0/1.0 = 3.00; dense/pick 2.0/3.0 = 0.67; dyn/pick 1.5/3.0 = 0.50
        self.assertIn("| layer1.0 | 128 | fp32 | 4.000 (nchw) | 3.000 (graph NCHW) | 1.000 | "
                      "3.00 | 2.000 | 0.67 | 1.500 | 0.50 |", lines)
        # fp16 has kernels, but this run has no fp16 rows.
        self.assertIn("| layer1.0 | 128 | fp16 | 2.000 (nchw) | 1.000 (graph NCHW) | 0.250 | "
                      "4.00 | not measured | - | - | - |", lines)
        # The network: ours dense 40 + cuDNN's graphed stem and head 1.5 + 0.5 = 42 ms, dynamic
        # 25 + 2 = 27 ms; against the fp32 pick of 20 ms: 2.10 and 1.35.
        self.assertIn("| resnet101 | 128 | fp32 | 60.000 (nchw) | 20.000 (compile default + "
                      "graph (NHWC)) | 10.000 | 2.00 | 42.000 | 2.10 | 27.000 | 1.35 |", lines)
        # Over all precisions the pick is fp16's 9 ms: our fastest dynamic forward (27 ms, fp32)
        # takes 3.00x.
        self.assertIn("| 128 | 9.000 (fp16, compile default + graph (NHWC)) | 30.000 (fp16) | "
                      "42.000 (fp32) | 27.000 (fp32) | 3.00 |", lines)
        self.assertIn("- resnet101 n=128 fp16 default: compiled in 12.5 s (channels_last)", lines)
        self.assertEqual(len(doc["user_pick"]), 4)
        self.assertAlmostEqual(doc["user_pick_over_precisions"][0]["dynamic_vs_pick"], 3.0)
        # The targets: fp32 only (the run's one precision), nothing made up where rows lack.
        self.assertEqual({t["precision"] for t in doc["targets"]}, {"fp32"})
        compiled = [t for t in doc["targets"] if t.get("baseline") == "torch_compile"]
        self.assertEqual(len(compiled), 1)
        self.assertIsNone(compiled[0]["baseline_ms"])  # the fp32 entry has no compiled variant
        self.assertIsNone(compiled[0]["met"])

    def test_compile_skips_are_listed(self):
        torch_doc = json.loads(json.dumps(TORCH))
        torch_doc["results"][1]["compile"] = [{"mode": "default", "skipped": "not started: x"}]
        lines, _ = self.run_summarize(torch_doc)
        self.assertIn("- layer1.0 n=128 fp16 default: not started: x", lines)

    def test_a_network_without_eager_or_stem_times_composes_nothing(self):
        torch_doc = json.loads(json.dumps(TORCH))
        net = torch_doc["results"][2]
        net.update(total_ms=None, best_eager_ms=None, best_layout_eager=None)
        del net["stem_ms"]
        lines, doc = self.run_summarize(torch_doc)
        self.assertEqual(doc["chained_networks"], [])
        self.assertIn("| resnet101 | 128 | fp32 | - (-) | 20.000 (compile default + graph (NHWC)) | "
                      "10.000 | 2.00 | - | - | - | - |", lines)

    def test_results_without_variants_keep_the_old_tables(self):
        old = {"results": [{"kind": "block", "block": "layer1.0", "batch": 128,
                            "precision": "fp32", "total_ms": 4.0}]}
        lines, doc = self.run_summarize(old)
        self.assertEqual(doc["user_pick"], [])
        self.assertIn("| layer1.0 | 128 | fp32 | 2.000 | 4.000 | 0.50 | 1.500 (S=4, m+g+s) | "
                      "0.500 | 0.75 |", lines)

    def test_union_form_beside_the_other_forms_and_dense(self):
        # Dense conv1 0.4 of 2.0 ms. At S = 4 the other form takes 1.5 ms (its conv1 0.6); the
        # union form 1.2 ms (conv1 0.3 + dilate 0.01): 1.2/2.0 = 0.60 of dense, 1.2/1.5 = 0.80
        # of the other form. S = 2 has no union row: no line.
        kernels = json.loads(json.dumps(KERNELS))
        res = kernels["results"]
        res[0]["steps"] = [{"name": "conv1", "median_ms": 0.4}]
        res[1]["fusion_flags"] = [True, True, True]
        res[1]["steps"] = [{"name": "masker_conv", "median_ms": 0.6}]
        res.append(dict(res[1], granularity=2, total_ms=1.7))
        res.append(dict(res[1], fusion="union+gather+scatter", total_ms=1.2,
                        fusion_flags=[False, True, True, True],
                        steps=[{"name": "dilate", "median_ms": 0.01},
                               {"name": "conv1", "median_ms": 0.3}]))
        lines, doc = self.run_summarize(TORCH, kernels)
        self.assertIn("| layer1.0 | 128 | fp32 | 4 | 1.200 (0.300 + 0.010) | 1.500 (0.600, m+g+s) "
                      "| 2.000 (0.400) | 0.60 | 0.80 |", lines)
        self.assertEqual([u["s"] for u in doc["union"]], [4])
        self.assertAlmostEqual(doc["union"][0]["union_vs_dense"], 0.6)
        # Without union rows: no table, an empty list.
        _, plain = self.run_summarize(TORCH)
        self.assertEqual(plain["union"], [])

    def test_fp16_rows_and_the_targets(self):
        # fp16, batch 128: dense 1.0 ms (floor 0.4); ours at d=0.5 S=2 0.65 ms, S=4 0.55 ms; a
        # cuBLASLt-capacity baseline row at S=4 of 0.30 ms, which is never ours. The chain:
        # dense 12 ms, dynamic 5.0 ms (graph) / 6.0 ms (eager) at S=4; batch 1 dense 2.0,
        # dynamic 1.6 ms (graph). No S=1 row.
        kernels = json.loads(json.dumps(KERNELS))
        base = {"block": "layer1.0", "stage": 1, "count": 1, "batch": 128, "precision": "fp16"}
        kernels["results"] += [
            dict(base, mode="dense", total_ms=1.0, floor_ms=0.4),
            dict(base, mode="dynamic", density=0.5, granularity=2, fusion="m+g+s",
                 total_ms=0.65, floor_ms=0.3),
            dict(base, mode="dynamic", density=0.5, granularity=4, fusion="m+g+s",
                 total_ms=0.55, floor_ms=0.25),
            dict(base, mode="dynamic", density=0.5, granularity=4,
                 fusion="none (cuBLASLt capacity)", fp16_library_dynamic=True, total_ms=0.3,
                 floor_ms=0.25),
            {"mode": "network", "batch": 128, "precision": "fp16",
             "dense": {"eager_ms": 13.0, "graph_ms": 12.0},
             "dynamic": {"eager_ms": 6.0, "graph_ms": 5.0,
                         "density_per_block": [{"density": 0.5}]},
             "dynamic_choice": {"layer1.0": {"granularity": 4, "fusion": "m+g+s"}}},
            {"mode": "network", "batch": 1, "precision": "fp16",
             "dense": {"eager_ms": 2.5, "graph_ms": 2.0},
             "dynamic": {"eager_ms": 2.1, "graph_ms": 1.6}}]
        # Theirs: the fp16 network compiled in 9.5 ms, 9.0 ms as a graph; a bf16 block.
        torch_doc = json.loads(json.dumps(TORCH))
        torch_doc["results"][3]["variants"] = {"compiled_default": {"median_ms": 9.5},
                                               "compiled_default_graph": {"median_ms": 9.0}}
        torch_doc["results"].append(entry("block", "bf16", 2.0, "graph_nchw", 1.1, 0.25,
                                          block="layer1.0", stage=1, count=1))
        lines, doc = self.run_summarize(torch_doc, kernels)
        # Ours, the baseline row left out: best 0.55 at S=4 (not 0.30), against cuDNN 2.0 ms.
        self.assertIn("| layer1.0 | 128 | fp16 | 1.000 | 2.000 | 0.50 | 0.550 (S=4, m+g+s) | "
                      "0.250 | 0.55 |", lines)
        self.assertIn("| layer1.0 | 128 | fp16 | 2.000 (nchw) | 1.000 (graph NCHW) | 0.250 | "
                      "4.00 | 1.000 | 1.00 | 0.550 | 0.55 |", lines)
        self.assertIn("| layer1.0 | 128 | bf16 | 2.000 (nchw) | 1.100 (graph NCHW) | 0.250 | "
                      "4.40 | no bf16 kernels yet | - | - | - |", lines)
        self.assertFalse(any("capacity" in json.dumps(u) for u in doc["union"] + doc["blocks"]))
        t16 = {(t["kind"], t.get("baseline"), t.get("s"), t.get("batch")): t
               for t in doc["targets"] if t["precision"] == "fp16"}
        # The chain at batch 128: 5.0 + the graphed stem and head 0.8 + 0.2 = 6.0 ms against the
        # compiled 9.0 ms: 0.67 <= 0.75; eager 6.0 + 1.0 + 0.5 = 7.5 ms against 30 ms: 0.25.
        c = t16[("network", "torch_compile", None, 128)]
        self.assertAlmostEqual(c["ratio"], 6.0 / 9.0)
        self.assertEqual((c["baseline_variant"], c["baseline_floor_ms"], c["met"]),
                         ("compiled_default_graph", 3.0, True))
        self.assertAlmostEqual(t16[("network", "best_eager_cudnn", None, 128)]["ratio"], 0.25)
        # Batch 1: our dynamic chain 1.6 against our dense chain 2.0 ms: 0.80 <= 0.85.
        b1 = t16[("network", "our_dense_chain", None, 1)]
        self.assertAlmostEqual(b1["ratio"], 0.8)
        self.assertTrue(b1["met"])
        # Stage 1 (layer1.0 alone here): S=2 0.65 (<= 0.70, met); S=1 not measured; best S=4
        # 0.55 (<= 0.60, met), with the floors.
        self.assertAlmostEqual(t16[("stage", "our_dense", 2, 128)]["ratio"], 0.65)
        s1 = t16[("stage", "our_dense", 1, 128)]
        self.assertEqual((s1["ours_ms"], s1["ratio"], s1["met"]), (None, None, None))
        best = [t for t in doc["targets"] if t["precision"] == "fp16" and t["kind"] == "stage"
                and t["limit"] == 0.6][0]
        self.assertEqual((best["s"], best["ours_ms"], best["ours_floor_ms"]), (4, 0.55, 0.25))
        # Our dense fp16 block against cuDNN's best eager layout: 1.0 / 2.0 <= 1.0.
        d = t16[("block", "best_eager_cudnn", None, 128)]
        self.assertEqual((d["ratio"], d["met"]), (0.5, True))
        self.assertIn("| fp16 | stage 1 (layer1.0), dynamic d=0.5 S=1, batch 128, vs our dense | "
                      "not measured | 1.000 (0.400) | - | <= 0.75 | not measured |", lines)
        self.assertIn("| fp16 | chained ResNet-101, dynamic d=0.5 (S 4), batch 128, graph, vs "
                      "torch.compile'd dense (compile default + graph (NHWC)) | 6.000 | "
                      "9.000 (3.000) | 0.67 | <= 0.75 | yes |", lines)
        # Against the fp16 pick of 9 ms the network is now ours in fp16: 6.0 / 9.0.
        self.assertIn("| 128 | 9.000 (fp16, compile default + graph (NHWC)) | 30.000 (fp16) | "
                      "13.000 (fp16) | 6.000 (fp16) | 0.67 |", lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
