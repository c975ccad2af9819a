//! Segmentation through the binary, checked against scikit-learn and DuckDB.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::common::*;

/// True number of blobs in [`blobs`].
const TRUE_K: usize = 5;

/// `n` points around five well-separated centres in 4 dimensions, some features NULL when
/// `nulls` is set (every 50th row's x2).
fn blobs(dir: &Path, n: usize, nulls: bool) {
    let centres = [[0.0, 0.0, 0.0, 0.0], [8.0, 0.0, 0.0, 2.0], [0.0, 8.0, 1.0, 0.0], [8.0, 8.0, 8.0, 8.0], [-6.0, 3.0, -7.0, 5.0]];
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(2024);
    let noise = Normal::new(0.0, 1.0).unwrap();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n); 4];
    let mut channel = Vec::with_capacity(n);
    for i in 0..n {
        let c = &centres[rng.gen_range(0..TRUE_K)];
        for (j, col) in cols.iter_mut().enumerate() {
            let v = c[j] + noise.sample(&mut rng);
            col.push(if nulls && j == 1 && i % 50 == 0 { None } else { Some(v) });
        }
        channel.push(["web", "app", "store"][i % 3]);
    }
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    let mut arrays: Vec<Arc<dyn datafusion::arrow::array::Array>> =
        vec![Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("B{i:06}"))))];
    for (j, col) in cols.into_iter().enumerate() {
        fields.push(Field::new(format!("x{}", j + 1), DataType::Float64, true));
        arrays.push(Arc::new(Float64Array::from(col)));
    }
    fields.push(Field::new("channel", DataType::Utf8, false));
    arrays.push(Arc::new(StringArray::from(channel)));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A job clustering the blobs with `segmentation` (the keys after view/id/features).
fn blobs_job(n: usize, nulls: bool, segmentation: &str) -> JobDir {
    let j = JobDir::new(&[("points.sql", "SELECT * FROM blobs")], "");
    let data = j.dir.path().join("blobs");
    blobs(&data, n, nulls);
    let toml = std::fs::read_to_string(j.job()).unwrap();
    std::fs::write(
        j.job(),
        format!(
            "{toml}\n[sources.blobs]\nurl = \"{}/\"\nformat = \"parquet\"\n\n[segmentation]\nview = \"points\"\nid = \"customer_id\"\n\
             features = [\"x1\", \"x2\", \"x3\", \"x4\"]\n{segmentation}\n\n[output]\nroot = \"out\"\n",
            data.display()
        ),
    )
    .unwrap();
    j
}

fn table(j: &JobDir, t: &str) -> String {
    format!("{}/{t}/run_date=2025-12-31/part-00000.parquet", j.out().display())
}

fn python_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(crate::common::python()).args(args).output().expect("python runs");
    assert!(out.status.success(), "{args:?}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn rel_eq(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300)
}

