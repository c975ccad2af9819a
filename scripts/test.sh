#!/usr/bin/env bash
# The test command named in the README and run by CI. It installs what the tests need (the
# Python peers), then runs every test with the one cargo profile used for building (release),
# then the smallest benchmark as a check that segvalue agrees with its peers.
set -euo pipefail
cd "$(dirname "$0")/.."
# cargo's own ./target unless CARGO_TARGET_DIR says otherwise, so the README's run command
# (`cargo run --release`) and this script share one build: a fresh clone pays one cold build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# No import loops between the crate's modules (issue #19); no allow-list.
python3 scripts/check_imports.py
SEGVALUE_PYTHON="$(scripts/peers.sh)"
# Headless Chromium renders the run report in tests/it/report.rs (installed with apt if missing).
SEGVALUE_CHROMIUM="$(scripts/chromium.sh)"
export SEGVALUE_PYTHON SEGVALUE_CHROMIUM
cargo test --release --locked "$@"
# The benchmark harness at its smallest size: fails when segvalue's results disagree with DuckDB,
# scikit-learn or lifetimes, never on speed. Skipped when only some tests were asked for.
if [ $# -eq 0 ]; then
    bench/run --size tiny
fi
