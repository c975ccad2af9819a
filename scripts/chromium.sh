#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` package with
# apt-get when there is none (the report's browser test and scripts/report_screenshot.sh).
set -euo pipefail
if ! command -v chromium >/dev/null; then
    echo "installing Debian chromium" >&2
    { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
        || { echo "$0: chromium not found and apt-get install chromium failed" >&2; exit 2; }
fi
command -v chromium
