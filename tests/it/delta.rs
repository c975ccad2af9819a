//! `[output] format = "delta"`: every table a Delta Lake table, read back by delta-rs's Python
//! package and by Polars (`tests/support/delta_check.py`) and compared, row by row and type
//! by type, with the same job's Parquet tables.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub const TABLES: &[&str] = RETAIL_TABLES;
pub const D1: &str = "2025-12-31";
const D2: &str = "2026-01-31";

/// The retail segmentation and an `[output]` at `root` (a path or URL) in `format` (plus
/// `extra` keys).
pub fn output(root: impl std::fmt::Display, format: &str, extra: &str) -> String {
    format!(
        "{}\n[output]\nroot = \"{root}\"\npublish_views = [\"kpi_monthly_retention\"]\nformat = \"{format}\"\n{extra}\n",
        retail_segmentation("{ min = 2, max = 6 }"),
    )
}

/// A second input whose every table differs from [`dataset`]'s ("B"; [`dataset`] is "A").
fn dataset_b() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("segvalue-data-b-").tempdir().unwrap().keep();
        segvalue_ok(&["generate", "--out", dir.to_str().unwrap(), "--customers", "1500", "--seed", "12"]);
        dir
    })
}

fn input(i: usize) -> &'static Path {
    if i == 0 { dataset() } else { dataset_b() }
}

/// `delta_check.py` with `args`: per table, what pyarrow and Polars read (see the script).
pub fn check(args: &[&str], env: &[(&str, &str)]) -> Value {
    let script = Path::new(ROOT).join("tests/support/delta_check.py");
    let out = Command::new(python()).arg(script).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "delta_check.py {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn delta_state(root: &Path, date: &str, version: Option<u64>) -> Value {
    let root = root.display().to_string();
    let v = version.map(|v| v.to_string());
    let mut args = vec!["delta", root.as_str(), date];
    args.extend(TABLES);
    if let Some(v) = &v {
        args.extend(["--version", v.as_str()]);
    }
    check(&args, &[])
}

/// Input `i`'s tables for the last of `dates`, run in that order as Parquet on a root of their
/// own: the reference. (A run reads the newest complete run before it, for aligned segment ids
/// and transitions, so a date's tables depend on the dates run before it.)
pub fn parquet_reference(i: usize, dates: &[&str]) -> Value {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<(usize, String), Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (i, dates.join(","));
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return v.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let job = JobDir::retail_at(&input(i).display().to_string(), &output(dir.path().join("out").display(), "parquet", ""));
    for date in dates {
        segvalue_ok(&["run", &job.job(), "--run-date", date]);
    }
    let root = dir.path().join("out").display().to_string();
    let mut args = vec!["parquet", root.as_str(), dates[dates.len() - 1]];
    args.extend(TABLES);
    let v = check(&args, &[]);
    cache.lock().unwrap().insert(key, v.clone());
    v
}

/// Each table as both readers read it from Delta equals the Parquet reference: rows (exactly,
/// as a digest of the sorted rows), row count and column types.
pub fn assert_holds(state: &Value, reference: &Value, what: &str) {
    for t in TABLES {
        for reader in ["pyarrow", "polars"] {
            assert_eq!(state[t][reader], reference[t][reader], "{what}: table {t} as {reader} reads it");
        }
    }
}

fn delta_job(i: usize, root: &Path, extra: &str) -> JobDir {
    JobDir::retail_at(&input(i).display().to_string(), &output(root.display(), "delta", extra))
}

fn runs_lines(root: &Path) -> Vec<Vec<String>> {
    let out = segvalue_ok(&["runs", &root.display().to_string()]);
    out.lines().skip(1).map(|l| l.split('\t').map(String::from).collect()).collect()
}

