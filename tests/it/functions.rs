//! The model functions in SQL (`segvalue::functions`) against the driver's own formulas: on
//! lifetimes' CDNOW fixture through a DataFusion session, and on a generated run through a
//! user's view, on the embedded engine and on Ballista.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use segvalue::clv::{self, ClvSpec, Summary, TimeUnit};

use crate::common::*;

fn session() -> SessionContext {
    let state = segvalue::functions::with_functions(SessionStateBuilder::new().with_default_features()).build();
    SessionContext::new_with_state(state)
}

fn query(ctx: &SessionContext, sql: &str) -> Vec<Vec<f64>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let batches = rt.block_on(async { ctx.sql(sql).await?.collect().await }).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let cols = batches[0].num_columns();
    (0..cols)
        .map(|c| batches.iter().flat_map(|b| b.column(c).as_primitive::<Float64Type>().values().to_vec()).collect())
        .collect()
}

/// The default job's `[clv]` settings ([`CLV`]) as the driver takes them.
fn default_spec() -> ClvSpec {
    ClvSpec {
        view: "customer_summary".into(),
        id: "customer_id".into(),
        model: clv::PurchaseModel::BgNbd,
        time_unit: TimeUnit::Weeks,
        horizon_months: 12,
        monthly_discount_rate: 0.01,
        margin: 0.3,
        holdout_days: None,
        penalizer: 0.0,
        lifetime_periods: None,
        fit_sample: clv::DEFAULT_FIT_SAMPLE,
        mode: Default::default(),
        model_from: Default::default(),
        auto: false,
        tracking: None,
        intervals: true,
        covariates: Default::default(),
    }
}

/// Every customer of lifetimes' CDNOW sample and of its 3,000 varied customers, valued by SQL
/// and by `clv::predict` with the same parameters: equal to 1e-12.
#[test]
fn sql_functions_equal_the_driver_on_the_cdnow_fixture() {
    let f = lifetimes_fixture();
    let (b, g) = lifetimes_params(&f);
    let spec = default_spec();
    for (set, model) in ["cdnow", "customers"].into_iter().flat_map(|s| clv::PurchaseModel::ALL.map(|m| (s, m))) {
        // The SQL functions and the driver share formulas for any parameters, fitted or not.
        let b = clv::PurchaseParams::new(model, b.values());
        let m = model.as_str();
        let c = &f[set];
        let mut s = Summary {
            frequency: floats(&c["frequency"]),
            recency: floats(&c["recency"]),
            tenure: floats(&c["T"]),
            monetary_value: floats(&c["monetary_value"]),
        };
        if model.discrete() {
            // BG/BB's whole periods: the same customers with recency and tenure rounded up and
            // at most one purchase per period.
            s.tenure.iter_mut().for_each(|t| *t = t.ceil());
            s.recency.iter_mut().for_each(|r| *r = r.ceil());
            s.frequency.iter_mut().zip(&s.recency).for_each(|(x, r)| *x = x.min(*r));
        }
        let driver = clv::predict(&s, &spec, clv::with_params(&s, b, g)).unwrap();

        let schema = Arc::new(Schema::new(["i", "x", "tx", "t", "m"].map(|n| Field::new(n, DataType::Float64, false)).to_vec()));
        let n = s.frequency.len();
        let columns = [(0..n).map(|i| i as f64).collect(), s.frequency.clone(), s.recency.clone(), s.tenure.clone(), s.monetary_value.clone()];
        let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| Arc::new(Float64Array::from(c)) as _).collect()).unwrap();
        let ctx = session();
        ctx.register_table("c", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        let (bg, gg) = (b.values().map(|v| format!("{v:?}")).join(", "), format!("{:?}, {:?}, {:?}", g.p, g.q, g.gamma));
        let horizon = 12.0 * TimeUnit::Weeks.per_month();
        let sql = format!(
            "SELECT {m}_p_alive({bg}, x, tx, t), {m}_expected_purchases({bg}, {horizon:?}, x, tx, t), \
             gamma_gamma_expected_value({gg}, x, m), {m}_gg_clv({bg}, {gg}, 0.3, 12, 0.01, {:?}, x, tx, t, m) \
             FROM c ORDER BY i",
            TimeUnit::Weeks.per_month()
        );
        let got = query(&ctx, &sql);
        let want = [&driver.p_alive, &driver.expected_purchases, &driver.expected_avg_value, &driver.clv];
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.len(), n);
            let worst = g.iter().zip(w).map(|(a, b)| rel(*a, *b)).fold(0.0, f64::max);
            assert!(worst <= 1e-12, "{set}, {m}: column {k} differs from the driver by {worst:e}");
        }
        // `*_customer_values(_with_interval)`, what `customer_clv` is computed with: each field
        // to the bit what its function alone returns, the interval's as `*_purchases_interval`'s.
        let cov = "0.01, 0.002, 0.0, -0.001, 0.02, 0.0, 0.0, 0.015, 0.003, 0.01";
        let discounting = format!("0.3, 12, 0.01, {:?}", TimeUnit::Weeks.per_month());
        let sql = format!(
            "WITH v AS (SELECT i, {m}_customer_values({bg}, {gg}, {discounting}, x, tx, t, m) AS one, \
                    {m}_customer_values_with_interval({bg}, {gg}, {discounting}, {cov}, x, tx, t, m) AS both, \
                    {m}_purchases_interval({bg}, {cov}, {horizon:?}, x, tx, t) AS alone FROM c) \
             SELECT one['p_alive'], one['expected_purchases'], one['expected_avg_value'], one['clv'], \
                    both['p_alive'], both['expected_purchases'], both['expected_avg_value'], both['clv'], \
                    both['purchases_p10'], both['purchases_p50'], both['purchases_p90'], alone['p10'], alone['p50'], alone['p90'] \
             FROM v ORDER BY i"
        );
        let fused = query(&ctx, &sql);
        let bits = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (k, alone) in got.iter().chain(&fused[11..]).enumerate() {
            let fields: &[usize] = if k < 4 { &[k, k + 4] } else { &[k + 4] };
            for &f in fields {
                assert_eq!(bits(&fused[f]), bits(alone), "{set}, {m}: fused field {f} differs from the function alone");
            }
        }
    }
}

