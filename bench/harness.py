"""The benchmark harness behind bench/run: segvalue against its peers on the same generated input.

  harness.py --size tiny|small|full --bin SEGVALUE --examples DIR --python VENV_PYTHON

Every measurement alternates segvalue and the peer (A B A B ...) and reports the median of the
per-pair ratios segvalue/peer: absolute seconds move on shared machines, ratios within one run
hold. Measured:

  a. feature SQL: the default job's views (quality rules included, no models) against the same
     script run unchanged in DuckDB (`segvalue sql`, bench/duckdb_sql.py);
  b. the RFM reference query of issue #10 over the raw orders, against DuckDB;
  c. K-means against scikit-learn (and Ward's linkage on a sample, both sides assigning the
     rest to the nearest mean) and BG/NBD + Gamma-Gamma against lifetimes 0.11.3;
  d. the whole default job, whole process each side, against DuckDB running the job's SQL
     (the model inputs and published views) and, up to 10M orders, against the same job done
     the usual way in one Python script (bench/python_job.py: DuckDB + scikit-learn +
     lifetimes), wall time and peak RSS; per-customer p_alive and CLV checked against
     lifetimes'. The floor (examples/floor.rs: one plain DataFusion aggregate over the orders)
     stays as context;
  e. scaling: seconds and peak RSS per million orders from (a) and (d).

Correctness is checked along the way (same rows and column sums as DuckDB, K-means inertia,
CLV parameters); a failed check exits 1 after results.json is written. Speed never fails.
Raw timings and ratios go to target/bench/<size>/results.json; small and full also replace
their block in BENCHMARKS.md.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
RUN_DATE = "2025-12-31"
# Orders per customer of `segvalue generate` (its five personas; 4.8 before them).
ORDERS_PER_CUSTOMER = 25.3
DATA_CACHE = Path.home() / ".cache" / "segvalue-bench-data"
FEATURE_VIEWS = ["customer_features", "customer_summary", "kpi_monthly_retention"]
# Sizes in orders for the SQL and whole-job measurements, in customers/points for the models.
SIZES = {
    "tiny": {"sql": [100_000], "job": [100_000], "model": 20_000, "pairs": 1},
    "small": {"sql": [1_000_000, 10_000_000], "job": [1_000_000, 10_000_000], "model": 1_000_000, "pairs": 3},
    "full": {
        "sql": [1_000_000, 10_000_000, 100_000_000],
        "job": [1_000_000, 10_000_000, 100_000_000],
        "model": 1_000_000,
        "pairs": 3,
    },
    # Issue #10's reference size for the SQL alone (the views and the RFM query at 20M orders).
    "sql20m": {"sql": [20_000_000], "job": [], "model": None, "pairs": 3},
    # The model stages alone at 1M customers: K-means and CLV against scikit-learn and lifetimes.
    "models": {"sql": [], "job": [], "model": 1_000_000, "pairs": 3},
    # The CLV part of `models` alone (issue #23's goals); most of its ~55 min is lifetimes' Pareto/NBD and BG/BB.
    "clv": {"sql": [], "job": [], "model": 1_000_000, "pairs": 3, "parts": ["clv"]},
    # Its BG/NBD rows alone (the fit and the whole-job goals) in a few minutes.
    "clv_bgnbd": {"sql": [], "job": [], "model": 1_000_000, "pairs": 3, "parts": ["clv"], "clv_models": ["bgnbd"]},
    # Its MBG/NBD rows alone (the fit goal), likewise.
    "clv_mbgnbd": {"sql": [], "job": [], "model": 1_000_000, "pairs": 3, "parts": ["clv"], "clv_models": ["mbgnbd"]},
    # Issue #20's whole-job goals alone: against the Python stack at 10M orders, against DuckDB
    # on the job's SQL (and the 3 GB peak) at 100M; one pair each, as they take long.
    "job10m": {"sql": [], "job": [10_000_000], "model": None, "pairs": 1},
    "job100m": {"sql": [], "job": [100_000_000], "model": None, "pairs": 1},
}
# Speed goals (ratio segvalue/peer, at most). None: no goal set, the figure is for reference.
GOALS = {
    "feature_sql": 1.0,  # issue #10
    "rfm_query": 1.0,
    "kmeans_fit": 0.5,
    "kmeans_job": 1.0,  # strictly below
    "clv_fit": 0.02,
    "clv_job": 0.05,
    "job_duckdb": 1.5,  # issue #20, at 100M orders
    "job_python": 0.25,  # issue #20: wall and peak RSS against the usual Python stack
    "job_python_rss": 0.25,
}
INERTIA_RATIO_MAX = 1.001
# Issue #22: the default job's segments against the generator's personas.
PERSONA_ARI_MIN = 0.8
CLV_PARAM_RTOL = 1e-4
FLOAT_RTOL = 1e-9
CLV_CUSTOMER_RTOL = 1e-6
JOB_RSS_GOAL_GB = 3.0
JOB_GOAL_ORDERS = 100_000_000
# The Python stack fits KMeans on every customer; past 10M orders it takes hours, so it is the
# peer at 10M orders and below (issue #20 sets its goal there).
PYTHON_JOB_MAX_ORDERS = 10_000_000
# What DuckDB computes of the job: the models' input views and the published view.
JOB_VIEWS = ["customer_features", "customer_summary", "customer_rfm", "kpi_monthly_retention"]
# Of those, the views the job publishes as they are (compared with DuckDB's row by row).
JOB_PUBLISHED_VIEWS = ["customer_features", "kpi_monthly_retention"]


class Harness:
    def __init__(self, args):
        self.size = args.size
        self.spec = SIZES[args.size]
        self.pairs = self.spec["pairs"]
        self.bin = args.bin
        self.examples = Path(args.examples)
        self.py = args.python
        self.allow_dirty = args.allow_dirty
        self.work = ROOT / "target" / "bench" / args.size
        self.measurements = []
        self.failures = []
        self.scaling = []

    # ---- running things -------------------------------------------------------------------

    def run(self, cmd, what):
        """Runs cmd under /usr/bin/time -v: wall seconds, peak RSS (kB) and stdout."""
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tv:
            start = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-v", "-o", tv.name, *map(str, cmd)], capture_output=True, text=True)
            wall = time.perf_counter() - start
            usage = tv.read()
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise RuntimeError(f"{what} failed (exit {p.returncode}): {' '.join(map(str, cmd))}")
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", usage).group(1))
        return {"wall": wall, "rss_kb": rss, "stdout": p.stdout}

    def segvalue(self, *args, what="segvalue"):
        return self.run([self.bin, "-q", *args], what)

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def check(self, ok, msg):
        """A correctness check: reported at once, fails the run at the end."""
        if not ok:
            self.failures.append(msg)
            self.log(f"CHECK FAILED: {msg}")
        return ok

    # ---- inputs ---------------------------------------------------------------------------

    def dataset(self, customers, population="personas"):
        """`segvalue generate --seed 1` for this many customers, cached across runs."""
        d = DATA_CACHE / f"{population}-c{customers}"
        if not (d / "truth" / "params.json").exists():
            self.log(f"generating {customers:,} customers into {d}")
            tmp = d.with_name(d.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(d, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            self.segvalue("generate", "--out", tmp, "--customers", customers, "--seed", 1, "--population", population,
                          what="generate")
            tmp.rename(d)
        return d

    @staticmethod
    def parquet_rows(directory):
        return sum(pq.read_metadata(f).num_rows for f in sorted(Path(directory).rglob("*.parquet")))

    # ---- job files ------------------------------------------------------------------------

    @staticmethod
    def sections(text):
        """The TOML text cut at each table header: [(top-level table name or None, text)]."""
        out = [(None, [])]
        for line in text.splitlines(keepends=True):
            m = re.match(r"^\[([A-Za-z0-9_]+)[\].]", line)
            if m:
                out.append((m.group(1), []))
            out[-1][1].append(line)
        return [(name, "".join(lines)) for name, lines in out]

    @staticmethod
    def substitute(text, pattern, repl, count):
        new, n = re.subn(pattern, repl, text, flags=re.M)
        if n != count:
            raise RuntimeError(f"job template: expected {count} match(es) of {pattern!r}, found {n}")
        return new

    def retail_job(self, data, keep=None, output=None):
        """jobs/retail.toml pointed at a generated dataset; `keep` limits its top-level tables."""
        text = (ROOT / "jobs" / "retail.toml").read_text()
        text = self.substitute(text, r'^url = "\.\./data/sample/(\w+)/"', lambda m: f'url = "{data}/{m.group(1)}/"', 3)
        text = self.substitute(text, r'^sql_dir = "\.\./sql/retail"', f'sql_dir = "{ROOT}/sql/retail"', 1)
        if keep is not None:
            text = "".join(body for name, body in self.sections(text) if name is None or name in keep)
        if output is not None:
            text = "".join(body for name, body in self.sections(text) if name != "output") + output
        return text

    def bench_job(self, template, sources, sql_dir, text=False):
        """A bench/jobs template (its file name, or with `text` its contents) with absolute
        source URLs and SQL directory."""
        text = template if text else (ROOT / "bench" / "jobs" / template).read_text()
        for name, url in sources.items():
            text = self.substitute(
                text, rf'^(\[sources\.{name}\]\s*\n)url = "[^"]*"', lambda m, u=url: f'{m.group(1)}url = "{u}"', 1
            )
        return self.substitute(text, r'^sql_dir = "[^"]*"', f'sql_dir = "{sql_dir}"', 1)

    def write(self, path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @staticmethod
    def manifest(root):
        return json.loads((Path(root) / "_manifests" / f"run_date={RUN_DATE}" / "manifest.json").read_text())

    # ---- correctness: segvalue's Parquet against DuckDB's, read by DuckDB -----------------

    def compare(self, label, view, ours_dir, theirs_file):
        """Row by row: every row of one side has its twin in the other. Rows are matched on their
        exact columns (integers, decimals, text, dates, timestamps; NULL matches NULL) and, among
        rows equal there, in order of their floating-point columns, which must then agree to
        FLOAT_RTOL relative. A mismatch names the view, how many rows differ and one of them."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW ours AS SELECT * FROM read_parquet('{ours_dir}/*.parquet', hive_partitioning = false)")
        con.execute(f"CREATE VIEW theirs AS SELECT * FROM read_parquet('{theirs_file}')")
        cols = con.execute("DESCRIBE ours").fetchall()
        cols_theirs = [c[0] for c in con.execute("DESCRIBE theirs").fetchall()]
        if not self.check([c[0] for c in cols] == cols_theirs,
                          f"{label}: columns differ: segvalue {[c[0] for c in cols]}, DuckDB {cols_theirs}"):
            return
        q = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
        floats = [q(c[0]) for c in cols if c[1].upper() in ("DOUBLE", "FLOAT", "REAL")]
        exact = [q(c[0]) for c in cols if q(c[0]) not in floats]
        part = f"PARTITION BY {', '.join(exact)}" if exact else ""
        order = f"ORDER BY {', '.join(f + ' NULLS FIRST' for f in floats)}" if floats else ""
        for side in ("ours", "theirs"):
            con.execute(f"CREATE TEMP TABLE {side}_n AS SELECT *, row_number() OVER ({part} {order}) AS __n FROM {side}")
        on = " AND ".join([f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in exact] + ["a.__n = b.__n"])
        differ = " OR ".join(
            ["a.__n IS NULL", "b.__n IS NULL"]
            + [f"(a.{f} IS NULL) <> (b.{f} IS NULL)" for f in floats]
            + [f"abs(a.{f} - b.{f}) > {FLOAT_RTOL} * greatest(abs(a.{f}), abs(b.{f}))" for f in floats])
        shown = ", ".join(f"CAST(coalesce(a.{q(c[0])}, b.{q(c[0])}) AS VARCHAR)" for c in cols if q(c[0]) in exact)
        floats_shown = ", ".join(f"CAST(a.{f} AS VARCHAR), CAST(b.{f} AS VARCHAR)" for f in floats)
        sql = (f"SELECT count(*) OVER (), a.__n IS NULL, b.__n IS NULL{', ' + shown if shown else ''}"
               f"{', ' + floats_shown if floats_shown else ''} "
               f"FROM ours_n a FULL OUTER JOIN theirs_n b ON {on} WHERE {differ} LIMIT 1")
        bad = con.execute(sql).fetchone()
        rows = con.execute("SELECT (SELECT count(*) FROM ours), (SELECT count(*) FROM theirs)").fetchone()
        con.close()
        if bad is not None:
            n, not_ours, not_theirs, *values = bad
            where = "only DuckDB has it" if not_ours else "only segvalue has it" if not_theirs else "floats differ"
            names = [c[0] for c in cols if q(c[0]) in exact] + [f"{c[0]} (segvalue, DuckDB)" for c in cols if q(c[0]) in floats]
            self.check(False, f"{label}: {n:,} rows differ (segvalue {rows[0]:,} rows, DuckDB {rows[1]:,}); one, {where}: "
                       + ", ".join(f"{k}={v}" for k, v in zip(names, values[:len(exact)]))
                       + "".join(f", {k}={values[len(exact) + 2 * i]}, {values[len(exact) + 2 * i + 1]}"
                                 for i, k in enumerate(names[len(exact):])))
        else:
            self.check(rows[0] == rows[1], f"{label}: segvalue {rows[0]:,} rows, DuckDB {rows[1]:,}")
        self.log(f"  {label}: {rows[0]:,} rows compared row by row ({len(exact)} exact columns, "
                 f"{len(floats)} floating-point to {FLOAT_RTOL:g})")
        return {"rows": rows[0], "exact_columns": len(exact), "float_columns": len(floats), "equal": bad is None}

    # ---- a. and b.: SQL against DuckDB ------------------------------------------------------

    def sql_vs_duckdb(self, key, title, orders_target, job_text, views, exact_note):
        customers = round(orders_target / ORDERS_PER_CUSTOMER)
        data = self.dataset(customers)
        orders = self.parquet_rows(data / "orders")
        work = self.work / key / label_orders(orders_target)
        job = self.write(work / "job.toml", job_text(data, work))
        script = work / "script.sql"
        script.write_text(self.segvalue("sql", job, "--run-date", RUN_DATE, what="segvalue sql")["stdout"])
        root, duck_out = work / "segvalue", work / "duckdb"
        pairs = []
        for i in range(1, self.pairs + 1):
            shutil.rmtree(root, ignore_errors=True)
            ours = self.segvalue("run", job, "--run-date", RUN_DATE, "--output-root", root, what=f"{key}: segvalue run")
            shutil.rmtree(duck_out, ignore_errors=True)
            peer = self.run([self.py, ROOT / "bench" / "duckdb_sql.py", script, duck_out, *views], f"{key}: DuckDB")
            theirs = json.loads(peer["stdout"])
            pairs.append({
                "pair": i, "segvalue_seconds": ours["wall"], "segvalue_rss_kb": ours["rss_kb"],
                "duckdb_seconds": theirs["seconds"], "duckdb_process_seconds": peer["wall"],
                "duckdb_rss_kb": peer["rss_kb"], "ratio": ours["wall"] / theirs["seconds"],
            })
            self.log(f"{title}, {label_orders(orders_target)} orders, pair {i}: segvalue {ours['wall']:.2f} s, "
                     f"DuckDB {theirs['seconds']:.2f} s")
        checks = {v: self.compare(f"{title} {label_orders(orders_target)} {v}", v,
                                  root / v / f"run_date={RUN_DATE}", duck_out / f"{v}.parquet") for v in views}
        m = {
            "measurement": key, "title": title, "size": f"{label_orders(orders_target)} orders",
            "orders": orders, "customers": customers, "pairs": pairs, "checks": checks, "note": exact_note,
            "segvalue": median(p["segvalue_seconds"] for p in pairs),
            "peer": median(p["duckdb_seconds"] for p in pairs), "peer_name": "DuckDB",
            "ratio": median(p["ratio"] for p in pairs), "goal": GOALS[key],
            "segvalue_rss_kb": max(p["segvalue_rss_kb"] for p in pairs),
        }
        self.measurements.append(m)
        return m

    def feature_sql(self, orders_target):
        def job(data, work):
            publish = ", ".join(f'"{v}"' for v in FEATURE_VIEWS)
            output = f'\n[output]\nroot = "{work}/segvalue"\npublish_views = [{publish}]\n'
            text = self.retail_job(data, keep={"job", "sources", "quality"}, output=output)
            return "# Generated by bench/harness.py: jobs/retail.toml's sources, quality rules and views, no models.\n" + text

        m = self.sql_vs_duckdb("feature_sql", "feature SQL", orders_target, job, FEATURE_VIEWS,
                               "quality rules + feature views; published: " + ", ".join(FEATURE_VIEWS))
        self.scaling.append(scaling_row("feature SQL (segvalue)", m))

    def rfm_query(self, orders_target):
        def job(data, work):
            return (
                "# Generated by bench/harness.py: the RFM reference query (issue #10) over the raw orders.\n"
                f'[job]\nname = "bench_rfm_query"\nsql_dir = "{ROOT}/bench/sql/rfm"\n\n'
                f'[sources.orders]\nurl = "{data}/orders/"\nformat = "parquet"\n\n'
                f'[output]\nroot = "{work}/segvalue"\npublish_views = ["rfm_query"]\n'
            )

        self.sql_vs_duckdb("rfm_query", "RFM query", orders_target, job, ["rfm_query"], "raw orders, no quality rules")

    # ---- c. models ------------------------------------------------------------------------

    def personas(self):
        """The default job on generated customers: adjusted Rand index of its segments against
        the true persona, beside the best accuracy one feature alone reaches."""
        n = self.spec["model"]
        data = self.dataset(n)
        work = self.work / "personas"
        job = self.write(work / "retail.toml", "# Generated by bench/harness.py: jobs/retail.toml on generated data.\n"
                         + self.retail_job(data))
        root = work / "out"
        shutil.rmtree(root, ignore_errors=True)
        self.segvalue("run", job, "--run-date", RUN_DATE, "--output-root", root, what="default job on personas")
        got = json.loads(self.run([self.py, ROOT / "tests" / "support" / "personas.py", root,
                                   data / "truth" / "customers.parquet", RUN_DATE], "persona recovery")["stdout"])
        self.log(f"personas: ARI {got['ari']:.3f} at k = {got['k']}, best single feature {got['best_single_feature_accuracy']:.3f}")
        self.check(got["ari"] >= PERSONA_ARI_MIN, f"personas: ARI {got['ari']:.3f} < {PERSONA_ARI_MIN}")
        self.measurements.append({
            "measurement": "persona_ari", "title": "default job: adjusted Rand index against the true persona",
            "size": f"{n:,} customers ({got['customers']:,} segmented, k = {got['k']})", "unit": "",
            "peer_name": "best single-feature accuracy", "segvalue": got["ari"], "peer": got["best_single_feature_accuracy"],
            "ratio": "—", "goal": PERSONA_ARI_MIN, "goal_on": "segvalue", "at_least": True, "check": True,
            "goal_text": f"ARI ≥ {PERSONA_ARI_MIN:g}"})

    def kmeans(self):
        n = self.spec["model"]
        work = self.work / "kmeans"
        shutil.rmtree(work, ignore_errors=True)
        self.run([self.py, ROOT / "bench" / "sklearn_segment.py", "data", work, n, 7], "K-means points")
        points = work / "points" / "part-0.parquet"
        job = self.write(work / "kmeans.toml", self.bench_job("kmeans.toml", {"points": f"{work}/points/"},
                                                               f"{ROOT}/bench/sql/kmeans"))
        features = ["x1", "x2", "x3", "x4", "x5", "x6"]
        # Equal work: both fits start from scikit-learn's k-means++ centres and run Lloyd to the
        # same tolerance, so they should take the same iterations to the same inertia.
        init = work / "init.json"
        self.run([self.py, ROOT / "bench" / "sklearn_segment.py", "init", points, init], "k-means++ centres")
        pairs = []
        for i in range(1, self.pairs + 1):
            ours_fit = json.loads(self.run([self.examples / "kmeans_fit", points, 8, 1, 0, *features, "--init", init],
                                           "kmeans_fit")["stdout"])
            sk_fit = json.loads(self.run([self.py, ROOT / "bench" / "sklearn_segment.py", "fit", points, init],
                                         "sklearn fit")["stdout"])
            ours_job = self.segvalue("run", job, "--run-date", RUN_DATE, "--output-root", work / "out", what="K-means job")
            sk_job = self.run([self.py, ROOT / "bench" / "sklearn_segment.py", "job", points, work / "sklearn_labels.parquet"],
                              "sklearn job")
            sk_job_out = json.loads(sk_job["stdout"])
            pairs.append({"pair": i, "ours_fit": ours_fit, "sk_fit": sk_fit, "ours_job": ours_job["wall"],
                          "ours_job_rss_kb": ours_job["rss_kb"], "sk_job": sk_job_out, "sk_job_rss_kb": sk_job["rss_kb"]})
            self.log(f"K-means, {n:,} points, pair {i}: fit {ours_fit['fit_seconds']:.3f} s vs "
                     f"{sk_fit['fit_seconds']:.3f} s; whole job {ours_job['wall']:.2f} s vs {sk_job_out['total_seconds']:.2f} s")
        stages = {s["stage"]: s["seconds"] for s in self.manifest(work / "out")["stages"]}
        inertia = pairs[-1]["ours_fit"]["inertia"] / pairs[-1]["sk_fit"]["inertia"]
        self.check(inertia <= INERTIA_RATIO_MAX,
                   f"K-means inertia ratio segvalue/scikit-learn {inertia:.6f} > {INERTIA_RATIO_MAX}")
        iters = (pairs[-1]["ours_fit"]["n_iter"], pairs[-1]["sk_fit"]["n_iter"])
        # Exactly equal: without the shared start, 1M points took 3 vs 4 iterations.
        self.check(iters[0] == iters[1],
                   f"K-means from the same centres took {iters[0]} iterations, scikit-learn {iters[1]}: not equal work")
        per_iter = lambda f: f["fit_seconds"] / max(f["n_iter"], 1)
        size = f"{n:,} points × 6"
        common = {"size": size, "points": n, "peer_name": "scikit-learn", "pairs": pairs}
        self.measurements += [
            {**common, "measurement": "kmeans_fit",
             "title": f"K-means fit (k = 8, lloyd, from the same k-means++ centres; {iters[0]} vs {iters[1]} iterations)",
             "segvalue": median(p["ours_fit"]["fit_seconds"] for p in pairs),
             "peer": median(p["sk_fit"]["fit_seconds"] for p in pairs),
             "ratio": median(p["ours_fit"]["fit_seconds"] / p["sk_fit"]["fit_seconds"] for p in pairs),
             "goal": GOALS["kmeans_fit"]},
            {**common, "measurement": "kmeans_iteration", "title": "K-means time per Lloyd iteration",
             "segvalue": median(per_iter(p["ours_fit"]) for p in pairs),
             "peer": median(per_iter(p["sk_fit"]) for p in pairs),
             "ratio": median(per_iter(p["ours_fit"]) / per_iter(p["sk_fit"]) for p in pairs), "goal": None},
            {**common, "measurement": "kmeans_inertia", "title": "K-means inertia (correctness)",
             "segvalue": pairs[-1]["ours_fit"]["inertia"], "peer": pairs[-1]["sk_fit"]["inertia"],
             "ratio": inertia, "goal": INERTIA_RATIO_MAX, "unit": "", "check": True},
            {**common, "measurement": "kmeans_job", "title": "segmentation job vs pandas + scikit-learn",
             "segvalue": median(p["ours_job"] for p in pairs),
             "peer": median(p["sk_job"]["total_seconds"] for p in pairs),
             "ratio": median(p["ours_job"] / p["sk_job"]["total_seconds"] for p in pairs),
             "goal": GOALS["kmeans_job"], "strict": True, "stages": stages},
        ]

    def ward(self):
        """Ward's linkage (algorithm = "hierarchical") on the K-means points: segvalue's whole job
        against the same job in pandas + scikit-learn, both linking a 5,000-row sample and
        assigning the rest to the nearest mean (neither can link a million rows: the distances
        alone would be 4 TB). segvalue also scores k (silhouette, and 10 bootstrap linkages for
        the stability) and writes every table; the script writes the labels."""
        n = self.spec["model"]
        work = self.work / "kmeans"  # the points kmeans() wrote
        points = work / "points" / "part-0.parquet"
        job = self.write(work / "ward.toml", self.bench_job("ward.toml", {"points": f"{work}/points/"},
                                                            f"{ROOT}/bench/sql/kmeans"))
        pairs = []
        for i in range(1, self.pairs + 1):
            ours = self.segvalue("run", job, "--run-date", RUN_DATE, "--output-root", work / "ward_out", what="Ward job")
            sk = self.run([self.py, ROOT / "bench" / "sklearn_segment.py", "ward", points, 5000, work / "sklearn_ward.parquet"],
                          "sklearn Ward job")
            sk_out = json.loads(sk["stdout"])
            manifest = self.manifest(work / "ward_out")
            stages = {s["stage"]: s["seconds"] for s in manifest["stages"]}
            pairs.append({"pair": i, "ours_job": ours["wall"], "ours_rss_kb": ours["rss_kb"], "sk_job": sk_out,
                          "sk_rss_kb": sk["rss_kb"], "stages": stages, "fit_rows": manifest["segmentation"]["fit_rows"]})
            self.log(f"Ward, {n:,} points, pair {i}: whole job {ours['wall']:.2f} s vs {sk_out['total_seconds']:.2f} s "
                     f"(segment stage {stages.get('segment', 0):.2f} s; scikit-learn's linkage {sk_out['linkage_seconds']:.2f} s)")
        fit_rows = pairs[-1]["fit_rows"]
        self.check(fit_rows <= 5500, f"the Ward job linked {fit_rows} rows, more than its sample of about 5,000")
        common = {"size": f"{n:,} points × 6 (linkage on ~5,000)", "points": n, "peer_name": "scikit-learn", "pairs": pairs}
        self.measurements += [
            {**common, "measurement": "ward_job",
             "title": "Ward segmentation job (k = 8) vs pandas + scikit-learn, whole process",
             "segvalue": median(p["ours_job"] for p in pairs),
             "peer": median(p["sk_job"]["total_seconds"] for p in pairs),
             "ratio": median(p["ours_job"] / p["sk_job"]["total_seconds"] for p in pairs), "goal": None,
             "stages": pairs[-1]["stages"]},
            {**common, "measurement": "ward_rss", "title": "Ward segmentation job, peak RSS (GB)",
             "segvalue": median(p["ours_rss_kb"] / 1e6 for p in pairs), "peer": median(p["sk_rss_kb"] / 1e6 for p in pairs),
             "ratio": median(p["ours_rss_kb"] / p["sk_rss_kb"] for p in pairs), "goal": None, "unit": " GB"},
        ]

    def clv(self):
        # One population (the BG/NBD and Gamma-Gamma priors shared by everyone), as every CLV
        # figure before the personas: on the personas the mixture fits a ≈ 0.03, and the same
        # fit took 0.52 s against lifetimes' 10.8 s (0.048) at 75512bf (BENCHMARKS.md, "Personas"; issue #23).
        n = self.spec["model"]
        data = self.dataset(n, "single")
        work = self.work / "clv"
        shutil.rmtree(work, ignore_errors=True)
        summary_job = self.write(work / "clv_summary.toml", self.bench_job(
            "clv_summary.toml", {s: f"{data}/{s}/" for s in ("customers", "orders", "sessions")}, f"{ROOT}/sql/retail"))
        self.segvalue("run", summary_job, "--run-date", RUN_DATE, "--output-root", work / "summary", what="CLV summary job")
        summary = work / "summary" / "customer_summary" / f"run_date={RUN_DATE}"
        buyers = self.parquet_rows(summary)
        template = (ROOT / "bench" / "jobs" / "clv_fit.toml").read_text()
        models = self.spec.get("clv_models", ["bgnbd", "mbgnbd", "pareto_nbd", "bgbb"])
        for model in (m for m in models if m != "bgbb"):
            # The same job with [clv] model set; lifetimes with the matching fitter.
            job = lambda extra: self.bench_job(template.replace("[clv]\n", f"[clv]\nmodel = \"{model}\"\n{extra}"),
                                               {"summary": f"{work}/summary/customer_summary/"}, f"{ROOT}/bench/sql/fit", text=True)
            fit_job = self.write(work / f"clv_fit_{model}.toml", job(""))
            # The job without the 80 % intervals, which lifetimes' script does not compute: the
            # same work on both sides, for context beside the job row (BG/NBD only).
            same_work = self.write(work / f"clv_fit_{model}_no_intervals.toml", job("intervals = false\n")) if model == "bgnbd" else None
            self.clv_model(model, fit_job, work, summary, n, buyers, same_work)
        if "bgbb" not in models:
            return
        # BG/BB on a generated discrete-time population of n customers (4 to 12 opportunities),
        # in periods of 30 days: lifetimes' month, so its CLV counts months as segvalue does.
        periods = work / "periods"
        periods.mkdir(parents=True, exist_ok=True)
        self.run([self.py, ROOT / "tests" / "support" / "lifetimes_check.py", "periods-summary", "generated", periods, n],
                 "BG/BB summary")
        text = (template.replace("[clv]\n", "[clv]\nmodel = \"bgbb\"\n")
                .replace('time_unit = "weeks"', 'time_unit = "periods"\nperiod_days = 30')
                .replace('partition_cols = ["run_date"]\n', ""))
        fit_job = self.write(work / "clv_fit_bgbb.toml", self.bench_job(text, {"summary": f"{periods}/"}, f"{ROOT}/bench/sql/fit", text=True))
        self.clv_model("bgbb", fit_job, work, periods, n, self.parquet_rows(periods))

    def clv_model(self, model, fit_job, work, summary, n, buyers, same_work=None):
        pairs = []
        for i in range(1, self.pairs + 1):
            lean = same_work and self.segvalue("run", same_work, "--run-date", RUN_DATE, "--output-root", work / "fit_no_intervals",
                                               what=f"CLV job ({model}, no intervals)")
            ours = self.segvalue("run", fit_job, "--run-date", RUN_DATE, "--output-root", work / "fit", what=f"CLV job ({model})")
            manifest = self.manifest(work / "fit")
            fit = [s["seconds"] for s in manifest["stages"] if s["stage"] == "clv_fit"][0]
            peer = self.run([self.py, ROOT / "bench" / "lifetimes_clv.py", summary, work / "lifetimes.parquet", model],
                            f"lifetimes ({model})")
            lt = json.loads(peer["stdout"])
            # The whole-job row times both sides as whole processes (issue #23): the script's
            # own total leaves out Python's start-up and imports. Only BG/NBD's row is a job
            # row, and its script does nothing after its timed work but print.
            lt["process_seconds"] = peer["wall"]
            pairs.append({"pair": i, "segvalue_total": ours["wall"], "segvalue_no_intervals": lean and lean["wall"], "segvalue_fit": fit, "lifetimes": lt,
                          "stages": {s["stage"]: s["seconds"] for s in manifest["stages"]}})
            self.log(f"CLV ({model}), {buyers:,} buyers, pair {i}: fit {fit:.3f} s vs {lt['fit_seconds']:.2f} s; "
                     f"whole job {ours['wall']:.2f} s vs {peer['wall']:.2f} s (in its script {lt['total_seconds']:.2f} s)")
        ours_params = {**manifest["clv"]["bgnbd"]["params"], **{f"gg_{k}": v for k, v in manifest["clv"]["gamma_gamma"]["params"].items()}}
        theirs = pairs[-1]["lifetimes"]["params"]
        worst = max(abs(ours_params[k] - theirs[k]) / abs(theirs[k]) for k in theirs)
        self.check(worst <= CLV_PARAM_RTOL,
                   f"CLV parameters ({model}) differ from lifetimes by {worst:.2e} relative (> {CLV_PARAM_RTOL}): "
                   f"segvalue {ours_params}, lifetimes {theirs}")
        common = {"size": f"{n:,} customers ({buyers:,} buyers)", "customers": n, "buyers": buyers,
                  "peer_name": "lifetimes", "pairs": pairs}
        # BG/NBD keeps the measurement names BENCHMARKS.md has always had.
        suffix, name = ("", "BG/NBD") if model == "bgnbd" else (f"_{model}", {"mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD", "bgbb": "BG/BB"}[model])
        self.measurements += [
            {**common, "measurement": f"clv_fit{suffix}", "title": f"CLV fit ({name} + Gamma-Gamma)",
             "segvalue": median(p["segvalue_fit"] for p in pairs),
             "peer": median(p["lifetimes"]["fit_seconds"] for p in pairs),
             "ratio": median(p["segvalue_fit"] / p["lifetimes"]["fit_seconds"] for p in pairs), "goal": GOALS["clv_fit"]},
            {**common, "measurement": f"clv_params{suffix}", "title": f"CLV parameters ({name}), largest relative difference (correctness)",
             "segvalue": ours_params, "peer": theirs, "ratio": worst, "goal": CLV_PARAM_RTOL, "check": True},
        ]
        if model == "bgnbd":
            self.measurements.append(
                {**common, "measurement": "clv_job", "title": "CLV job: read summary, fit, predict, write (whole process)",
                 "segvalue": median(p["segvalue_total"] for p in pairs),
                 "peer": median(p["lifetimes"]["process_seconds"] for p in pairs),
                 "ratio": median(p["segvalue_total"] / p["lifetimes"]["process_seconds"] for p in pairs),
                 "goal": GOALS["clv_job"], "stages": pairs[-1]["stages"]})
            self.measurements.append(
                {**common, "measurement": "clv_job_no_intervals",
                 "title": "CLV job without the 80 % intervals (the peer's work; context, whole process)",
                 "segvalue": median(p["segvalue_no_intervals"] for p in pairs),
                 "peer": median(p["lifetimes"]["process_seconds"] for p in pairs),
                 "ratio": median(p["segvalue_no_intervals"] / p["lifetimes"]["process_seconds"] for p in pairs),
                 "goal": None})

    # ---- d. whole job against DuckDB on the same SQL and the usual Python stack ------------

    def whole_job(self, orders_target):
        customers = round(orders_target / ORDERS_PER_CUSTOMER)
        data = self.dataset(customers)
        orders = self.parquet_rows(data / "orders")
        work = self.work / "job" / label_orders(orders_target)
        job = self.write(work / "retail.toml", "# Generated by bench/harness.py: jobs/retail.toml on generated data.\n"
                         + self.retail_job(data))
        script = work / "script.sql"
        script.write_text(self.segvalue("sql", job, "--run-date", RUN_DATE, what="segvalue sql")["stdout"])
        root, duck_out, py_out = work / "out", work / "duckdb", work / "python"
        with_python = orders_target <= PYTHON_JOB_MAX_ORDERS
        pairs = []
        for i in range(1, self.pairs + 1):
            shutil.rmtree(root, ignore_errors=True)
            ours = self.segvalue("run", job, "--run-date", RUN_DATE, "--output-root", root, what="default job")
            shutil.rmtree(duck_out, ignore_errors=True)
            duck = self.run([self.py, ROOT / "bench" / "duckdb_sql.py", script, duck_out, *JOB_VIEWS], "job SQL in DuckDB")
            pair = {"pair": i, "job_seconds": ours["wall"], "job_rss_kb": ours["rss_kb"],
                    "duckdb_seconds": duck["wall"], "duckdb_rss_kb": duck["rss_kb"]}
            line = (f"whole job, {label_orders(orders_target)} orders, pair {i}: job {ours['wall']:.2f} s "
                    f"({ours['rss_kb'] / 2**20:.2f} GB), DuckDB on its SQL {duck['wall']:.2f} s")
            if with_python:
                shutil.rmtree(py_out, ignore_errors=True)
                py = self.run([self.py, ROOT / "bench" / "python_job.py", job, script, py_out], "the job in Python")
                pair.update({"python_seconds": py["wall"], "python_rss_kb": py["rss_kb"], "python": json.loads(py["stdout"])})
                line += f", Python stack {py['wall']:.2f} s ({py['rss_kb'] / 2**20:.2f} GB)"
            floor = self.run([self.examples / "floor", f"{data}/orders/"], "floor")
            pair.update({"floor_seconds": floor["wall"], "floor_rss_kb": floor["rss_kb"]})
            pairs.append(pair)
            self.log(line + f", floor {floor['wall']:.2f} s")
        stages = {s["stage"]: s["seconds"] for s in self.manifest(root)["stages"]}
        size = f"{label_orders(orders_target)} orders"
        # The job's published views against DuckDB's, row by row.
        checks = {v: self.compare(f"whole job {size} {v}", v, root / v / f"run_date={RUN_DATE}", duck_out / f"{v}.parquet")
                  for v in JOB_PUBLISHED_VIEWS}
        job_rss = max(p["job_rss_kb"] for p in pairs)
        common = {"size": size, "orders": orders, "customers": customers, "pairs": pairs}
        ratio = lambda key: median(p["job_seconds"] / p[key] for p in pairs)  # noqa: E731
        m = {**common, "measurement": "job_duckdb", "title": "whole default job vs DuckDB on its SQL",
             "peer_name": "DuckDB", "segvalue": median(p["job_seconds"] for p in pairs),
             "peer": median(p["duckdb_seconds"] for p in pairs), "ratio": ratio("duckdb_seconds"),
             "goal": GOALS["job_duckdb"] if orders_target >= JOB_GOAL_ORDERS else None, "stages": stages, "checks": checks,
             "segvalue_rss_kb": job_rss}
        self.measurements.append(m)
        if with_python:
            py_rss = max(p["python_rss_kb"] for p in pairs)
            self.measurements += [
                {**common, "measurement": "job_python", "title": "whole default job vs DuckDB + scikit-learn + lifetimes",
                 "peer_name": "Python", "segvalue": m["segvalue"], "peer": median(p["python_seconds"] for p in pairs),
                 "ratio": ratio("python_seconds"), "goal": GOALS["job_python"]},
                {**common, "measurement": "job_python_rss", "title": "same, peak RSS (GB)", "unit": " GB",
                 "peer_name": "Python", "segvalue": job_rss / 2**20, "peer": py_rss / 2**20, "ratio": job_rss / py_rss,
                 "goal": GOALS["job_python_rss"]},
            ]
            self.clv_vs_lifetimes(common, root, py_out)
        rss_goal = JOB_RSS_GOAL_GB if orders_target >= JOB_GOAL_ORDERS else None
        floor_rss = max(p["floor_rss_kb"] for p in pairs)
        self.measurements += [
            {**common, "measurement": "job_rss", "title": "whole default job, peak RSS (GB)", "unit": " GB",
             "peer_name": "floor", "segvalue": job_rss / 2**20, "peer": floor_rss / 2**20, "ratio": job_rss / floor_rss,
             "goal": rss_goal, "goal_on": "segvalue", "goal_text": f"job ≤ {JOB_RSS_GOAL_GB:g} GB" if rss_goal else None},
            {**common, "measurement": "job_floor", "title": "whole default job vs floor (context)", "peer_name": "floor",
             "segvalue": m["segvalue"], "peer": median(p["floor_seconds"] for p in pairs),
             "ratio": ratio("floor_seconds"), "goal": None},
        ]
        self.scaling.append(scaling_row("whole default job", m))

    def clv_vs_lifetimes(self, common, root, py_out):
        """segvalue's published p_alive and CLV against lifetimes' on the same summary rows."""
        con = duckdb.connect()
        ours = f"read_parquet('{root}/customer_clv/run_date={RUN_DATE}/*.parquet')"
        worst = con.execute(
            f"SELECT count(*), max(abs(a.p_alive - b.p_alive) / abs(b.p_alive)),"
            f"       max(abs(a.clv - b.clv) / greatest(abs(b.clv), 1e-300)),"
            f"       (SELECT count(*) FROM {ours}), (SELECT count(*) FROM read_parquet('{py_out}/customer_clv.parquet'))"
            f" FROM {ours} a JOIN read_parquet('{py_out}/customer_clv.parquet') b USING (customer_id)").fetchone()
        con.close()
        joined, p_alive, clv, n_ours, n_theirs = worst
        self.check(joined == n_ours == n_theirs, f"customer_clv: {n_ours:,} customers, lifetimes {n_theirs:,}, joined {joined:,}")
        for name, value in (("p_alive", p_alive), ("CLV", clv)):
            self.check(value <= CLV_CUSTOMER_RTOL, f"per-customer {name} differs from lifetimes by {value:.2e} relative")
            self.measurements.append({
                **common, "measurement": f"clv_customers_{name.lower()}", "unit": "", "check": True,
                "title": f"per-customer {name} vs lifetimes, largest relative difference (correctness)",
                "peer_name": "lifetimes", "segvalue": value, "peer": "", "ratio": value, "goal": CLV_CUSTOMER_RTOL})

    # ---- run and report -------------------------------------------------------------------

    def main(self):
        # A block in BENCHMARKS.md names the commit it measured: the tree must be that commit
        # from the build to the last figure (tiny writes no block).
        rev = revision()
        if self.size != "tiny" and rev.endswith("-dirty") and not self.allow_dirty:
            self.log("the work tree has uncommitted changes, so no commit names what would be measured: "
                     "commit or stash them (or pass --allow-dirty; the block then says -dirty)")
            return 2
        started = time.time()
        self.work.mkdir(parents=True, exist_ok=True)
        error = None
        try:
            for n in self.spec["sql"]:
                self.feature_sql(n)
                self.rfm_query(n)
            if self.spec["model"]:
                for part in self.spec.get("parts", ["personas", "kmeans", "ward", "clv"]):
                    getattr(self, part)()
            for n in self.spec["job"]:
                self.whole_job(n)
        except Exception as e:  # a failed command is a failed check: record, report, exit 1
            error = f"{type(e).__name__}: {e}"
            self.failures.append(error)
            self.log(f"FAILED: {error}")
        info = environment(self.size)
        results = {"size": self.size, "pairs": self.pairs, "run_date": RUN_DATE, **info,
                   "seconds": time.time() - started, "measurements": self.measurements,
                   "scaling": self.scaling, "failures": self.failures}
        out = self.work / "results.json"
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        report = markdown(results)
        print(report)
        self.log(f"raw timings and ratios: {out.relative_to(ROOT)}")
        if self.failures:
            self.log(f"{len(self.failures)} correctness check(s) failed:\n  " + "\n  ".join(self.failures))
            return 1
        if self.size != "tiny":
            if revision() != rev and not self.allow_dirty:
                self.log(f"the tree changed during the run ({rev} -> {revision()}): BENCHMARKS.md left alone")
                return 1
            update_benchmarks(self.size, report)
            self.log(f"BENCHMARKS.md: bench:{self.size} block replaced")
        return 0