#[test]
fn separated_blobs_choose_the_true_k_and_metrics_equal_sklearn() {
    let j = blobs_job(3000, false, "scale = \"none\"\nk = { min = 2, max = 12 }\nn_init = 4\nseed = 5");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let rows = duckdb(&format!(
        "SELECT k, inertia, silhouette, calinski_harabasz, davies_bouldin, chosen FROM read_parquet('{}') ORDER BY k",
        table(&j, "segmentation_k_selection")
    ));
    assert_eq!(rows.len(), 11, "{rows:?}");
    let chosen: Vec<&Vec<serde_json::Value>> = rows.iter().filter(|r| r[5] == true).collect();
    assert_eq!(chosen.len(), 1);
    let c = chosen[0];
    assert_eq!(c[0].as_u64(), Some(TRUE_K as u64), "{rows:?}");
    // The highest silhouette is the chosen one.
    let best = rows.iter().map(|r| r[2].as_f64().unwrap()).fold(f64::MIN, f64::max);
    assert_eq!(c[2].as_f64(), Some(best));

    // scikit-learn on the published features and labels (n = 3000 <= silhouette_sample: exact).
    let sk = python_json(&[
        &format!("{ROOT}/tests/support/sklearn_check.py"),
        &table(&j, "customer_features"),
        &table(&j, "customer_segments"),
        "customer_id",
        "5",
        "x1",
        "x2",
        "x3",
        "x4",
    ]);
    assert_eq!(sk["rows"], 3000);
    for (i, m) in [(2, "silhouette"), (3, "calinski_harabasz"), (4, "davies_bouldin")] {
        let (ours, theirs) = (c[i].as_f64().unwrap(), sk[m].as_f64().unwrap());
        assert!(rel_eq(ours, theirs, 1e-6), "{m}: segvalue {ours} vs scikit-learn {theirs}");
    }
    // Our K-means lands at least as low as scikit-learn's (within 0.1 %).
    let (ours, theirs) = (c[1].as_f64().unwrap(), sk["sklearn_inertia"].as_f64().unwrap());
    assert!(ours <= theirs * 1.001, "inertia: segvalue {ours} vs scikit-learn {theirs}");
    // The true k refits the same on every bootstrap resample, and its smallest segment's share
    // is what the published segments say.
    let stab = duckdb(&format!(
        "SELECT stability, min_segment_share FROM read_parquet('{}') WHERE chosen",
        table(&j, "segmentation_k_selection")
    ));
    assert!(stab[0][0].as_f64().unwrap() > 0.99, "{stab:?}");
    let smallest = duckdb(&format!(
        "SELECT min(n) / sum(n) FROM (SELECT count(*)::DOUBLE AS n FROM read_parquet('{}') GROUP BY segment_id)",
        table(&j, "customer_segments")
    ));
    assert!(rel_eq(stab[0][1].as_f64().unwrap(), smallest[0][0].as_f64().unwrap(), 1e-12), "{stab:?} vs {smallest:?}");
}

/// Ward's linkage against scikit-learn's `AgglomerativeClustering(linkage="ward")` on the same
/// rows: the same partition (adjusted Rand index 1), with more clusters than blobs so that the
/// order of the merges inside a blob decides the answer.
#[test]
fn hierarchical_labels_equal_sklearn_ward() {
    let j = blobs_job(2000, false, "scale = \"none\"\nalgorithm = \"hierarchical\"\nk = 9");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let script = "import sys, json, duckdb\n\
                  from sklearn.cluster import AgglomerativeClustering\n\
                  from sklearn.metrics import adjusted_rand_score\n\
                  rows = duckdb.sql(f\"SELECT b.x1, b.x2, b.x3, b.x4, s.segment_id FROM read_parquet('{sys.argv[1]}') b \
                  JOIN read_parquet('{sys.argv[2]}') s USING (customer_id) ORDER BY customer_id\").fetchall()\n\
                  X = [r[:4] for r in rows]\n\
                  sk = AgglomerativeClustering(n_clusters=9, linkage='ward').fit_predict(X)\n\
                  print(json.dumps({'rows': len(rows), 'ari': adjusted_rand_score(sk, [r[4] for r in rows])}))";
    let source = j.dir.path().join("blobs/part-0.parquet");
    let sk = python_json(&["-c", script, source.to_str().unwrap(), &table(&j, "customer_segments")]);
    assert_eq!(sk["rows"], 2000);
    assert_eq!(sk["ari"].as_f64(), Some(1.0), "segvalue's Ward partition differs from scikit-learn's: {sk}");
}

