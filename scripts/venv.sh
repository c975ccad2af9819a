#!/usr/bin/env bash
# Creates (or reuses) a Python venv holding pinned peers and prints its python path:
#
#   scripts/venv.sh REQUIREMENTS_FILE VENV_DIR
#
# The venv is rebuilt when the requirements file changes. Peers are test and benchmark tools
# only, never runtime dependencies of segvalue.
set -euo pipefail
req="$1"
venv="$2"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$stamp"
fi
echo "$venv/bin/python"
