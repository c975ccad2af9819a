//! Fixtures: temp dirs with generated data and job files, the binary, and outside readers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;


pub const BIN: &str = env!("CARGO_BIN_EXE_segvalue");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the binary with `args`; returns (exit code, stdout, stderr).
pub fn segvalue(args: &[&str]) -> (i32, String, String) {
    segvalue_env(args, &[])
}

/// [`segvalue`] with extra environment variables.
pub fn segvalue_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out: Output = Command::new(BIN).args(args).envs(env.iter().copied()).output().expect("segvalue runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`segvalue`] but fails the test, with stderr, unless the exit code is 0.
pub fn segvalue_ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = segvalue(args);
    assert_eq!(code, 0, "segvalue {args:?} failed:\n{stderr}");
    stdout
}

/// Runs a command that must fail with `code`, one error line and no panic; returns that line.
pub fn fails(args: &[&str], code: i32) -> String {
    let (got, _, stderr) = segvalue(args);
    assert_eq!(got, code, "segvalue {args:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{stderr}");
    errors[0].to_string()
}

/// A generated dataset (1,500 customers of the five personas) shared by the tests of one run
/// (generation is deterministic).
pub fn dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("personas"))
}

/// [`dataset`] drawn from one population (`--population single`): the CLV checks against
/// lifetimes, whose BG/NBD numerics fail (NaN) on the extreme drop-out prior a mixture of
/// personas fits.
pub fn single_dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("single"))
}

fn generated(population: &str) -> PathBuf {
    let dir = tempfile::Builder::new().prefix("segvalue-data-").tempdir().unwrap().keep();
    segvalue_ok(&["generate", "--out", dir.to_str().unwrap(), "--customers", "1500", "--seed", "11", "--population", population]);
    dir
}

/// Tables of a retail run with segmentation and `publish_views = ["kpi_monthly_retention"]`.
pub const RETAIL_TABLES: &[&str] = &[
    "customer_features",
    "customer_segments",
    "segment_summary",
    "segmentation_k_selection",
    "segmentation_prep",
    "segment_actions",
    "segment_rules",
    "segment_transitions",
    "kpi_monthly_retention",
];

/// The segmentation the integration tests run over the shipped retail views; `k` as written
/// in the job file (`3` or `{ min = 2, max = 6 }`).
pub fn retail_segmentation(k: &str) -> String {
    format!(
        "[segmentation]\nview = \"customer_features\"\nid = \"customer_id\"\n\
         features = [\"recency_days\", \"log_frequency\", \"log_monetary\", \"log_sessions_90d\", \"share_app\"]\n\
         k = {k}\nseed = 42\n"
    )
}

/// A job directory: `job.toml`, `sql/` with the given views, output under `out/`.
pub struct JobDir {
    pub dir: tempfile::TempDir,
}

impl JobDir {
    pub fn new(views: &[(&str, &str)], extra_toml: &str) -> JobDir {
        JobDir::with_sources(views, extra_toml, &dataset().display().to_string())
    }

    /// Like [`JobDir::new`] with the three sources under `data_root` (a path or a URL).
    pub fn with_sources(views: &[(&str, &str)], extra_toml: &str, data_root: &str) -> JobDir {
        let dir = tempfile::Builder::new().prefix("segvalue-job-").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sql")).unwrap();
        for (name, sql) in views {
            std::fs::write(dir.path().join("sql").join(name), sql).unwrap();
        }
        let toml = format!(
            r#"[job]
name = "test"
sql_dir = "sql"

[sources.customers]
url = "{d}/customers/"
format = "parquet"

[sources.orders]
url = "{d}/orders/"
format = "parquet"

[sources.sessions]
url = "{d}/sessions/"
format = "parquet"

{extra_toml}
"#,
            d = data_root
        );
        std::fs::write(dir.path().join("job.toml"), toml).unwrap();
        JobDir { dir }
    }

    /// The shipped retail views over the generated dataset.
    pub fn retail(extra_toml: &str) -> JobDir {
        JobDir::retail_at(&dataset().display().to_string(), extra_toml)
    }

    /// The shipped retail views over the sources under `data_root`.
    pub fn retail_at(data_root: &str, extra_toml: &str) -> JobDir {
        let j = JobDir::with_sources(&[], extra_toml, data_root);
        for e in std::fs::read_dir(Path::new(ROOT).join("sql/retail")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, j.dir.path().join("sql").join(p.file_name().unwrap())).unwrap();
        }
        j
    }

    pub fn job(&self) -> String {
        self.dir.path().join("job.toml").display().to_string()
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn write_view(&self, name: &str, sql: &str) {
        std::fs::write(self.dir.path().join("sql").join(name), sql).unwrap();
    }
}

/// The test venv's Python (DuckDB, pyarrow, scikit-learn, moto), from `scripts/test.sh`
/// (SEGVALUE_PYTHON); without it the test fails rather than skips.
pub fn python() -> String {
    std::env::var("SEGVALUE_PYTHON").expect("SEGVALUE_PYTHON is not set: run the tests with scripts/test.sh, which installs the peers")
}

