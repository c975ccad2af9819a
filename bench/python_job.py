"""The default job done the usual way, the peer of the whole-job measurement in bench/harness.py:
one Python script with DuckDB on the job's SQL (the script `segvalue sql` prints), scikit-learn
for the segments and lifetimes for CLV, settings read from the same job file.

usage: python_job.py JOB_TOML SCRIPT OUT_DIR

- SQL: every statement of SCRIPT in DuckDB; the published views and the model inputs are read
  from it (bench/duckdb_sql.py).
- Segments: [segmentation] features of its view, imputed with the median, each column's
  `transform` (log1p) and `clip` quantiles, z-scored; KMeans for every k of `k` with `n_init`
  starts and `seed`, the silhouette on a 20,000-row sample, the best k's labels.
- CLV: BG/NBD and Gamma-Gamma on the [clv] view, p_alive and the discounted CLV over
  `horizon_months` at `monthly_discount_rate`, times `margin`.

Writes OUT_DIR/customer_segments.parquet, customer_clv.parquet and each `publish_views` view;
prints one JSON line with the stage seconds and the chosen k.
"""
import json
import sys
import time
import tomllib

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from duckdb_sql import quote, run_script, write_view  # noqa: E402

WEEKS_PER_MONTH = 4.345


def prepare(df, features, columns):
    """The job's per-column preparation, then z-scores."""
    cols = []
    for name in features:
        c = columns.get(name, {})
        x = df[name].astype(float)
        x = x.fillna(x.median())
        if c.get("transform") == "log1p":
            x = np.log1p(x)
        if "clip" in c:
            lo, hi = x.quantile(c["clip"][0]), x.quantile(c["clip"][1])
            x = x.clip(lo, hi)
        sd = x.std(ddof=0)
        cols.append(((x - x.mean()) / (sd if sd > 0 else 1.0)).to_numpy())
    return np.column_stack(cols)


def segment(con, seg):
    df = con.execute(f"SELECT {quote(seg['id'])}, {', '.join(quote(f) for f in seg['features'])} "
                     f"FROM {quote(seg['view'])}").df()
    x = prepare(df, seg["features"], seg.get("columns", {}))
    k = seg["k"]
    ks = range(k["min"], k["max"] + 1) if isinstance(k, dict) else [k]
    best = None
    for n in ks:
        km = KMeans(n_clusters=n, n_init=seg.get("n_init", 10), random_state=seg.get("seed", 0)).fit(x)
        s = silhouette_score(x, km.labels_, sample_size=min(20_000, len(x)), random_state=seg.get("seed", 0))
        if best is None or s > best[0]:
            best = (s, n, km.labels_)
    return pd.DataFrame({seg["id"]: df[seg["id"]], "segment_id": best[2]}), best[1]


def clv(con, spec):
    d = con.execute(f"SELECT {quote(spec['id'])}, frequency, recency, tenure, monetary_value "
                    f"FROM {quote(spec['view'])}").df()
    bgf = BetaGeoFitter(penalizer_coef=spec.get("penalizer", 0.0))
    bgf.fit(d["frequency"], d["recency"], d["tenure"])
    rep = d[d.frequency > 0]
    ggf = GammaGammaFitter()
    ggf.fit(rep["frequency"], rep["monetary_value"])
    months = spec.get("horizon_months", 12)
    out = pd.DataFrame({spec["id"]: d[spec["id"]]})
    out["p_alive"] = bgf.conditional_probability_alive(d["frequency"], d["recency"], d["tenure"])
    out["expected_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        months * WEEKS_PER_MONTH, d["frequency"], d["recency"], d["tenure"])
    out["clv"] = spec.get("margin", 1.0) * ggf.customer_lifetime_value(
        bgf, d["frequency"], d["recency"], d["tenure"], d["monetary_value"], time=months,
        discount_rate=spec.get("monthly_discount_rate", 0.0), freq="W").values
    return out


def main(job_toml, script, out_dir):
    job = tomllib.load(open(job_toml, "rb"))
    seconds = {}
    t = time.perf_counter()
    con = run_script(script, out_dir)
    for view in job.get("output", {}).get("publish_views", []):
        write_view(con, view, out_dir)
    seconds["sql"] = time.perf_counter() - t
    k = None
    if "segmentation" in job:
        t = time.perf_counter()
        labels, k = segment(con, job["segmentation"])
        labels.to_parquet(f"{out_dir}/customer_segments.parquet", index=False)
        seconds["segments"] = time.perf_counter() - t
    if "clv" in job:
        t = time.perf_counter()
        clv(con, job["clv"]).to_parquet(f"{out_dir}/customer_clv.parquet", index=False)
        seconds["clv"] = time.perf_counter() - t
    con.close()
    print(json.dumps({"seconds": seconds, "k": k}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