#[test]
fn delta_tables_equal_the_parquet_tables_across_dates_and_a_rerun_keeps_the_old_version() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (delta_job(0, root.path(), ""), delta_job(1, root.path(), ""));
    segvalue_ok(&["run", &a.job(), "--run-date", D1]);
    let first = manifest(root.path(), D1);
    segvalue_ok(&["run", &a.job(), "--run-date", D2]);
    segvalue_ok(&["run", &b.job(), "--run-date", D1]);
    let (m1, m2) = (manifest(root.path(), D1), manifest(root.path(), D2));

    let (a1, a2, b1) = (parquet_reference(0, &[D1]), parquet_reference(0, &[D1, D2]), parquet_reference(1, &[D1]));
    for t in TABLES {
        assert_ne!(a1[t]["pyarrow"]["digest"], b1[t]["pyarrow"]["digest"], "{t}: inputs A and B give the same rows, so a rerun cannot be told apart");
    }
    // Now: D1 holds only the rerun's rows (B), D2 still A's; both readers agree with Parquet.
    let now1 = delta_state(root.path(), D1, None);
    assert_holds(&now1, &b1, "date 1 after the rerun");
    assert_holds(&delta_state(root.path(), D2, None), &a2, "date 2, left alone by the rerun of date 1");
    // Time travel: version 0 is the first run of D1, whole.
    assert_holds(&delta_state(root.path(), D1, Some(0)), &a1, "date 1 at version 0");

    let tables = |m: &Value| -> HashMap<String, Value> { m["tables"].as_array().unwrap().iter().map(|t| (t["table"].as_str().unwrap().to_string(), t.clone())).collect() };
    let (t0, t1) = (tables(&first), tables(&m1));
    for t in TABLES {
        let s = &now1[t];
        // One commit per table and run: versions 0, 1, 2, each recording its run.
        assert_eq!(s["version"], 2, "{t}: {s}");
        assert_eq!((s["run_id"].as_str(), s["commit_version"].as_u64()), (m1["run_id"].as_str(), Some(2)), "{t}");
        assert_eq!(t1[*t]["delta_version"], 2, "{t}: the manifest's version");
        assert_eq!(t0[*t]["delta_version"], 0, "{t}");
        assert!(t1[*t]["location"].as_str().unwrap().ends_with(&format!("/{t}")), "{t}: the table's location is its Delta root");
        // run_date is a DATE partition column, as the Parquet layout's directory reads.
        assert_eq!(s["partition_type"], "date32[day]", "{t}");
        let dir = root.path().join(t);
        assert!(dir.join("_delta_log").is_dir(), "{t}");
        assert!(files_under(&dir).iter().all(|f| !f.ends_with("_SUCCESS")), "{t}: a Delta table has no markers");
    }
    assert_eq!(delta_state(root.path(), D2, None)[TABLES[0]]["run_id"], m2["run_id"]);

    // `segvalue runs` reads the logs: both dates complete, with each table's version.
    let runs = runs_lines(root.path());
    assert_eq!(runs.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect::<Vec<_>>(), [(D1, "complete"), (D2, "complete")], "{runs:?}");
    let versions = |r: &Vec<String>| -> Vec<String> {
        let mut v: Vec<String> = r[6].split(' ').map(String::from).collect();
        v.sort();
        v
    };
    let mut want1: Vec<String> = TABLES.iter().map(|t| format!("{t}=2")).collect();
    want1.sort();
    let mut want2: Vec<String> = TABLES.iter().map(|t| format!("{t}=1")).collect();
    want2.sort();
    assert_eq!((versions(&runs[0]), versions(&runs[1])), (want1, want2));
    assert_eq!(runs[0][4], m1["run_id"].as_str().unwrap());
    // Without its manifest, date 1 is incomplete and counts each table once, though two runs
    // committed it.
    std::fs::remove_dir_all(root.path().join("_manifests").join(format!("run_date={D1}"))).unwrap();
    let runs = runs_lines(root.path());
    assert_eq!((runs[0][1].as_str(), runs[0][2].as_str(), runs[0][5].as_str()), ("incomplete", TABLES.len().to_string().as_str(), "no readable manifest"), "{runs:?}");
}

/// The run id each spawned run logged, and its input.
type RunInputs = HashMap<String, usize>;

/// After a kill or a crash: every table's current version holds wholly input A's or B's rows
/// of D1, and its newest commit for D1 is a run of that same input. Returns the inputs held.
fn assert_whole(root: &Path, refs: &[Value; 2], run_inputs: &RunInputs, when: &str) -> Vec<usize> {
    let state = delta_state(root, D1, None);
    TABLES
        .iter()
        .map(|t| {
            let s = &state[t];
            let held = (0..2).find(|&i| s["pyarrow"] == refs[i][t]["pyarrow"]).unwrap_or_else(|| panic!("{t}: neither input's rows {when}: {s}"));
            assert_eq!(s["polars"], refs[held][t]["polars"], "{t}: Polars reads other rows than pyarrow {when}");
            let id = s["run_id"].as_str().unwrap_or_else(|| panic!("{t}: no commit for D1 {when}"));
            let by = run_inputs.get(id).unwrap_or_else(|| panic!("{t}: committed by run {id}, which no run logged {when}"));
            assert_eq!(*by, held, "{t}: run {id} (input {by}) committed input {held}'s rows {when}");
            held
        })
        .collect()
}

fn spawn(job: &JobDir, log: &Path, failpoints: Option<&str>) -> std::process::Child {
    let mut c = Command::new(BIN);
    if let Some(f) = failpoints {
        c.env("SEGVALUE_FAILPOINTS", f);
    }
    c.args(["--log-format", "json", "run", &job.job(), "--run-date", D1]).stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap()
}

