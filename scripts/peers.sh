#!/usr/bin/env bash
# Creates (or reuses) the Python venv holding the test peers: DuckDB and pyarrow read segvalue's
# output as an outside reader would. Prints the venv's python path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${SEGVALUE_VENV:-$HOME/.cache/segvalue-venv}}"
req="$here/requirements-test.txt"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$stamp"
fi
echo "$venv/bin/python"
