//! Data-quality rules on a deliberately dirty copy of the orders.

use crate::common::*;

/// The generated orders plus 3 duplicate ids, 2 null customers, 2 negative and 1 NaN amounts,
/// and 4 orders after 2025-12-31.
fn dirty_orders() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dataset().display();
    let out = dir.path().join("part-00000.parquet");
    duckdb(&format!(
        "COPY (
            SELECT * FROM read_parquet('{d}/orders/*.parquet')
            UNION ALL (SELECT * FROM read_parquet('{d}/orders/*.parquet') ORDER BY order_id LIMIT 3)
            UNION ALL SELECT 9000001 + i, NULL, TIMESTAMPTZ '2025-01-01 10:00:00+00', 10.0, 1, 'web', 'home' FROM range(2) t(i)
            UNION ALL SELECT 9000011 + i, 'C0000001', TIMESTAMPTZ '2025-01-01 10:00:00+00', -5.0, 1, 'web', 'home' FROM range(2) t(i)
            UNION ALL SELECT 9000021, 'C0000001', TIMESTAMPTZ '2025-01-01 10:00:00+00', 'NaN'::DOUBLE, 1, 'web', 'home'
            UNION ALL SELECT 9000031 + i, 'C0000001', TIMESTAMPTZ '2026-03-01 10:00:00+00', 10.0, 1, 'web', 'home' FROM range(4) t(i)
         ) TO '{}' (FORMAT parquet)",
        out.display()
    ));
    dir
}

fn job(rules: &str, orders: &std::path::Path) -> JobDir {
    let j = JobDir::new(
        &[("n_orders.sql", "SELECT count(*) AS n, count(DISTINCT order_id) AS ids FROM orders")],
        &format!("[sources.dirty]\nurl = \"{}/\"\nformat = \"parquet\"\n\n[quality.dirty]\n{rules}\n\n[output]\nroot = \"out\"\npublish_views = [\"n_orders\"]\n", orders.display()),
    );
    j.write_view("n_orders.sql", "SELECT count(*) AS n, count(DISTINCT order_id) AS ids FROM dirty");
    j
}

const ALL_DROP: &str = r#"duplicate_ids = { column = "order_id", action = "drop" }
null_ids = { columns = ["order_id", "customer_id"], action = "drop" }
bad_amounts = { columns = ["amount"], action = "drop" }
future_timestamps = { column = "order_ts", action = "drop" }"#;

