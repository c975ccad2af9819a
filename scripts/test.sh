#!/usr/bin/env bash
# The test command named in the README and run by CI. It installs what the tests need (the
# Python peers), then runs every test with the one cargo profile used for building (release),
# then the smallest benchmark as a check that segvalue agrees with its peers.
set -euo pipefail
cd "$(dirname "$0")/.."
# Outside the clone, so repeated CI runs on one machine reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/segvalue-target}"
SEGVALUE_PYTHON="$(scripts/peers.sh)"
export SEGVALUE_PYTHON
cargo test --release --locked "$@"
# The benchmark harness at its smallest size: fails when segvalue's results disagree with DuckDB,
# scikit-learn or lifetimes, never on speed. Skipped when only some tests were asked for.
if [ $# -eq 0 ]; then
    bench/run --size tiny
fi