/// The default job's `[clv]` section.
const CLV: &str = "[clv]\nview = \"customer_summary\"\nid = \"customer_id\"\ntime_unit = \"weeks\"\n\
                   horizon_months = 12\nmonthly_discount_rate = 0.01\nmargin = 0.3\n";

/// A run of the default job's CLV stage, published under `j.out()`.
pub fn clv_run() -> JobDir {
    let j = JobDir::retail_at(&single_dataset().display().to_string(), &format!("{CLV}\n[output]\nroot = \"out\"\n"));
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    j
}

/// A data engineer's job reading `published`'s `customer_clv` with a view `scored` that values
/// every customer with the functions and the parameters published in `clv_model`. Returns the
/// job file; its output goes to `dir/out`.
pub fn scoring_job(dir: &std::path::Path, published: &std::path::Path) -> String {
    let model: std::collections::BTreeMap<String, f64> = duckdb(&format!("SELECT parameter, value FROM {}", read_partition(published, "clv_model", "2025-12-31")))
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_f64().unwrap()))
        .collect();
    let p = |k: &str| format!("{:?}", model[k]);
    let (bg, gg) = (format!("{}, {}, {}, {}", p("r"), p("alpha"), p("a"), p("b")), format!("{}, {}, {}", p("p"), p("q"), p("gamma")));
    // The Laplace covariance's upper triangle, as `clv_model` publishes it (row i, log_cov_j).
    let cov_rows: std::collections::BTreeMap<String, Vec<f64>> = duckdb(&format!(
        "SELECT parameter, log_cov_1, log_cov_2, log_cov_3, log_cov_4 FROM {} WHERE model = 'bgnbd'",
        read_partition(published, "clv_model", "2025-12-31")
    ))
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_string(), (1..5).map(|j| r[j].as_f64().unwrap()).collect()))
    .collect();
    let names = ["r", "alpha", "a", "b"];
    let cov: Vec<String> = (0..4).flat_map(|i| (i..4).map(move |j| (i, j))).map(|(i, j)| format!("{:?}", cov_rows[names[i]][j])).collect();
    let cov = cov.join(", ");
    let per_month = TimeUnit::Weeks.per_month();
    let h = 12.0 * per_month;
    let view = format!(
        "SELECT customer_id, \
           bgnbd_p_alive({bg}, frequency, recency, tenure) AS p_alive, \
           bgnbd_expected_purchases({bg}, {h:?}, frequency, recency, tenure) AS expected_purchases, \
           gamma_gamma_expected_value({gg}, frequency, monetary_value) AS expected_avg_value, \
           bgnbd_gg_clv({bg}, {gg}, 0.3, 12, 0.01, {per_month:?}, frequency, recency, tenure, monetary_value) AS clv, \
           bgnbd_purchases_quantile({bg}, {cov}, {h:?}, 0.1, frequency, recency, tenure) AS purchases_p10, \
           bgnbd_purchases_interval({bg}, {cov}, {h:?}, frequency, recency, tenure)['p50'] AS purchases_p50, \
           bgnbd_purchases_quantile({bg}, {cov}, {h:?}, 0.9, frequency, recency, tenure) AS purchases_p90 \
         FROM clv"
    );
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::write(dir.join("sql/scored.sql"), view).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[job]\nname = \"scoring\"\nsql_dir = \"sql\"\n\n[sources.clv]\nurl = \"{}/customer_clv/run_date=2025-12-31/\"\nformat = \"parquet\"\n\n\
             [output]\nroot = \"out\"\npublish_views = [\"scored\"]\n",
            published.display()
        ),
    )
    .unwrap();
    job.display().to_string()
}

