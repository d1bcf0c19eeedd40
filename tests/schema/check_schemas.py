#!/usr/bin/python3
"""Validates shipped files and what the built `lasnet` writes against docs/schema/*.schema.json
(docs/outputs.md), and checks that documents which break a schema are rejected.

Usage: check_schemas.py SOURCE_DIR LASNET_BINARY
Needs python3-jsonschema (Draft 2020-12). Exits 1 listing every failure."""
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import jsonschema

SOURCE, BINARY = sys.argv[1], sys.argv[2]
failures = []
checked = 0


def load_schemas():
    schemas = {}
    for path in sorted(glob.glob(os.path.join(SOURCE, "docs/schema/*.schema.json"))):
        with open(path) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        name = os.path.basename(path)[: -len(".schema.json")]
        if schema["$id"] != f"urn:lasnet:schema:{name}":
            failures.append(f"{path}: $id {schema['$id']} does not match the file name")
        schemas[name] = jsonschema.Draft202012Validator(schema)
    return schemas


SCHEMAS = load_schemas()
tmp = tempfile.mkdtemp(prefix="lasnet_check_schemas.")  # real outputs go here


def errors(name, doc):
    return sorted(SCHEMAS[name].iter_errors(doc), key=lambda e: list(e.absolute_path))


def check(name, doc, where):
    global checked
    checked += 1
    for e in errors(name, doc)[:5]:
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        failures.append(f"{where}: not a valid {name} document at {path}: {e.message[:300]}")


def check_file(name, path):
    with open(path) as f:
        where = path if path.startswith(tmp) else os.path.relpath(path, SOURCE)
        check(name, json.load(f), where)


def expect_rejected(name, doc, why):
    global checked
    checked += 1
    if not errors(name, doc):
        failures.append(f"negative check: a {name} document with {why} was accepted")


def shipped(pattern):
    found = sorted(glob.glob(os.path.join(SOURCE, pattern)))
    if not found:
        failures.append(f"no files match {pattern}")
    return found


# Shipped inputs: specs and profiles of every label, measurement files of both labels.
for path in shipped("examples/*.json") + shipped("profiler/probes/*.json"):
    check_file("spec", path)
# Spec collections under bench/ (e.g. the imported torchvision models), where there are any.
for path in sorted(glob.glob(os.path.join(SOURCE, "bench/specs/**/*.json"), recursive=True)):
    check_file("spec", path)
for path in shipped("hardware_profiles/*.json") + [
    os.path.join(SOURCE, "bench/results/protocol_profile_h100.json"),
    os.path.join(SOURCE, "bench/results/h200-calibrated-resnet50.json"),
]:
    check_file("profile", path)
for path in shipped("bench/results/*measurements*.json"):
    check_file("measurements", path)

# Real outputs, written by the built tool into the directory of this run.


def lasnet(*args, stdout_json=None):
    result = subprocess.run([BINARY, *args], cwd=SOURCE, capture_output=True, text=True)
    if result.returncode != 0:
        failures.append(f"lasnet {' '.join(args)}: exit {result.returncode}: {result.stderr[-500:]}")
        return False
    if stdout_json:
        try:
            check(stdout_json, json.loads(result.stdout), f"lasnet {' '.join(args)}")
        except json.JSONDecodeError as e:
            failures.append(f"lasnet {' '.join(args)}: stdout is not JSON: {e}")
    return True


def out(name):
    return os.path.join(tmp, name)


# `lasnet run` outputs committed under bench/results (run_plans.sh): the reports and both traces.
for path in sorted(glob.glob(os.path.join(SOURCE, "bench/results/**/*.run.json"), recursive=True)):
    check_file("run", path)
for path in sorted(glob.glob(os.path.join(SOURCE, "bench/results/**/*.trace.json"), recursive=True)):
    check_file("trace", path)

