//! Bad input never panics: random damage to the shipped job file and to its SQL views ends
//! in `segvalue validate` exiting 0 (the damage was harmless) or 2 with one line naming the
//! job file or the view (1 for a source location without data, as the preflight says),
//! never a panic (exit 101), another code or a multi-line error.
//! proptest shrinks a failing case to a small one and prints it; `PROPTEST_CASES` runs more.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::*;

const VIEWS: &[&str] = &[
    "orders_clean",
    "customer_rfm",
    "customer_channel_mix",
    "customer_engagement",
    "customer_features",
    "customer_summary",
    "kpi_monthly_retention",
];

/// Values a careless edit or a hostile file puts where a value goes.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\"\"".into()),
        Just("-1".into()),
        Just("0".into()),
        Just("99999999999999999999999".into()),
        Just("-9223372036854775808".into()),
        Just("1e308".into()),
        Just("nan".into()),
        Just("-inf".into()),
        Just("true".into()),
        Just("[]".into()),
        Just("[1, \"a\"]".into()),
        Just("{ a = 1 }".into()),
        Just("\"ü∂ƒ© 日本 \u{202e}\"".into()),
        Just("\"\\u0000\"".into()),
        Just("'''".into()),
        Just("[[x]]".into()),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
        "\\PC{0,12}",
    ]
}

/// One edit of a text, at a position given as a fraction of its length.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut the text there.
    Truncate(f64),
    /// Remove the line there.
    DeleteLine(f64),
    /// Replace the value of the `key = value` line there (or the line's last word).
    Replace(f64, String),
    /// Insert text there.
    Insert(f64, String),
    /// Repeat the line there (a duplicate key, a repeated clause).
    DuplicateLine(f64),
}

fn damage() -> impl Strategy<Value = Damage> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Damage::Truncate),
        at.clone().prop_map(Damage::DeleteLine),
        (at.clone(), nasty()).prop_map(|(a, v)| Damage::Replace(a, v)),
        (at.clone(), prop_oneof![nasty(), Just("\n[unknown_section]\n".into()), Just("\nx = 1\n".into()), Just(" ) ".into()), Just(" SELECT ".into()), Just(";".into()), Just("$no_such_param".into())]).prop_map(|(a, v)| Damage::Insert(a, v)),
        at.prop_map(Damage::DuplicateLine),
    ]
}

fn boundary(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, d: &Damage) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let line = |at: f64| ((lines.len() as f64 * at) as usize).min(lines.len() - 1);
    // An earlier damage may have cut the file to nothing: there is no line left to touch.
    if lines.is_empty() && !matches!(d, Damage::Insert(..)) {
        return text.to_string();
    }
    match d {
        Damage::Truncate(at) => text[..boundary(text, *at)].to_string(),
        Damage::DeleteLine(at) => {
            let n = line(*at);
            lines.iter().enumerate().filter(|(i, _)| *i != n).map(|(_, l)| *l).collect::<Vec<_>>().join("\n")
        }
        Damage::DuplicateLine(at) => {
            let n = line(*at);
            let mut out: Vec<&str> = lines.clone();
            out.insert(n, lines[n]);
            out.join("\n")
        }
        Damage::Replace(at, v) => {
            let n = line(*at);
            let replaced = match lines[n].split_once('=') {
                Some((k, _)) => format!("{k}= {v}"),
                None => match lines[n].rsplit_once(' ') {
                    Some((head, _)) => format!("{head} {v}"),
                    None => v.clone(),
                },
            };
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[n] = replaced;
            out.join("\n")
        }
        Damage::Insert(at, v) => {
            let i = boundary(text, *at);
            format!("{}{v}{}", &text[..i], &text[i..])
        }
    }
}

/// A file cut to nothing by the first damage takes the second without a panic in the test
/// itself (CI once drew `[Truncate(0.0), DuplicateLine(0.0)]`).
#[test]
fn damage_after_a_cut_to_nothing_leaves_an_empty_file() {
    for d in [Damage::DeleteLine(0.0), Damage::DuplicateLine(0.5), Damage::Replace(0.9, "x".into())] {
        let cut = apply("a = 1\nb = 2\n", &Damage::Truncate(0.0));
        assert_eq!(apply(&cut, &d), "", "{d:?}");
    }
    assert_eq!(apply("", &Damage::Insert(0.0, ";".into())), ";");
}

/// The shipped job with absolute paths (sources: the shipped sample; SQL: a copy in `dir`).
fn shipped_job(dir: &Path) -> String {
    let sql = dir.join("sql");
    std::fs::create_dir_all(&sql).unwrap();
    for v in VIEWS {
        std::fs::copy(Path::new(ROOT).join(format!("sql/retail/{v}.sql")), sql.join(format!("{v}.sql"))).unwrap();
    }
    std::fs::read_to_string(Path::new(ROOT).join("jobs/retail.toml"))
        .unwrap()
        .replace("\"../sql/retail\"", "\"sql\"")
        .replace("\"../data/", &format!("\"{ROOT}/data/"))
        .replace("\"../out\"", "\"out\"")
}

