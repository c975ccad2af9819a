//! The feature-SQL speedups change no result: views computed once, the COUNT(DISTINCT)
//! rewrite and the narrowed dedupe give the same rows as the plain plans, and the script
//! `segvalue sql` prints gives the same rows in DuckDB.


use crate::common::*;

/// The shipped views plus the quality rules of the default job; every per-customer view and
/// the KPI view are published, with segmentation and CLV reading them as in the default job.
fn job(engine: &str) -> JobDir {
    JobDir::retail(&format!(
        "[quality.orders]\nduplicate_ids = {{ column = \"order_id\", action = \"drop\" }}\n\
         bad_amounts = {{ columns = [\"amount\"], action = \"drop\" }}\n\
         future_timestamps = {{ column = \"order_ts\", action = \"drop\" }}\n\n\
         {}\n[rfm]\nview = \"customer_rfm\"\n\n\
         [clv]\nview = \"customer_summary\"\nid = \"customer_id\"\ntime_unit = \"weeks\"\n\n\
         [engine]\n{engine}\n\n\
         [output]\nroot = \"out\"\n\
         publish_views = [\"customer_rfm\", \"customer_summary\", \"customer_engagement\", \"customer_channel_mix\", \"kpi_monthly_retention\"]\n",
        retail_segmentation("3")
    ))
}

const PUBLISHED: &[&str] = &[
    "customer_features",
    "customer_rfm",
    "customer_summary",
    "customer_engagement",
    "customer_channel_mix",
    "kpi_monthly_retention",
    "customer_segments",
    "customer_clv",
];

/// Rows in one table and not the other, both ways, compared value for value.
fn differing_rows(a: &str, b: &str) -> i64 {
    duckdb(&format!(
        "SELECT (SELECT count(*) FROM (SELECT * FROM read_parquet('{a}', hive_partitioning = false) EXCEPT ALL SELECT * FROM read_parquet('{b}', hive_partitioning = false)))
              + (SELECT count(*) FROM (SELECT * FROM read_parquet('{b}', hive_partitioning = false) EXCEPT ALL SELECT * FROM read_parquet('{a}', hive_partitioning = false)))"
    ))[0][0]
        .as_i64()
        .unwrap()
}

#[test]
fn cached_views_and_the_distinct_rewrite_change_no_value() {
    let fast = job("");
    let plain = job("cache_views = false\ndistinct_rewrite = false");
    segvalue_ok(&["run", &fast.job(), "--run-date", "2025-12-31"]);
    segvalue_ok(&["run", &plain.job(), "--run-date", "2025-12-31"]);
    for table in PUBLISHED {
        let (a, b) = (table_glob(&fast.out(), table), table_glob(&plain.out(), table));
        let rows = duckdb(&format!("SELECT count(*) FROM read_parquet('{a}', hive_partitioning = false)"))[0][0].as_i64().unwrap();
        assert!(rows > 0, "{table} is empty");
        assert_eq!(differing_rows(&a, &b), 0, "{table} differs between the fast and the plain plans");
    }
}

#[test]
fn the_printed_script_gives_the_same_rows_in_duckdb() {
    let j = job("");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let script = segvalue_ok(&["sql", &j.job(), "--run-date", "2025-12-31"]);
    assert!(script.contains("CREATE TEMP TABLE \"customer_rfm\""), "customer_rfm is read twice: {script}");
    assert!(script.contains("CREATE VIEW \"orders_clean\""), "row-level views stay views: {script}");
    // Bind the sources the way a DuckDB user would, then run the script unchanged.
    let mut sql = String::new();
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("-- source ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            let dir = parts[2].trim_start_matches("file://");
            sql.push_str(&format!("CREATE VIEW {} AS SELECT * FROM read_parquet('{dir}*.parquet');\n", parts[0]));
        } else if !line.starts_with("--") {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    let keys: &[(&str, &[&str])] = &[
        ("customer_features", &["customer_id"]),
        ("customer_summary", &["customer_id"]),
        ("kpi_monthly_retention", &["cohort_month", "months_since_first"]),
    ];
    for (view, key) in keys {
        let ours = table_glob(&j.out(), view);
        let columns = duckdb(&format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{ours}', hive_partitioning = false))"));
        // Numbers within 1e-9 relative (float sums may add up in another order), the rest exactly.
        let same: Vec<String> = columns
            .iter()
            .map(|c| {
                let (name, ty) = (c[0].as_str().unwrap(), c[1].as_str().unwrap());
                if ["DOUBLE", "FLOAT"].contains(&ty) || ty.starts_with("DECIMAL") {
                    format!("abs(a.{name} - b.{name}) <= 1e-9 * greatest(1, abs(a.{name}))")
                } else {
                    format!("a.{name} IS NOT DISTINCT FROM b.{name}")
                }
            })
            .collect();
        let on: Vec<String> = key.iter().map(|k| format!("a.{k} = b.{k}")).collect();
        let got = duckdb(&format!(
            "{sql} SELECT (SELECT count(*) FROM read_parquet('{ours}', hive_partitioning = false)), (SELECT count(*) FROM {view}), count(*), count(*) FILTER (WHERE {}) \
             FROM read_parquet('{ours}', hive_partitioning = false) a JOIN {view} b ON {}",
            same.join(" AND "),
            on.join(" AND ")
        ));
        let (rows, theirs, joined, equal) = (&got[0][0], &got[0][1], &got[0][2], &got[0][3]);
        assert!(rows.as_i64().unwrap() > 0, "{view} is empty");
        assert_eq!((theirs, joined, equal), (rows, rows, rows), "{view}: DuckDB running the printed script disagrees with segvalue");
    }
}
