#!/usr/bin/env python3
"""Summarises bench_kernels and torch_dense results against the issue's targets.

Per block type, batch and precision: our dense time vs cuDNN's, the best dynamic time at
density 0.5 (best S and fusion) vs our dense, and a whole ResNet-101 forward composed per block
(cuDNN's stem and head + count x our dynamic block at d=0.5, one S per stage chosen to minimise
the stage's time) vs cuDNN's dense forward. "cuDNN" is PyTorch's best eager layout (total_ms).
Then, where torch.json has them (torch_dense.py's variants), the baseline a user would pick: per
block, network, batch and precision the best eager cuDNN time, the user's pick (the fastest of
NCHW / channels-last, eager / CUDA graph, torch.compile) and the floor, beside ours; bf16 rows
say we have no kernels, a precision we have kernels for but the run lacks says "not measured";
and per batch the network's pick over all precisions against our fastest forward. Where the run
has union-form rows (bench_kernels --union), the union form per S against the fastest other form
and dense. Then, where torch.json has the variants, issue 21's targets per precision the run has
(fp32, tf32, fp16): the chained dynamic network at batch 128 against torch.compile and the best
eager cuDNN layout, at batch 1 against our dense chain, each stage's dynamic blocks at S = 2,
S = 1 and the best S against our dense ones, our dense fp16 blocks against cuDNN; "not measured"
where the run lacks the row. Rows of the fp16 cuBLASLt-capacity baseline (fp16_library_dynamic,
fusion "... (cuBLASLt capacity)") are never ours: they are left out of every table. Prints
markdown tables and writes JSON.
  python3 summarize.py kernels.json torch.json [--out summary.json]"""
import argparse
import json
import os
from collections import defaultdict


def variant_label(name, entry):
    """eager_nchw -> "eager NCHW", compiled_<mode>_graph -> "compile <mode> + graph (NHWC)"."""
    lay = {"nchw": "NCHW", "channels_last": "NHWC"}
    for kind in ("eager", "graph"):
        if name.startswith(kind + "_"):
            return f"{kind} {lay.get(name[len(kind) + 1:], name)}"
    if name.startswith("compiled_"):
        graph = name.endswith("_graph")
        mode = name[len("compiled_"):len(name) - (6 if graph else 0)]
        info = next((c for c in entry.get("compile", []) if c.get("mode") == mode), {})
        return (f"compile {mode}{' + graph' if graph else ''}"
                f" ({lay.get(info.get('layout'), '?')})")
    return name


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


# The precisions bench_kernels has kernels for; bf16 has none.
KERNEL_PRECISIONS = ("fp32", "tf32", "fp16")
PRECISION_ORDER = {p: i for i, p in enumerate(("fp32", "tf32", "fp16", "bf16"))}


def is_baseline(r):
    """The fp16 cuBLASLt-capacity baseline (BlockConfig::fp16_library_dynamic, fusion "...
    (cuBLASLt capacity)"): a benchmark baseline, never ours. Takes a result row or a chain's
    per-block choice."""
    return bool(r.get("fp16_library_dynamic")) or "(cuBLASLt capacity)" in r.get("fusion", "")


