//! `$name` parameters: `[params]` defaults, `--param` overrides, and unknown names.

use crate::common::*;

fn job() -> JobDir {
    JobDir::new(
        &[(
            "big_orders.sql",
            "SELECT count(*) AS n FROM orders WHERE amount > $min_amount AND order_ts < $run_end_ts",
        )],
        "[params]\nmin_amount = 100\n\n[output]\nroot = \"out\"\npublish_views = [\"big_orders\"]\n",
    )
}

fn published_n(j: &JobDir, date: &str) -> i64 {
    let batches = duckdb(&format!(
        "SELECT n FROM read_parquet('{}/big_orders/run_date={date}/*.parquet')",
        j.out().display()
    ));
    batches[0][0].as_i64().unwrap()
}

fn expected(min: f64) -> i64 {
    duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}/orders/*.parquet') WHERE amount > {min}",
        dataset().display()
    ))[0][0]
        .as_i64()
        .unwrap()
}

#[test]
fn job_default_and_cli_override_reach_the_view() {
    let j = job();
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(published_n(&j, "2025-12-31"), expected(100.0));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31", "--param", "min_amount=60.5"]);
    let n = published_n(&j, "2025-12-31");
    assert_eq!(n, expected(60.5));
    assert!(n > expected(100.0));
}

#[test]
fn unknown_parameter_names_the_file_and_the_parameter() {
    let j = job();
    j.write_view("big_orders.sql", "SELECT count(*) AS n FROM orders WHERE amount > $min_amout");
    let (code, _, err) = segvalue(&["validate", &j.job()]);
    assert_eq!(code, 2, "{err}");
    let file = j.dir.path().join("sql/big_orders.sql");
    assert!(
        err.contains(&format!("{}: unknown parameter '$min_amout' (defined: $calibration_end, $min_amount, $run_date, $run_end_ts)", file.display())),
        "{err}"
    );
}

#[test]
fn run_date_bounds_what_is_read() {
    let j = job();
    j.write_view("big_orders.sql", "SELECT count(*) AS n FROM orders WHERE order_ts < $run_end_ts");
    segvalue_ok(&["run", &j.job(), "--run-date", "2024-06-30"]);
    let expected = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}/orders/*.parquet') WHERE order_ts < TIMESTAMPTZ '2024-07-01 00:00:00+00'",
        dataset().display()
    ))[0][0]
        .as_i64()
        .unwrap();
    assert_eq!(published_n(&j, "2024-06-30"), expected);
}
