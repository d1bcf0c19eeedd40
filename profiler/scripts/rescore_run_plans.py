#!/usr/bin/env python3
"""Re-predict the plans of a committed run_plans.sh measurement with the current model.

For every plan tag of run_plans_*.json (lasnet run reports, see run_plans.sh) this asks
`lasnet schedule` again at the tag's spec, batch, --streams and --tolerance, checks that the
plan is the one that ran (its one-stream prediction within 0.5% of the committed one, with the
flags the plans were made with), then prices the same S with the flags given (e.g. --graph) and
prints predicted against measured: the plan on its streams, on one stream, dense, the gain of
the streams, and per block the gain of the streams (measured from the eager spans). This is a
check against data the model has already seen: it says which change moved which row, it does
not replace a new measurement.

Usage: rescore_run_plans.py RUN_PLANS_JSON --lasnet build/cli/lasnet [--hw h100-calibrated]
           [--density 0.5] [--made-with "--kernels"] [--price-with "--kernels --graph"]
           [--made-hw PROFILE_THE_PLANS_WERE_MADE_WITH] [--closest]
(run_plans_h100.json today: `git show 9242ce5:hardware_profiles/h100-calibrated.json >
/tmp/h100-r5.json`, then --made-hw /tmp/h100-r5.json --closest: its plans were made with that
profile, and the block model has moved since)
"""
import argparse
import json
import re
import shlex
import subprocess
import sys


def schedule(lasnet, spec, hw, batch, density, streams, tolerance, flags, granularity=None):
    cmd = [lasnet, "schedule", f"examples/{spec}.json", "--hw", hw, "--batch", str(batch),
           "--density", str(density), "--streams", str(streams), "--tolerance", str(tolerance),
           "--format", "json"] + flags
    if granularity:
        cmd += ["--granularity", "-".join(map(str, granularity))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def at_streams(plan, k):
    for o in plan["stream_options"]:
        if o["streams"] == k:
            return o["latency_ms"]
    raise KeyError(k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_plans")
    ap.add_argument("--lasnet", required=True)
    ap.add_argument("--hw", default="h100-calibrated")
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--made-with", default="--kernels", help="schedule flags the plans were made with")
    ap.add_argument("--price-with", default="--kernels", help="schedule flags to price them with now")
    ap.add_argument("--made-hw", help="profile the plans were made with, to find their S (default --hw)")
    ap.add_argument("--closest", action="store_true",
                    help="where no S reproduces the committed blocks, take the closest per stage")
    a = ap.parse_args()
    runs = json.load(open(a.run_plans))["runs"]
    made, price = shlex.split(a.made_with), shlex.split(a.price_with)
    err = lambda p, m: 100.0 * (p - m) / m
    print(f"priced with `schedule {a.price_with}` (plans made with `{a.made_with}`); "
          "error = (predicted - measured) / measured\n")
    print("| plan | streams | S | plan pred ms | meas ms | err | one-stream err | dense err "
          "| gain pred | gain meas |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    blocks = []
    for tag, r in sorted(runs.items()):
        m = re.fullmatch(r"(.+)_b(\d+)_k(\d+)(?:_t([0-9.]+))?", tag)
        spec, batch, k, tol = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4) or "0.02"
        progs = {p["label"]: p for p in r["programs"]}
        plan_run, one_run = progs["plan"], progs.get("one stream", progs["plan"])
        # The S that ran: the one whose blocks, on one stream, are priced as the committed
        # one-stream program's (block by block, 0.1%). Stages are independent (a block's price
        # depends on its own stage's S only), so each stage whose blocks differ tries its other
        # S (a new stream model may choose another S for the same tag). Where the block model
        # itself has moved since the plans were made, no S reproduces them exactly: with
        # --closest each stage takes the S whose blocks come closest (the S column then shows the
        # largest relative difference left), which identifies the S as long as the stage's
        # options differ by more than the model moved.
        committed = {u["name"]: u["predicted_ms"] for u in one_run["units"]}

        def deviation(plan, stage):
            ds = [abs(b["single_stream_latency_ms"] - committed[b["name"]]) / committed[b["name"]]
                  for b in plan["blocks"] if b["stage"] == stage and b["name"] in committed]
            return max(ds, default=0.0)

        made_hw = a.made_hw or a.hw
        old = schedule(a.lasnet, spec, made_hw, batch, a.density, k, tol, made)
        granularity = list(old["granularity"])
        worst = 0.0
        for stage, st in enumerate(old["stages"]):
            best = (deviation(old, stage), granularity[stage])
            if best[0] <= 1e-3:
                continue
            for option in st["options"]:
                if not option["feasible"] or option["granularity"] == granularity[stage]:
                    continue
                trial = granularity[:stage] + [option["granularity"]] + granularity[stage + 1:]
                cand = schedule(a.lasnet, spec, made_hw, batch, a.density, k, tol, made, trial)
                best = min(best, (deviation(cand, stage), option["granularity"]))
                if best[0] <= 1e-3:
                    break
            granularity[stage] = best[1]
            worst = max(worst, best[0])
        if worst > 1e-3 and not a.closest:
            print(f"| {tag} | - | - | no S reproduces the committed one-stream blocks | | | | | | |")
            continue
        s_text = "-".join(map(str, granularity)) + (f" ({worst:.1%})" if worst > 1e-3 else "")
        s = plan_run["streams"]
        new = schedule(a.lasnet, spec, a.hw, batch, a.density, s, tol, price, granularity)
        plan_ms, one_ms = at_streams(new, s), at_streams(new, 1)
        dense = progs.get("dense")
        dense_err = f"{err(new['dense_latency_ms'], dense['measured_ms']):+.1f}%" if dense else "-"
        gain = "-" if s == 1 else f"{one_ms / plan_ms:.3f}x"
        gain_meas = "-" if s == 1 else f"{r['stream_gain']['measured']:.3f}x"
        one_err = "-" if s == 1 else f"{err(one_ms, one_run['measured_ms']):+.1f}%"
        print(f"| {tag} | {s} | {s_text} | {plan_ms:.3f} | "
              f"{plan_run['measured_ms']:.3f} | {err(plan_ms, plan_run['measured_ms']):+.1f}% | "
              f"{one_err} | {dense_err} | {gain} | {gain_meas} |")
        if s > 1 and new["streams"] == s:
            meas_plan = {u["name"]: u["measured_ms"] for u in plan_run["units"]}
            meas_one = {u["name"]: u["measured_ms"] for u in one_run["units"]}
            for b in new["blocks"]:
                g = b["single_stream_latency_ms"] / b["latency_ms"] if b["latency_ms"] else 1
                if g >= 1.01 or meas_one.get(b["name"], 0) / max(meas_plan.get(b["name"], 1), 1e-9) >= 1.03:
                    blocks.append((tag, b["name"], g, meas_one[b["name"]] / meas_plan[b["name"]]))
    if blocks:
        print("\nper block, gain of the plan's streams (predicted now / measured, eager spans):\n")
        print("| plan | block | gain pred | gain meas |")
        print("|---|---|---|---|")
        for tag, name, g, gm in blocks:
            print(f"| {tag} | {name} | {g:.3f}x | {gm:.3f}x |")


if __name__ == "__main__":
    main()
