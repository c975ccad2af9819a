//! The default pipeline end to end through the binary, read back by DataFusion and DuckDB.


use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::*;

/// The tables a retail run with segmentation and `publish_views = ["kpi_monthly_retention"]` publishes.
const TABLES: &[&str] = RETAIL_TABLES;

fn retail_job() -> JobDir {
    JobDir::retail(&format!(
        "{}\n[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n",
        retail_segmentation("{ min = 2, max = 6 }")
    ))
}

#[test]
fn retail_job_publishes_hive_partitioned_tables() {
    let j = retail_job();
    let stdout = segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let out = j.out();
    for t in TABLES {
        assert!(stdout.contains(&format!("{t}\t")), "{t} missing from:\n{stdout}");
        let part = out.join(t).join("run_date=2025-12-31");
        assert_eq!(files_in(&part), ["_SUCCESS", "part-00000.parquet"], "{t}");
    }
    assert_eq!(
        files_in(&out),
        [
            "_manifests",
            "_models",
            "_reports",
            "customer_features",
            "customer_segments",
            "kpi_monthly_retention",
            "segment_actions",
            "segment_rules",
            "segment_summary",
            "segment_transitions",
            "segmentation_k_selection",
            "segmentation_prep"
        ]
    );

    // Every customer with an order by the run date, counted independently from the raw data.
    let d = dataset().display();
    let buyers = duckdb(&format!(
        "SELECT count(DISTINCT customer_id) FROM read_parquet('{d}/orders/*.parquet') WHERE order_ts < TIMESTAMPTZ '2026-01-01 00:00:00+00'"
    ))[0][0]
        .as_i64()
        .unwrap();
    assert!(buyers > 1000, "{buyers}");
    let count = |t: &str| duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", table_glob(&out, t)))[0][0].as_i64().unwrap();
    assert_eq!(count("customer_features"), buyers);
    assert_eq!(count("customer_segments"), buyers);

    // DuckDB sees the partition column.
    let by_date = duckdb(&format!(
        "SELECT CAST(run_date AS VARCHAR), count(*) FROM read_parquet('{}', hive_partitioning = true) GROUP BY 1",
        table_glob(&out, "customer_segments")
    ));
    assert_eq!(by_date, vec![vec![serde_json::json!("2025-12-31"), serde_json::json!(buyers)]]);

    // The feature SQL agrees with DuckDB computing the same quantities its own way.
    let mismatches = duckdb(&format!(
        "WITH d AS (
            SELECT customer_id, count(*) AS frequency, sum(amount) AS monetary,
                   DATE '2025-12-31' - max(CAST(order_ts AS DATE)) AS recency_days
            FROM read_parquet('{d}/orders/*.parquet') GROUP BY customer_id)
         SELECT count(*) FROM d FULL JOIN read_parquet('{}') f USING (customer_id)
         WHERE d.frequency IS DISTINCT FROM f.frequency
            OR NOT abs(d.monetary - f.monetary) <= 1e-6
            OR d.recency_days IS DISTINCT FROM f.recency_days",
        table_glob(&out, "customer_features")
    ));
    assert_eq!(mismatches[0][0], 0);

    // Segment profiles are the means of the published features per segment.
    let profile_mismatch = duckdb(&format!(
        "WITH m AS (SELECT s.segment_id, count(*) AS n, avg(f.recency_days) AS r
                    FROM read_parquet('{}') f JOIN read_parquet('{}') s USING (customer_id) GROUP BY 1)
         SELECT count(*) FROM m JOIN read_parquet('{}') p USING (segment_id)
         WHERE m.n <> p.customers OR abs(m.r - p.mean_recency_days) > 1e-9",
        table_glob(&out, "customer_features"),
        table_glob(&out, "customer_segments"),
        table_glob(&out, "segment_summary")
    ));
    assert_eq!(profile_mismatch[0][0], 0);

    // One chosen k, the one with the best silhouette, and one summary row per segment.
    let k = duckdb(&format!(
        "SELECT k, silhouette = (SELECT max(silhouette) FROM read_parquet('{0}')) FROM read_parquet('{0}') WHERE chosen",
        table_glob(&out, "segmentation_k_selection")
    ));
    assert_eq!(k.len(), 1);
    assert_eq!(k[0][1], true);
    assert_eq!(count("segment_summary"), k[0][0].as_i64().unwrap());
    assert_eq!(count("segmentation_k_selection"), 5);

    // Month 0 of every cohort is the cohort itself; cohort sizes add up to the buyers.
    let kpi = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE months_since_first = 0 AND retention_rate <> 1.0),
                sum(cohort_size) FILTER (WHERE months_since_first = 0)
         FROM read_parquet('{}')",
        table_glob(&out, "kpi_monthly_retention")
    ));
    assert_eq!(kpi[0], vec![serde_json::json!(0), serde_json::json!(buyers)]);

    // BI-friendly types: UTC microsecond timestamps, DATE dates, plain strings.
    // Read the file's own schema: DataFusion's reader would present strings as views.
    let file = std::fs::File::open(out.join("customer_features/run_date=2025-12-31/part-00000.parquet")).unwrap();
    let schema = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().schema().clone();
    assert_eq!(
        schema.field_with_name("first_order_ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(schema.field_with_name("signup_date").unwrap().data_type(), &DataType::Date32);
    assert_eq!(schema.field_with_name("customer_id").unwrap().data_type(), &DataType::Utf8);

    // The manifest records the row counts that were written.
    let manifest = manifest(&out, "2025-12-31");
    assert_eq!(manifest["run_date"], "2025-12-31");
    assert_eq!(manifest["job"], "test");
    let seg_rows = manifest["tables"].as_array().unwrap().iter().find(|t| t["table"] == "customer_segments").unwrap();
    assert_eq!(seg_rows["rows"].as_i64().unwrap(), buyers);
    assert!(manifest["stages"].as_array().unwrap().iter().any(|s| s["stage"] == "segment"));
}

/// The README's first command: the shipped job on the committed sample, as a user runs it.
#[test]
fn the_shipped_default_job_runs_on_the_sample_data() {
    let out = tempfile::tempdir().unwrap();
    let job = format!("{ROOT}/jobs/retail.toml");
    let stdout = segvalue_ok(&["run", &job, "--run-date", "2025-12-31", "--output-root", out.path().to_str().unwrap()]);
    for t in ["customer_features", "customer_segments", "segment_summary", "segmentation_k_selection", "customer_clv", "clv_model", "clv_validation", "kpi_monthly_retention"] {
        assert!(stdout.contains(&format!("{t}\t")), "{t} missing:\n{stdout}");
        assert!(out.path().join(t).join("run_date=2025-12-31/_SUCCESS").exists(), "{t}");
    }
    let buyers = duckdb(&format!(
        "SELECT count(DISTINCT customer_id) FROM read_parquet('{ROOT}/data/sample/orders/*.parquet')"
    ))[0][0]
        .clone();
    let clv = duckdb(&format!("SELECT count(*) FROM read_parquet('{}/customer_clv/*/*.parquet')", out.path().display()));
    assert_eq!(clv[0][0], buyers);
}

#[test]
fn rerunning_a_date_replaces_its_partition_and_other_dates_add_one() {
    let j = retail_job();
    let out = j.out();
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-06-30"]);
    let first = duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", table_glob(&out, "customer_segments")))[0][0].clone();
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-06-30"]);
    assert_eq!(files_in(&out.join("customer_segments/run_date=2025-06-30")), ["_SUCCESS", "part-00000.parquet"]);
    let again = duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", table_glob(&out, "customer_segments")))[0][0].clone();
    assert_eq!(first, again);
    assert!(!out.join("_staging").exists() || files_in(&out.join("_staging")).is_empty());

    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let dates = duckdb(&format!(
        "SELECT CAST(run_date AS VARCHAR), count(*) FROM read_parquet('{}', hive_partitioning = true) GROUP BY 1 ORDER BY 1",
        table_glob(&out, "customer_segments")
    ));
    assert_eq!(dates.len(), 2);
    assert_eq!(dates[0][1], first);
    // Customers keep arriving, so the later date sees more of them.
    assert!(dates[1][1].as_i64() > first.as_i64(), "{dates:?}");
}

#[test]
fn same_seed_same_segments_whatever_the_thread_count() {
    let j = retail_job();
    let out = j.out();
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31", "--output-root", out.join("a").to_str().unwrap()]);
    let b = out.join("b");
    let (code, _, err) = segvalue_env(
        &["run", &j.job(), "--run-date", "2025-12-31", "--output-root", b.to_str().unwrap()],
        &[("RAYON_NUM_THREADS", "1"), ("TOKIO_WORKER_THREADS", "1")],
    );
    assert_eq!(code, 0, "{err}");
    let diff = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}') a FULL JOIN read_parquet('{}') b USING (customer_id)
         WHERE a.segment_id IS DISTINCT FROM b.segment_id
            OR a.distance_to_centroid IS DISTINCT FROM b.distance_to_centroid",
        table_glob(&out.join("a"), "customer_segments"),
        table_glob(&out.join("b"), "customer_segments")
    ));
    assert_eq!(diff[0][0], 0);
}

