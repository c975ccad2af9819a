"""The DuckDB side of the SQL benchmarks (bench/harness.py): the script `segvalue sql` prints,
run unchanged in DuckDB, then each published view written to Parquet sorted by all columns
(segvalue sorts published views the same way).

usage: duckdb_sql.py SCRIPT OUT_DIR VIEW...
Prints one JSON line: seconds (connection to the last file written) and rows per view.
"""
import json
import os
import re
import sys
import time

import duckdb

SOURCE = re.compile(r"^-- source (\S+) (parquet|csv) (\S+)$")


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def run_script(script, out_dir):
    """A DuckDB connection with the script's sources and views, its statements run."""
    lines = [line.strip() for line in open(script, encoding="utf-8")]
    sources = [SOURCE.match(line).groups() for line in lines if SOURCE.match(line)]
    statements = [line for line in lines if line and not line.startswith("--")]
    os.makedirs(out_dir, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    con.execute("SET TimeZone = 'UTC'")
    # Spills next to the output, not in the current directory (the clone).
    con.execute(f"SET temp_directory = {literal(os.path.join(out_dir, '.tmp'))}")
    for table, fmt, url in sources:
        path = url.removeprefix("file://").rstrip("/")
        reader = "read_parquet" if fmt == "parquet" else "read_csv"
        glob = f"{path}/**/*.{fmt}"
        con.execute(f"CREATE VIEW {quote(table)} AS SELECT * FROM {reader}({literal(glob)})")
    for sql in statements:
        try:
            result = con.execute(sql)
            if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                result.fetchall()
        except duckdb.Error as e:
            sys.exit(f"duckdb_sql.py: DuckDB refused a statement of {script}:\n  {sql}\n  {type(e).__name__}: {e}")
    return con


def write_view(con, view, out_dir):
    """Writes `view` to OUT_DIR/VIEW.parquet sorted by all its columns; returns its rows."""
    columns = [d[0] for d in con.execute(f"SELECT * FROM {quote(view)} LIMIT 0").description]
    order = ", ".join(quote(c) for c in columns)
    out = os.path.join(out_dir, f"{view}.parquet")
    return con.execute(f"COPY (SELECT * FROM {quote(view)} ORDER BY {order}) TO {literal(out)} (FORMAT parquet)").fetchone()[0]


def main(script, out_dir, views):
    start = time.perf_counter()
    con = run_script(script, out_dir)
    rows = {view: write_view(con, view, out_dir) for view in views}
    con.close()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows}))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