/// Commit files in every table's log.
fn commits(root: &Path) -> usize {
    TABLES.iter().map(|t| files_in(&root.join(t).join("_delta_log")).iter().filter(|f| f.ends_with(".json")).count()).sum()
}

/// Runs D1 with input A, then reruns it alternating B and A, killing each rerun with SIGKILL
/// during its commits (after its first Delta commit lands, then 0–40 ms later), 12 times;
/// then crashes it (a fail point) after each step of publishing in turn. After each, every
/// table's current version is wholly one input's run. The seed is printed;
/// `SEGVALUE_KILL_SEED` replays one.
#[test]
fn kill_9_during_delta_commits_leaves_each_table_wholly_old_or_new() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("SEGVALUE_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("SEGVALUE_KILL_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let refs = [parquet_reference(0, &[D1]), parquet_reference(1, &[D1])];
    let root = tempfile::tempdir().unwrap();
    let jobs = [delta_job(0, root.path(), ""), delta_job(1, root.path(), "")];
    let logs = tempfile::tempdir().unwrap();
    let mut run_inputs = RunInputs::new();
    let first = logs.path().join("first.log");
    assert!(spawn(&jobs[0], &first, None).wait().unwrap().success());
    run_inputs.insert(logged_run_id(&first).unwrap(), 0);
    assert_whole(root.path(), &refs, &run_inputs, "after the first run");

    let (mut mixed, mut finished) = (0, 0);
    for n in 0..12 {
        let i = 1 - n % 2;
        let log = logs.path().join(format!("kill-{n}.log"));
        let before = commits(root.path());
        let mut child = spawn(&jobs[i], &log, None);
        while child.try_wait().unwrap().is_none() && commits(root.path()) == before {
            std::thread::sleep(Duration::from_micros(200));
        }
        let us = rng.gen_range(0..40_000u64);
        std::thread::sleep(Duration::from_micros(us));
        let exited = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let status = child.wait().unwrap();
        finished += usize::from(exited && status.success());
        if let Some(id) = logged_run_id(&log) {
            run_inputs.insert(id, i);
        }
        let held = assert_whole(root.path(), &refs, &run_inputs, &format!("after kill {n} at +{us} µs in the commits (seed {seed})"));
        mixed += usize::from(held.iter().any(|&h| h != held[0]));
    }
    eprintln!("12 kills in the commits: {finished} runs had finished, {mixed} left tables of both inputs");
    assert!(mixed > 0, "no kill landed between two tables' commits, so none tested a commit in progress");

    let mut step = 0;
    loop {
        let i = 1 - step % 2;
        let log = logs.path().join(format!("step-{step}.log"));
        let failpoint = if step == 0 { "publish-step=return".to_string() } else { format!("publish-step={step}*off->return") };
        let status = spawn(&jobs[i], &log, Some(&failpoint)).wait().unwrap();
        if let Some(id) = logged_run_id(&log) {
            run_inputs.insert(id, i);
        }
        assert_whole(root.path(), &refs, &run_inputs, &format!("after a crash at publish step {step}"));
        if status.success() {
            break;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(6), "step {step}: the run did not end at its fail point: {}", std::fs::read_to_string(&log).unwrap());
        step += 1;
        assert!(step < 100, "publishing never ended");
    }
    assert!(step >= TABLES.len(), "only {step} publish steps for {} tables", TABLES.len());
    // The last run completed: every table is its input's, and `segvalue runs` says complete.
    let last = if step % 2 == 0 { 1 } else { 0 };
    assert!(assert_whole(root.path(), &refs, &run_inputs, "after the last run").iter().all(|&h| h == last));
    let runs = runs_lines(root.path());
    assert_eq!(runs[0][1], "complete", "{runs:?}");
}

/// Views published as they are: tables that depend on their date only (no segment history).
const VIEWS: &[&str] = &["customer_features", "kpi_monthly_retention"];

fn views_job(root: &Path, format: &str) -> JobDir {
    JobDir::retail(&format!("[output]\nroot = \"{}\"\npublish_views = {VIEWS:?}\nformat = \"{format}\"\n", root.display()))
}

fn views_state(mode: &str, root: &Path, date: &str) -> Value {
    let root = root.display().to_string();
    let mut args = vec![mode, root.as_str(), date];
    args.extend(VIEWS);
    check(&args, &[])
}

