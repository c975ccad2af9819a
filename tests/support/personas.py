"""How well a run's segments recover the generator's personas.

    personas.py OUTPUT_ROOT TRUTH_PARQUET [RUN_DATE]

Joins the published customer_segments (and customer_features) to the truth file of
`segvalue generate` and prints JSON: the adjusted Rand index of segment against persona
(scikit-learn), k, the customers segmented, each persona's dominant segment (id, name, share of
the persona) and the best accuracy one feature alone reaches. That accuracy is an upper bound:
the feature cut into 20 equal-count bins, each bin predicting its most common persona, scored
on the same rows, so no single feature separates the personas when it stays well below 1.
"""
import json
import sys

import duckdb
import numpy as np
from sklearn.metrics import adjusted_rand_score

FEATURES = ["recency_days", "frequency", "monetary", "sessions_90d", "share_app"]
BINS = 20

root, truth = sys.argv[1], sys.argv[2]
run_date = sys.argv[3] if len(sys.argv) > 3 else "2025-12-31"
part = lambda t: f"'{root}/{t}/run_date={run_date}/*.parquet'"  # noqa: E731
d = duckdb.sql(
    f"""SELECT s.segment_id, s.segment_name, t.persona, {", ".join("f." + c for c in FEATURES)}
        FROM read_parquet({part("customer_segments")}) s
        JOIN read_parquet('{truth}') t USING (customer_id)
        JOIN read_parquet({part("customer_features")}) f USING (customer_id)
        ORDER BY customer_id"""
).df()

dominant = {}
for persona, rows in d.groupby("persona"):
    counts = rows.groupby(["segment_id", "segment_name"]).size().sort_values(ascending=False)
    (sid, name), n = counts.index[0], int(counts.iloc[0])
    dominant[persona] = {"segment_id": int(sid), "segment_name": name, "share": n / len(rows)}

single = {}
for f in FEATURES:
    rank = d[f].rank(method="first").to_numpy()
    bins = np.floor((rank - 1) / len(d) * BINS)
    single[f] = float(d.groupby(bins).persona.agg(lambda s: s.value_counts().iloc[0]).sum() / len(d))

print(json.dumps({
    "ari": float(adjusted_rand_score(d.persona, d.segment_id)),
    "k": int(d.segment_id.nunique()),
    "customers": len(d),
    "dominant": dominant,
    "single_feature_accuracy": single,
    "best_single_feature_accuracy": max(single.values()),
}, indent=1))