/// On a terminal a run shows a progress spinner (driven by the run's own events); off a
/// terminal the same run prints plain log lines only. `script` gives the run a pseudo-terminal.
#[test]
fn a_terminal_shows_progress_and_a_pipe_does_not() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("{ min = 2, max = 4 }")));
    let cmd = format!("{BIN} run {} --run-date 2025-12-31", j.job());
    let out = std::process::Command::new("script").args(["-q", "-e", "-c", &cmd, "/dev/null"]).output().expect("script runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("clustering: k = 4 [####################] 3/3"), "no progress on the terminal:\n{tty}");
    assert!(tty.contains("customer_segments\t"), "{tty}");
    let (code, _, piped) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 0);
    assert!(!piped.contains("clustering: k =") && !piped.contains('\u{1b}'), "progress or colours in a pipe:\n{piped}");
}

/// Schedulers parse stderr: with `--log-format json` every line is one JSON object, for a
/// good run and for a failing one, and stage lines carry rows and seconds.
#[test]
fn json_logs_are_only_json_lines() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("3")));
    for (args, code) in [
        (vec!["--log-format", "json", "run", &j.job(), "--run-date", "2025-12-31"], 0),
        (vec!["--log-format", "json", "run", &j.job(), "--run-date", "2025-13-31"], 2),
    ] {
        let (got, _, stderr) = segvalue(&args);
        assert_eq!(got, code, "{stderr}");
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert!(!lines.is_empty());
        if code == 0 {
            let stage = lines.iter().find(|l| l["stage"] == "segment").expect("a segment stage line");
            assert!(stage["seconds"].is_number() && stage["rows_in"].is_number(), "{stage}");
            // Durations are rounded to the millisecond.
            let ms = stage["seconds"].as_f64().unwrap() * 1000.0;
            assert!((ms - ms.round()).abs() < 1e-6, "{stage}");
        } else {
            assert_eq!(lines.last().unwrap()["level"], "ERROR");
        }
    }
}

