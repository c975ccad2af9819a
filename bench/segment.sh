#!/usr/bin/env bash
# Segmentation benchmark: segvalue against scikit-learn 1.9 on the same Parquet, alternating
# runs (segvalue, scikit-learn, …), medians of the ratios.
#
#   bench/segment.sh [ROWS] [PAIRS]      (defaults: 1000000 rows, 3 pairs)
#
# Measures (1) the K-means fit alone: k = 8, n_init = 1, lloyd, standardised features
# (examples/kmeans_fit.rs against sklearn.cluster.KMeans), with the inertia of both; and
# (2) the whole job: `segvalue run bench/jobs/kmeans.toml` against a plain pandas +
# scikit-learn script that reads the Parquet, standardises, fits, computes a 20,000-row
# silhouette and writes the labels.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
pairs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/segvalue-target}"
cargo build --release --locked -q --bin segvalue --example kmeans_fit
bin="$CARGO_TARGET_DIR/release/segvalue"
fit="$CARGO_TARGET_DIR/release/examples/kmeans_fit"
py=$(scripts/venv.sh scripts/requirements-bench.txt "${BENCH_VENV:-$HOME/.cache/segvalue-bench-venv}")
work=target/bench-segment
rm -rf "$work" && mkdir -p "$work"
echo "generating $rows points" >&2
"$py" bench/sklearn_segment.py data "$work" "$rows" 7
points="$work/points/part-0.parquet"

results="$work/results.jsonl"
: > "$results"
for i in $(seq "$pairs"); do
    ours_fit=$("$fit" "$points" 8 1 0 x1 x2 x3 x4 x5 x6)
    sk_fit=$("$py" bench/sklearn_segment.py fit "$points")
    s0=$(date +%s.%N)
    "$bin" -q run bench/jobs/kmeans.toml --run-date 2025-12-31 >/dev/null
    s1=$(date +%s.%N)
    sk_job=$("$py" bench/sklearn_segment.py job "$points" "$work/sklearn_labels.parquet")
    echo "{\"pair\": $i, \"ours_fit\": $ours_fit, \"sk_fit\": $sk_fit, \"ours_job\": $(python3 -c "print($s1 - $s0)"), \"sk_job\": $sk_job}" >> "$results"
    echo "pair $i done" >&2
done
python3 - "$results" "$rows" "$work/out/_manifests/run_date=2025-12-31/manifest.json" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
manifest = json.load(open(sys.argv[3]))
print(f"rows: {sys.argv[2]}, pairs: {len(rows)}, threads: segvalue rayon default, scikit-learn OpenMP default")
for r in rows:
    print(f"  pair {r['pair']}: fit {r['ours_fit']['fit_seconds']:.3f} s ({r['ours_fit']['n_iter']} it) vs "
          f"{r['sk_fit']['fit_seconds']:.3f} s ({r['sk_fit']['n_iter']} it); "
          f"whole job {r['ours_job']:.2f} s vs {r['sk_job']['total_seconds']:.2f} s")
fit = [r["ours_fit"]["fit_seconds"] / r["sk_fit"]["fit_seconds"] for r in rows]
job = [r["ours_job"] / r["sk_job"]["total_seconds"] for r in rows]
inertia = rows[-1]["ours_fit"]["inertia"] / rows[-1]["sk_fit"]["inertia"]
print(f"fit ratio segvalue/scikit-learn (median): {statistics.median(fit):.3f}  (goal <= 0.5)")
print(f"inertia ratio segvalue/scikit-learn: {inertia:.6f}  (goal <= 1.001)")
print(f"whole-job ratio segvalue/(pandas + scikit-learn) (median): {statistics.median(job):.3f}  (goal < 1)")
stages = {s["stage"]: round(s["seconds"], 3) for s in manifest["stages"]}
print("segvalue stages (last run, s):", stages)
PY
