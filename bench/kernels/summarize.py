#!/usr/bin/env python3
"""Summarises bench_kernels and torch_dense results against the issue's targets.

Per block type, batch and precision: our dense time vs cuDNN's, the best dynamic time at
density 0.5 (best S and fusion) vs our dense, and a whole ResNet-101 forward composed per block
(cuDNN's stem and head + count x our dynamic block at d=0.5, one S per stage chosen to minimise
the stage's time) vs cuDNN's dense forward. "cuDNN" is PyTorch's best eager layout (total_ms).
Then, where torch.json has them (torch_dense.py's variants), the baseline a user would pick: per
block, network, batch and precision the best eager cuDNN time, the user's pick (the fastest of
NCHW / channels-last, eager / CUDA graph, torch.compile) and the floor, beside ours; fp16 and
bf16 rows say where we have no kernels; and per batch the network's pick over all precisions
against our fastest forward. Where the run has union-form rows (bench_kernels --union), the
union form per S against the fastest other form and dense. Prints markdown tables and writes
JSON.
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


def user_pick_tables(tj, dense, dyn, chained):
    """Ours beside the baseline a user would pick (torch_dense.py's variants), per entry, and
    the network's pick over all precisions against our fastest forward, per batch."""
    entries = [r for r in tj["results"] if "user_pick" in r]
    if not entries:
        return [], []
    ours_precisions = {k[2] for k in dense} | {k[1] for k in chained}
    print()
    print("The baseline a user would pick (torch_dense.py: fastest of NCHW / channels-last, "
          "eager / CUDA graph, torch.compile; ours: our dense and best dynamic d=0.5, for the "
          "network the chained forward as a CUDA graph with cuDNN's stem and head; floor: the "
          "entry's roofline sum from torch.json's ceilings)")
    print()
    print("| entry | batch | prec | best eager cuDNN ms (layout) | user's pick ms (variant) | "
          "floor ms | pick/floor | ours dense ms | dense/pick | ours dyn d=0.5 ms | dyn/pick |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    order = {p: i for i, p in enumerate(("fp32", "tf32", "fp16", "bf16"))}
    rows = []
    for e in sorted(entries, key=lambda e: (e["batch"], order.get(e["precision"], 9),
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
        else:
            c = chained.get((batch, prec))
            row["ours_dense_ms"] = c["ours_dense_graph_ms"] if c else None
            row["ours_dynamic_ms"] = c["ours_dynamic_graph_ms"] if c else None
        row["dense_vs_pick"] = ratio(row["ours_dense_ms"], pick["ms"])
        row["dynamic_vs_pick"] = ratio(row["ours_dynamic_ms"], pick["ms"])
        rows.append(row)
        if prec not in ours_precisions:
            ours = f"no {prec} kernels yet | - | - | -"
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
    for r in kj["results"]:
        if r["mode"] == "network":
            chained[(r["batch"], r["precision"])] = r
            continue
        key = (r["block"], r["batch"], r["precision"])
        meta[r["block"]] = (r["stage"], r["count"])
        if r["mode"] == "dense":
            dense[key] = r
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
        print(f"| {key[0]} | {key[1]} | {key[2]} | {d['total_ms']:.3f} | "
              f"{t if t is None else f'{t:.3f}'} | "
              f"{'-' if not t else format(d['total_ms'] / t, '.2f')} | "
              + (f"{best['total_ms']:.3f} (S={best['granularity']}, {best['fusion']}) | "
                 f"{best['floor_ms']:.3f} | {best['total_ms'] / d['total_ms']:.2f} |" if best else "- | - | - |"))
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
    baseline, overall = user_pick_tables(tj, dense, dyn, {(r["batch"], r["precision"]): r
                                                          for r in real})
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"density": a.density, "blocks": rows, "networks": nets,
                       "chained_networks": real, "user_pick": baseline,
                       "user_pick_over_precisions": overall, "union": unions}, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