/// The shipped job under a memory cap that makes its sorts spill to disk publishes every table
/// byte for byte as an uncapped run does. DataFusion logs (at debug) each spill directory it
/// creates; that line shows the cap did force spilling.
///
/// The data is ten times the shipped sample so that the cap can sit well inside the band where
/// sorts must spill and yet every operator's fair share of the pool still holds its batch: on
/// the sample that band was 12M..20M, and a loaded CI machine, which registers more operators
/// at once and so shrinks each share, failed at 12M. Here it is 24M..128M and more.
#[test]
fn a_capped_run_spills_and_publishes_the_same_tables() {
    const CAP: &str = "memory_limit = \"48M\"";
    let data = tempfile::tempdir().unwrap();
    segvalue_ok(&["generate", "--out", data.path().to_str().unwrap(), "--customers", "25000", "--seed", "5"]);
    let shipped = std::fs::read_to_string(format!("{ROOT}/jobs/retail.toml")).unwrap();
    let sections = &shipped[shipped.find("[quality.orders]").unwrap()..];
    let sections = sections.replace("root = \"../out\"", "root = \"out\"");
    let run = |engine: &str| {
        let j = JobDir::retail_at(data.path().to_str().unwrap(), &format!("[engine]\ntarget_partitions = 2\n{engine}\n{sections}"));
        let (code, _, err) = segvalue_env(
            &["run", &j.job(), "--run-date", "2025-12-31"],
            &[("RUST_LOG", "warn,segvalue=info,datafusion_execution::disk_manager=debug")],
        );
        assert_eq!(code, 0, "{err}");
        let tables: Vec<(String, Vec<u8>)> = files_under(&j.out())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .map(|p| (p.strip_prefix(j.out()).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        (tables, err.contains("as DataFusion tempfile directory"))
    };
    let (uncapped, spilled) = run("");
    assert!(!spilled, "the uncapped run spilled");
    let (capped, spilled) = run(CAP);
    assert!(spilled, "{CAP} did not make the run spill");
    assert_eq!(capped.len(), uncapped.len());
    for ((path, a), (other, b)) in capped.iter().zip(&uncapped) {
        assert_eq!(path, other);
        assert!(a == b, "{path} differs under the cap");
    }
}