/// Each published segment rule, applied by DuckDB to the published features and segments,
/// gives the stated precision, coverage and count.
#[test]
fn segment_rules_applied_by_duckdb_reproduce_their_precision_and_coverage() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("{ min = 2, max = 6 }")));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let rules = duckdb(&format!(
        "SELECT segment_id, rule, precision, coverage, customers_matching, conditions FROM read_parquet('{}') ORDER BY segment_id",
        table(&j, "segment_rules")
    ));
    let segments = duckdb(&format!("SELECT count(DISTINCT segment_id) FROM read_parquet('{}')", table(&j, "customer_segments")));
    assert_eq!(rules.len() as i64, segments[0][0].as_i64().unwrap(), "one rule per segment: {rules:?}");
    for r in &rules {
        let (id, rule) = (r[0].as_i64().unwrap(), r[1].as_str().unwrap());
        assert!(r[5].as_i64().unwrap() <= 3, "a rule of more than three conditions: {rule}");
        let got = duckdb(&format!(
            "SELECT count(*) FILTER (WHERE {rule}), count(*) FILTER (WHERE ({rule}) AND segment_id = {id}), count(*) FILTER (WHERE segment_id = {id}) \
             FROM read_parquet('{}') f JOIN read_parquet('{}') s USING (customer_id)",
            table(&j, "customer_features"),
            table(&j, "customer_segments")
        ));
        let (matching, hits, members) = (got[0][0].as_f64().unwrap(), got[0][1].as_f64().unwrap(), got[0][2].as_f64().unwrap());
        assert_eq!(r[4].as_f64().unwrap(), matching, "segment {id}: {rule}");
        assert!(rel_eq(r[2].as_f64().unwrap(), hits / matching, 1e-12), "segment {id} precision: {rule} {r:?} vs {hits}/{matching}");
        assert!(rel_eq(r[3].as_f64().unwrap(), hits / members, 1e-12), "segment {id} coverage: {rule} {r:?} vs {hits}/{members}");
        eprintln!("segment {id}: {rule} (precision {:.3}, coverage {:.3})", hits / matching, hits / members);
    }
}

/// The adjusted Rand index behind `stability` against scikit-learn's `adjusted_rand_score`, on
/// labelings from identical to independent, with label values that differ between the sides.
#[test]
fn adjusted_rand_index_equals_sklearn() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut pairs: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (n, ka, kb, agree) in [(500, 4, 4, 1.0), (500, 4, 4, 0.9), (1000, 3, 6, 0.6), (2000, 8, 5, 0.0), (50, 1, 3, 0.5), (300, 5, 5, 0.99)] {
        let a: Vec<usize> = (0..n).map(|_| rng.gen_range(0..ka)).collect();
        // b relabels a (values shifted, so equal partitions have different labels) or draws anew.
        let b: Vec<usize> = a.iter().map(|&l| if rng.r#gen::<f64>() < agree { (l * 7 + 3) % (ka * 7 + 3) } else { rng.gen_range(0..kb) }).collect();
        pairs.push((a, b));
    }
    let input = serde_json::to_string(&pairs).unwrap();
    let script = "import json, sys\nfrom sklearn.metrics import adjusted_rand_score as ari\nprint(json.dumps([ari(a, b) for a, b in json.loads(sys.stdin.read())]))";
    let mut child = std::process::Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).expect("scikit-learn's values");
    for ((a, b), want) in pairs.iter().zip(theirs) {
        let got = segvalue::segment::adjusted_rand_score(a, b).unwrap();
        assert!((got - want).abs() <= 1e-12, "n = {}: segvalue {got} vs scikit-learn {want}", a.len());
    }
}

