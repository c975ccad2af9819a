//! Privacy: keyed pseudonyms, dropped columns, the SQL sandbox.

use std::process::Command;

use crate::common::*;

const KEY_A: &str = "key-a-for-tests";
const KEY_B: &str = "key-b-for-tests";

fn job(privacy: &str) -> JobDir {
    JobDir::retail(&format!(
        r#"
[privacy]
{privacy}

[segmentation]
view = "customer_features"
id = "customer_id"
features = ["recency_days", "log_frequency", "log_monetary"]
k = 3
seed = 1

[rfm]
view = "customer_rfm"

[clv]
view = "customer_summary"
id = "customer_id"

[output]
root = "out"
"#
    ))
}

fn run_with_key(j: &JobDir, date: &str, root: &str, key: Option<&str>) -> (i32, String) {
    let env: Vec<(&str, &str)> = key.map(|k| vec![("SEGVALUE_PSEUDONYM_KEY", k)]).unwrap_or_default();
    let (code, _, stderr) = segvalue_env(&["run", &j.job(), "--run-date", date, "--output-root", root], &env);
    (code, stderr)
}

fn ids(root: &std::path::Path, table: &str) -> Vec<String> {
    duckdb(&format!("SELECT customer_id FROM read_parquet('{}/{table}/*/*.parquet') ORDER BY 1", root.display()))
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

/// HMAC-SHA256 of every buyer's id, computed by Python's standard library.
fn expected_pseudonyms(key: &str) -> Vec<String> {
    let python = python();
    let script = format!(
        "import duckdb, hmac, hashlib\n\
         ids = [r[0] for r in duckdb.sql(\"SELECT DISTINCT customer_id FROM read_parquet('{}/orders/*.parquet')\").fetchall()]\n\
         print('\\n'.join(sorted(hmac.new(b'{key}', i.encode(), hashlib.sha256).hexdigest() for i in ids)))",
        dataset().display()
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn pseudonyms_are_hmac_sha256_consistent_across_tables_and_runs_and_keyed() {
    let j = job("pseudonymize_ids = true\ndrop_columns = [\"age_band\", \"region\"]");
    let (a, b, c) = (j.out().join("a"), j.out().join("b"), j.out().join("c"));
    for (root, date, key) in [(&a, "2025-12-31", KEY_A), (&b, "2025-06-30", KEY_A), (&c, "2025-12-31", KEY_B)] {
        let (code, err) = run_with_key(&j, date, root.to_str().unwrap(), Some(key));
        assert_eq!(code, 0, "{err}");
    }
    let features = ids(&a, "customer_features");
    // customer_actions is computed from the other tables as published: pseudonymised once.
    for table in ["customer_segments", "customer_clv", "customer_actions"] {
        assert_eq!(features, ids(&a, table), "{table} disagrees");
    }
    assert_eq!(features, expected_pseudonyms(KEY_A));
    assert!(features.iter().all(|p| p.len() == 64 && p.chars().all(|c| c.is_ascii_hexdigit())));

    // Same key, another run: every earlier customer keeps its pseudonym.
    let earlier = ids(&b, "customer_features");
    assert!(!earlier.is_empty() && earlier.iter().all(|p| features.binary_search(p).is_ok()));
    // Another key: nothing in common.
    let other = ids(&c, "customer_features");
    assert_eq!(other.len(), features.len());
    assert!(other.iter().all(|p| features.binary_search(p).is_err()));

    // Minimisation: the listed columns are gone, the rest are there.
    let cols: Vec<String> = duckdb(&format!("DESCRIBE SELECT * FROM read_parquet('{}/customer_features/*/*.parquet')", a.display()))
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(!cols.contains(&"age_band".to_string()) && !cols.contains(&"region".to_string()), "{cols:?}");
    assert!(cols.contains(&"city_tier".to_string()));
}

#[test]
fn a_missing_or_empty_key_stops_the_run_naming_the_variable() {
    let j = job("pseudonymize_ids = true\nkey_env = \"MY_SEGVALUE_KEY\"");
    for env in [vec![], vec![("MY_SEGVALUE_KEY", "")]] {
        let (code, _, err) = segvalue_env(&["run", &j.job(), "--run-date", "2025-12-31"], &env);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("the environment variable MY_SEGVALUE_KEY is missing or empty"), "{err}");
        assert!(!j.out().exists());
    }
}

#[test]
fn a_published_view_with_a_dropped_column_is_refused() {
    let j = JobDir::new(
        &[("contacts.sql", "SELECT customer_id, region AS email FROM customers")],
        "[privacy]\ndrop_columns = [\"email\"]\n\n[output]\nroot = \"out\"\npublish_views = [\"contacts\"]\n",
    );
    let err = fails(&["validate", &j.job()], 2);
    assert!(err.contains("view 'contacts' is published but has column 'email', which [privacy] drop_columns forbids"), "{err}");
}

#[test]
fn the_sql_sandbox_refuses_writes_definitions_and_undeclared_files() {
    let refused = [
        ("COPY (SELECT 1) TO '/tmp/x.parquet'", "only SELECT queries are allowed in view files, found COPY"),
        ("INSERT INTO orders VALUES (1)", "found INSERT"),
        ("CREATE TABLE t AS SELECT 1", "found CREATE TABLE"),
        ("CREATE VIEW v2 AS SELECT 1", "found CREATE VIEW"),
        ("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'", "found CREATE EXTERNAL"),
        ("DROP TABLE orders", "found DROP TABLE"),
        ("SET datafusion.execution.batch_size = 1", "found SET"),
        ("DELETE FROM orders", "found DELETE"),
        ("UPDATE orders SET amount = 0", "found UPDATE"),
        ("EXPLAIN SELECT 1", "found EXPLAIN"),
        ("SELECT 1; DROP TABLE orders", "a view file must hold exactly one query, found 2"),
        ("SELECT * FROM '/etc/passwd'", "unknown table '/etc/passwd'"),
        ("SELECT * FROM 'data/sample/orders/part-00000.parquet'", "unknown table 'data/sample/orders/part-00000.parquet'"),
        ("SELECT * FROM read_parquet('/etc/x.parquet')", "unknown table 'read_parquet'"),
        ("SELECT * FROM read_csv('/etc/passwd')", "unknown table 'read_csv'"),
    ];
    for (sql, expected) in refused {
        let j = JobDir::new(&[("v.sql", sql)], "[output]\nroot = \"out\"\n");
        let err = fails(&["validate", &j.job()], 2);
        let file = j.dir.path().join("sql/v.sql");
        assert!(err.contains(&format!("{}", file.display())) && err.contains(expected), "{sql}: {err}");
    }
}