/// Asserts that `dir/out`'s `scored` equals `published`'s `customer_clv` to 1e-12 relative, for
/// every customer, and its 80 % intervals exactly.
pub fn assert_scored_equals_published(dir: &std::path::Path, published: &std::path::Path, what: &str) {
    let d = |c: &str| format!("abs(a.{c} - b.{c}) / greatest(abs(a.{c}), 1e-300)");
    let diff = duckdb(&format!(
        "SELECT count(*), max(greatest({}, {}, {}, {})) FROM {} a JOIN {} b USING (customer_id)",
        d("p_alive"),
        d("expected_purchases"),
        d("expected_avg_value"),
        d("clv"),
        read_partition(published, "customer_clv", "2025-12-31"),
        read_partition(&dir.join("out"), "scored", "2025-12-31"),
    ));
    let customers = duckdb(&format!("SELECT count(*) FROM {}", read_partition(published, "customer_clv", "2025-12-31")))[0][0].as_i64();
    assert_eq!(diff[0][0].as_i64(), customers, "{what}: every customer scored");
    let worst = diff[0][1].as_f64().unwrap();
    assert!(worst <= 1e-12, "{what}: the view differs from the published CLV by {worst:e}");
    let intervals = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE a.purchases_p10 <> b.purchases_p10 OR a.purchases_p50 <> b.purchases_p50 OR a.purchases_p90 <> b.purchases_p90), \
                count(DISTINCT a.purchases_p90) FROM {} a JOIN {} b USING (customer_id)",
        read_partition(published, "customer_clv", "2025-12-31"),
        read_partition(&dir.join("out"), "scored", "2025-12-31"),
    ));
    assert_eq!(intervals[0][0].as_i64(), Some(0), "{what}: intervals differ from the published ones");
    assert!(intervals[0][1].as_i64().unwrap() > 3, "{what}: {intervals:?}");
}

/// The default job's published CLV, recomputed by a data engineer's view calling the functions
/// on the published summary columns: equal to 1e-12 on the embedded engine and on Ballista.
#[test]
fn a_view_calling_the_functions_reproduces_the_published_clv() {
    let j = clv_run();
    for engine in ["local", "ballista-standalone"] {
        let dir = tempfile::tempdir().unwrap();
        let job = scoring_job(dir.path(), &j.out());
        segvalue_ok(&["run", &job, "--run-date", "2025-12-31", "--engine", engine]);
        assert_scored_equals_published(dir.path(), &j.out(), engine);
    }
}

