//! Across runs: saved models, aligned segment ids, score-only runs, transitions and drift.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn model(out: &Path, date: &str) -> Value {
    let text = std::fs::read_to_string(out.join(format!("_models/run_date={date}/model.json"))).expect("model saved");
    serde_json::from_str(&text).unwrap()
}

fn run(j: &JobDir, date: &str, extra: &[&str]) -> String {
    let job = j.job();
    let mut args = vec!["run", job.as_str(), "--run-date", date];
    args.extend_from_slice(extra);
    let (code, _, stderr) = segvalue(&args);
    assert_eq!(code, 0, "{stderr}");
    stderr
}

fn retail(k: &str, extra: &str) -> JobDir {
    JobDir::retail(&format!("{}{extra}\n[output]\nroot = \"out\"\n", retail_segmentation(k)))
}

fn distance(a: &[Value], b: &[Value]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).powi(2)).sum::<f64>().sqrt()
}

/// Day 2 refits with one cluster more: the three old clusters keep their ids (each new
/// centroid with an old id is nearer to that id's old centroid than to any other), the
/// extra one gets the next free id.
#[test]
fn refit_keeps_ids_of_matching_clusters_and_gives_new_ones_fresh_ids() {
    let j3 = retail("3", "");
    run(&j3, "2025-12-30", &[]);
    // The same output root, now with k = 4.
    std::fs::write(j3.dir.path().join("job.toml"), std::fs::read_to_string(j3.job()).unwrap().replace("k = 3", "k = 4")).unwrap();
    run(&j3, "2025-12-31", &[]);

    let m = manifest(&j3.out(), "2025-12-31");
    let used = &m["segmentation"]["model"];
    assert_eq!(used["mode"], "refit");
    assert_eq!(used["model_run_date"], "2025-12-30");
    assert_eq!(used["fresh"], serde_json::json!([3]));
    assert_eq!(used["vanished"], serde_json::json!([]));
    let (old, new) = (model(&j3.out(), "2025-12-30"), model(&j3.out(), "2025-12-31"));
    let old_segments = old["segmentation"]["segments"].as_array().unwrap();
    let new_segments = new["segmentation"]["segments"].as_array().unwrap();
    assert_eq!(new_segments.len(), 4);
    // Centroids of the two saved models are in their own prepared spaces; the original units
    // in the manifests are comparable.
    let centroids = |date: &str| -> Vec<Vec<Value>> {
        manifest(&j3.out(), date)["segmentation"]["centroids"].as_array().unwrap().iter().map(|c| c.as_array().unwrap().clone()).collect()
    };
    let (c_old, c_new) = (centroids("2025-12-30"), centroids("2025-12-31"));
    for (i, s) in new_segments.iter().enumerate() {
        let id = s["id"].as_i64().unwrap();
        if id == 3 {
            continue;
        }
        let same = old_segments.iter().position(|o| o["id"].as_i64() == Some(id)).unwrap();
        let d_same = distance(&c_new[i], &c_old[same]);
        for (o, c) in c_old.iter().enumerate().filter(|(o, _)| *o != same) {
            assert!(d_same <= distance(&c_new[i], c), "id {id} is nearer to old segment {o}");
        }
        assert_eq!(s["name"], old_segments[same]["name"], "matched segment {id} keeps its name");
    }
}