def median(xs):
    return statistics.median(list(xs))


def label_orders(n):
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def scaling_row(what, m):
    per_m = m["orders"] / 1e6
    return {"what": what, "size": m["size"], "orders": m["orders"], "seconds": m["segvalue"],
            "seconds_per_m_orders": m["segvalue"] / per_m, "peak_rss_gb": m["segvalue_rss_kb"] / 2**20,
            "peak_rss_mb_per_m_orders": m["segvalue_rss_kb"] / 1024 / per_m}


def command(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def revision():
    """HEAD's commit, with -dirty when tracked files differ from it."""
    rev = command(["git", "rev-parse", "--short=12", "HEAD"])
    if command(["git", "status", "--porcelain", "--untracked-files=no"]):
        rev += "-dirty"
    return rev


def environment(size):
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    versions = {"segvalue": revision(), "rustc": command(["rustc", "--version"])}
    for pkg in ("duckdb", "scikit-learn", "lifetimes", "pandas", "numpy", "pyarrow"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "missing"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"nproc": os.cpu_count(), "mem_total_gb": round(int(mem.group(1)) / 2**20, 1) if mem else None,
                    "cpu": cpu.group(1).strip() if cpu else "unknown"},
        "versions": versions,
        "command": f"bench/run --size {size}",
    }