#[test]
fn minibatch_gmm_and_dbscan_find_the_blobs() {
    for (algorithm, extra) in [
        ("minibatch_kmeans", "k = 5\nbatch_size = 256"),
        ("gmm", "k = 5\nn_init = 2"),
        ("dbscan", "eps = 1.5\nmin_points = 10"),
        ("hierarchical", "k = 5"),
        // The linkage on a sample; the engine assigns the other rows to the nearest mean.
        ("hierarchical", "k = 5\nfit_sample = 500"),
    ] {
        let j = blobs_job(2000, false, &format!("scale = \"none\"\nalgorithm = \"{algorithm}\"\n{extra}"));
        segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
        // Five segments (besides DBSCAN noise) holding at least 95 % of the rows.
        let sizes = duckdb(&format!(
            "SELECT segment_id, count(*) FROM read_parquet('{}') WHERE segment_id >= 0 GROUP BY 1 ORDER BY 2 DESC",
            table(&j, "customer_segments")
        ));
        assert_eq!(sizes.len(), TRUE_K, "{algorithm}: {sizes:?}");
        let clustered: i64 = sizes.iter().map(|r| r[1].as_i64().unwrap()).sum();
        assert!(clustered >= 1900, "{algorithm}: only {clustered} of 2000 rows clustered");
        let names = duckdb(&format!("SELECT count(DISTINCT segment_name) FROM read_parquet('{}')", table(&j, "segment_summary")));
        assert_eq!(names[0][0].as_i64(), duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", table(&j, "segment_summary")))[0][0].as_i64());
    }
}

#[test]
fn imputation_fills_nulls_and_the_manifest_counts_them() {
    let j = blobs_job(1000, true, "k = 5\nimpute = \"median\"\ncategorical = [\"channel\"]");
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let nulls = duckdb(&format!("SELECT count(*) FROM read_parquet('{}') WHERE x2 IS NULL", table(&j, "customer_features")));
    assert_eq!(nulls[0][0].as_i64(), Some(20));
    let manifest = manifest(&j.out(), "2025-12-31");
    assert_eq!(manifest["segmentation"]["nulls_filled"]["x2"], 20);
    assert_eq!(manifest["segmentation"]["nulls_filled"]["x1"], 0);
    // The fill value is the median of the present values, as DuckDB computes it.
    let prep = duckdb(&format!(
        "SELECT p.fill_value, p.nulls_filled, (SELECT median(x2) FROM read_parquet('{}')) FROM read_parquet('{}') p WHERE p.column = 'x2'",
        table(&j, "customer_features"),
        table(&j, "segmentation_prep")
    ));
    assert!(rel_eq(prep[0][0].as_f64().unwrap(), prep[0][2].as_f64().unwrap(), 1e-12), "{prep:?}");
    // One-hot columns: one per channel, in sorted order.
    let onehot = duckdb(&format!(
        "SELECT string_agg(category, ',' ORDER BY category) FROM read_parquet('{}') WHERE source_column = 'channel'",
        table(&j, "segmentation_prep")
    ));
    assert_eq!(onehot[0][0], "app,store,web");
}

#[test]
fn nulls_without_imputation_name_the_view_and_column() {
    let j = blobs_job(200, true, "k = 3");
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(line.contains("view 'points': feature 'x2' has 4 null value(s); set an imputation"), "{line}");
    assert!(!j.out().join("customer_segments").exists());
}

#[test]
fn bad_segmentation_configs_are_clear_errors() {
    let cases = [
        ("k = 3\nalgorithm = \"kmedoids\"", 2, "segmentation.algorithm: unknown algorithm 'kmedoids' (expected kmeans, minibatch_kmeans, dbscan, gmm or hierarchical)"),
        ("k = 3\nscale = \"l2\"", 2, "segmentation.scale: unknown scale 'l2'"),
        ("k = 3\n[segmentation.columns.x9]\nimpute = \"mean\"", 2, "segmentation.columns.x9: 'x9' is not in features"),
        ("algorithm = \"dbscan\"", 2, "segmentation.eps: dbscan needs eps"),
    ];
    for (extra, code, expected) in cases {
        let j = blobs_job(200, false, extra);
        let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], code);
        assert!(line.contains(expected), "{extra}: {line}");
    }
    // A feature the view does not have.
    let j = blobs_job(200, false, "k = 3");
    std::fs::write(j.job(), std::fs::read_to_string(j.job()).unwrap().replace("\"x4\"]", "\"x5\"]")).unwrap();
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 2);
    assert!(line.contains("view 'points': no column 'x5'"), "{line}");
}