/// Wrong argument counts and types are refused when the view is planned (exit 2, naming the
/// file, the function and the argument); a NULL parameter fails the run (exit 1).
#[test]
fn bad_arguments_are_clear_errors() {
    for (sql, want) in [
        ("SELECT bgnbd_p_alive(1.0, 2.0, frequency) AS v FROM s", "bgnbd_p_alive(r, alpha, a, b, frequency, recency, tenure) takes 7 arguments, got 3"),
        ("SELECT gamma_gamma_expected_value(1.0, 2.0, 'x', frequency, frequency) AS v FROM s", "gamma_gamma_expected_value: argument 'gamma' must be a number, got Utf8"),
        ("SELECT nearest_centroid(1.0, frequency) AS v FROM s", "nearest_centroid: argument 'centroids' must be a list of lists of numbers"),
    ] {
        let j = JobDir::new(&[("s.sql", "SELECT customer_id, 1.0 AS frequency FROM customers"), ("v.sql", sql)], "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n");
        let line = fails(&["validate", &j.job()], 2);
        assert!(line.contains("v.sql") && line.contains(want), "{sql}\n{line}");
    }
    let j = JobDir::new(
        &[("s.sql", "SELECT customer_id, 1.0 AS frequency FROM customers"), ("v.sql", "SELECT bgnbd_p_alive(NULL, 2.0, 3.0, 4.0, frequency, 0.0, 5.0) AS v FROM s")],
        "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n",
    );
    let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
    assert!(line.contains("bgnbd_p_alive: parameter 'r' is NULL"), "{line}");
    // Parameters no fit gives (p·x + q < 1, a < 0) would publish negative values and P(alive)
    // above 1: the run stops naming the customer and the parameters, and publishes nothing.
    for (call, want) in [
        (
            "gamma_gamma_expected_value(0.1, 0.5, 1.0, frequency, 10.0)",
            "gamma_gamma_expected_value: the predictions for a customer with frequency 1, monetary_value 10 are out of range (p = 0.1000, q = 0.5000, gamma = 1.0000)",
        ),
        ("bgnbd_p_alive(0.5, 2.0, -0.8, 2.5, frequency, 1.0, 3.0)", "bgnbd_p_alive: the predictions for a customer with frequency 1, recency 1, tenure 3 are out of range (r = 0.5000, alpha = 2.0000, a = -0.8000, b = 2.5000)"),
        // A history BG/BB cannot have: half a period.
        (
            "bgbb_p_alive(1.2, 0.75, 0.66, 2.8, frequency, 1.5, 3.0)",
            "bgbb_p_alive: the predictions for a customer with frequency 1, recency 1.5, tenure 3 are out of range (alpha = 1.2000, beta = 0.7500, gamma = 0.6600, delta = 2.8000)",
        ),
    ] {
        let j = JobDir::new(
            &[("s.sql", "SELECT customer_id, 1.0 AS frequency FROM customers"), ("v.sql", &format!("SELECT customer_id, {call} AS v FROM s"))],
            "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n",
        );
        let line = fails(&["run", &j.job(), "--run-date", "2025-12-31"], 1);
        assert!(line.contains(want), "{call}\n{line}");
        assert!(!j.out().join("v").exists(), "{call}: nothing is published");
    }
    // A NULL customer value gives NULL, and centroids assign as the K-means kernel does.
    let j = JobDir::new(
        &[
            ("s.sql", "SELECT customer_id, CASE WHEN customer_id = 'C0000001' THEN NULL ELSE 2.0 END AS f FROM customers"),
            ("v.sql", "SELECT customer_id, bgnbd_p_alive(0.5, 2.0, 0.8, 2.5, f, 1.0, 3.0) AS p, nearest_centroid([[0.0], [1.5], [2.1]], f) AS c, centroid_distance([[0.0], [1.5], [2.1]], f) AS d FROM s"),
        ],
        "[output]\nroot = \"out\"\npublish_views = [\"v\"]\n",
    );
    segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
    let rows = duckdb(&format!(
        "SELECT count(*) FILTER (WHERE p IS NULL AND c IS NULL AND d IS NULL), count(*) FILTER (WHERE c = 2 AND abs(d - 0.1) < 1e-12) , count(*) FROM {}",
        read_partition(&j.out(), "v", "2025-12-31")
    ));
    assert_eq!(rows[0][0].as_i64(), Some(1));
    assert_eq!(rows[0][1].as_i64().unwrap() + 1, rows[0][2].as_i64().unwrap());
}

/// Every column of a published table, as f64 (integers widened), in file order.
fn parquet_columns(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<f64>> {
    use datafusion::arrow::compute::cast;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).unwrap();
    let mut out: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for batch in ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap() {
        let batch = batch.unwrap();
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            if let Ok(c) = cast(c, &DataType::Float64) {
                out.entry(f.name().clone()).or_default().extend(c.as_primitive::<Float64Type>().iter().map(|v| v.unwrap_or(f64::NAN)));
            }
        }
    }
    out
}