def user_pick_tables(tj, dense, dyn, chained, measured_chains):
    """Ours beside the baseline a user would pick (torch_dense.py's variants), per entry, and
    the network's pick over all precisions against our fastest forward, per batch. chained:
    the composed chains; measured_chains: the (batch, precision) of bench_kernels' chains."""
    entries = [r for r in tj["results"] if "user_pick" in r]
    if not entries:
        return [], []
    print()
    print("The baseline a user would pick (torch_dense.py: fastest of NCHW / channels-last, "
          "eager / CUDA graph, torch.compile; ours: our dense and best dynamic d=0.5, for the "
          "network the chained forward as a CUDA graph with cuDNN's stem and head; floor: the "
          "entry's roofline sum from torch.json's ceilings)")
    print()
    print("| entry | batch | prec | best eager cuDNN ms (layout) | user's pick ms (variant) | "
          "floor ms | pick/floor | ours dense ms | dense/pick | ours dyn d=0.5 ms | dyn/pick |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for e in sorted(entries, key=lambda e: (e["batch"], PRECISION_ORDER.get(e["precision"], 9),
                                            e["kind"] != "block", e.get("block", ""))):
        batch, prec = e["batch"], e["precision"]
        name = e.get("block", "resnet101")
        pick = e["user_pick"]
        floor = e.get("floor", {}).get("floor_ms")
        row = {"entry": name, "batch": batch, "precision": prec,
               "best_eager_ms": e.get("best_eager_ms"),
               "best_layout_eager": e.get("best_layout_eager"), "user_pick_ms": pick["ms"],
               "user_pick_variant": pick["variant"], "floor_ms": floor,
               "compute_floor_ms": e.get("floor", {}).get("compute_floor_ms"),
               "memory_floor_ms": e.get("floor", {}).get("memory_floor_ms"),
               "pick_vs_floor": ratio(pick["ms"], floor), "ours_dense_ms": None,
               "ours_dynamic_ms": None}
        if e["kind"] == "block":
            d = dense.get((name, batch, prec))
            row["ours_dense_ms"] = d["total_ms"] if d else None
            cands = dyn.get((name, batch, prec)) or []
            row["ours_dynamic_ms"] = min((r["total_ms"] for r in cands), default=None)
            measured = d is not None or bool(cands)
        else:
            measured = (batch, prec) in measured_chains
            c = chained.get((batch, prec))
            row["ours_dense_ms"] = c["ours_dense_graph_ms"] if c else None
            row["ours_dynamic_ms"] = c["ours_dynamic_graph_ms"] if c else None
        row["dense_vs_pick"] = ratio(row["ours_dense_ms"], pick["ms"])
        row["dynamic_vs_pick"] = ratio(row["ours_dynamic_ms"], pick["ms"])
        rows.append(row)
        if prec not in KERNEL_PRECISIONS:
            ours = f"no {prec} kernels yet | - | - | -"
        elif not measured:
            ours = "not measured | - | - | -"
        else:
            ours = (f"{fmt(row['ours_dense_ms'])} | {fmt(row['dense_vs_pick'], '.2f')} | "
                    f"{fmt(row['ours_dynamic_ms'])} | {fmt(row['dynamic_vs_pick'], '.2f')}")
        print(f"| {name} | {batch} | {prec} | {fmt(row['best_eager_ms'])} "
              f"({row['best_layout_eager'] or '-'}) | {pick['ms']:.3f} "
              f"({variant_label(pick['variant'], e)}) | {fmt(floor)} | "
              f"{fmt(row['pick_vs_floor'], '.2f')} | {ours} |")
    # torch.compile: what ran, what did not, and why.
    notes = []
    for e in entries:
        for c in e.get("compile", []):
            if "skipped" in c or "error" in c:
                notes.append(f"{e.get('block', 'resnet101')} n={e['batch']} {e['precision']} "
                             f"{c['mode']}: {c.get('error') or c['skipped']}")
            elif e["kind"] == "network":
                notes.append(f"resnet101 n={e['batch']} {e['precision']} {c['mode']}: "
                             f"compiled in {c['compile_s']} s ({c['layout']})")
    if tj.get("compile_error"):
        print(f"\ntorch.compile failed: {tj['compile_error']}")
    if notes:
        print("\ntorch.compile per entry (networks compiled, every entry not compiled):")
        for n in notes:
            print(f"- {n}")
    # The network over all precisions: what a user deploying picks vs our fastest.
    overall = []
    nets = [e for e in entries if e["kind"] == "network"]
    if nets:
        print()
        print("| batch | user's pick, any precision: ms (prec, variant) | best eager cuDNN, any "
              "precision: ms (prec) | ours fastest dense graph ms (prec) | ours fastest dynamic "
              "d=0.5 graph ms (prec) | dyn/pick |")
        print("|---|---|---|---|---|---|")
    for batch in sorted({e["batch"] for e in nets}):
        es = [e for e in nets if e["batch"] == batch]
        best = min(es, key=lambda e: e["user_pick"]["ms"])
        eager = [e for e in es if e.get("best_eager_ms") is not None]
        beager = min(eager, key=lambda e: e["best_eager_ms"]) if eager else None
        ours = [c for (b, _), c in chained.items() if b == batch]
        odense = min(ours, key=lambda c: c["ours_dense_graph_ms"]) if ours else None
        odyn = min(ours, key=lambda c: c["ours_dynamic_graph_ms"]) if ours else None
        row = {"batch": batch, "user_pick_ms": best["user_pick"]["ms"],
               "user_pick_precision": best["precision"],
               "user_pick_variant": best["user_pick"]["variant"],
               "best_eager_ms": beager["best_eager_ms"] if beager else None,
               "best_eager_precision": beager["precision"] if beager else None,
               "ours_dense_graph_ms": odense["ours_dense_graph_ms"] if odense else None,
               "ours_dense_precision": odense["precision"] if odense else None,
               "ours_dynamic_graph_ms": odyn["ours_dynamic_graph_ms"] if odyn else None,
               "ours_dynamic_precision": odyn["precision"] if odyn else None}
        row["dynamic_vs_pick"] = ratio(row["ours_dynamic_graph_ms"], row["user_pick_ms"])
        overall.append(row)
        print(f"| {batch} | {row['user_pick_ms']:.3f} ({best['precision']}, "
              f"{variant_label(best['user_pick']['variant'], best)}) | "
              f"{fmt(row['best_eager_ms'])} ({row['best_eager_precision'] or '-'}) | "
              f"{fmt(row['ours_dense_graph_ms'])} ({row['ours_dense_precision'] or '-'}) | "
              f"{fmt(row['ours_dynamic_graph_ms'])} ({row['ours_dynamic_precision'] or '-'}) | "
              f"{fmt(row['dynamic_vs_pick'], '.2f')} |")
    return rows, overall


