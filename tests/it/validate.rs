//! `segvalue validate`: plans every view and names the file of any error.

use crate::common::*;

const BASE: &str = "SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id";

fn broken(name: &str, sql: &str) -> (i32, String, JobDir) {
    let j = JobDir::new(&[("base.sql", BASE), (name, sql)], "[output]\nroot = \"out\"\n");
    let (code, _, stderr) = segvalue(&["validate", &j.job(), "--run-date", "2025-12-31"]);
    (code, stderr, j)
}

#[test]
fn syntax_error_names_the_file() {
    let (code, err, j) = broken("bad.sql", "SELEC customer_id FROM base");
    assert_eq!(code, 2, "{err}");
    let file = j.dir.path().join("sql/bad.sql");
    assert!(err.contains(&format!("{}: SQL syntax error:", file.display())), "{err}");
}

#[test]
fn unknown_table_names_the_file_and_the_table() {
    let (code, err, j) = broken("bad.sql", "SELECT * FROM bse");
    assert_eq!(code, 2, "{err}");
    let file = j.dir.path().join("sql/bad.sql");
    assert!(
        err.contains(&format!("{}: unknown table 'bse' (sources: customers, orders, sessions; views: bad, base)", file.display())),
        "{err}"
    );
}

#[test]
fn unknown_column_names_the_file() {
    let (code, err, j) = broken("bad.sql", "SELECT nope FROM base");
    assert_eq!(code, 2, "{err}");
    let file = j.dir.path().join("sql/bad.sql");
    assert!(err.contains(&format!("{}: ", file.display())) && err.contains("nope"), "{err}");
}

#[test]
fn cycle_names_the_files() {
    let j = JobDir::new(
        &[("a.sql", "SELECT * FROM b"), ("b.sql", "SELECT * FROM a"), ("c.sql", BASE)],
        "[output]\nroot = \"out\"\n",
    );
    let (code, _, err) = segvalue(&["validate", &j.job()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("dependency cycle between views: {}/a.sql → b.sql → a.sql", j.dir.path().join("sql").display())), "{err}");
}

#[test]
fn views_print_in_dependency_order_whatever_their_file_names() {
    let j = JobDir::new(
        &[
            ("a_top.sql", "SELECT customer_id, n * 2 AS n2 FROM m_mid"),
            ("m_mid.sql", "SELECT customer_id, n FROM z_base"),
            ("z_base.sql", BASE),
        ],
        "[output]\nroot = \"out\"\n",
    );
    let stdout = segvalue_ok(&["validate", &j.job()]);
    let names: Vec<&str> = stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["z_base", "m_mid", "a_top"]);
    // Output columns are listed with their types (DataFusion reads Parquet strings as Utf8View).
    assert!(stdout.lines().next().unwrap().ends_with("customer_id Utf8View, n Int64"), "{stdout}");
}

#[test]
fn the_shipped_job_validates() {
    let job = format!("{ROOT}/jobs/retail.toml");
    let stdout = segvalue_ok(&["validate", &job, "--run-date", "2025-12-31"]);
    let names: Vec<&str> = stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap_or_else(|| panic!("{n} not in {names:?}"));
    assert!(pos("orders_clean") < pos("customer_rfm"));
    assert!(pos("customer_rfm") < pos("customer_features"));
    assert!(pos("orders_clean") < pos("kpi_monthly_retention"));
    // `check` passes on it too: three sources with a file each, the root takes a write.
    let out = tempfile::tempdir().unwrap();
    let root = out.path().join("out");
    let checked = segvalue_ok(&["check", &job, "--run-date", "2025-12-31", "--output-root", root.to_str().unwrap()]);
    assert_eq!(checked.lines().filter(|l| l.starts_with("source\t") && l.contains("\t1 files\t")).count(), 3, "{checked}");
    assert!(checked.contains(&format!("output\twritable\tfile://{}", root.display())), "{checked}");
    assert!(!root.exists(), "check left the output root behind");
}

/// The Airflow example compiles, and its tasks (a `check`, then the run) pass Airflow's
/// `{{ ds }}` as the run date.
/// Airflow itself is not installed: a stand-in `airflow` package records what the DAG file
/// builds.
#[test]
fn the_airflow_example_runs_a_dated_job_with_retries() {
    let python = python();
    let stub = tempfile::tempdir().unwrap();
    let pkg = stub.path().join("airflow");
    std::fs::create_dir_all(pkg.join("operators")).unwrap();
    std::fs::write(
        pkg.join("__init__.py"),
        "class DAG:\n    def __init__(self, **kw): self.kw = kw; self.tasks = []\n    \
         def __enter__(self): DAG.current = self; return self\n    def __exit__(self, *a): pass\n",
    )
    .unwrap();
    std::fs::write(pkg.join("operators/__init__.py"), "").unwrap();
    std::fs::write(
        pkg.join("operators/bash.py"),
        "from airflow import DAG\nclass BashOperator:\n    def __init__(self, **kw): self.kw = kw; DAG.current.tasks.append(self)\n    \
         def __rshift__(self, other): self.downstream = other; return other\n",
    )
    .unwrap();
    let script = format!(
        "import json, runpy, sys\nsys.path.insert(0, {stub:?})\nimport py_compile\npy_compile.compile({dag:?}, cfile={pyc:?}, doraise=True)\n\
         g = runpy.run_path({dag:?})\nd = g['dag']\n\
         print(json.dumps({{'retries': d.kw['default_args']['retries'], 'commands': [t.kw['bash_command'] for t in d.tasks]}}))",
        stub = stub.path().display().to_string(),
        dag = format!("{ROOT}/jobs/airflow_dag.py"),
        pyc = stub.path().join("airflow_dag.pyc").display().to_string(),
    );
    // -B and the explicit cfile: compiling the DAG must leave no __pycache__ in the repository.
    let out = std::process::Command::new(python).args(["-B", "-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["retries"], 3);
    let (check, run) = (v["commands"][0].as_str().unwrap(), v["commands"][1].as_str().unwrap());
    assert!(check.ends_with(" --log-format json check /opt/segvalue/jobs/retail.toml --run-date {{ ds }}"), "{check}");
    assert!(run.ends_with(" --log-format json run /opt/segvalue/jobs/retail.toml --run-date {{ ds }}"), "{run}");
    assert!(!std::path::Path::new(ROOT).join("jobs/__pycache__").exists(), "the test wrote jobs/__pycache__");
}