/// `customer_clv` is computed by the engine (the model functions in the plan that writes it,
/// the decile a window over the CLV): every value equals `clv::predict`'s on the published
/// summary and parameters, to the bit, deciles included.
#[test]
fn the_engine_s_customer_clv_equals_the_driver_s_predictions_to_the_bit() {
    let j = clv_run();
    let partition = j.out().join("customer_clv/run_date=2025-12-31");
    let file = std::fs::read_dir(&partition).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    let table = parquet_columns(&file);
    let model = parquet_columns(&std::fs::read_dir(j.out().join("clv_model/run_date=2025-12-31")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap());
    // clv_model rows are sorted by (model, parameter): bgnbd a, alpha, b, r; gamma_gamma gamma, p, q.
    let v = &model["value"];
    let b = clv::PurchaseParams::new(clv::PurchaseModel::BgNbd, [v[3], v[1], v[0], v[2]]);
    let g = clv::GammaGammaParams { gamma: v[4], p: v[5], q: v[6] };
    let s = Summary {
        frequency: table["frequency"].clone(),
        recency: table["recency"].clone(),
        tenure: table["tenure"].clone(),
        monetary_value: table["monetary_value"].clone(),
    };
    let spec = default_spec();
    let driver = clv::predict(&s, &spec, clv::with_params(&s, b, g)).unwrap();
    assert!(s.frequency.len() > 1000);
    let decile: Vec<f64> = driver.clv_decile.iter().map(|&d| d as f64).collect();
    for (name, want) in [
        ("p_alive", &driver.p_alive),
        ("expected_purchases", &driver.expected_purchases),
        ("expected_avg_value", &driver.expected_avg_value),
        ("clv", &driver.clv),
        ("clv_simple", &driver.clv_simple),
        ("clv_decile", &decile),
    ] {
        let got = &table[name];
        let differ = got.iter().zip(want.iter()).position(|(a, b)| a.to_bits() != b.to_bits());
        assert!(differ.is_none(), "{name}: row {:?} is {:?} in the table, {:?} on the driver", differ, differ.map(|i| got[i]), differ.map(|i| want[i]));
    }
}

/// Above `[clv] fit_sample` repeat buyers, Gamma-Gamma is fitted on a hash-seeded sample: the same
/// parameters whatever the partition count, recorded in the manifest, close to the full fit.
#[test]
fn gamma_gamma_on_a_sample_is_reproducible_and_close_to_the_full_fit() {
    let params = |extra: &str, partitions: &str| {
        let j = JobDir::retail_at(
            &single_dataset().display().to_string(),
            &format!("{CLV}fit_sample = 500\n{extra}\n[engine]\ntarget_partitions = {partitions}\n\n[output]\nroot = \"out\"\n"),
        );
        segvalue_ok(&["run", &j.job(), "--run-date", "2025-12-31"]);
        let m = manifest(&j.out(), "2025-12-31");
        (m["clv"]["gamma_gamma"]["params"].clone(), m["clv"]["gamma_gamma"]["customers"].clone(), m["clv"]["gamma_gamma"]["sampled_from"].clone())
    };
    let (two, rows, from) = params("", "2");
    // A Bernoulli sample of share 500 / repeat buyers: about 500 rows (3 standard deviations).
    let rows = rows.as_u64().unwrap();
    assert!((433..=567).contains(&rows), "{rows}");
    assert!(from.as_u64().unwrap() > 1000, "{from}");
    let (three, ..) = params("", "3");
    assert_eq!(two, three, "the sample and its fit do not depend on partitioning");
    let j = clv_run();
    let full = manifest(&j.out(), "2025-12-31")["clv"]["gamma_gamma"].clone();
    assert!(full.get("sampled_from").is_none(), "{full}");
    // The mean spend pγ/(q−1) is what a sample pins down: within 5 % of the full fit's.
    let mean = |p: &serde_json::Value| p["p"].as_f64().unwrap() * p["gamma"].as_f64().unwrap() / (p["q"].as_f64().unwrap() - 1.0);
    assert!(rel(mean(&two), mean(&full["params"])) < 0.05, "sample {two}, full {}", full["params"]);
}
