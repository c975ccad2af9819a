"""Reads segvalue's published tables back with outside readers, for tests/it/delta.rs.

usage:
  delta_check.py delta ROOT DATE TABLE... [--version N]
      Each Delta table <ROOT>/<TABLE> read by delta-rs's Python package (deltalake, to
      pyarrow) and by Polars (read_delta), at its newest version or at version N: the
      date's rows without run_date, as a digest of the sorted rows, their count and schema
      from each reader; the table's version and the run id of its newest commit for DATE.
  delta ... also takes --storage KEY=VALUE (repeatable) for an object store (S3 on moto).
  parquet ROOT DATE TABLE...
      The same from the Parquet layout (<ROOT>/<TABLE>/run_date=DATE/), read by pyarrow and
      Polars: the reference a Delta table must equal.

Prints one JSON object: {table: {"pyarrow": {...}, "polars": {...}, "version": ..., "run_id": ...}}.
Rows are compared exactly: a float that differs in its last bit changes the digest.
"""
import datetime
import hashlib
import json
import sys

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable


def digest(rows):
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def arrow_facts(t: pa.Table):
    t = t.drop_columns([c for c in ["run_date"] if c in t.column_names])
    return {"rows": t.num_rows, "digest": digest(t.to_pylist()),
            "schema": [[f.name, str(f.type)] for f in t.schema]}


def polars_facts(df: pl.DataFrame):
    df = df.drop([c for c in ["run_date"] if c in df.columns])
    return {"rows": df.height, "digest": digest(df.to_dicts()),
            "schema": [[n, str(t)] for n, t in df.schema.items()]}


def newest_run(dt: DeltaTable, date: str):
    for c in dt.history():  # newest first
        if c.get("segvalue.run_date") == date:
            return c.get("segvalue.run_id"), c.get("version")
    return None, None


def delta(root, date, tables, version, storage):
    out = {}
    for t in tables:
        uri = f"{root.rstrip('/')}/{t}"
        dt = DeltaTable(uri, version=version, storage_options=storage or None)
        day = datetime.date.fromisoformat(date)
        arrow = dt.to_pyarrow_table(filters=[("run_date", "=", day)])
        frame = pl.read_delta(uri, version=version, storage_options=storage or None).filter(pl.col("run_date") == day)
        run_id, commit_version = newest_run(dt, date)
        out[t] = {"pyarrow": arrow_facts(arrow), "polars": polars_facts(frame), "version": dt.version(),
                  "run_id": run_id, "commit_version": commit_version,
                  "partition_type": str(arrow.schema.field("run_date").type)}
    return out


def parquet(root, date, tables):
    out = {}
    for t in tables:
        path = f"{root.rstrip('/')}/{t}/run_date={date}/part-00000.parquet"
        out[t] = {"pyarrow": arrow_facts(pq.read_table(path)), "polars": polars_facts(pl.read_parquet(path))}
    return out


def main(argv):
    mode, root, date, *rest = argv
    version, storage, tables = None, {}, []
    it = iter(rest)
    for a in it:
        if a == "--version":
            version = int(next(it))
        elif a == "--storage":
            k, v = next(it).split("=", 1)
            storage[k] = v
        else:
            tables.append(a)
    result = delta(root, date, tables, version, storage) if mode == "delta" else parquet(root, date, tables)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