def is_union(r):
    """The union form's rows (bench_kernels --union) carry a fourth fusion flag."""
    flags = r.get("fusion_flags", [])
    return len(flags) > 3 and flags[3]


def step_ms(r, *names):
    return sum(st["median_ms"] for st in r.get("steps", []) if st["name"] in names)


def union_table(dense, dyn, density):
    """Per block type, batch, precision and S: the union form (conv1 once per needed pixel)
    against the fastest other form at the same S and against dense, whole block and its
    conv1 (+ dilate); nothing when the run has no union rows."""
    out = []
    for key in sorted(dense, key=lambda k: (k[1], k[2], k[0])):
        for s in sorted({r["granularity"] for r in dyn[key]}):
            at_s = [r for r in dyn[key] if r["granularity"] == s]
            uni = [r for r in at_s if is_union(r)]
            other = [r for r in at_s if not is_union(r)]
            if not uni or not other:
                continue
            u = min(uni, key=lambda r: r["total_ms"])
            o = min(other, key=lambda r: r["total_ms"])
            d = dense[key]
            out.append({"block": key[0], "batch": key[1], "precision": key[2], "s": s,
                        "union_ms": u["total_ms"], "union_conv1_ms": step_ms(u, "conv1"),
                        "dilate_ms": step_ms(u, "dilate"), "best_other_ms": o["total_ms"],
                        "best_other_fusion": o["fusion"],
                        "best_other_conv1_ms": step_ms(o, "conv1", "masker_conv"),
                        "dense_ms": d["total_ms"], "dense_conv1_ms": step_ms(d, "conv1"),
                        "union_vs_dense": u["total_ms"] / d["total_ms"],
                        "union_vs_best_other": u["total_ms"] / o["total_ms"]})
    if out:
        print()
        print(f"Union form (conv1 once per needed pixel) at d={density}:")
        print("| block | batch | prec | S | union ms (conv1 + dilate) | best other form ms "
              "(conv1) | dense ms (conv1) | union/dense | union/other |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in out:
            print(f"| {r['block']} | {r['batch']} | {r['precision']} | {r['s']} | "
                  f"{r['union_ms']:.3f} ({r['union_conv1_ms']:.3f} + {r['dilate_ms']:.3f}) | "
                  f"{r['best_other_ms']:.3f} ({r['best_other_conv1_ms']:.3f}, "
                  f"{r['best_other_fusion']}) | {r['dense_ms']:.3f} ({r['dense_conv1_ms']:.3f}) | "
                  f"{r['union_vs_dense']:.2f} | {r['union_vs_best_other']:.2f} |")
    return out


def stage_sum(blocks, meta, row_of):
    """(sum of count x total_ms, of count x floor_ms) over a stage's blocks; None where one has no
    row."""
    rows = [row_of(b) for b in blocks]
    if not rows or any(r is None for r in rows):
        return None
    return (sum(meta[b][1] * r["total_ms"] for b, r in zip(blocks, rows)),
            sum(meta[b][1] * r["floor_ms"] for b, r in zip(blocks, rows)))


def s_per_stage(choice, meta):
    """A chain's S per block type as "4-4-2-4" (one S per stage) or "4/2-..." (.0 / .x)."""
    out = []
    for st in sorted({meta[b][0] for b in choice if b in meta}):
        ss = [str(choice[b]["granularity"]) for b in sorted(choice)
              if b in meta and meta[b][0] == st]
        out.append(ss[0] if len(set(ss)) == 1 else "/".join(ss))
    return "-".join(out)


def targets_table(tj, dense, dyn, meta, chained, real, density):
    """Issue 21's targets per precision the run has: (ours, floor) against (baseline, floor),
    "not measured" where the data lacks a row, never an estimate. Only where torch.json has
    torch_dense.py's variants (best layout, torch.compile)."""
    if not any("user_pick" in r for r in tj["results"]):
        return []
    nets = {(r["batch"], r["precision"]): r for r in tj["results"] if r["kind"] == "network"}
    blocks = {(r["block"], r["batch"], r["precision"]): r for r in tj["results"]
              if r["kind"] == "block"}
    precs = sorted({k[2] for k in dense} | {k[1] for k in chained},
                   key=lambda p: (PRECISION_ORDER.get(p, 9), p))
    stages = sorted({st for st, _ in meta.values()})
    out = []

    def add(prec, target, limit, ours, base, **extra):
        """ours, base: (ms, floor ms or None), or None where the data has no such row."""
        r = ratio(ours[0], base[0]) if ours and base else None
        row = {"precision": prec, "target": target, "limit": limit,
               "ours_ms": ours[0] if ours else None, "ours_floor_ms": ours[1] if ours else None,
               "baseline_ms": base[0] if base else None,
               "baseline_floor_ms": base[1] if base else None, "ratio": r,
               "met": None if r is None else r <= limit}
        row.update(extra)
        out.append(row)

    for prec in precs:
        # The chained network at batch 128, CUDA graph, cuDNN's graphed stem and head.
        net, ch = nets.get((128, prec)), real.get((128, prec))
        floor = net.get("floor", {}).get("floor_ms") if net else None
        s_txt = s_per_stage(ch.get("choice") or {}, meta) if ch else ""
        comp = {n: v["median_ms"] for n, v in (net or {}).get("variants", {}).items()
                if n.startswith("compiled_") and v.get("median_ms") is not None}
        best_c = min(comp, key=comp.get) if comp else None
        add(prec, f"chained ResNet-101, dynamic d={density} (S {s_txt or '-'}), batch 128, "
            f"graph, vs torch.compile'd dense"
            f" ({variant_label(best_c, net) if best_c else 'not compiled'})", 0.75,
            (ch["ours_dynamic_graph_ms"], None) if ch else None,
            (comp[best_c], floor) if best_c else None, batch=128, kind="network",
            baseline="torch_compile", baseline_variant=best_c)
        layout = net.get("best_layout_eager") if net else None
        add(prec, f"chained ResNet-101, dynamic d={density}, batch 128, eager, vs best eager "
            f"cuDNN dense ({layout or '-'})", 0.60,
            (ch["ours_dynamic_eager_ms"], None) if ch else None,
            (net["best_eager_ms"], floor) if net and net.get("best_eager_ms") else None,
            batch=128, kind="network", baseline="best_eager_cudnn", baseline_layout=layout)
        # Batch 1: the dynamic chain against our dense chain (33 blocks, CUDA graphs).
        c1 = chained.get((1, prec))
        ok = c1 is not None and "dynamic" in c1
        add(prec, f"chained ResNet-101 blocks, dynamic d={density}, batch 1, graph, vs our "
            f"dense chain", 0.85, (c1["dynamic"]["graph_ms"], None) if ok else None,
            (c1["dense"]["graph_ms"], None) if ok else None, batch=1, kind="network",
            baseline="our_dense_chain")
        # Per stage at batch 128: the sum of count x block, ours the fastest fusion at the S.
        for st in stages:
            sb = sorted(b for b in meta if meta[b][0] == st)
            name = " + ".join(b if meta[b][1] == 1 else f"{meta[b][1]} x {b}" for b in sb)
            dn = stage_sum(sb, meta, lambda b: dense.get((b, 128, prec)))

            def at(s):
                def row_of(b):
                    rs = [r for r in dyn.get((b, 128, prec), []) if r["granularity"] == s]
                    return min(rs, key=lambda r: r["total_ms"]) if rs else None
                return row_of
            for s, limit in ((2, 0.70), (1, 0.75)):
                add(prec, f"stage {st} ({name}), dynamic d={density} S={s}, batch 128, vs our "
                    f"dense", limit, stage_sum(sb, meta, at(s)), dn, batch=128, kind="stage",
                    stage=st, s=s, baseline="our_dense")
            ss = sorted({r["granularity"] for b in sb for r in dyn.get((b, 128, prec), [])})
            full = {s: v for s in ss for v in [stage_sum(sb, meta, at(s))] if v}
            best = min(full, key=lambda s: full[s][0]) if full else None
            add(prec, f"stage {st} ({name}), dynamic d={density} best S"
                f" ({f'S={best} of ' + ', '.join(map(str, ss)) if best else '-'}), batch 128, "
                f"vs our dense", 0.60, full.get(best), dn, batch=128, kind="stage", stage=st,
                s=best, baseline="our_dense")
        # Our dense fp16 blocks against cuDNN's best eager layout.
        if prec != "fp16":
            continue
        for key in sorted((k for k in dense if k[2] == prec), key=lambda k: (k[1], k[0])):
            d, e = dense[key], blocks.get(key)
            base = None
            if e and e.get("best_eager_ms"):
                base = (e["best_eager_ms"], e.get("floor", {}).get("floor_ms"))
            add(prec, f"dense {key[0]}, batch {key[1]}, vs cuDNN's best eager layout "
                f"({(e or {}).get('best_layout_eager') or '-'})", 1.0,
                (d["total_ms"], d["floor_ms"]), base, batch=key[1], kind="block",
                block=key[0], baseline="best_eager_cudnn")
    if not out:
        return out
    print()
    print("Issue 21's targets per precision (ours against the baseline, ms, floor in brackets "
          "where the JSON has one; a stage is the sum of count x block, ours the fastest fusion "
          "at the S; \"not measured\" where the run lacks the row):")
    print()
    print("| prec | target | ours ms (floor) | baseline ms (floor) | ours/baseline | limit | "
          "met? |")
    print("|---|---|---|---|---|---|---|")

    def cell(ms, fl):
        if ms is None:
            return "not measured"
        return f"{ms:.3f}" + ("" if fl is None else f" ({fl:.3f})")
    for r in out:
        met = "not measured" if r["met"] is None else ("yes" if r["met"] else "no")
        print(f"| {r['precision']} | {r['target']} | {cell(r['ours_ms'], r['ours_floor_ms'])} | "
              f"{cell(r['baseline_ms'], r['baseline_floor_ms'])} | {fmt(r['ratio'], '.2f')} | "
              f"<= {r['limit']:.2f} | {met} |")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kernels")
    ap.add_argument("torch")
    ap.add_argument("--out")
    ap.add_argument("--density", type=float, default=0.5)
    a = ap.parse_args()
    kj = json.load(open(a.kernels))
    tj = json.load(open(a.torch))
    torch_block = {(r["block"], r["batch"], r["precision"]): r.get("total_ms")
                   for r in tj["results"] if r["kind"] == "block"}
    # A network whose eager forward, stem or head failed (torch_dense.py records the error)
    # composes nothing; it still has its row in the user's-pick table.
    torch_net = {(r["batch"], r["precision"]): r for r in tj["results"]
                 if r["kind"] == "network" and all(r.get(k) is not None
                                                   for k in ("total_ms", "stem_ms", "head_ms"))}
    dense, dyn = {}, defaultdict(list)
    meta = {}
    chained = {}
    baseline_rows = 0
    for r in kj["results"]:
        if r["mode"] == "network":
            # bench_kernels never chains the baseline; a chain that did would not be ours.
            if not any(is_baseline(c) for c in r.get("dynamic_choice", {}).values()):
                chained[(r["batch"], r["precision"])] = r
            continue
        key = (r["block"], r["batch"], r["precision"])
        meta[r["block"]] = (r["stage"], r["count"])
        if r["mode"] == "dense":
            dense[key] = r
        elif is_baseline(r):
            baseline_rows += 1
        elif abs(r["density"] - a.density) < 1e-9:
            dyn[key].append(r)
    rows, nets = [], []
    print(f"| block | batch | prec | ours dense ms | cuDNN eager ms | ours/cuDNN | "
          f"best dyn d={a.density} ms (S, fusion) | floor ms | dyn/dense |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in sorted(dense, key=lambda k: (k[1], k[2], k[0])):
        d = dense[key]
        t = torch_block.get(key)
        best = min(dyn[key], key=lambda r: r["total_ms"]) if dyn[key] else None
        row = {"block": key[0], "batch": key[1], "precision": key[2],
               "dense_ms": d["total_ms"], "dense_floor_ms": d["floor_ms"], "cudnn_ms": t,
               "dense_vs_cudnn": d["total_ms"] / t if t else None}
        if best:
            row.update({"best_dynamic_ms": best["total_ms"], "best_s": best["granularity"],
                        "best_fusion": best["fusion"], "dynamic_floor_ms": best["floor_ms"],
                        "dynamic_vs_dense": best["total_ms"] / d["total_ms"]})
        rows.append(row)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {d['total_ms']:.3f} | {fmt(t)} | "
              f"{'-' if not t else format(d['total_ms'] / t, '.2f')} | "
              + (f"{best['total_ms']:.3f} (S={best['granularity']}, {best['fusion']}) | "
                 f"{best['floor_ms']:.3f} | {best['total_ms'] / d['total_ms']:.2f} |" if best else "- | - | - |"))
    if baseline_rows:
        print(f"\n{baseline_rows} rows of the fp16 cuBLASLt-capacity baseline "
              f"(fp16_library_dynamic) are left out: they are not ours.")
    unions = union_table(dense, dyn, a.density)
    # Whole network: one S per stage (the predictor's setting), best fusion per block.
    print()
    print("| batch | prec | cuDNN dense fwd ms | ours dense composed ms | ours dynamic composed ms "
          "(S per stage) | dynamic/cuDNN |")
    print("|---|---|---|---|---|---|")
    for (batch, prec), net in sorted(torch_net.items()):
        blocks = [b for b in meta if (b, batch, prec) in dense]
        if len(blocks) != 8:
            continue
        stages = sorted({meta[b][0] for b in blocks})
        total_dyn, total_dense, chosen = 0.0, 0.0, {}
        ok = True
        for st in stages:
            sb = [b for b in blocks if meta[b][0] == st]
            total_dense += sum(meta[b][1] * dense[(b, batch, prec)]["total_ms"] for b in sb)
            cands = defaultdict(dict)
            for b in sb:
                for r in dyn[(b, batch, prec)]:
                    s = r["granularity"]
                    cands[s][b] = min(cands[s].get(b, 1e30), r["total_ms"])
            full = {s: sum(meta[b][1] * v[b] for b in sb) for s, v in cands.items()
                    if len(v) == len(sb)}
            if not full:
                ok = False
                break
            s_best = min(full, key=full.get)
            chosen[st] = s_best
            total_dyn += full[s_best]
        if not ok:
            continue
        extra = net["stem_ms"] + net["head_ms"]
        dyn_net = extra + total_dyn
        dense_net = extra + total_dense
        nets.append({"batch": batch, "precision": prec, "cudnn_forward_ms": net["total_ms"],
                     "stem_head_ms": extra, "ours_dense_composed_ms": dense_net,
                     "ours_dynamic_composed_ms": dyn_net, "s_per_stage": chosen,
                     "dynamic_vs_cudnn": dyn_net / net["total_ms"]})
        s_txt = "-".join(str(chosen[s]) for s in stages)
        print(f"| {batch} | {prec} | {net['total_ms']:.3f} | {dense_net:.3f} | {dyn_net:.3f} "
              f"({s_txt}) | {dyn_net / net['total_ms']:.2f} |")
    # The real forward: the 33 bottlenecks chained (bench_kernels --network 1), plus cuDNN's
    # stem and head from the same device run; eager against eager, CUDA graph against graph.
    real = []
    if chained:
        print()
        print("| batch | prec | cuDNN fwd eager / graph ms | ours dense eager / graph ms | "
              "ours dynamic d=0.5 eager / graph ms | dyn/cuDNN eager | dyn/cuDNN graph | "
              "measured density (min-max over blocks) |")
        print("|---|---|---|---|---|---|---|---|")
    for (batch, prec), r in sorted(chained.items()):
        net = torch_net.get((batch, prec))
        if net is None or "dynamic" not in r:
            continue
        eager_extra = net["stem_ms"] + net["head_ms"]
        graph_extra = net.get("stem_graph_ms", net["stem_ms"]) + net.get("head_graph_ms",
                                                                          net["head_ms"])
        t_graph = net.get("graph_ms")
        dense_e = eager_extra + r["dense"]["eager_ms"]
        dense_g = graph_extra + r["dense"]["graph_ms"]
        dyn_e = eager_extra + r["dynamic"]["eager_ms"]
        dyn_g = graph_extra + r["dynamic"]["graph_ms"]
        dens = [b["density"] for b in r["dynamic"].get("density_per_block", [])]
        row = {"batch": batch, "precision": prec, "cudnn_eager_ms": net["total_ms"],
               "cudnn_graph_ms": t_graph, "ours_dense_eager_ms": dense_e,
               "ours_dense_graph_ms": dense_g, "ours_dynamic_eager_ms": dyn_e,
               "ours_dynamic_graph_ms": dyn_g,
               "dynamic_vs_cudnn_eager": dyn_e / net["total_ms"],
               "dynamic_vs_cudnn_graph": dyn_g / t_graph if t_graph else None,
               "density_min": min(dens) if dens else None,
               "density_max": max(dens) if dens else None,
               "density_mean": sum(dens) / len(dens) if dens else None,
               "choice": r.get("dynamic_choice")}
        real.append(row)
        g_txt = f"{t_graph:.3f}" if t_graph else "-"
        r_txt = f"{dyn_g / t_graph:.2f}" if t_graph else "-"
        d_txt = (f"{min(dens):.2f}-{max(dens):.2f} (mean {sum(dens) / len(dens):.2f})"
                 if dens else "-")
        print(f"| {batch} | {prec} | {net['total_ms']:.3f} / {g_txt} | {dense_e:.3f} / "
              f"{dense_g:.3f} | {dyn_e:.3f} / {dyn_g:.3f} | {dyn_e / net['total_ms']:.2f} | "
              f"{r_txt} | {d_txt} |")
    real_by_key = {(r["batch"], r["precision"]): r for r in real}
    baseline, overall = user_pick_tables(tj, dense, dyn, real_by_key, set(chained))
    targets = targets_table(tj, dense, dyn, meta, chained, real_by_key, a.density)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"density": a.density, "blocks": rows, "networks": nets,
                       "chained_networks": real, "user_pick": baseline,
                       "user_pick_over_precisions": overall, "union": unions,
                       "targets": targets}, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
