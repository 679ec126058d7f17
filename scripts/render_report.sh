#!/usr/bin/env bash
# Renders a report HTML file to a PNG with headless Chromium, to check that it displays in a
# real browser. Installs chromium with apt-get when it is missing (root or sudo needed).
#
#   scripts/render_report.sh REPORT.html [OUT.png] [WIDTH] [HEIGHT]
#
# Defaults: OUT = REPORT with .png, 1280 x 4000 pixels (the top of the report; pass a larger
# height to see more). Screenshots are not committed (*.png in out/ and screenshots/ are ignored).
set -euo pipefail

html=${1:?usage: scripts/render_report.sh REPORT.html [OUT.png] [WIDTH] [HEIGHT]}
out=${2:-${html%.*}.png}
width=${3:-1280}
height=${4:-4000}

[ -f "$html" ] || { echo "error: $html does not exist; make one with: misalign report --simulate --output $html" >&2; exit 2; }

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "chromium not found; installing it with apt-get" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
  browser=chromium
fi

abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# A private profile folder, so concurrent renders do not share a lock; removed afterwards.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$out_abs" --window-size="$width,$height" "file://$abs" >/dev/null 2>&1
[ -s "$out_abs" ] || { echo "error: chromium wrote no screenshot" >&2; exit 1; }
echo "$out_abs"
