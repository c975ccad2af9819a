"""The scikit-learn peers of the K-means measurements in bench/harness.py (bench/run).

  sklearn_segment.py data OUT_DIR N SEED
      writes OUT_DIR/points/part-0.parquet: N rows, 6 features around 8 centres.
  sklearn_segment.py init POINTS_PARQUET OUT_JSON
      scikit-learn's k-means++ centres (k=8, random_state=0) on the standardised features.
  sklearn_segment.py fit POINTS_PARQUET [INIT_JSON]
      times scikit-learn's KMeans(k=8, n_init=1, lloyd) fit alone on the standardised features,
      from INIT_JSON's centres when given (the same start segvalue's fit gets).
  sklearn_segment.py job POINTS_PARQUET LABELS_PARQUET
      the plain pandas + scikit-learn script: read, standardise, fit, 20k-sample silhouette,
      write the labels. Prints timings and the inertia as JSON.
  sklearn_segment.py ward POINTS_PARQUET SAMPLE LABELS_PARQUET
      the same script for Ward's linkage, which cannot take a million rows (it holds every
      pairwise distance): AgglomerativeClustering(k=8, ward) on SAMPLE random rows, every row
      to the nearest cluster mean, 20k-sample silhouette, write the labels. Prints the
      linkage's seconds, the total and the silhouette as JSON.
"""
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

FEATURES = ["x1", "x2", "x3", "x4", "x5", "x6"]


def data(out_dir, n, seed):
    import os
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(8, 6))
    label = rng.integers(0, 8, size=n)
    x = centres[label] + rng.normal(0, 2.0, size=(n, 6))
    df = pd.DataFrame(x, columns=FEATURES)
    df.insert(0, "customer_id", [f"P{i:08d}" for i in range(n)])
    os.makedirs(f"{out_dir}/points", exist_ok=True)
    df.to_parquet(f"{out_dir}/points/part-0.parquet", index=False)


def kmeans(init="k-means++"):
    return KMeans(n_clusters=8, init=init, n_init=1, algorithm="lloyd", random_state=0, max_iter=300, tol=1e-4)


def standardised(path):
    return StandardScaler().fit_transform(pd.read_parquet(path, columns=FEATURES).to_numpy())


def init(path, out):
    from sklearn.cluster import kmeans_plusplus
    centres, _ = kmeans_plusplus(standardised(path), n_clusters=8, random_state=0)
    with open(out, "w") as f:
        json.dump(centres.tolist(), f)


def fit(path, init_path=None):
    x = standardised(path)
    start = np.array(json.load(open(init_path))) if init_path else "k-means++"
    t = time.perf_counter()
    km = kmeans(start).fit(x)
    print(json.dumps({"fit_seconds": time.perf_counter() - t, "inertia": float(km.inertia_), "n_iter": int(km.n_iter_)}))


def job(path, labels_path):
    t = time.perf_counter()
    df = pd.read_parquet(path)
    x = StandardScaler().fit_transform(df[FEATURES].to_numpy())
    km = kmeans().fit(x)
    s = silhouette_score(x, km.labels_, sample_size=20000, random_state=0)
    pd.DataFrame({"customer_id": df["customer_id"], "segment_id": km.labels_}).to_parquet(labels_path, index=False)
    print(json.dumps({"total_seconds": time.perf_counter() - t, "silhouette": float(s), "inertia": float(km.inertia_)}))


def ward(path, sample, labels_path):
    from sklearn.cluster import AgglomerativeClustering
    t = time.perf_counter()
    df = pd.read_parquet(path)
    x = StandardScaler().fit_transform(df[FEATURES].to_numpy())
    rows = np.random.default_rng(0).choice(len(x), size=min(int(sample), len(x)), replace=False)
    t_link = time.perf_counter()
    fitted = AgglomerativeClustering(n_clusters=8, linkage="ward").fit_predict(x[rows])
    link_seconds = time.perf_counter() - t_link
    means = np.stack([x[rows][fitted == c].mean(axis=0) for c in range(8)])
    labels = np.concatenate([((x[i:i + 100_000, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
                             for i in range(0, len(x), 100_000)])
    s = silhouette_score(x, labels, sample_size=20000, random_state=0)
    pd.DataFrame({"customer_id": df["customer_id"], "segment_id": labels}).to_parquet(labels_path, index=False)
    print(json.dumps({"total_seconds": time.perf_counter() - t, "linkage_seconds": link_seconds, "silhouette": float(s)}))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"data": lambda: data(args[0], int(args[1]), int(args[2])), "init": lambda: init(*args), "fit": lambda: fit(*args),
     "job": lambda: job(*args), "ward": lambda: ward(*args)}[cmd]()
