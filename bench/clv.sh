#!/usr/bin/env bash
# CLV benchmark: segvalue against lifetimes 0.11.3 on the same customer summary, alternating
# runs (segvalue, lifetimes, segvalue, lifetimes, …), medians of the ratios.
#
#   bench/clv.sh [CUSTOMERS] [PAIRS]      (defaults: 1000000 customers, 3 pairs)
#
# Measures (1) the BG/NBD + Gamma-Gamma fit alone (segvalue's `clv_fit` stage from the
# manifest; lifetimes' two `fit` calls) and (2) the whole job: read the summary, fit, predict
# P(alive), expected purchases and 12-month CLV, write Parquet. Also checks that the fitted
# parameters agree to 1e-4 relative.
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-1000000}"
pairs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/segvalue-target}"
cargo build --release --locked -q
bin="$CARGO_TARGET_DIR/release/segvalue"
py=$(scripts/venv.sh scripts/requirements-lifetimes.txt "${LIFETIMES_VENV:-$HOME/.cache/segvalue-lifetimes-venv}")
work=target/bench
rm -rf "$work" && mkdir -p "$work"
echo "generating $customers customers" >&2
"$bin" generate --out "$work/data" --customers "$customers" --seed 1 >&2
"$bin" -q run bench/jobs/clv_summary.toml --run-date 2025-12-31 >&2
summary="$work/summary/customer_summary/run_date=2025-12-31"
n=$("$py" -c "import pyarrow.parquet as pq, sys; print(pq.read_metadata(sys.argv[1] + '/part-00000.parquet').num_rows)" "$summary")
echo "summary: $n customers" >&2

results="$work/results.jsonl"
: > "$results"
for i in $(seq "$pairs"); do
    s0=$(date +%s.%N)
    "$bin" -q run bench/jobs/clv_fit.toml --run-date 2025-12-31 >/dev/null
    s1=$(date +%s.%N)
    sv_fit=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print([s['seconds'] for s in m['stages'] if s['stage']=='clv_fit'][0])" "$work/clv/_manifests/run_date=2025-12-31/manifest.json")
    lt=$("$py" bench/lifetimes_clv.py "$summary" "$work/lifetimes.parquet")
    echo "{\"pair\": $i, \"segvalue_total\": $(python3 -c "print($s1 - $s0)"), \"segvalue_fit\": $sv_fit, \"lifetimes\": $lt}" >> "$results"
    echo "pair $i done" >&2
done
python3 - "$results" "$work/clv/_manifests/run_date=2025-12-31/manifest.json" "$n" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
manifest = json.load(open(sys.argv[2]))
ours = {**manifest["clv"]["bgnbd"]["params"], **manifest["clv"]["gamma_gamma"]["params"]}
theirs = rows[-1]["lifetimes"]["params"]
fit = [r["segvalue_fit"] / r["lifetimes"]["fit_seconds"] for r in rows]
total = [r["segvalue_total"] / r["lifetimes"]["total_seconds"] for r in rows]
worst = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in theirs)
print(f"customers: {sys.argv[3]}, pairs: {len(rows)}")
for r in rows:
    print(f"  pair {r['pair']}: fit {r['segvalue_fit']:.3f} s vs {r['lifetimes']['fit_seconds']:.2f} s; "
          f"whole job {r['segvalue_total']:.2f} s vs {r['lifetimes']['total_seconds']:.2f} s")
print(f"fit ratio segvalue/lifetimes (median): {statistics.median(fit):.4f}  (goal <= 0.02)")
print(f"whole-job ratio (median): {statistics.median(total):.4f}  (goal <= 0.05)")
print(f"largest relative parameter difference: {worst:.2e}  (goal <= 1e-4)")
print("segvalue:", {k: round(v, 6) for k, v in sorted(ours.items())})
print("lifetimes:", {k: round(v, 6) for k, v in sorted(theirs.items())})
PY
