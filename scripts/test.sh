#!/usr/bin/env bash
# The test command named in the README and run by CI. It installs what the tests need (the
# Python peers), then runs every test with the one cargo profile used for building (release).
set -euo pipefail
cd "$(dirname "$0")/.."
# Outside the clone, so repeated CI runs on one machine reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/segvalue-target}"
SEGVALUE_PYTHON="$(scripts/peers.sh)"
export SEGVALUE_PYTHON
cargo test --release --locked "$@"
