//! The distributed engine for real: one `segvalue scheduler` and two `segvalue executor`
//! processes on 127.0.0.1, the shipped job run through them, compared with the embedded engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
        // A lost executor is noticed after 10 s instead of Ballista's 180.
        let scheduler = Command::new(BIN)
            .args(["scheduler", "--bind", &format!("127.0.0.1:{port}"), "--executor-timeout-secs", "10"])
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
                .args(["--concurrent-tasks", "2", "--work-dir", work.to_str().unwrap(), "--heartbeat-secs", "2"])
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

    /// Kills process `i` (0 the scheduler, 1.. the executors) with SIGKILL.
    fn kill(&mut self, i: usize) {
        self.children[i].kill().unwrap();
        self.children[i].wait().unwrap();
    }

    /// Sends process `i` (0 the scheduler, 1.. the executors) signal `name` (e.g. "STOP").
    fn signal(&self, i: usize, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.children[i].id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// The last lines of every process's logs, for a failure message.
    fn log_tails(&self) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.logs).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!("--- {} ---\n{}", p.display(), lines[lines.len().saturating_sub(15)..].join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
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

const DATE: &str = "2025-12-31";

/// 20,000 generated customers as a warehouse hands them over: orders in 3 files, with copies of
/// orders in another file than their original (duplicate ids), negative and NaN amounts and
/// orders after the run date (the shipped job's drop rules); customers and sessions in 2 files.
fn dirty_sources() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("segvalue-dirty-").tempdir().unwrap().keep();
        let clean = dir.join("clean");
        segvalue_ok(&["generate", "--out", clean.to_str().unwrap(), "--customers", "20000", "--seed", "7"]);
        let from = |t: &str| format!("read_parquet('{}/{t}/*.parquet')", clean.display());
        let orders = from("orders");
        for i in 0..3 {
            std::fs::create_dir_all(dir.join("orders")).unwrap();
            duckdb(&format!(
                "COPY (
                    SELECT * FROM {orders} WHERE order_id % 3 = {i}
                    UNION ALL SELECT * FROM {orders} WHERE order_id % 3 = {next} AND order_id % 89 = 0
                    UNION ALL SELECT * REPLACE (order_id + 900000000 AS order_id, -amount AS amount) FROM {orders} WHERE order_id % 3 = {i} AND order_id % 97 = 0
                    UNION ALL SELECT * REPLACE (order_id + 910000000 AS order_id, 'NaN'::DOUBLE AS amount) FROM {orders} WHERE order_id % 3 = {i} AND order_id % 101 = 0
                    UNION ALL SELECT * REPLACE (order_id + 920000000 AS order_id, TIMESTAMPTZ '2026-03-01 10:00:00+00' AS order_ts) FROM {orders} WHERE order_id % 3 = {i} AND order_id % 103 = 0
                 ) TO '{}/orders/part-{i}.parquet' (FORMAT parquet)",
                dir.display(),
                next = (i + 1) % 3
            ));
        }
        for (t, key) in [("customers", "customer_id"), ("sessions", "customer_id, session_ts")] {
            std::fs::create_dir_all(dir.join(t)).unwrap();
            for i in 0..2 {
                duckdb(&format!("COPY (SELECT * FROM {} WHERE hash({key}) % 2 = {i}) TO '{}/{t}/part-{i}.parquet' (FORMAT parquet)", from(t), dir.display()));
            }
        }
        dir
    })
}

/// A query of the dirty job takes seconds; a cluster that lost its job fails the run at this.
const QUERY_TIMEOUT_SECS: u64 = 60;

/// The shipped job over [`dirty_sources`], written into `dir`.
fn dirty_job(dir: &Path) -> String {
    dirty_job_with_timeout(dir, QUERY_TIMEOUT_SECS)
}

/// [`dirty_job`] with `[engine] query_timeout_secs`.
fn dirty_job_with_timeout(dir: &Path, query_timeout_secs: u64) -> String {
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("jobs/retail.toml")).unwrap();
    assert!(!shipped.contains("[engine]"), "the shipped job now has an [engine] section: set query_timeout_secs in it");
    let job = dir.join("retail.toml");
    let text = shipped
        .replace("\"../data/sample/", &format!("\"{}/", dirty_sources().display()))
        .replace("\"../sql/retail\"", &format!("\"{ROOT}/sql/retail\""))
        + &format!("\n[engine]\nquery_timeout_secs = {query_timeout_secs}\n");
    std::fs::write(&job, text).unwrap();
    job.display().to_string()
}

