"""scikit-learn's view of a published segmentation (test peer, never a runtime dependency).

Usage: sklearn_check.py FEATURES_PARQUET SEGMENTS_PARQUET ID K FEATURE...
Reads both tables, joins them on ID, and prints JSON with scikit-learn's silhouette,
Calinski-Harabasz and Davies-Bouldin scores of the published labels on the features, and the
inertia of scikit-learn's own KMeans(n_clusters=K, n_init=10, random_state=0) on the same rows.
"""
import json
import sys

import numpy as np
import pyarrow.dataset as ds
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

features_path, segments_path, id_col, k, *features = sys.argv[1:]
f = ds.dataset(features_path, format="parquet", partitioning="hive").to_table().sort_by(id_col)
s = ds.dataset(segments_path, format="parquet", partitioning="hive").to_table().sort_by(id_col)
assert f.column(id_col).to_pylist() == s.column(id_col).to_pylist(), "ids differ"
X = np.column_stack([f.column(c).to_numpy().astype(float) for c in features])
labels = s.column("segment_id").to_numpy()
km = KMeans(n_clusters=int(k), n_init=10, random_state=0, algorithm="lloyd").fit(X)
print(json.dumps({
    "silhouette": silhouette_score(X, labels),
    "calinski_harabasz": calinski_harabasz_score(X, labels),
    "davies_bouldin": davies_bouldin_score(X, labels),
    "sklearn_inertia": float(km.inertia_),
    "rows": int(X.shape[0]),
}))