#[test]
fn rfm_scores_and_tiers_follow_the_documented_rules() {
    let j = JobDir::retail(&format!(
        "{}\n[rfm]\nview = \"customer_rfm\"\n[tiers]\nnew_days = 30\nsilent_days = 90\nchurned_days = 365\n\
         value_column = \"spend_365d\"\n[actions]\nat_risk = \"call within a week\"\nLost = \"let them go\"\n\
         [output]\nroot = \"out\"\n",
        retail_segmentation("3")
    ));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    // DuckDB recomputes every score from customer_features (same R, F, M columns as the RFM
    // view): rank with ties sharing the lowest rank, score = 1 + floor(5 (rank − 1) / n); and
    // the tiers from the thresholds and linear quantiles.
    let bad = duckdb(&format!(
        "WITH f AS (SELECT * FROM read_parquet('{f}')),
         s AS (SELECT customer_id,
                1 + floor(5 * (rank() OVER (ORDER BY recency_days DESC) - 1) / count(*) OVER ()) AS r,
                1 + floor(5 * (rank() OVER (ORDER BY frequency) - 1) / count(*) OVER ()) AS f,
                1 + floor(5 * (rank() OVER (ORDER BY monetary) - 1) / count(*) OVER ()) AS m,
                CASE WHEN tenure_days <= 30 THEN 'new' WHEN recency_days > 365 THEN 'churned'
                     WHEN recency_days > 90 THEN 'silent' ELSE 'active' END AS stage,
                CASE WHEN spend_365d >= (SELECT quantile_cont(spend_365d, 0.8) FROM f) THEN 'high'
                     WHEN spend_365d < (SELECT quantile_cont(spend_365d, 0.5) FROM f) THEN 'low'
                     ELSE 'medium' END AS tier
               FROM f)
         SELECT count(*), count(*) FILTER (WHERE s.r IS DISTINCT FROM c.rfm_r OR s.f IS DISTINCT FROM c.rfm_f
                    OR s.m IS DISTINCT FROM c.rfm_m OR c.rfm_cell <> concat(s.r::INT, s.f::INT, s.m::INT)
                    OR s.stage <> c.lifecycle_stage OR s.tier <> c.value_tier)
         FROM s JOIN read_parquet('{c}') c USING (customer_id)",
        f = table(&j, "customer_features"),
        c = table(&j, "customer_segments")
    ));
    assert!(bad[0][0].as_i64().unwrap() > 1000, "{bad:?}");
    assert_eq!(bad[0][1].as_i64(), Some(0), "{bad:?}");
    // Default names: R 5 and F 4-5 are Champions; R 1 and F 1-2 are Lost.
    let wrong = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}') WHERE (rfm_r = 5 AND rfm_f >= 4) <> (rfm_segment = 'Champions')
            OR (rfm_r = 1 AND rfm_f <= 2) <> (rfm_segment = 'Lost') OR rfm_segment IS NULL",
        table(&j, "customer_segments")
    ));
    assert_eq!(wrong[0][0].as_i64(), Some(0));
    // [actions] replaces the text of a key and of one named segment.
    let custom = duckdb(&format!(
        "SELECT segment, recommended_action FROM read_parquet('{}')
         WHERE segmentation = 'rfm' AND segment IN ('Lost', 'At risk', 'Can''t lose them') ORDER BY 1",
        table(&j, "segment_actions")
    ));
    assert_eq!(
        custom,
        [["At risk", "call within a week"], ["Can't lose them", "call within a week"], ["Lost", "let them go"]]
            .map(|r| r.map(serde_json::Value::from).to_vec())
    );
    // Every cluster has a recommended action, and so does every RFM segment.
    let missing = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}') WHERE recommended_action IS NULL",
        table(&j, "segment_actions")
    ));
    assert_eq!(missing[0][0].as_i64(), Some(0));
}

#[test]
fn same_output_whatever_the_thread_count() {
    let run = |threads: &str| {
        let j = blobs_job(6000, false, "k = { min = 2, max = 6 }\nn_init = 3");
        let (code, _, err) = segvalue_env(&["run", &j.job(), "--run-date", "2025-12-31"], &[("RAYON_NUM_THREADS", threads)]);
        assert_eq!(code, 0, "{err}");
        ["customer_segments", "segmentation_k_selection", "segment_summary"].map(|t| std::fs::read(table(&j, t)).unwrap())
    };
    assert!(run("1") == run("4"), "outputs differ between 1 and 4 threads");
}