fn run_args<'a>(job: &'a str, out: &'a str, engine: &'a str) -> [&'a str; 8] {
    ["run", job, "--run-date", DATE, "--output-root", out, "--engine", engine]
}

/// The shipped job over the dirty sources on the embedded engine, once per test run.
fn local_tables() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("segvalue-local-").tempdir().unwrap().keep();
        let (job, out) = (dirty_job(&dir), dir.join("out"));
        segvalue_ok(&run_args(&job, out.to_str().unwrap(), "local"));
        out
    })
}

#[test]
fn every_table_on_a_ballista_cluster_equals_the_embedded_engine_on_dirty_multi_file_sources() {
    let mut cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    let (job, dist) = (dirty_job(tmp.path()), tmp.path().join("ballista"));
    segvalue_ok(&run_args(&job, dist.to_str().unwrap(), &cluster.engine()));
    cluster.assert_alive();

    // The executors did the work: both wrote shuffle files for the run's stages.
    for w in &cluster.work_dirs {
        assert!(!files_under(w).is_empty(), "executor work dir {} is empty: the cluster did not run the job", w.display());
    }
    // The drop rules ran on the cluster and dropped what they drop locally.
    let (local, m) = (local_tables(), manifest(&dist, DATE));
    assert_eq!(m["quality"], manifest(local, DATE)["quality"], "quality rules differ between engines");
    let dropped: Vec<i64> = m["quality"].as_array().unwrap().iter().map(|r| r["rows"].as_i64().unwrap()).collect();
    assert!(dropped.iter().filter(|&&n| n > 0).count() >= 3, "the dirty rows were not dropped: {}", m["quality"]);
    let rows = assert_same_tables(local, &dist, DATE, "ballista cluster vs embedded engine");
    eprintln!("{rows} rows in {} tables equal between the engines", m["tables"].as_array().unwrap().len());
    assert_eq!(m["engine"], serde_json::json!(cluster.engine()), "the manifest names the engine the run used");
}

/// With covariates, each customer's parameters and covariance are expressions of their
/// covariates that the executors evaluate with the model functions: every table equals the
/// embedded engine's.
#[test]
fn covariates_on_a_ballista_cluster_equal_the_embedded_engine() {
    let data = tempfile::tempdir().unwrap();
    let j = crate::clv::covariate_job(data.path(), 20_000);
    let (local, dist) = (j.dir.path().join("local"), j.dir.path().join("ballista"));
    segvalue_ok(&run_args(&j.job(), local.to_str().unwrap(), "local"));
    let mut cluster = Cluster::start(2);
    segvalue_ok(&run_args(&j.job(), dist.to_str().unwrap(), &cluster.engine()));
    cluster.assert_alive();
    let m = manifest(&dist, DATE);
    assert!(m["clv"]["bgnbd"]["params"]["purchase_coefficient_alpha[paid_search]"].as_f64().unwrap() > 0.3, "{}", m["clv"]["bgnbd"]);
    assert_same_tables(&local, &dist, DATE, "covariates: ballista cluster vs embedded engine");
}

/// A run whose cluster lost a process either completed with the embedded engine's tables or
/// failed with exit 1, one error line (returned) and nothing published; it never hangs.
fn assert_completed_or_failed_cleanly(mut run: Child, cluster: &Cluster, err_log: &Path, out: &Path, what: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("{what}: the run hung for 240 s:\n{}\n{}", std::fs::read_to_string(err_log).unwrap_or_default(), cluster.log_tails());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(err_log).unwrap();
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    match status.code() {
        Some(0) => {
            let rows = assert_same_tables(local_tables(), out, DATE, what);
            eprintln!("{what}: the run completed; {rows} rows equal the embedded engine's");
            None
        }
        Some(1) => {
            let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
            assert_eq!(errors.len(), 1, "{what}: expected one error line:\n{stderr}");
            eprintln!("{what}: the run failed: {}", errors[0]);
            let published: Vec<PathBuf> = files_under(out).into_iter().filter(|p| !p.components().any(|c| c.as_os_str() == "_staging")).collect();
            assert!(published.is_empty(), "{what}: a failed run published {published:?}");
            Some(errors[0].to_string())
        }
        other => panic!("{what}: exit code {other:?}:\n{stderr}"),
    }
}