#[test]
fn drop_rules_filter_and_count_every_broken_row() {
    let orders = dirty_orders();
    let j = job(ALL_DROP, orders.path());
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let clean = duckdb(&format!("SELECT count(*) FROM read_parquet('{}/orders/*.parquet')", dataset().display()))[0][0].clone();
    let got = duckdb(&format!("SELECT n, ids FROM read_parquet('{}/n_orders/*/*.parquet')", j.out().display()));
    assert_eq!(got[0], vec![clean.clone(), clean]);

    let manifest = manifest(&j.out(), "2025-12-31");
    let count = |rule: &str| {
        manifest["quality"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap()["rows"].as_i64().unwrap()
    };
    assert_eq!(
        [count("duplicate_ids"), count("null_ids"), count("bad_amounts"), count("future_timestamps")],
        [3, 2, 3, 4]
    );
}

#[test]
fn an_error_rule_stops_the_run_and_publishes_nothing() {
    let orders = dirty_orders();
    let rules = ALL_DROP.replace(r#"null_ids = { columns = ["order_id", "customer_id"], action = "drop" }"#, r#"null_ids = { columns = ["order_id", "customer_id"], action = "error" }"#);
    let j = job(&rules, orders.path());
    let err = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(err.contains("source 'dirty': quality rule null_ids failed: 2 row(s) with a null order_id or customer_id"), "{err}");
    assert!(!j.out().join("n_orders").exists());
}

/// `check` reads no source rows: data that breaks an `error` rule passes it (while `run`,
/// which checks the rules, stops), and so does a source file whose data pages are garbage
/// behind an intact footer.
#[test]
fn check_reads_no_rows() {
    let orders = dirty_orders();
    let rules = ALL_DROP.replace(r#"null_ids = { columns = ["order_id", "customer_id"], action = "drop" }"#, r#"null_ids = { columns = ["order_id", "customer_id"], action = "error" }"#);
    let j = job(&rules, orders.path());
    let stdout = segvalue_ok(&["check", &j.job(), "--run-date", "2025-12-31"]);
    assert!(stdout.contains(&format!("source\tdirty\t1 files\tfile://{}/", orders.path().display())), "{stdout}");
    assert!(stdout.contains("n_orders\t"), "the views are not listed:\n{stdout}");
    fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    let file = orders.path().join("part-00000.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize + 8;
    let end = bytes.len() - footer;
    bytes[4..end].fill(0xAB);
    std::fs::write(&file, bytes).unwrap();
    segvalue_ok(&["check", &j.job(), "--run-date", "2025-12-31"]);
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(line.contains("dirty"), "{line}");
}

#[test]
fn a_rule_on_a_missing_column_is_a_bad_job() {
    let orders = dirty_orders();
    let j = job(r#"bad_amounts = { columns = ["amt"], action = "drop" }"#, orders.path());
    let err = fails(&["validate", &j.job()], 2);
    assert!(err.contains("source 'dirty': quality rules do not fit the source:") && err.contains("amt"), "{err}");
}

/// Duplicated ids whose copies differ (the earliest must win) and several NULL ids: the run,
/// which sends only the duplicated ids through `DISTINCT ON`, keeps exactly the rows a full
/// `DISTINCT ON` over all rows keeps, computed here by DuckDB.
#[test]
fn dedupe_of_the_duplicated_ids_keeps_the_rows_of_a_full_distinct_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dataset().display();
    let raw = dir.path().join("part-00000.parquet");
    duckdb(&format!(
        "COPY (
            SELECT * FROM read_parquet('{d}/orders/*.parquet')
            UNION ALL (SELECT order_id, customer_id, order_ts - INTERVAL 1 HOUR, amount + 1, quantity, channel, category
                       FROM read_parquet('{d}/orders/*.parquet') ORDER BY order_id LIMIT 5)
            UNION ALL (SELECT order_id, customer_id, order_ts + INTERVAL 1 HOUR, amount + 2, quantity, channel, category
                       FROM read_parquet('{d}/orders/*.parquet') ORDER BY order_id DESC LIMIT 5)
            UNION ALL SELECT NULL, 'C0000001', TIMESTAMPTZ '2025-01-01 10:00:00+00' + i * INTERVAL 1 HOUR, 10.0 + i, 1, 'web', 'home' FROM range(3) t(i)
            UNION ALL SELECT 9000011, 'C0000002', TIMESTAMPTZ '2025-02-01 10:00:00+00', -5.0, 1, 'web', 'home'
         ) TO '{}' (FORMAT parquet)",
        raw.display()
    ));
    let rules = r#"duplicate_ids = { column = "order_id", action = "drop" }
bad_amounts = { columns = ["amount"], action = "drop" }
future_timestamps = { column = "order_ts", action = "drop" }"#;
    let j = job(rules, dir.path());
    j.write_view("n_orders.sql", "SELECT * FROM dirty");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let ours = format!("{}/n_orders/*/*.parquet", j.out().display());
    let full = format!(
        "SELECT DISTINCT ON (order_id) * FROM read_parquet('{}')
         WHERE NOT coalesce(amount < 0 OR isnan(amount), false) AND NOT coalesce(order_ts >= TIMESTAMPTZ '2026-01-01 00:00:00+00', false)
         ORDER BY order_id, order_ts",
        raw.display()
    );
    let got = duckdb(&format!(
        "SELECT (SELECT count(*) FROM read_parquet('{ours}', hive_partitioning = false)), (SELECT count(*) FROM ({full})),
                (SELECT count(*) FROM (SELECT * FROM read_parquet('{ours}', hive_partitioning = false) EXCEPT ALL SELECT * FROM ({full}))),
                (SELECT count(*) FROM read_parquet('{ours}', hive_partitioning = false) WHERE order_id IS NULL),
                (SELECT count(*) FROM read_parquet('{ours}', hive_partitioning = false) o
                   JOIN (SELECT order_id, min(order_ts) AS first FROM read_parquet('{}') GROUP BY order_id HAVING count(*) > 1) r USING (order_id)
                   WHERE o.order_ts <> r.first)",
        raw.display()
    ));
    assert_eq!(got[0][0], got[0][1], "row counts");
    assert_eq!(got[0][2], 0, "rows differ from a full DISTINCT ON");
    assert_eq!(got[0][3], 1, "the NULL ids collapse to one row, as DISTINCT ON does");
    // Stated outright, so that both sides keeping any row cannot pass: the earliest copy wins.
    assert_eq!(got[0][4], 0, "duplicated ids whose kept row is not the earliest");
}