/// Every file under `dir`, recursively, sorted; none if `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The names in one directory, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A glob over every run date's Parquet files of one published table.
pub fn table_glob(out: &Path, table: &str) -> String {
    format!("{}/{table}/*/*.parquet", out.display())
}

/// A glob over one run date's Parquet files of one published table.
pub fn partition_glob(out: &Path, table: &str, date: &str) -> String {
    format!("{}/{table}/run_date={date}/*.parquet", out.display())
}

/// DuckDB's `read_parquet` over one run date of one published table.
pub fn read_partition(out: &Path, table: &str, date: &str) -> String {
    format!("read_parquet('{}')", partition_glob(out, table, date))
}

/// A run's manifest.
pub fn manifest(out: &Path, date: &str) -> serde_json::Value {
    let path = out.join(format!("_manifests/run_date={date}/manifest.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A free TCP port on loopback for a server the test starts.
///
/// Ports come from 20000–31999, below Linux's ephemeral range (32768–60999): a port the kernel
/// chose (`bind(0)`) is free only until something binds it, and the suite's many outgoing
/// connections take ephemeral ports, so a server started a moment later could find it taken
/// (an executor that never started made a cluster test hang once). No port is handed out twice
/// by one test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id() % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Runs a DuckDB query in the test venv's Python and returns its rows as JSON values.
pub fn duckdb(sql: &str) -> Vec<Vec<serde_json::Value>> {
    let script = r#"
import json, sys, duckdb, datetime, decimal
def enc(v):
    if isinstance(v, (datetime.date, datetime.datetime)): return v.isoformat()
    if isinstance(v, decimal.Decimal): return float(v)
    return v
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
rows = con.sql(sys.argv[1]).fetchall()
print(json.dumps([[enc(v) for v in r] for r in rows]))
"#;
    let out = Command::new(python()).args(["-c", script, sql]).output().expect("python runs");
    assert!(out.status.success(), "duckdb query failed: {sql}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json rows")
}

/// lifetimes 0.11.3's fits and predictions (`tests/fixtures/lifetimes_bgnbd_gg.json`, made by
/// `scripts/lifetimes_fixture.sh`).
pub fn lifetimes_fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/lifetimes_bgnbd_gg.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// lifetimes' BG/NBD and Gamma-Gamma parameters fitted on CDNOW without a penalizer.
pub fn lifetimes_params(f: &serde_json::Value) -> (segvalue::clv::PurchaseParams, segvalue::clv::GammaGammaParams) {
    let fit = &f["fits"]["0.0"];
    let b = segvalue::clv::BgNbdParams {
        r: fit["bgnbd"]["r"].as_f64().unwrap(),
        alpha: fit["bgnbd"]["alpha"].as_f64().unwrap(),
        a: fit["bgnbd"]["a"].as_f64().unwrap(),
        b: fit["bgnbd"]["b"].as_f64().unwrap(),
        model: segvalue::clv::PurchaseModel::BgNbd,
    }
    .into();
    let g = segvalue::clv::GammaGammaParams {
        p: fit["gamma_gamma"]["p"].as_f64().unwrap(),
        q: fit["gamma_gamma"]["q"].as_f64().unwrap(),
        gamma: fit["gamma_gamma"]["v"].as_f64().unwrap(),
    };
    (b, g)
}

/// Relative difference |a − b| / |b|.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Every table `a`'s manifest lists for `date` equals `b`'s, row by row (`ORDER BY ALL`): the
/// same tables, columns and types, the same rows, numbers within 1e-9 (relative above 1) and
/// everything else exactly. Returns the rows compared.
pub fn assert_same_tables(a: &Path, b: &Path, date: &str, what: &str) -> usize {
    let tables = |root: &Path| -> Vec<String> {
        let mut t: Vec<String> = manifest(root, date)["tables"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap().to_string()).collect();
        t.sort();
        t
    };
    let names = tables(a);
    assert_eq!(names, tables(b), "{what}: the runs published different tables");
    let mut rows = 0;
    for t in &names {
        let schema = |root: &Path| duckdb(&format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {})", read_partition(root, t, date)));
        assert_eq!(schema(a), schema(b), "{what}: table {t}: columns differ");
        let read = |root: &Path| duckdb(&format!("SELECT * EXCLUDE (run_date) FROM {} ORDER BY ALL", read_partition(root, t, date)));
        let (x, y) = (read(a), read(b));
        assert_eq!(x.len(), y.len(), "{what}: table {t}: {} rows against {}", x.len(), y.len());
        for (i, (r, s)) in x.iter().zip(&y).enumerate() {
            let same = r.iter().zip(s).all(|(u, v)| match (u.as_f64(), v.as_f64()) {
                (Some(u), Some(v)) => (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1.0),
                _ => u == v,
            });
            assert!(same, "{what}: table {t} row {i} differs:\n  {r:?}\n  {s:?}");
        }
        rows += x.len();
    }
    rows
}

/// The run id a run logged as it started (None when it was killed before that).
pub fn logged_run_id(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "run started")
        .and_then(|v| v["run_id"].as_str().map(str::to_string))
}