/// A score run on the training date assigns every customer as the refit did.
#[test]
fn score_run_reproduces_the_refit_and_transitions_add_up() {
    let j = retail("4", "");
    run(&j, "2025-12-30", &[]);
    run(&j, "2025-12-31", &[]);
    let segments = |out: &Path| {
        duckdb(&format!(
            "SELECT customer_id, segment_id, segment_name FROM read_parquet('{}/customer_segments/run_date=2025-12-31/*.parquet') ORDER BY 1",
            out.display()
        ))
    };
    let refit = segments(&j.out());

    // Transitions from 12-30 to 12-31 reconcile with both runs' customer counts.
    let t = format!("read_parquet('{}/segment_transitions/run_date=2025-12-31/*.parquet')", j.out().display());
    let seg = |d: &str| format!("read_parquet('{}/customer_segments/run_date={d}/*.parquet')", j.out().display());
    let checks = duckdb(&format!(
        "SELECT \
           (SELECT count(*) FROM (SELECT from_segment, sum(customers) n FROM {t} WHERE from_segment IS NOT NULL GROUP BY 1) x \
              FULL JOIN (SELECT CAST(segment_id AS VARCHAR) s, count(*) n FROM {p} GROUP BY 1) y ON x.from_segment = y.s \
              WHERE x.n IS DISTINCT FROM y.n), \
           (SELECT count(*) FROM (SELECT to_segment, sum(customers) n FROM {t} WHERE to_segment IS NOT NULL GROUP BY 1) x \
              FULL JOIN (SELECT CAST(segment_id AS VARCHAR) s, count(*) n FROM {c} GROUP BY 1) y ON x.to_segment = y.s \
              WHERE x.n IS DISTINCT FROM y.n), \
           (SELECT sum(customers) FROM {t}), \
           (SELECT count(*) FROM (SELECT customer_id FROM {p} UNION SELECT customer_id FROM {c})), \
           (SELECT max(abs(s - 1)) FROM (SELECT sum(share_of_from) s FROM {t} GROUP BY from_segment))",
        p = seg("2025-12-30"),
        c = seg("2025-12-31"),
    ));
    let row = &checks[0];
    assert_eq!(row[0].as_i64(), Some(0), "from counts differ from the previous run's segments");
    assert_eq!(row[1].as_i64(), Some(0), "to counts differ from this run's segments");
    assert_eq!(row[2].as_i64(), row[3].as_i64(), "transitions do not cover every customer once");
    assert!(row[4].as_f64().unwrap() < 1e-9, "shares of a from segment do not sum to 1");

    // Score with the model saved on 12-31, for 12-31.
    let job = std::fs::read_to_string(j.job()).unwrap().replace("seed = 42", "seed = 42\nmode = \"score\"\nmodel_from = \"2025-12-31\"");
    std::fs::write(j.dir.path().join("job.toml"), job).unwrap();
    run(&j, "2025-12-31", &[]);
    assert_eq!(segments(&j.out()), refit, "score run assigns differently from the refit");
    let m = manifest(&j.out(), "2025-12-31");
    assert_eq!(m["segmentation"]["model"]["mode"], "score");
    assert_eq!(m["segmentation"]["model"]["model_run_date"], "2025-12-31");
    // The model a score run saves still points at the training date.
    assert_eq!(model(&j.out(), "2025-12-31")["segmentation"]["trained_on"], "2025-12-31");

    // The next day scores with the day before's model: its ids and names, nothing refitted.
    // `check` finds that model first.
    let checked = segvalue_ok(&["check", &j.job(), "--run-date", "2026-01-01"]);
    assert!(checked.contains("model\tsegmentation\tsaved 2025-12-31"), "{checked}");
    let log = run(&j, "2026-01-01", &[]);
    assert!(log.contains("segmentation scored with the saved model k=") && log.contains("model=2025-12-31"), "{log}");
    assert!(!log.contains("segmentation fitted"), "{log}");
    let m = manifest(&j.out(), "2026-01-01");
    assert_eq!(m["segmentation"]["model"]["model_run_date"], "2025-12-31");
    let names = duckdb(&format!(
        "SELECT DISTINCT segment_id, segment_name FROM read_parquet('{}/customer_segments/run_date=2026-01-01/*.parquet') ORDER BY 1",
        j.out().display()
    ));
    let trained = duckdb(&format!(
        "SELECT DISTINCT segment_id, segment_name FROM read_parquet('{}/customer_segments/run_date=2025-12-31/*.parquet') ORDER BY 1",
        j.out().display()
    ));
    assert_eq!(names, trained);
}

#[test]
fn score_without_a_saved_model_is_a_clear_error() {
    let j = retail("3", "mode = \"score\"\n");
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(line.contains("no saved model") && line.contains("_models"), "{line}");
    assert!(!j.out().join("customer_segments").exists());
    // The preflight finds it before anything is planned, and so does `check`.
    let (_, _, stderr) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert!(!stderr.contains("stage=\"plan\""), "{stderr}");
    let message = |l: &str| l.split(" ERROR ").nth(1).unwrap_or_default().to_string();
    assert_eq!(message(&fails(&["check", &j.job(), "--run-date", "2025-12-31"], 2)), message(&line));
}

#[test]
fn score_with_other_features_is_a_clear_error() {
    let j = retail("3", "");
    run(&j, "2025-12-30", &[]);
    let job = std::fs::read_to_string(j.job())
        .unwrap()
        .replace("\"share_app\"]", "]")
        .replace("seed = 42", "seed = 42\nmode = \"score\"");
    std::fs::write(j.dir.path().join("job.toml"), job).unwrap();
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(line.contains("2025-12-30") && line.contains("share_app"), "{line}");
}

/// Spending three times as much moves log_monetary far from the training deciles.
#[test]
fn refit_after_a_shift_in_behaviour_reports_drift() {
    let j = retail("3", "");
    let clean = std::fs::read_to_string(Path::new(ROOT).join("sql/retail/orders_clean.sql")).unwrap();
    j.write_view("orders_clean.sql", &clean.replace("    amount,", "    amount * $spend_factor AS amount,"));
    let job = std::fs::read_to_string(j.job()).unwrap();
    std::fs::write(j.dir.path().join("job.toml"), format!("{job}\n[params]\nspend_factor = 1.0\n")).unwrap();
    run(&j, "2025-12-30", &[]);
    let stable = manifest(&j.out(), "2025-12-30");
    assert!(stable["segmentation"]["drift"].is_null(), "no model before the first run");
    let stderr = run(&j, "2025-12-31", &["--param", "spend_factor=3.0"]);
    let drift = &manifest(&j.out(), "2025-12-31")["segmentation"]["drift"];
    let psi = |f: &str| {
        drift["features"].as_array().unwrap().iter().find(|x| x["feature"] == f).unwrap()["psi"].as_f64().unwrap()
    };
    assert!(psi("log_monetary") > 0.25, "{drift}");
    assert!(psi("log_sessions_90d") < 0.1, "{drift}");
    assert!(stderr.contains("drifted") && stderr.contains("log_monetary"), "{stderr}");
}

