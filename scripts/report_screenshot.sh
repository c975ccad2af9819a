#!/usr/bin/env bash
# Screenshot a run report (or any local HTML file) with headless Chromium:
#   scripts/report_screenshot.sh OUT_ROOT/_reports/run_date=D/report.html report.png
# Needs Debian's chromium (apt-get install -y chromium). The page must need no network.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 IN.html OUT.png" >&2
    exit 2
fi
in=$(realpath -- "$1")
out=$(realpath -m -- "$2")
[ -f "$in" ] || { echo "$0: no such file: $1" >&2; exit 2; }
chromium=$("$(dirname "$0")/chromium.sh")

profile=$(mktemp -d)
trap 'rm -rf -- "$profile"' EXIT

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1280,4000 --screenshot="$out" "file://$in"
[ -s "$out" ] || { echo "$0: no screenshot written to $out" >&2; exit 1; }