def fmt(v, unit=" s"):
    if isinstance(v, dict):
        return "(results.json)"
    if isinstance(v, float):
        return f"{v:.3f}{unit}" if v >= 0.01 or v == 0 else f"{v:.2e}{unit}"
    return f"{v}{unit}"


def met(m):
    goal = m.get("goal")
    if goal is None:
        return "—", "—"
    value = m["segvalue"] if m.get("goal_on") == "segvalue" else m["ratio"]
    if m.get("at_least"):
        ok = value >= goal
    else:
        ok = value < goal if m.get("strict") else value <= goal
    text = m.get("goal_text") or (f"< {goal:g}" if m.get("strict") else f"≤ {goal:g}")
    return text, ("yes" if ok else "no")


def markdown(r):
    mach, v = r["machine"], r["versions"]
    lines = [
        f"Generated by `{r['command']}` on {r['date']}; {r['pairs']} pair(s) per measurement, alternating "
        "segvalue and the peer; ratio = median of the per-pair ratios segvalue/peer.",
        "",
        f"- Machine: {mach['nproc']} cores ({mach['cpu']}), {mach['mem_total_gb']} GiB.",
        f"- Versions: segvalue {v['segvalue']} (release profile), {v['rustc']}; DuckDB {v['duckdb']}, "
        f"scikit-learn {v['scikit-learn']}, lifetimes {v['lifetimes']}, pandas {v['pandas']}, numpy {v['numpy']}, "
        f"pyarrow {v['pyarrow']}.",
        f"- Input: `segvalue generate --seed 1`, customers = orders / {ORDERS_PER_CUSTOMER}; run date {r['run_date']}. "
        "DuckDB runs the script `segvalue sql` prints, unchanged; its seconds run from connecting to the last "
        "Parquet file written; in the whole-job rows every side is timed as a whole process. The Python stack is "
        "`bench/python_job.py`; the floor is `examples/floor.rs`.",
        "",
        "| measurement | size | segvalue | peer | ratio (median of N pairs) | goal | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in r["measurements"]:
        goal, ok = met(m)
        unit = m.get("unit", " s")
        peer = f"{m['peer_name']} {fmt(m['peer'], unit)}".strip() if not isinstance(m["peer"], dict) else m["peer_name"]
        ratio = fmt(m["ratio"], "")
        if m.get("check"):
            ok = "yes" if ok == "yes" else "**NO**"
        lines.append(f"| {m['title']} | {m['size']} | {fmt(m['segvalue'], unit)} | {peer} | {ratio} | {goal} | {ok} |")
    sql_checks = [m for m in r["measurements"] if m.get("checks")]
    if sql_checks:
        lines += ["", "SQL results checked against DuckDB row by row (every row matched on its exact columns, "
                  f"floating-point columns to {FLOAT_RTOL:g} relative): "
                  + ("**mismatch, see the failures below**" if r["failures"] else "equal") + "."]
    stages = [m for m in r["measurements"] if m["measurement"] == "job_duckdb"]
    for m in stages:
        s = ", ".join(f"{k} {v:.2f}" for k, v in m["stages"].items())
        lines.append(f"\nStage seconds of the default job at {m['size']} (last run): {s}.")
    if r["scaling"]:
        lines += ["", "| scaling | size | seconds | s per M orders | peak RSS | MB per M orders |", "|---|---|---|---|---|---|"]
        for s in r["scaling"]:
            lines.append(f"| {s['what']} | {s['size']} ({s['orders']:,}) | {s['seconds']:.2f} | "
                         f"{s['seconds_per_m_orders']:.2f} | {s['peak_rss_gb']:.2f} GB | {s['peak_rss_mb_per_m_orders']:.0f} |")
    if r["failures"]:
        lines += ["", "**Failed checks:**", *[f"- {f}" for f in r["failures"]]]
    return "\n".join(lines)


def update_benchmarks(size, report):
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    begin, end = f"<!-- bench:{size}:begin -->", f"<!-- bench:{size}:end -->"
    block = f"{begin}\n## Harness: `--size {size}` (generated, do not edit by hand)\n\n{report}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=SIZES, required=True)
    ap.add_argument("--bin", required=True, help="the release segvalue binary")
    ap.add_argument("--examples", required=True, help="the release examples directory (kmeans_fit, floor)")
    ap.add_argument("--python", required=True, help="the bench venv's python (peers)")
    ap.add_argument("--allow-dirty", action="store_true",
                    help="measure a tree with uncommitted changes (the block says -dirty)")
    sys.exit(Harness(ap.parse_args()).main())
