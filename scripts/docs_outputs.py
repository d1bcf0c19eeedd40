#!/usr/bin/python3
"""Reruns every command output shown in README.md and docs/*.md with the built `lasnet`.

(examples/README.md and hardware_profiles/README.md are read too.)

A fenced block that shows commands (lines starting with `$ `) must be preceded by a marker:

  <!-- output -->            every `$ ` command in the next fenced block is rerun (a line ending
                             in `\\` continues it); what it prints replaces the lines after it.
  <!-- output
  keep 2: REGEX              an excerpt of command 2 (1-based, in block order): only lines that
                             match REGEX (Python re.search) stay; each run of dropped lines
                             becomes one `...` line. Also the way to leave out what changes
                             from run to run (a date: `keep 4: ^(?!date )`).
  setup: BASH                run before the block's commands (e.g. to write an input file).
  -->
  <!-- measured: bench/results/FILE ... -->
                             the next block or table shows GPU measurements that cannot be
                             rerun here; it is skipped by name, and the files must exist.

Commands run with bash from a fresh scratch folder that mirrors the repository root (symlinks)
with an empty out/, `lasnet` first on PATH, stdout and stderr merged. A block that runs
`lasnet import` is skipped, loudly, with --no-importer (a build without libonnx-dev).

  scripts/docs_outputs.py --check  [--lasnet build/cli/lasnet]   fail with a diff on drift
  scripts/docs_outputs.py --update [--lasnet build/cli/lasnet]   rewrite the blocks
"""
import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^\s*<!-- (output|measured)\b(.*?)(-->)?\s*$")
FENCE = re.compile(r"^\s*```")


class DocError(Exception):
    pass


def documents():
    extra = [ROOT / "examples" / "README.md", ROOT / "hardware_profiles" / "README.md"]
    return [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")) + [
        p for p in extra if p.is_file()]


def read_marker(lines, i, where):
    """Returns (kind, header text, directive lines, index after the marker)."""
    m = MARKER.match(lines[i])
    kind, head = m.group(1), m.group(2).strip().lstrip(":").strip()
    directives = []
    if m.group(3) is None:  # a multi-line comment
        i += 1
        while i < len(lines) and lines[i].strip() != "-->":
            if lines[i].strip():
                directives.append(lines[i].strip())
            i += 1
        if i == len(lines):
            raise DocError(f"{where}: marker comment never closed with -->")
    return kind, head, directives, i + 1


def split_commands(body):
    """Splits a block's lines into [(command lines, output lines)] and any text before the first
    command."""
    segments, lead, i = [], [], 0
    while i < len(body) and not body[i].startswith("$ "):
        lead.append(body[i])
        i += 1
    while i < len(body):
        cmd = [body[i]]
        while cmd[-1].rstrip().endswith("\\") and i + 1 < len(body):
            i += 1
            cmd.append(body[i])
        i += 1
        out = []
        while i < len(body) and not body[i].startswith("$ "):
            out.append(body[i])
            i += 1
        segments.append((cmd, out))
    return lead, segments


def excerpt(lines, pattern):
    kept, dropping = [], False
    for line in lines:
        if re.search(pattern, line):
            kept.append(line)
            dropping = False
        elif not dropping:
            kept.append(line[:len(line) - len(line.lstrip())] + "...")  # indented like the rows
            dropping = True
    return kept


def scratch_root():
    """A folder that looks like the repository root with an empty out/."""
    scratch = Path(tempfile.mkdtemp(prefix="lasnet_docs."))
    for entry in ROOT.iterdir():
        if entry.name in ("out", ".git") or entry.name.startswith("build"):
            continue
        (scratch / entry.name).symlink_to(entry)
    (scratch / "out").mkdir()
    return scratch