/// `[clv] mode = "score"` predicts with the saved parameters instead of fitting.
#[test]
fn clv_score_run_uses_the_saved_parameters() {
    let clv = "\n[clv]\nview = \"customer_summary\"\nid = \"customer_id\"\ntime_unit = \"weeks\"\n";
    let j = JobDir::retail(&format!("{clv}\n[output]\nroot = \"out\"\n"));
    run(&j, "2025-12-30", &[]);
    let saved = model(&j.out(), "2025-12-30")["clv"].clone();
    assert!(saved["bgnbd"]["r"].as_f64().unwrap() > 0.0, "{saved}");
    let job = std::fs::read_to_string(j.job()).unwrap().replace("time_unit = \"weeks\"", "time_unit = \"weeks\"\nmode = \"score\"");
    std::fs::write(j.dir.path().join("job.toml"), job).unwrap();
    let stderr = run(&j, "2025-12-31", &[]);
    assert!(stderr.contains("CLV parameters from the saved model"), "{stderr}");
    let m = manifest(&j.out(), "2025-12-31");
    for p in ["r", "alpha", "a", "b"] {
        assert_eq!(m["clv"]["bgnbd"]["params"][p], saved["bgnbd"][p], "{p}");
    }
    assert_eq!(m["clv"]["bgnbd"]["iterations"], 0);
    assert_eq!(model(&j.out(), "2025-12-31")["clv"]["trained_on"], "2025-12-30");

    // The saved Laplace covariance carries the parameters' uncertainty into the score run's
    // intervals: its standard errors are the saved model's, and nothing is left out.
    let cov = &saved["log_covariance"];
    assert_eq!(cov.as_array().map(Vec::len), Some(4), "{saved}");
    let se_r = saved["bgnbd"]["r"].as_f64().unwrap() * cov[0][0].as_f64().unwrap().sqrt();
    assert_eq!(m["clv"]["bgnbd"]["std_errors"]["r"].as_f64(), Some(se_r), "{}", m["clv"]["bgnbd"]);
    assert!(!stderr.contains("intervals carry the purchase process only"), "{stderr}");
    // A model saved before there were intervals has no covariance: the run says so and its
    // intervals carry the purchase process alone.
    let path = j.out().join("_models/run_date=2025-12-30/model.json");
    let mut old = model(&j.out(), "2025-12-30");
    old["clv"].as_object_mut().unwrap().remove("log_covariance");
    std::fs::write(&path, serde_json::to_string(&old).unwrap()).unwrap();
    let stderr = run(&j, "2025-12-31", &[]);
    assert!(stderr.contains("BG/NBD intervals carry the purchase process only: the saved model has no covariance"), "{stderr}");
    let m = manifest(&j.out(), "2025-12-31");
    assert!(m["clv"]["bgnbd"].get("std_errors").is_none(), "{}", m["clv"]["bgnbd"]);
    let intervals = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE purchases_p90 IS NULL OR purchases_p10 > purchases_p90), count(*) FROM {}",
        read_partition(&j.out(), "customer_clv", "2025-12-31")
    ));
    assert_eq!(intervals[0][0].as_i64(), Some(0), "{intervals:?}");
}

/// With pseudonyms on, transitions join this run's customers to the previous run's published
/// pseudonyms: everyone present on both days is a mover or a stayer, not gone and new.
#[test]
fn transitions_join_on_pseudonyms() {
    let j = retail("3", "\n[privacy]\npseudonymize_ids = true\n");
    for date in ["2025-12-30", "2025-12-31"] {
        let job = j.job();
        let (code, _, stderr) =
            segvalue_env(&["run", &job, "--run-date", date], &[("SEGVALUE_PSEUDONYM_KEY", "transitions-test-key")]);
        assert_eq!(code, 0, "{stderr}");
    }
    let seg = |d: &str| format!("read_parquet('{}/customer_segments/run_date={d}/*.parquet')", j.out().display());
    let t = format!("read_parquet('{}/segment_transitions/run_date=2025-12-31/*.parquet')", j.out().display());
    let row = &duckdb(&format!(
        "SELECT (SELECT sum(customers) FROM {t} WHERE segmentation = 'cluster' AND from_segment IS NOT NULL AND to_segment IS NOT NULL), \
                (SELECT count(*) FROM {a} JOIN {b} USING (customer_id)), \
                (SELECT min(length(customer_id)) FROM {b})",
        a = seg("2025-12-30"),
        b = seg("2025-12-31"),
    ))[0];
    assert_eq!(row[2].as_i64(), Some(64), "ids are not pseudonyms");
    assert!(row[1].as_i64().unwrap() > 1000);
    assert_eq!(row[0].as_i64(), row[1].as_i64(), "customers in both runs are not matched");
}
