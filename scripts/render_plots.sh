#!/usr/bin/env bash
# Renders SVG plots (`lasnet plot`, `lasnet validate --svg`) to PNG with a real browser: Debian's
# chromium, headless, one screenshot per file at the SVG's own width and height (times --scale).
# Optional tooling for the docs' images; neither the build nor the tests need it
# (`apt-get install -y chromium`).
#
#   scripts/render_plots.sh [--out-dir DIR] [--scale N] FILE.svg...
#
# Each FILE.svg becomes DIR/FILE.png (default: next to the SVG).
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

out_dir=""
scale=1
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out-dir) out_dir="${2:?--out-dir needs a directory}"; shift 2 ;;
    --scale) scale="${2:?--scale needs a number}"; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "render_plots.sh: unknown option $1" >&2; usage ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ ${#files[@]} -gt 0 ]] || usage

browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null; then browser="$candidate"; break; fi
done
if [[ -z "$browser" ]]; then
  echo "render_plots.sh: no chromium found (Debian: apt-get install -y chromium)" >&2
  exit 2
fi
# Chromium refuses to run as root with its sandbox on.
sandbox=()
[[ "$(id -u)" -eq 0 ]] && sandbox=(--no-sandbox)

for svg in "${files[@]}"; do
  if [[ ! -f "$svg" ]]; then
    echo "render_plots.sh: $svg: no such file" >&2
    exit 2
  fi
  # The root element's width and height give the window: the screenshot is the whole plot.
  read -r width height < <(/usr/bin/python3 - "$svg" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(int(float(root.get("width"))), int(float(root.get("height"))))
EOF
)
  dir="${out_dir:-$(dirname "$svg")}"
  mkdir -p "$dir"
  png="$dir/$(basename "${svg%.svg}").png"
  url="file://$(realpath "$svg")"
  "$browser" --headless "${sandbox[@]}" --disable-gpu --hide-scrollbars \
    --force-device-scale-factor="$scale" --window-size="$width,$height" \
    --screenshot="$(realpath -m "$png")" "$url" >/dev/null 2>&1
  echo "$png (${width}x${height}, scale $scale)"
done