#[test]
fn fit_sample_at_the_row_count_changes_no_byte_and_a_sampled_fit_ignores_threads() {
    let tables = ["customer_segments", "segmentation_k_selection", "segment_summary"];
    let run = |extra: &str, threads: &str| {
        let seg = format!("k = {{ min = 2, max = 6 }}\nn_init = 3\n{extra}\n\n[engine]\ntarget_partitions = {threads}");
        let j = blobs_job(6000, false, &seg);
        let (code, _, err) = segvalue_env(&["run", &j.job(), "--run-date", "2025-12-31"], &[("RAYON_NUM_THREADS", threads)]);
        assert_eq!(code, 0, "{err}");
        let rows = duckdb(&format!("SELECT count(*) FROM read_parquet('{}')", table(&j, "customer_segments")))[0][0].as_i64();
        let fit_rows = manifest(&j.out(), "2025-12-31")["segmentation"]["fit_rows"].as_i64().unwrap();
        (tables.map(|t| std::fs::read(table(&j, t)).unwrap()), rows, fit_rows)
    };
    // Not above fit_sample: every row is fitted, exactly as without the key.
    let (default, rows, fit_rows) = run("", "4");
    assert_eq!((rows, fit_rows), (Some(6000), 6000));
    let (exact, _, _) = run("fit_sample = 6000", "4");
    assert!(default == exact, "fit_sample = rows changed a published table");
    // Above it: fitted on about 800 rows (a hashed sample), every row assigned by the engine,
    // the same bytes on 1 and 4 threads and partitions.
    let (one, rows, fit_rows) = run("fit_sample = 800", "1");
    assert_eq!(rows, Some(6000));
    assert!((700..=900).contains(&fit_rows), "{fit_rows} rows fitted");
    let (four, _, _) = run("fit_sample = 800", "4");
    assert!(one == four, "a sampled fit differs between 1 and 4 threads");
    assert!(one != default, "fit_sample = 800 fitted every row");
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Past `fit_sample` the engine assigns every customer: each one's segment is the nearest of
/// the published centroids to its features prepared as `segmentation_prep` says (recomputed
/// here from `customer_features`), and the summary's counts, means and medians are every
/// customer's (DuckDB over the published tables). A score run with the saved model assigns
/// the same segments.
#[test]
fn past_fit_sample_the_engine_assigns_every_customer_to_its_nearest_centroid() {
    let seg = "k = { min = 2, max = 6 }\nn_init = 3\nimpute = \"median\"\ncategorical = [\"channel\"]\nfit_sample = 900\n\n\
               [segmentation.columns.x1]\nclip = [0.02, 0.97]";
    let j = blobs_job(6000, true, seg);
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
    assert_eq!(code, 0, "{err}");
    let m = manifest(&j.out(), "2025-12-31");
    let fit_rows = m["segmentation"]["fit_rows"].as_i64().unwrap();
    assert!((700..=1100).contains(&fit_rows), "{fit_rows}");
    let prep = duckdb(&format!(
        "SELECT source_column, category, fill_value, clip_lower, clip_upper, center, scale FROM read_parquet('{}') ORDER BY \"column\"",
        table(&j, "segmentation_prep")
    ));
    // The published order of the prepared columns is the manifest's.
    let order: Vec<String> = m["segmentation"]["preparation"].as_array().unwrap().iter().map(|c| c["column"].as_str().unwrap().to_string()).collect();
    let by_name = duckdb(&format!("SELECT \"column\" FROM read_parquet('{}') ORDER BY \"column\"", table(&j, "segmentation_prep")));
    let prep: Vec<&Vec<serde_json::Value>> =
        order.iter().map(|c| &prep[by_name.iter().position(|r| r[0].as_str() == Some(c)).unwrap()]).collect();
    assert_eq!(prep[1][2].as_f64().is_some(), true, "x2 has NULLs and a median fill");
    let centroids: Vec<Vec<f64>> = m["segmentation"]["centroids"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(f).collect()).collect();
    let rows = duckdb(&format!(
        "SELECT s.segment_id, s.distance_to_centroid, f.x1, f.x2, f.x3, f.x4, f.channel FROM read_parquet('{}') s \
         JOIN read_parquet('{}') f USING (customer_id) ORDER BY customer_id",
        table(&j, "customer_segments"),
        table(&j, "customer_features")
    ));
    assert_eq!(rows.len(), 6000);
    let (mut exact, mut ties) = (0, 0);
    for r in &rows {
        // prep::apply's steps: fill, clip, scale; one-hot for the channel.
        let z: Vec<f64> = prep
            .iter()
            .map(|p| match p[1].as_str() {
                Some(cat) => f64::from(u8::from(r[6].as_str() == Some(cat))),
                None => {
                    let j = ["x1", "x2", "x3", "x4"].iter().position(|x| Some(*x) == p[0].as_str()).unwrap();
                    let mut v = if r[2 + j].is_null() { f(&p[2]) } else { f(&r[2 + j]) };
                    if !p[3].is_null() {
                        v = v.clamp(f(&p[3]), f(&p[4]));
                    }
                    (v - f(&p[5])) / f(&p[6])
                }
            })
            .collect();
        // The manifest's centroids are in prepared units before scaling.
        let d: Vec<f64> = centroids
            .iter()
            .map(|c| c.iter().zip(&z).zip(&prep).map(|((c, z), p)| ((c - f(&p[5])) / f(&p[6]) - z).powi(2)).sum::<f64>().sqrt())
            .collect();
        let best = (0..d.len()).min_by(|&a, &b| d[a].total_cmp(&d[b])).unwrap();
        let second = d.iter().enumerate().filter(|(i, _)| *i != best).map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
        if second - d[best] < 1e-9 {
            ties += 1;
        } else {
            assert_eq!(r[0].as_i64(), Some(best as i64), "row {r:?}: distances {d:?}");
            assert!((f(&r[1]) - d[best]).abs() < 1e-9, "{r:?} vs {}", d[best]);
            exact += 1;
        }
    }
    assert!(ties < 5 && exact > 5990, "{exact} checked, {ties} near ties");
    // The summary is every customer's, not the sample's.
    let check = duckdb(&format!(
        "WITH j AS (SELECT * FROM read_parquet('{}') s JOIN read_parquet('{}') f USING (customer_id)), \
         g AS (SELECT segment_id, count(*) AS n, avg(x1) AS m1, quantile_cont(x2, 0.5) AS med2 FROM j GROUP BY segment_id) \
         SELECT g.segment_id, g.n, s.customers, g.m1, s.mean_x1, g.med2, s.median_x2 FROM g JOIN read_parquet('{}') s USING (segment_id) ORDER BY 1",
        table(&j, "customer_segments"),
        table(&j, "customer_features"),
        table(&j, "segment_summary")
    ));
    assert_eq!(check.len(), centroids.len());
    for r in &check {
        assert_eq!(r[1], r[2], "{r:?}");
        assert!(rel(f(&r[3]), f(&r[4])) < 1e-12 && rel(f(&r[5]), f(&r[6])) < 1e-12, "{r:?}");
    }
    // Scored with the saved model, on the same rows: the same segments.
    let job = std::fs::read_to_string(j.job()).unwrap().replace("fit_sample = 900", "fit_sample = 900\nmode = \"score\"");
    std::fs::write(j.job(), job).unwrap();
    let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2026-01-31"]);
    assert_eq!(code, 0, "{err}");
    let differ = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}') a JOIN read_parquet('{}') b USING (customer_id) \
         WHERE a.segment_id <> b.segment_id OR abs(a.distance_to_centroid - b.distance_to_centroid) > 1e-12",
        partition_glob(&j.out(), "customer_segments", "2025-12-31"),
        partition_glob(&j.out(), "customer_segments", "2026-01-31")
    ));
    assert_eq!(differ[0][0].as_i64(), Some(0));
}