/// Starts the dirty job on `cluster` and waits until the cluster is running its queries: shuffle
/// files appear in an executor's work directory.
fn start_run_mid_query(cluster: &mut Cluster, dir: &Path) -> (Child, PathBuf, PathBuf) {
    start_run_mid_query_with_timeout(cluster, dir, QUERY_TIMEOUT_SECS)
}

/// [`start_run_mid_query`] with `[engine] query_timeout_secs`.
fn start_run_mid_query_with_timeout(cluster: &mut Cluster, dir: &Path, query_timeout_secs: u64) -> (Child, PathBuf, PathBuf) {
    let (job, out, err) = (dirty_job_with_timeout(dir, query_timeout_secs), dir.join("out"), dir.join("run.err"));
    let run = Command::new(BIN)
        .args(run_args(&job, out.to_str().unwrap(), &cluster.engine()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.work_dirs.iter().all(|w| files_under(w).is_empty()) {
        assert!(Instant::now() < deadline, "no executor started work in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every process is up, so the kill that follows is the only one lost.
    cluster.assert_alive();
    (run, out, err)
}

#[test]
fn an_executor_killed_mid_query_leaves_the_tables_right_or_nothing_published() {
    let mut cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    local_tables();
    let (run, out, err) = start_run_mid_query(&mut cluster, tmp.path());
    cluster.kill(2);
    if let Some(line) = assert_completed_or_failed_cleanly(run, &cluster, &err, &out, "executor killed mid-query") {
        // Ballista 55 lost the job (the run ended at query_timeout_secs), or the driver could
        // not fetch a result from the killed executor.
        assert!(line.contains("query_timeout_secs") || line.contains("lost the connection to the Ballista"), "not in plain words: {line}");
    }
}

#[test]
fn a_scheduler_killed_mid_query_leaves_the_tables_right_or_nothing_published() {
    let mut cluster = Cluster::start(2);
    let tmp = tempfile::tempdir().unwrap();
    local_tables();
    let (run, out, err) = start_run_mid_query(&mut cluster, tmp.path());
    cluster.kill(0);
    if let Some(line) = assert_completed_or_failed_cleanly(run, &cluster, &err, &out, "scheduler killed mid-query") {
        assert!(line.contains("lost the connection to the Ballista") || line.contains("cannot reach the scheduler"), "not in plain words: {line}");
    }
}

/// Ballista 55 can lose a job when an executor dies at the wrong moment, and then the client
/// waits for ever (see `engine::deadline`). A stopped executor (SIGSTOP: its tasks never finish,
/// and the scheduler notices nothing for its 10 s) stands for that job deterministically: the run
/// ends at `query_timeout_secs` with exit 1 and one line, its job cancelled on the scheduler.
#[test]
fn a_query_the_cluster_never_finishes_fails_the_run_at_query_timeout_secs_and_cancels_its_job() {
    let mut cluster = Cluster::start(1);
    let tmp = tempfile::tempdir().unwrap();
    local_tables();
    let (run, out, err) = start_run_mid_query_with_timeout(&mut cluster, tmp.path(), 3);
    cluster.signal(1, "STOP");
    let started = Instant::now();
    let line = assert_completed_or_failed_cleanly(run, &cluster, &err, &out, "executor stopped mid-query");
    let waited = started.elapsed();
    cluster.signal(1, "CONT");
    let line = line.expect("the run completed although its executor was stopped");
    assert!(line.contains("did not finish a query within 3 s") && line.contains("query_timeout_secs"), "{line}\n{}", cluster.log_tails());
    let job = line.split("job ").nth(1).and_then(|s| s.split(' ').next()).unwrap_or_else(|| panic!("no job named: {line}"));
    assert!(line.contains(&format!("job {job} cancelled")), "the job was not cancelled: {line}");
    // Well before the scheduler itself would give up (10 s to drop the executor + 10 s grace).
    assert!(waited < Duration::from_secs(15), "the run took {waited:?} to fail");
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
