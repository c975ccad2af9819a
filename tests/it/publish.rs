//! Publishing: byte-identical outputs, kill -9 at any moment, concurrent runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// The tables a retail run with segmentation and `publish_views = ["kpi_monthly_retention"]` publishes.
const TABLES: &[&str] = RETAIL_TABLES;
const DATE: &str = "2025-12-31";

fn job(engine: &str) -> JobDir {
    JobDir::retail(&format!(
        "{engine}\n{}\n[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n",
        retail_segmentation("{ min = 2, max = 6 }")
    ))
}

/// Every table's data file for `DATE`, in table order.
fn snapshot(root: &Path) -> Vec<Vec<u8>> {
    TABLES
        .iter()
        .map(|t| std::fs::read(partition(root, t).join("part-00000.parquet")).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect()
}

fn partition(root: &Path, table: &str) -> PathBuf {
    root.join(table).join(format!("run_date={DATE}"))
}

#[test]
fn same_input_gives_byte_identical_tables_whatever_the_partition_count() {
    let one = job("[engine]\ntarget_partitions = 1\n");
    let four = job("[engine]\ntarget_partitions = 4\nbatch_size = 1000\n");
    segvalue_ok(&["run", &one.job(), "--run-date", DATE]);
    segvalue_ok(&["run", &four.job(), "--run-date", DATE]);
    let (a, b) = (snapshot(&one.out()), snapshot(&four.out()));
    for (i, t) in TABLES.iter().enumerate() {
        assert!(a[i] == b[i], "{t} differs between 1 and 4 partitions");
    }
}

/// Kills the job at spread-out moments; after each kill every published partition must be the
/// complete previous one, readable by an outside reader, and a final rerun must reproduce it.
#[test]
fn kill_9_at_any_moment_leaves_published_partitions_intact() {
    let j = job("");
    let out = j.out();
    segvalue_ok(&["run", &j.job(), "--run-date", DATE]);
    let before = snapshot(&out);
    let counts: Vec<i64> = TABLES
        .iter()
        .map(|t| duckdb(&format!("SELECT count(*) FROM read_parquet('{}/*.parquet')", partition(&out, t).display()))[0][0].as_i64().unwrap())
        .collect();

    // A fixed spread of kill times across a run (~0.5–3 s on the sample data), no randomness.
    for ms in [5u64, 40, 120, 300, 600, 900, 1300, 1800, 2500] {
        let mut child = Command::new(BIN)
            .args(["run", &j.job(), "--run-date", DATE, "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_eq!(snapshot(&out), before, "a partition changed after a kill at {ms} ms");
        for (t, n) in TABLES.iter().zip(&counts) {
            assert!(partition(&out, t).join("_SUCCESS").exists(), "{t}: _SUCCESS missing after kill at {ms} ms");
            let got = duckdb(&format!("SELECT count(*) FROM read_parquet('{}/*.parquet')", partition(&out, t).display()))[0][0]
                .as_i64()
                .unwrap();
            assert_eq!(got, *n, "{t} after kill at {ms} ms");
        }
    }
    segvalue_ok(&["run", &j.job(), "--run-date", DATE]);
    assert_eq!(snapshot(&out), before);
}

/// Two runs for the same root and date at once: last writer wins, per table, and every
/// partition is complete. Both runs compute the same bytes, so the result equals a lone run.
#[test]
fn concurrent_runs_of_one_date_do_not_corrupt_each_other() {
    let j = job("");
    let spawn = || {
        Command::new(BIN)
            .args(["run", &j.job(), "--run-date", DATE, "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let lone = job("");
    segvalue_ok(&["run", &lone.job(), "--run-date", DATE]);
    assert_eq!(snapshot(&j.out()), snapshot(&lone.out()));
    for t in TABLES {
        let files = files_in(&partition(&j.out(), t));
        assert_eq!(files.len(), 2, "{t}: {files:?}");
    }
}

#[test]
fn runs_lists_each_date_and_flags_an_incomplete_one() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("3")));
    for date in ["2025-12-30", "2025-12-31"] {
        segvalue_ok(&["run", &j.job(), "--run-date", date]);
    }
    let out = j.out();
    let root = out.display().to_string();
    let lines = |stdout: String| stdout.lines().skip(1).map(|l| l.split('\t').map(String::from).collect::<Vec<_>>()).collect::<Vec<_>>();
    let runs = lines(segvalue_ok(&["runs", &root]));
    assert_eq!(runs.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect::<Vec<_>>(), [("2025-12-30", "complete"), ("2025-12-31", "complete")]);
    // Rows agree with DuckDB counting every table of the date.
    for r in &runs {
        let tables: Vec<String> = files_in(&out).into_iter().filter(|t| !t.starts_with('_')).collect();
        assert_eq!(r[2], tables.len().to_string());
        let counted: i64 = tables
            .iter()
            .map(|t| duckdb(&format!("SELECT count(*) FROM read_parquet('{root}/{t}/run_date={}/*.parquet')", r[0]))[0][0].as_i64().unwrap())
            .sum();
        assert_eq!(r[3], counted.to_string(), "{r:?}");
    }
    // A table whose commit marker is missing makes its date incomplete, and says which.
    std::fs::remove_file(out.join("customer_segments/run_date=2025-12-30/_SUCCESS")).unwrap();
    let runs = lines(segvalue_ok(&["runs", &root]));
    assert_eq!((runs[0][1].as_str(), runs[0][5].as_str()), ("incomplete", "table 'customer_segments' has no _SUCCESS"));
    assert_eq!(runs[1][1], "complete");
}
