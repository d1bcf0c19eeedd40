#!/usr/bin/env python3
"""Prints a results section of docs/profiler.md from the committed reports of one GPU:
bench/results/validation_<tag>.json, validation_<tag>_uncalibrated.json, calibration_<tag>.json.
Usage: results_markdown.py [TAG]   (default h100)"""
import json
import sys

r = "bench/results"
tag = sys.argv[1] if len(sys.argv) > 1 else "h100"
val = json.load(open(f"{r}/validation_{tag}.json"))
unc = json.load(open(f"{r}/validation_{tag}_uncalibrated.json"))
cal = json.load(open(f"{r}/calibration_{tag}.json"))


def ms(row, key):
    """A time of a validation row: `_ms` keys in report version 2, seconds in version 1."""
    return row[f"{key}_ms"] if f"{key}_ms" in row else row[f"{key}_s"] * 1e3


def pct(x, signed=False):
    return "n/a" if x is None else (f"{100 * x:+.1f}%" if signed else f"{100 * x:.1f}%")


out = []
t = val["targets"]
out.append("| target | value (calibrated profile) | uncalibrated measured profile | met |")
out.append("| --- | --- | --- | --- |")
ut = unc["targets"]
out.append(f"| per-kernel MAPE <= 8% | {pct(t['op_mape']['value'])} | {pct(ut['op_mape']['value'])} | {'yes' if t['op_mape']['met'] else 'no'} |")
out.append(f"| kernels within +-15% >= 95% | {pct(t['op_within_15']['value'])} | {pct(ut['op_within_15']['value'])} | {'yes' if t['op_within_15']['met'] else 'no'} |")
out.append(f"| whole-network error <= 5% (worst of {val['metrics']['network']['count']}) | {pct(t['network_max_abs_error']['value'])} (MAPE {pct(val['metrics']['network']['mape'])}) | {pct(ut['network_max_abs_error']['value'])} (MAPE {pct(unc['metrics']['network']['mape'])}) | {'yes' if t['network_max_abs_error']['met'] else 'no'} |")
s = t["stage_spearman_min"]
us = ut["stage_spearman_min"]
out.append(f"| Spearman over S per stage >= 0.95 ({s['groups']} stage groups) | min {s['value']:.2f}, median {s['median']:.3f}, {pct(s['share_at_target'])} of groups at target; best S found in {s['best_s_agrees']}/{s['groups']}, mean regret {pct(s['mean_regret'])} | median {us['median']:.3f}, {pct(us['share_at_target'])} at target; best S in {us['best_s_agrees']}/{us['groups']}, regret {pct(us['mean_regret'])} | no |")
out.append("")
out.append("Per level (calibrated profile, held-out specs):")
out.append("")
out.append("| level | count | MAPE | max error | bias | within +-10% | within +-15% | Spearman |")
out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
for level, m in val["metrics"].items():
    sp = "n/a" if m["spearman"] is None else f"{m['spearman']:.3f}"
    out.append(f"| {level} | {m['count']} | {pct(m['mape'])} | {pct(m['max_abs_error'])} | {pct(m['mean_signed_error'], True)} | {pct(m['within_10'])} | {pct(m['within_15'])} | {sp} |")
out.append("")
out.append("Kernels by operator class and batch (calibrated profile, held-out specs):")
out.append("")
out.append("| class | batch | count | MAPE | bias | within +-15% |")
out.append("| --- | --- | --- | --- | --- | --- |")
for key, m in val["op_class_metrics"].items():
    cls, batch = key.rsplit(" ", 1)
    out.append(f"| {cls} | {batch[1:]} | {m['count']} | {pct(m['mape'])} | {pct(m['mean_signed_error'], True)} | {pct(m['within_15'])} |")
out.append("")
out.append("Networks (sum of the blocks' isolated timings; stem and head excluded):")
out.append("")
out.append("| spec | batch | mode | density | predicted | measured | error |")
out.append("| --- | --- | --- | --- | --- | --- | --- |")
for row in val["rows"]:
    if row["level"] != "network":
        continue
    density = row.get("density_label", row["density"])  # version 2 (docs/outputs.md) or 1
    out.append(f"| {row['name']} | {row['batch']} | {row['mode']} | {density} | {ms(row, 'predicted'):.2f} ms | {ms(row, 'measured'):.2f} ms | {pct(row['error'], True)} |")
out.append("")
b, a = cal["before"], cal["after"]
out.append(f"Calibration fit on the training set ({cal['samples']} kernel steps, {cal['iterations']} iterations): "
           f"RMS of log(predicted/measured) {b['rms_log']:.3f} -> {a['rms_log']:.3f}, MAPE {pct(b['mape'])} -> {pct(a['mape'])}, "
           f"within +-15% {pct(b['within_15'])} -> {pct(a['within_15'])}, bias {pct(b['bias'], True)} -> {pct(a['bias'], True)}. Parameters:")
out.append("")
out.append("| parameter | before | after |")
out.append("| --- | --- | --- |")
for p in cal["parameters"]:
    unit = (lambda v: f"{v * 1e6:.3f} us") if p["name"].startswith("op_offset") or p["name"] in ("launch_overhead_s", "serial_load_s", "warp_iteration_s", "load_latency_s", "l1_wavefront_s", "gemm_round_s") else (lambda v: f"{v:.4f}")
    out.append(f"| {p['name']} | {unit(p['before'])} | {unit(p['after'])} |")
sys.stdout.write("\n".join(out) + "\n")
