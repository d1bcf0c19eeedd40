#!/usr/bin/env python3
"""Summary of run_plans.sh: every `lasnet run` JSON of OUTDIR as Markdown tables.

Per plan: predicted and measured whole-network latency (the plan, one stream, dense) and their
errors, and the gain of the plan's streams over one stream, predicted against measured. Per
spec and batch: the plan predicted best among those run, and whether it is the measured best.
The targets of issue 23 are checked at the end (+-10% per network, the gain's sign and size
within 5 points, the predicted best within 3% of the measured best)."""
import glob
import json
import os
import sys


def main(outdir):
    rows = []
    for path in sorted(glob.glob(os.path.join(outdir, "*.run.json"))):
        with open(path) as f:
            r = json.load(f)
        tag = os.path.basename(path)[: -len(".run.json")]
        progs = {p["label"]: p for p in r["programs"]}
        rows.append((tag, r, progs))
    if not rows:
        print("no run results in", outdir)
        return 1
    device = next((r["device"] for _, r, _ in rows if r.get("device")), "?")
    print(f"# lasnet run: plans on {device}\n")
    print("error = (predicted - measured) / measured; gain = one stream / plan\n")
    print("| plan | streams | plan pred ms | plan meas ms | err | one-stream err | dense err "
          "| gain pred | gain meas | gain diff (pts) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors, gains = [], []
    best = {}
    for tag, r, progs in rows:
        plan = r["programs"][0]  # the plan (or spec) as given
        if plan is None or plan["measured_ms"] is None:
            continue
        one = progs.get("one stream")
        dense = progs.get("dense")
        for p in (plan, one, dense):
            if p is not None and p["error"] is not None:
                errors.append((tag + " " + p["label"], p["error"]))
        g = r.get("stream_gain")
        gain_cells = ["-", "-", "-"]
        if g and g["measured"] is not None:
            diff = 100 * (g["predicted"] - g["measured"])
            gains.append((tag, g["predicted"], g["measured"]))
            gain_cells = [f"{g['predicted']:.3f}x", f"{g['measured']:.3f}x", f"{diff:+.1f}"]
        err = lambda p: "-" if p is None or p["error"] is None else f"{100 * p['error']:+.1f}%"
        print(f"| {tag} | {plan['streams']} | {plan['predicted_ms']:.3f} | "
              f"{plan['measured_ms']:.3f} | {err(plan)} | {err(one)} | {err(dense)} | "
              + " | ".join(gain_cells) + " |")
        key = tag.rsplit("_k", 1)[0]
        best.setdefault(key, []).append((tag, plan["predicted_ms"], plan["measured_ms"]))
    print("\n## Best plan per spec and batch (among the plans run)\n")
    print("| spec, batch | predicted best | measured best | regret |")
    print("|---|---|---|---|")
    regrets = []
    for key, plans in best.items():
        p = min(plans, key=lambda x: x[1])
        m = min(plans, key=lambda x: x[2])
        regret = p[2] / m[2] - 1
        regrets.append((key, regret))
        print(f"| {key} | {p[0]} ({p[2]:.3f} ms) | {m[0]} ({m[2]:.3f} ms) | {100 * regret:.1f}% |")
    print("\n## Per block: gain of the plan's streams over one stream (eager spans)\n")
    print("Blocks whose predicted gain is at least 1%; measured from the eager runs' event "
          "timelines (host launch gaps included), so read the sign more than the size.\n")
    print("| plan | block | pred one ms | pred plan ms | gain pred | meas one ms | meas plan ms "
          "| gain meas |")
    print("|---|---|---|---|---|---|---|---|")
    for tag, r, progs in rows:
        plan, one = r["programs"][0], progs.get("one stream")
        if one is None or plan["measured_ms"] is None:
            continue
        for pu, ou in zip(plan["units"], one["units"]):
            if pu["predicted_ms"] <= 0 or ou["predicted_ms"] / pu["predicted_ms"] < 1.01:
                continue
            gp = ou["predicted_ms"] / pu["predicted_ms"]
            gm = (ou["measured_ms"] / pu["measured_ms"]
                  if pu["measured_ms"] and ou["measured_ms"] else None)
            print(f"| {tag} | {pu['name']} | {ou['predicted_ms']:.4f} | {pu['predicted_ms']:.4f} | "
                  f"{gp:.3f}x | {ou['measured_ms']:.4f} | {pu['measured_ms']:.4f} | "
                  + (f"{gm:.3f}x |" if gm else "- |"))
    print("\n## Targets\n")
    within = [e for e in errors if abs(e[1]) <= 0.10]
    print(f"- whole network within +-10%: {len(within)} of {len(errors)}"
          + (f"; worst {max(errors, key=lambda e: abs(e[1]))[0]} "
             f"{100 * max(abs(e[1]) for e in errors):.1f}%" if errors else ""))
    sign = [g for g in gains if (g[1] - 1) * (g[2] - 1) >= 0]
    size = [g for g in gains if abs(g[1] - g[2]) <= 0.05]
    print(f"- multi-stream gain: sign right {len(sign)} of {len(gains)}, "
          f"size within 5 points {len(size)} of {len(gains)}")
    ok = [r for r in regrets if r[1] <= 0.03]
    print(f"- predicted best within 3% of the measured best: {len(ok)} of {len(regrets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
