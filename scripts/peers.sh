#!/usr/bin/env bash
# The venv holding the test peers: DuckDB and pyarrow read segvalue's output as an outside
# reader would, scikit-learn checks the segmentation metrics. Prints the venv's python path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/venv.sh" "$here/requirements-test.txt" "${1:-${SEGVALUE_VENV:-$HOME/.cache/segvalue-venv}}"