/// Validates the job in `dir`; Err(reason) when the outcome breaks the property.
fn validate_outcome(dir: &Path, names: &[&str]) -> Result<(), String> {
    let job = dir.join("job.toml");
    let (code, _, err) = segvalue(&["validate", job.to_str().unwrap(), "--run-date", "2025-12-31"]);
    let no_data = code == 1 && err.contains("source '") && err.contains("No files found");
    match code {
        0 => Ok(()),
        _ if code == 2 || no_data => {
            let err = err.trim();
            if err.lines().count() != 1 {
                return Err(format!("a multi-line error: {err}"));
            }
            if !names.iter().any(|n| err.contains(n)) {
                return Err(format!("the error names none of {names:?}: {err}"));
            }
            Ok(())
        }
        _ => Err(format!("exit {code}: {err}")),
    }
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(150);
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn a_damaged_job_file_is_exit_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped_job(dir.path());
    std::fs::write(dir.path().join("job.toml"), &text).unwrap();
    validate_outcome(dir.path(), &["job.toml"]).expect("the shipped job validates");
    // A source renamed in the job (CI drew `[sources.sessi1e308ons]`) is reported where it
    // breaks: the view file that reads the old name, with the sources the job now has.
    let names: Vec<String> = ["job.toml", "source '", "view '"].into_iter().map(String::from).chain(VIEWS.iter().map(|v| format!("{v}.sql: "))).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    runner()
        .run(&proptest::collection::vec(damage(), 1..3), |ds| {
            let damaged = ds.iter().fold(text.clone(), |t, d| apply(&t, d));
            std::fs::write(dir.path().join("job.toml"), &damaged).unwrap();
            validate_outcome(dir.path(), &names).map_err(|e| TestCaseError::fail(format!("{e}\n--- job.toml ---\n{damaged}")))
        })
        .unwrap();
}

/// A name quoted in an error stays on the error's line: a TOML multi-line string puts a
/// newline in a column name (CI once drew such a damage), which the message shows escaped.
#[test]
fn a_name_with_a_newline_is_quoted_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped_job(dir.path());
    let damaged = text.replace(r#"value_column = "spend_365d""#, "value_column = '''\nspend\n365d'''");
    assert_ne!(damaged, text, "the shipped job names its value column");
    let job = dir.path().join("job.toml");
    std::fs::write(&job, &damaged).unwrap();
    let (code, _, err) = segvalue(&["validate", job.to_str().unwrap(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(r"no column 'spend\n365d'"), "{err}");
}

#[test]
fn a_damaged_view_file_is_exit_2_with_one_line_naming_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped_job(dir.path());
    std::fs::write(dir.path().join("job.toml"), &text).unwrap();
    let names: Vec<String> = VIEWS.iter().map(|v| format!("'{v}'")).chain(VIEWS.iter().map(|v| format!("{v}.sql"))).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    runner()
        .run(&(0..VIEWS.len(), proptest::collection::vec(damage(), 1..3)), |(v, ds)| {
            let path = dir.path().join("sql").join(format!("{}.sql", VIEWS[v]));
            let original = std::fs::read_to_string(Path::new(ROOT).join(format!("sql/retail/{}.sql", VIEWS[v]))).unwrap();
            let damaged = ds.iter().fold(original.clone(), |t, d| apply(&t, d));
            std::fs::write(&path, &damaged).unwrap();
            let outcome = validate_outcome(dir.path(), &names);
            std::fs::write(&path, &original).unwrap();
            outcome.map_err(|e| TestCaseError::fail(format!("{e}\n--- {}.sql ---\n{damaged}", VIEWS[v])))
        })
        .unwrap();
}

/// Damage that validation lets through must not panic in a run either: a value of the job file
/// replaced, then the whole job run on the shipped sample. Exit 0, or 1/2 with one line and
/// nothing published.
#[test]
fn a_run_of_a_damaged_job_fails_in_one_line_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped_job(dir.path());
    let values = prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("-1".to_string()),
        Just("2".to_string()),
        Just("0.0".to_string()),
        Just("1.0".to_string()),
        Just("1e9".to_string()),
        Just("1000000000".to_string()),
        Just("9223372036854775807".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("\"\"".to_string()),
    ];
    let cases = std::env::var("PROPTEST_RUN_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(60);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    // The lines whose value is a number: where a wrong number passes validation's types.
    let lines: Vec<&str> = text.lines().collect();
    let numeric: Vec<f64> = (0..lines.len())
        .filter(|&i| lines[i].split_once('=').is_some_and(|(_, v)| v.trim().parse::<f64>().is_ok()))
        .map(|i| (i as f64 + 0.5) / lines.len() as f64)
        .collect();
    assert!(numeric.len() >= 10, "{numeric:?}");
    runner
        .run(&(proptest::sample::select(numeric), values), |(at, v)| {
            let damaged = apply(&text, &Damage::Replace(at, v));
            std::fs::write(dir.path().join("job.toml"), &damaged).unwrap();
            let out = dir.path().join("out");
            let _ = std::fs::remove_dir_all(&out);
            let (code, _, err) = segvalue(&["run", dir.path().join("job.toml").to_str().unwrap(), "--run-date", "2025-12-31", "-q"]);
            let bad = match code {
                0 => None,
                1 | 2 if err.trim().lines().count() != 1 => Some(format!("a multi-line error: {err}")),
                1 | 2 if files_under(&out).iter().any(|p| p.ends_with("_SUCCESS") || p.extension().is_some_and(|e| e == "parquet")) => {
                    Some(format!("exit {code}, yet something was published: {err}"))
                }
                1 | 2 => None,
                _ => Some(format!("exit {code}: {err}")),
            };
            match bad {
                Some(b) => Err(TestCaseError::fail(format!("{b}\n--- job.toml ---\n{damaged}"))),
                None => Ok(()),
            }
        })
        .unwrap();
}
