//! The distributed engine for real: one `segvalue scheduler` and two `segvalue executor`
//! processes on 127.0.0.1, the shipped job run through them, compared with the embedded engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::common::*;

/// Scheduler and executor processes, killed when dropped.
struct Cluster {
    port: u16,
    children: Vec<Child>,
    /// Each executor's shuffle directory.
    work_dirs: Vec<PathBuf>,
    /// The directory of every process's log files.
    logs: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    fn start(executors: usize) -> Cluster {
        Cluster::start_with_env(executors, &[])
    }

    /// [`Cluster::start`] with extra environment variables for every process.
    fn start_with_env(executors: usize, env: &[(&str, &str)]) -> Cluster {
        let tmp = tempfile::Builder::new().prefix("segvalue-cluster-").tempdir().unwrap();
        let port = free_port();
        let dir = tmp.path().to_path_buf();
        let log = |name: &str| std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let scheduler = Command::new(BIN)
            .args(["scheduler", "--bind", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .stdout(log("scheduler"))
            .stderr(log("scheduler.err"))
            .spawn()
            .unwrap();
        let mut c = Cluster {
            port,
            children: vec![scheduler],
            work_dirs: Vec::new(),
            logs: dir.clone(),
            _tmp: tmp,
        };
        for i in 0..executors {
            let work = dir.join(format!("executor-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            let child = Command::new(BIN)
                .args(["executor", "--scheduler", &format!("127.0.0.1:{port}"), "--bind-host", "127.0.0.1"])
                .args(["--port", &free_port().to_string(), "--grpc-port", &free_port().to_string()])
                .args(["--concurrent-tasks", "2", "--work-dir", work.to_str().unwrap()])
                .envs(env.iter().copied())
                .stdout(log(&format!("executor-{i}")))
                .stderr(log(&format!("executor-{i}.err")))
                .spawn()
                .unwrap();
            c.children.push(child);
            c.work_dirs.push(work);
        }
        c
    }

    fn engine(&self) -> String {
        format!("ballista://127.0.0.1:{}", self.port)
    }

    /// Every child is still running (none crashed during the test).
    fn assert_alive(&mut self) {
        for child in &mut self.children {
            assert!(child.try_wait().unwrap().is_none(), "a cluster process exited: {:?}", child.try_wait());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_retail(out: &Path, engine: &str) {
    let job = Path::new(ROOT).join("jobs/retail.toml");
    segvalue_ok(&[
        "run",
        job.to_str().unwrap(),
        "--run-date",
        "2025-12-31",
        "--output-root",
        out.to_str().unwrap(),
        "--engine",
        engine,
    ]);
}

#[test]
fn default_job_on_a_ballista_cluster_matches_the_embedded_engine() {
    let mut cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    let (local, dist) = (tmp.path().join("local"), tmp.path().join("ballista"));
    run_retail(&local, "local");
    run_retail(&dist, &cluster.engine());
    cluster.assert_alive();

    // The executors did the work: both wrote shuffle files for the run's stages.
    for w in &cluster.work_dirs {
        assert!(!files_under(w).is_empty(), "executor work dir {} is empty: the cluster did not run the job", w.display());
    }

    // customer_features: the same customers, every value equal up to summation order.
    let (l, d) = (read_partition(&local, "customer_features", "2025-12-31"), read_partition(&dist, "customer_features", "2025-12-31"));
    let columns: Vec<String> = duckdb(&format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {l})"))
        .into_iter()
        .map(|r| format!("{}\t{}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    let dist_columns: Vec<String> = duckdb(&format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {d})"))
        .into_iter()
        .map(|r| format!("{}\t{}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    assert_eq!(columns, dist_columns, "schemas differ");
    let counts = duckdb(&format!(
        "SELECT (SELECT count(*) FROM {l}), (SELECT count(*) FROM {d}), \
         (SELECT count(*) FROM {l} a JOIN {d} b USING (customer_id))"
    ));
    let n = counts[0][0].as_i64().unwrap();
    assert!(n > 1000, "{counts:?}");
    assert_eq!(counts[0][1].as_i64(), Some(n), "row counts differ");
    assert_eq!(counts[0][2].as_i64(), Some(n), "customer ids differ");
    for c in &columns {
        let (name, ty) = c.split_once('\t').unwrap();
        if name == "customer_id" {
            continue;
        }
        let numeric = ["DOUBLE", "FLOAT", "BIGINT", "INTEGER", "DECIMAL"].iter().any(|t| ty.starts_with(t));
        let differ = if numeric {
            format!(
                "abs(CAST(a.\"{name}\" AS DOUBLE) - CAST(b.\"{name}\" AS DOUBLE)) > 1e-9 * greatest(1, abs(CAST(a.\"{name}\" AS DOUBLE))) \
                 OR (a.\"{name}\" IS NULL) <> (b.\"{name}\" IS NULL)"
            )
        } else {
            format!("a.\"{name}\" IS DISTINCT FROM b.\"{name}\"")
        };
        let bad = duckdb(&format!("SELECT count(*) FROM {l} a JOIN {d} b USING (customer_id) WHERE {differ}"));
        assert_eq!(bad[0][0].as_i64(), Some(0), "column {name} ({ty}) differs between engines");
    }

    // Segment assignments agree customer by customer.
    let seg = duckdb(&format!(
        "SELECT count(*), count(*) FILTER (WHERE a.segment_id = b.segment_id AND a.rfm_segment = b.rfm_segment) \
         FROM {} a JOIN {} b USING (customer_id)",
        read_partition(&local, "customer_segments", "2025-12-31"),
        read_partition(&dist, "customer_segments", "2025-12-31")
    ));
    assert_eq!(seg[0][0].as_i64(), Some(n));
    assert_eq!(seg[0][1].as_i64(), Some(n), "segment assignments differ between engines");

    // The manifest names the engine the run used.
    let manifest = manifest(&dist, "2025-12-31");
    assert_eq!(manifest["engine"], serde_json::json!(cluster.engine()));
}

#[test]
fn a_scheduler_without_executors_fails_the_run_and_publishes_nothing() {
    let cluster = Cluster::start(0);
    let j = JobDir::retail(&format!("{}\n[engine]\nexecutor_wait_secs = 3\n\n[output]\nroot = \"out\"\n", retail_segmentation("3")));
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31", "--engine", &cluster.engine()], 1);
    assert!(line.contains(&cluster.engine()) && line.contains("executors"), "{line}");
    assert!(!j.out().join("customer_features").exists(), "something was published");
}

#[test]
fn unreachable_scheduler_is_a_clear_error() {
    let j = JobDir::retail(&format!("{}\n[engine]\nexecutor_wait_secs = 1\n\n[output]\nroot = \"out\"\n", retail_segmentation("3")));
    let engine = format!("ballista://127.0.0.1:{}", free_port());
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31", "--engine", &engine], 1);
    assert!(line.contains(&engine) && line.contains("cannot reach the scheduler"), "{line}");
}

#[test]
fn bad_engine_is_a_usage_error() {
    let (code, _, stderr) = segvalue(&["validate", "jobs/retail.toml", "--engine", "ballista://nohost"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ballista://HOST:PORT"), "{stderr}");
}

#[test]
fn standalone_engine_runs_in_process() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n", retail_segmentation("3")));
    let local = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\npublish_views = [\"kpi_monthly_retention\"]\n", retail_segmentation("3")));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31", "--engine", "ballista-standalone"]);
    segvalue_ok(&["run", &local.job(), "--run-date", "2025-12-31"]);
    let q = |out: PathBuf| {
        duckdb(&format!(
            "SELECT count(*), sum(hash(customer_id, segment_id)) FROM {}",
            read_partition(&out, "customer_segments", "2025-12-31")
        ))
    };
    assert_eq!(q(j.out()), q(local.out()));
    let k = |out: PathBuf| duckdb(&format!("SELECT * FROM {} ORDER BY ALL", read_partition(&out, "kpi_monthly_retention", "2025-12-31")));
    assert_eq!(k(j.out()), k(local.out()));
}

/// The model functions of a data engineer's view run on the executors, not on the driver, and
/// give the published CLV to 1e-12.
#[test]
fn model_functions_run_on_the_executors() {
    let published = crate::functions::clv_run();
    let debug = [("RUST_LOG", "warn,segvalue=debug")];
    let mut cluster = Cluster::start_with_env(2, &debug);
    let dir = tempfile::tempdir().unwrap();
    let job = crate::functions::scoring_job(dir.path(), &published.out());
    let (code, _, driver_log) = segvalue_env(&["run", &job, "--run-date", "2025-12-31", "--engine", &cluster.engine()], &debug);
    assert_eq!(code, 0, "{driver_log}");
    crate::functions::assert_scored_equals_published(dir.path(), &published.out(), "ballista cluster");
    cluster.assert_alive();
    let evaluated = "model function evaluated";
    assert!(!driver_log.contains(evaluated), "the driver evaluated a model function:\n{driver_log}");
    // The same job on the embedded engine logs the evaluations in the process that runs them.
    let local = tempfile::tempdir().unwrap();
    let local_job = crate::functions::scoring_job(local.path(), &published.out());
    let (code, _, local_log) = segvalue_env(&["run", &local_job, "--run-date", "2025-12-31"], &debug);
    assert!(code == 0 && local_log.contains(evaluated), "{local_log}");
    let on_executors: usize = (0..2)
        .map(|i| std::fs::read_to_string(cluster.logs.join(format!("executor-{i}.err.log"))).unwrap_or_default().matches(evaluated).count())
        .sum();
    assert!(on_executors > 0, "no executor log shows a model function evaluated");
}

/// Past `fit_sample` the segmentation runs in the engine; on a cluster its queries, and the
/// `nearest_centroid` calls that assign every customer, run on the executors, and the tables
/// are the embedded engine's (distances to 1e-9: the preparation's sums are added in another
/// order).
#[test]
fn segmentation_past_fit_sample_runs_on_the_executors() {
    let debug = [("RUST_LOG", "warn,segvalue=debug")];
    let mut cluster = Cluster::start_with_env(2, &debug);
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("retail.toml");
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("jobs/retail.toml")).unwrap();
    let jobs_dir = Path::new(ROOT).join("jobs");
    std::fs::write(&job, shipped.replace("\"../", &format!("\"{}/../", jobs_dir.display())).replace("seed = 42", "seed = 42\nfit_sample = 1000")).unwrap();
    let run = |out: &Path, engine: &str| {
        let args = ["run", job.to_str().unwrap(), "--run-date", "2025-12-31", "--output-root", out.to_str().unwrap(), "--engine", engine];
        let (code, _, log) = segvalue_env(&args, &debug);
        assert_eq!(code, 0, "{log}");
        log
    };
    let (local, dist) = (tmp.path().join("local"), tmp.path().join("ballista"));
    let local_log = run(&local, "local");
    let driver_log = run(&dist, &cluster.engine());
    cluster.assert_alive();
    let engine_path = "the engine assigns every customer";
    assert!(local_log.contains(engine_path) && driver_log.contains(engine_path), "the segmentation did not take the engine path");
    let evaluated = "model function evaluated";
    assert!(local_log.contains(evaluated), "{local_log}");
    assert!(!driver_log.contains(evaluated), "the driver evaluated a model function:\n{driver_log}");
    let on_executors: usize = (0..2)
        .map(|i| std::fs::read_to_string(cluster.logs.join(format!("executor-{i}.err.log"))).unwrap_or_default().matches(evaluated).count())
        .sum();
    assert!(on_executors > 0, "no executor log shows a model function evaluated");
    let (l, d) = (read_partition(&local, "customer_segments", "2025-12-31"), read_partition(&dist, "customer_segments", "2025-12-31"));
    let cmp = duckdb(&format!(
        "SELECT count(*), count(*) FILTER (WHERE (a.segment_id, a.segment_name, a.rfm_r, a.rfm_f, a.rfm_m, a.rfm_cell, a.rfm_segment, \
         a.lifecycle_stage, a.value_tier) IS NOT DISTINCT FROM (b.segment_id, b.segment_name, b.rfm_r, b.rfm_f, b.rfm_m, b.rfm_cell, \
         b.rfm_segment, b.lifecycle_stage, b.value_tier) AND abs(a.distance_to_centroid - b.distance_to_centroid) < 1e-9), \
         (SELECT count(*) FROM {l}), (SELECT count(*) FROM {d}) FROM {l} a JOIN {d} b USING (customer_id)"
    ));
    let n = cmp[0][2].as_i64().unwrap();
    assert!(n > 1000 && cmp[0][3].as_i64() == Some(n) && cmp[0][0].as_i64() == Some(n), "{cmp:?}");
    assert_eq!(cmp[0][1].as_i64(), Some(n), "customer_segments differs between engines: {cmp:?}");
    for t in ["segment_summary", "segment_actions", "segment_transitions"] {
        let q = |root: &Path| {
            duckdb(&format!("SELECT * EXCLUDE (run_date) FROM {} ORDER BY ALL", read_partition(root, t, "2025-12-31")))
                .into_iter()
                .map(|r| r.into_iter().map(|v| v.as_f64().map_or(v.to_string(), |x| format!("{x:.9e}"))).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(q(&local), q(&dist), "{t} differs between engines");
    }
}