/// What does not depend on the clustering is the same whether the driver holds every customer
/// or the engine does the work: RFM scores, names, lifecycle stages and value tiers per
/// customer, their counts and transitions, and the preparation (fill values and clip bounds
/// to the bit: exact order statistics; centres and scales to 1e-12: sums in another order).
#[test]
fn past_fit_sample_rfm_tiers_and_preparation_equal_the_driver_path() {
    let run = |extra: &str| {
        let j = JobDir::retail(&format!("{}{extra}\n[rfm]\nview = \"customer_rfm\"\n\n[output]\nroot = \"out\"\n", retail_segmentation("{ min = 2, max = 4 }")));
        let (code, _, err) = segvalue(&["run", &j.job(), "--run-date", "2025-12-31"]);
        assert_eq!(code, 0, "{err}");
        j
    };
    let (driver, engine) = (run(""), run("fit_sample = 600\n"));
    let fit_rows = |j: &JobDir| manifest(&j.out(), "2025-12-31")["segmentation"]["fit_rows"].as_i64().unwrap();
    let customers = manifest(&driver.out(), "2025-12-31")["segmentation"]["customers"].as_i64().unwrap();
    assert!(fit_rows(&engine) < 800 && fit_rows(&driver) == customers, "{} {}", fit_rows(&engine), fit_rows(&driver));
    let differ = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{}') a FULL JOIN read_parquet('{}') b USING (customer_id) WHERE \
         (a.rfm_r, a.rfm_f, a.rfm_m, a.rfm_cell, a.rfm_segment, a.lifecycle_stage, a.value_tier) IS DISTINCT FROM \
         (b.rfm_r, b.rfm_f, b.rfm_m, b.rfm_cell, b.rfm_segment, b.lifecycle_stage, b.value_tier)",
        table(&driver, "customer_segments"),
        table(&engine, "customer_segments")
    ));
    assert_eq!(differ[0][0].as_i64(), Some(0));
    let rows = |j: &JobDir, sql: &str, t: &str| duckdb(&sql.replace("{T}", &format!("read_parquet('{}')", table(j, t))));
    let actions = "SELECT segmentation, segment, customers, recommended_action FROM {T} WHERE segmentation <> 'cluster' ORDER BY 1, 2";
    assert_eq!(rows(&driver, actions, "segment_actions"), rows(&engine, actions, "segment_actions"));
    let moves = "SELECT segmentation, from_segment, to_segment, customers, share_of_from FROM {T} WHERE segmentation <> 'cluster' ORDER BY 1, 2, 3";
    assert_eq!(rows(&driver, moves, "segment_transitions"), rows(&engine, moves, "segment_transitions"));
    let prep = "SELECT \"column\", fill_value, nulls_filled, transform, clip_lower, clip_upper, center, scale FROM {T} ORDER BY 1";
    let (a, b) = (rows(&driver, prep, "segmentation_prep"), rows(&engine, prep, "segmentation_prep"));
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a[..6], b[..6], "fill and clip bounds: {a:?} {b:?}");
        assert!(rel(f(&a[6]), f(&b[6])) < 1e-12 && rel(f(&a[7]), f(&b[7])) < 1e-12, "{a:?} {b:?}");
    }
    let rfm = |j: &JobDir| manifest(&j.out(), "2025-12-31")["segmentation"]["rfm"].clone();
    assert_eq!(rfm(&driver), rfm(&engine));
}