try:
    predict = ["predict", "examples/resnet101.json", "--hw", "v100", "--format", "json"]
    lasnet(*predict, "--density", "0.5", "--granularity", "4-4-2-1", "--per", "op", stdout_json="predict")
    lasnet(*predict, "--dense-only", "--per", "stage", stdout_json="predict")
    lasnet("predict", "examples/regnety_400mf.json", "--hw", "h200-calibrated", "--kernels",
           "--per", "block", "--format", "json", stdout_json="predict")

    schedule = ["schedule", "examples/resnet50.json", "--hw", "h100", "--density", "0.5", "--streams", "2"]
    if lasnet(*schedule, "--format", "json", "--plan", out("plan.json"), "--trace", out("trace.json"),
              "--write-spec", out("scheduled.json"), stdout_json="plan"):
        check_file("plan", out("plan.json"))
        check_file("trace", out("trace.json"))
        check_file("spec", out("scheduled.json"))
    lasnet("schedule", "examples/resnet101.json", "--hw", "v100", "--budget-ms", "20", "--format", "json",
           stdout_json="plan")

    if lasnet("sample", "--count", "2", "--seed", "7", "--out", out("sample")):
        check_file("sample_index", out("sample/index.json"))
        for path in sorted(glob.glob(out("sample/*.json"))):
            if not path.endswith("index.json"):
                check_file("spec", path)

    lasnet("hw", "show", "v100", "--format", "json", stdout_json="profile")
    lasnet("hw", "list", "--format", "json", stdout_json="hw_list")
    if lasnet("hw", "generate", "--name", "a100", "--sms", "108", "--lanes", "64", "--clock-ghz", "1.41",
              "--dram-gbs", "1555", "--l2-mb", "40", "--smem-kb", "164", "--out", out("a100.json")):
        check_file("profile", out("a100.json"))
    if lasnet("hw", "transfer", "--calibration", "h100-calibrated", "--to", "v100", "--out", out("v100t.json")):
        check_file("profile", out("v100t.json"))

    # The importer is optional (libonnx-dev); `lasnet import --help` fails where it is not built.
    if subprocess.run([BINARY, "import", "--help"], capture_output=True).returncode == 0:
        for model in ("basic", "convnext"):  # schema 1 and schema 2 specs
            if lasnet("import", f"tests/data/onnx/tiny/{model}.onnx", "--out", out(f"{model}.json")):
                check_file("spec", out(f"{model}.json"))
    else:
        print("check_schemas: the importer is not built; import output not checked")

    # Every configuration is in the committed measurements, so no GPU is needed.
    run = ["examples/resnet50.json", "--hw", "h200-calibrated", "--batch", "1", "--density", "0.5",
           "--granularity", "spec", "--measurements", "bench/results/calibration_measurements_h200.json"]
    if lasnet("validate", *run, "--json", out("validation.json"), "--csv", out("validation.csv"),
              "--save-measurements", out("measurements.json"), "--record", out("recorded.json"),
              "--out", out("validation.txt")):
        check_file("validation", out("validation.json"))
        check_file("measurements", out("measurements.json"))
        check_file("profile", out("recorded.json"))
    if lasnet("calibrate", *run, "--report", out("calibration.json"), "--out", out("calibrated.json")):
        check_file("calibration", out("calibration.json"))
        check_file("profile", out("calibrated.json"))

    # Negative checks: documents that break a schema are rejected, so this test can fail.
    with open(os.path.join(SOURCE, "examples/resnet50.json")) as f:
        spec = json.load(f)
    bad = copy.deepcopy(spec)
    bad["stages"][0]["blockz"] = 3
    expect_rejected("spec", bad, "an unknown stage key")
    bad = copy.deepcopy(spec)
    bad.update({"schema": "lasnet.spec", "version": 1, "schema_version": 1})
    expect_rejected("spec", bad, "both labels")
    bad = copy.deepcopy(spec)
    bad.update({"schema": "lasnet.profile", "version": 1})
    expect_rejected("spec", bad, "another document's label")
    with open(os.path.join(SOURCE, "hardware_profiles/v100.json")) as f:
        profile = json.load(f)
    bad = copy.deepcopy(profile)
    bad["clock_hz"] = "1.38 GHz"
    expect_rejected("profile", bad, "a string clock")
    bad = copy.deepcopy(profile)
    del bad["schema_version"]
    expect_rejected("profile", bad, "no label")
    result = subprocess.run([BINARY, *predict, "--per", "block"], cwd=SOURCE, capture_output=True, text=True)
    doc = json.loads(result.stdout)
    bad = copy.deepcopy(doc)
    bad["dense"]["latency_ms"] = "12 ms"
    expect_rejected("predict", bad, "a string latency")
    bad = copy.deepcopy(doc)
    bad["dense"]["latency_s"] = doc["dense"]["latency_ms"] / 1e3
    expect_rejected("predict", bad, "a key in seconds")
    bad = copy.deepcopy(doc)
    bad["schema"] = "lasnet.predict/1"
    expect_rejected("predict", bad, "the old label")
    if os.path.exists(out("plan.json")):
        with open(out("plan.json")) as f:
            plan = json.load(f)
        bad = copy.deepcopy(plan)
        bad["version"] = 1
        expect_rejected("plan", bad, "version 1 (seconds) keys labelled")
        bad = copy.deepcopy(plan)
        del bad["blocks"][0]["ops"][0]["start_ms"]
        expect_rejected("plan", bad, "an op without its start")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("\n".join(failures))
    print(f"check_schemas: {len(failures)} failure(s) in {checked} checks")
    sys.exit(1)
print(f"check_schemas: {checked} documents checked against {len(SCHEMAS)} schemas, all as expected")