/// Two runs of different dates on one root at once write the same tables concurrently (the
/// commit lock is per date): each ends with its commits or a one-line conflict error (exit 1),
/// the logs stay readable, and each date holds its rows, whole.
#[test]
fn concurrent_runs_on_one_delta_table_both_commit_or_fail_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let job = views_job(root.path(), "delta");
    segvalue_ok(&["run", &job.job(), "--run-date", D1]);
    let logs = tempfile::tempdir().unwrap();
    let mut committed = [0usize; 2];
    for n in 0..3 {
        let children: Vec<_> = [D1, D2]
            .iter()
            .enumerate()
            .map(|(k, date)| {
                let log = logs.path().join(format!("{n}-{k}.log"));
                let child = Command::new(BIN).args(["run", &job.job(), "--run-date", date]).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
                (child, log)
            })
            .collect();
        for (k, (mut child, log)) in children.into_iter().enumerate() {
            let status = child.wait().unwrap();
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(!text.contains("panicked"), "{text}");
            if status.success() {
                committed[k] += 1;
            } else {
                assert_eq!(status.code(), Some(1), "{text}");
                let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
                assert_eq!(errors.len(), 1, "{text}");
                assert!(errors[0].contains("Delta commit"), "{}", errors[0]);
            }
        }
    }
    eprintln!("concurrent runs committed: {committed:?} of 3 each");
    assert!(committed.iter().all(|&c| c > 0), "{committed:?}");
    // Whatever raced, each date holds its rows, as both readers read them from every log.
    let reference = tempfile::tempdir().unwrap();
    let parquet = views_job(reference.path(), "parquet");
    for date in [D1, D2] {
        segvalue_ok(&["run", &parquet.job(), "--run-date", date]);
        let (got, want) = (views_state("delta", root.path(), date), views_state("parquet", reference.path(), date));
        for t in VIEWS {
            for reader in ["pyarrow", "polars"] {
                assert_eq!(got[t][reader], want[t][reader], "{date}: table {t} as {reader} reads it after concurrent runs");
            }
            // The first run's commit, then one per run that ended well.
            assert_eq!(got[t]["version"].as_u64(), Some((committed[0] + committed[1]) as u64), "{t}: {committed:?}");
        }
    }
}

#[test]
fn vacuum_days_removes_replaced_files_and_keeps_the_current_version() {
    let root = tempfile::tempdir().unwrap();
    for i in [0, 1] {
        segvalue_ok(&["run", &delta_job(i, root.path(), "vacuum_days = 0").job(), "--run-date", D1]);
    }
    assert_holds(&delta_state(root.path(), D1, None), &parquet_reference(1, &[D1]), "after the vacuumed rerun");
    for t in TABLES {
        let data: Vec<PathBuf> = files_under(&root.path().join(t).join(format!("run_date={D1}"))).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")).collect();
        assert_eq!(data.len(), 1, "{t}: the first run's files should be gone: {data:?}");
    }
    // Without vacuum_days the first run's files stay, for time travel.
    let kept = tempfile::tempdir().unwrap();
    for i in [0, 1] {
        segvalue_ok(&["run", &delta_job(i, kept.path(), "").job(), "--run-date", D1]);
    }
    let data = files_under(&kept.path().join(TABLES[0]).join(format!("run_date={D1}")));
    assert_eq!(data.iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")).count(), 2);
}

#[test]
fn delta_settings_and_mixed_layouts_fail_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let bad = JobDir::retail(&output(root.path().display(), "csv", ""));
    let line = fails(&["run", &bad.job(), "--run-date", D1], 2);
    assert!(line.contains("output.format") && line.contains("unknown format 'csv' (expected parquet or delta)"), "{line}");
    let bad = JobDir::retail(&output(root.path().display(), "parquet", "vacuum_days = 7"));
    let line = fails(&["run", &bad.job(), "--run-date", D1], 2);
    assert!(line.contains("output.vacuum_days") && line.contains("only applies to format = \"delta\""), "{line}");

    // A root of Parquet tables cannot take Delta tables, nor the reverse; nothing changes.
    let parquet = JobDir::retail(&output(root.path().display(), "parquet", ""));
    segvalue_ok(&["run", &parquet.job(), "--run-date", D1]);
    let before = files_under(root.path());
    let line = fails(&["run", &delta_job(0, root.path(), "").job(), "--run-date", D2], 1);
    assert!(line.contains("holds Parquet partitions, not delta output"), "{line}");
    assert_eq!(files_under(root.path()), before, "a refused run changed the root");
    let delta_root = tempfile::tempdir().unwrap();
    segvalue_ok(&["run", &delta_job(0, delta_root.path(), "").job(), "--run-date", D1]);
    let line = fails(&["run", &JobDir::retail(&output(delta_root.path().display(), "parquet", "")).job(), "--run-date", D2], 1);
    assert!(line.contains("holds a Delta table, not parquet output"), "{line}");
}