/// `segment_summary`'s categorical shares (issue #22): per segment and profiled column, the most
/// common value, its share and every value's share equal DuckDB's counts over the published
/// `customer_segments` joined to `customer_features`, whether the driver fits every customer
/// or the engine assigns them past `fit_sample`.
#[test]
fn categorical_shares_per_segment_equal_duckdb_on_both_paths() {
    for sample in ["", "fit_sample = 300\n"] {
        let seg = retail_segmentation("4");
        let j = JobDir::retail(&format!("{seg}{sample}profile = [\"region\", \"acquisition_channel\"]\n\n[output]\nroot = \"out\"\n"));
        segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
        for column in ["region", "acquisition_channel"] {
            // Ours, one row per (segment, value); DuckDB's from the customers.
            let ours = duckdb(&format!(
                "SELECT segment_id, key, CAST(value AS DOUBLE), top_{column}, top_{column}_share \
                 FROM read_parquet('{}'), json_each({column}_shares) ORDER BY 1, 2",
                table(&j, "segment_summary")
            ));
            let theirs = duckdb(&format!(
                "WITH c AS (SELECT s.segment_id, coalesce(CAST(f.{column} AS VARCHAR), '(null)') AS v, count(*) AS n \
                 FROM read_parquet('{}') s JOIN read_parquet('{}') f USING (customer_id) GROUP BY 1, 2) \
                 SELECT segment_id, v, n / sum(n) OVER (PARTITION BY segment_id), \
                 first(v ORDER BY n DESC, v) OVER (PARTITION BY segment_id), max(n) OVER (PARTITION BY segment_id) / sum(n) OVER (PARTITION BY segment_id) \
                 FROM c ORDER BY 1, 2",
                table(&j, "customer_segments"),
                table(&j, "customer_features")
            ));
            assert!(ours.len() > 4, "{sample}{column}: {ours:?}");
            assert_eq!(ours.len(), theirs.len(), "{sample}{column}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!((&a[0], &a[1], &a[3]), (&b[0], &b[1], &b[3]), "{sample}{column}");
                for k in [2, 4] {
                    let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
                    assert!((x - y).abs() < 1e-12, "{sample}{column}: {a:?} vs {b:?}");
                }
            }
        }
    }
}