def run_block(segments, directives, lasnet, where):
    keep, setup = {}, []
    for d in directives:
        m = re.match(r"keep (\d+): (.*)$", d)
        if m:
            keep[int(m.group(1))] = m.group(2)
        elif d.startswith("setup: "):
            setup.append(d[len("setup: "):])
        else:
            raise DocError(f"{where}: unknown directive '{d}' (keep N: REGEX, setup: BASH)")
    for n in keep:
        if not 1 <= n <= len(segments):
            raise DocError(f"{where}: keep {n}: the block has {len(segments)} command(s)")
    scratch = scratch_root()
    bindir = scratch / ".bin"
    bindir.mkdir()
    (bindir / "lasnet").symlink_to(lasnet)
    # The user's LASNET_* settings (a profile folder, a GPU library) must not change the output.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASNET_")}
    env.update(PATH=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}", LC_ALL="C", TZ="UTC",
               COLUMNS="100")
    try:
        for line in setup:
            r = subprocess.run(["bash", "-c", line], cwd=scratch, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise DocError(f"{where}: setup failed ({r.returncode}): {line}\n{r.stdout}")
        result = []
        for n, (cmd, _) in enumerate(segments, start=1):
            text = "\n".join(cmd)[2:].replace("\\\n", " ")
            r = subprocess.run(["bash", "-c", text], cwd=scratch, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=300)
            out = r.stdout.replace(str(scratch) + "/", "").replace(str(lasnet), "lasnet")
            lines = [l.rstrip() for l in out.split("\n")]
            while lines and not lines[-1]:
                lines.pop()
            if n in keep:
                lines = excerpt(lines, keep[n])
            result.append((cmd, lines))
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def process(path, lasnet, importer, report):
    """Returns the document's text with every output block regenerated."""
    lines = path.read_text().split("\n")
    rel = path.relative_to(ROOT)
    out, i, in_fence, marked = [], 0, False, False
    while i < len(lines):
        line = lines[i]
        where = f"{rel}:{i + 1}"
        if not in_fence and MARKER.match(line):
            kind, head, directives, after = read_marker(lines, i, where)
            out.extend(lines[i:after])
            i = after
            if kind == "measured":
                files = head.split()
                if not files:
                    raise DocError(f"{where}: measured: name the bench/results file(s)")
                for f in files:
                    if not (ROOT / f).is_file():
                        raise DocError(f"{where}: measured: {f} does not exist")
                report.append(f"skipped {where}: measured on a GPU ({', '.join(files)})")
                marked = True
                continue
            if head:
                raise DocError(f"{where}: '<!-- output -->' takes no text after it, got '{head}'")
            while i < len(lines) and not lines[i].strip():
                out.append(lines[i])
                i += 1
            if i == len(lines) or not FENCE.match(lines[i]):
                raise DocError(f"{where}: an output marker must precede a fenced block")
            start = i
            end = start + 1
            while end < len(lines) and not FENCE.match(lines[end]):
                end += 1
            if end == len(lines):
                raise DocError(f"{where}: fenced block never closed")
            body = lines[start + 1:end]
            lead, segments = split_commands(body)
            if not segments:
                raise DocError(f"{where}: the block after the marker has no '$ ' command")
            uses_import = any(re.search(r"\blasnet import\b", " ".join(c)) for c, _ in segments)
            if uses_import and not importer:
                report.append(f"SKIPPED {where}: it runs `lasnet import` and this build has no "
                              "importer (libonnx-dev)")
                out.extend(lines[start:end + 1])
            else:
                new_body = list(lead)
                for cmd, output in run_block(segments, directives, lasnet, where):
                    new_body.extend(cmd)
                    new_body.extend(output)
                out.append(lines[start])
                out.extend(new_body)
                out.append(lines[end])
                report.append(f"ran {where}: {len(segments)} command(s)")
            i = end + 1
            continue
        if FENCE.match(line):
            if not in_fence:
                # A block that shows commands must say whether it is rerun or measured.
                j = i + 1
                while j < len(lines) and not FENCE.match(lines[j]):
                    if lines[j].startswith("$ ") and not marked:
                        raise DocError(f"{where}: this block shows a command ('{lines[j][:60]}') "
                                       "but has no <!-- output --> or <!-- measured: FILE --> "
                                       "marker before it")
                    j += 1
            in_fence = not in_fence
            marked = False
        elif line.strip():
            marked = marked and line.lstrip().startswith("|")  # a measured table's rows
        out.append(line)
        i += 1
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail with a diff when a block drifted")
    mode.add_argument("--update", action="store_true", help="rewrite the drifted blocks")
    ap.add_argument("--lasnet", default=str(ROOT / "build" / "cli" / "lasnet"),
                    help="the built binary (default build/cli/lasnet)")
    ap.add_argument("--no-importer", action="store_true",
                    help="skip (loudly) blocks that run `lasnet import`")
    ap.add_argument("documents", nargs="*", type=Path,
                    help="Markdown files inside the repository (default README.md docs/*.md)")
    args = ap.parse_args()
    lasnet = Path(args.lasnet).resolve()
    if not os.access(lasnet, os.X_OK):
        sys.exit(f"docs_outputs: {args.lasnet}: no lasnet binary there (build it, or --lasnet)")
    drifted, report = [], []
    try:
        for path in [p.resolve() for p in args.documents] or documents():
            old = path.read_text()
            new = process(path, lasnet, not args.no_importer, report)
            if new == old:
                continue
            rel = str(path.relative_to(ROOT))
            if args.update:
                path.write_text(new)
                report.append(f"updated {rel}")
            else:
                drifted.append(rel)
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True), f"a/{rel} (committed)",
                    f"b/{rel} (what lasnet prints now)"))
    except (DocError, subprocess.TimeoutExpired) as e:
        sys.exit(f"docs_outputs: {e}")
    for line in report:
        print(f"docs_outputs: {line}")
    if drifted:
        print(f"docs_outputs: DRIFT in {', '.join(drifted)}: the committed outputs differ from what "
              "the built lasnet prints (diff above). Run scripts/docs_outputs.py --update and "
              "commit the result.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
