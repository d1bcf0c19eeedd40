#!/usr/bin/python3
"""Checks the SVGs `lasnet plot` and `lasnet validate --svg` write, as an XML parser reads them.

  check_svg.py plot PLOT.svg PLAN.json       (PLAN: `lasnet schedule --format json` of the same query)
  check_svg.py validate REPORT.svg REPORT.json   (REPORT.json: `validate --json` of the same run)

plot: well-formed XML; per stage one series per S the plan's trade-off table lists as feasible,
one dense line, and one mark whose S is the plan's recommended S.
validate: well-formed XML; both bands in the error plot and each histogram; one legend entry per
class of points; the kernel histogram's bars add up to the scored kernel rows of the report, the
network histogram's to its network rows.
Standard library only (CI runs it with Debian's python3).
"""
import json
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def fail(message):
    print(f"check_svg.py: {message}", file=sys.stderr)
    sys.exit(1)


def groups(root, cls):
    return [g for g in root.iter(NS + "g") if g.get("class") == cls]


def check_plot(svg_path, plan_path):
    root = ET.parse(svg_path).getroot()
    with open(plan_path) as f:
        plan = json.load(f)
    series = groups(root, "series")
    dense = groups(root, "dense")
    marks = groups(root, "recommended")
    if len(dense) != len(plan["stages"]) or len(marks) != len(plan["stages"]):
        fail(f"{len(dense)} dense lines and {len(marks)} marks for {len(plan['stages'])} stages")
    for stage in plan["stages"]:
        name = stage["name"]
        expected = sorted(o["granularity"] for o in stage["options"] if o.get("feasible", True))
        drawn = sorted(int(g.get("data-s")) for g in series if g.get("data-stage") == name)
        if drawn != expected:
            fail(f"{name}: series for S {drawn}, the plan lists {expected}")
        mark = [g for g in marks if g.get("data-stage") == name]
        if len(mark) != 1 or int(mark[0].get("data-s")) != stage["granularity"]:
            fail(f"{name}: the mark is not the plan's S {stage['granularity']}")
        for g in series:
            if g.get("data-stage") == name and g.find(NS + "polyline") is None:
                fail(f"{name}: a series without its line")
    print(f"{svg_path}: {len(series)} series, {len(marks)} marks match {plan_path}")


def check_validate(svg_path, report_path):
    root = ET.parse(svg_path).getroot()
    with open(report_path) as f:
        report = json.load(f)
    rows = [r for r in report["rows"] if r["modelled"] and r["measured_ms"] > 0]
    kernels = sum(1 for r in rows if r["level"] == "op")
    networks = sum(1 for r in rows if r["level"] == "network")
    bands = [r for r in root.iter(NS + "rect") if r.get("class") == "band"]
    for band in ("0.1", "0.15"):
        n = sum(1 for r in bands if r.get("data-band") == band)
        if n != (3 if networks else 2):
            fail(f"band {band} drawn {n} times")
    legend = [t for t in root.iter(NS + "text") if t.get("class") == "legend"]
    points = groups(root, "points")
    if len(legend) != len(points) or not points:
        fail(f"{len(legend)} legend entries for {len(points)} classes of points")
    if sum(len(g.findall(NS + "circle")) for g in points) != kernels:
        fail(f"the points are not the report's {kernels} kernel rows")
    for histogram in groups(root, "histogram"):
        of = histogram.get("data-of")
        bars = sum(int(r.get("data-count")) for r in histogram.iter(NS + "rect")
                   if r.get("class") == "bar")
        want = kernels if of == "kernels" else networks
        if bars != want:
            fail(f"the {of} histogram's bars add up to {bars}, the report has {want}")
    print(f"{svg_path}: {kernels} kernels, {networks} networks, {len(points)} classes")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("plot", "validate"):
        fail("usage: check_svg.py plot|validate FILE.svg FILE.json")
    (check_plot if sys.argv[1] == "plot" else check_validate)(sys.argv[2], sys.argv[3])
