#!/usr/bin/env bash
# Regenerates tests/fixtures/lifetimes_bgnbd_gg.json with lifetimes 0.11.3 in its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(scripts/venv.sh scripts/requirements-lifetimes.txt "${LIFETIMES_VENV:-$HOME/.cache/segvalue-lifetimes-venv}")
"$py" scripts/lifetimes_fixture.py tests/fixtures/lifetimes_bgnbd_gg.json
