#!/usr/bin/env bash
# Regenerates tests/fixtures/lifetimes_bgnbd_gg.json with lifetimes 0.11.3 in its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LIFETIMES_VENV:-$HOME/.cache/segvalue-lifetimes-venv}"
if [ ! -x "$venv/bin/python" ] || ! cmp -s scripts/requirements-lifetimes.txt "$venv/.requirements"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-lifetimes.txt
    cp scripts/requirements-lifetimes.txt "$venv/.requirements"
fi
"$venv/bin/python" scripts/lifetimes_fixture.py tests/fixtures/lifetimes_bgnbd_gg.json
