//! The CLV stage's queries. The engine (on Ballista, the cluster) reads the summary view and
//! the driver receives only what the fits need, whatever the number of customers:
//!
//! - (x, t_x, T) tuples with counts from one `GROUP BY` (BG/NBD's sufficient statistics);
//!   with the `cal_*` columns, the holdout's tuples come from the same scan (`GROUPING SETS`);
//! - the checks on every row, as aggregates of a query without a `GROUP BY`;
//! - repeat buyers' (x, m̄) for Gamma-Gamma: all of them, or a hash-seeded sample of about
//!   `[clv] fit_sample` when there are more (its likelihood has no finite sufficient
//!   statistics);
//! - the per-customer predictions as a plan over the view calling the model functions
//!   (`crate::functions`), written by the engine as it streams.

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::dataframe::DataFrame;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::functions::math::expr_fn::exp;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{Expr, ExprFunctionExt, cast, col, ident, lit, when};

use super::ids::id_array;
use super::query::{collect, first_duplicate, for_each_batch, non_finite_count, with_options};
use super::session::SUMMARY_COLUMNS;
use crate::clv::{self, ClvSpec, GammaGammaParams, Group, HoldoutTuple, PurchaseTuple, Summary};
use crate::error::Error;
use crate::functions::{CUSTOMER_INTERVAL, CUSTOMER_VALUES};
use crate::features::FeatureError;
use crate::quality::quote;

/// Columns a summary view may add for the holdout check, in [`SUMMARY_COLUMNS`]' order: the
/// summary as of `$calibration_end`, NULL for customers who first bought after it.
pub(super) const CALIBRATION_COLUMNS: [&str; 4] = ["cal_frequency", "cal_recency", "cal_tenure", "cal_monetary_value"];

/// Mixed into each id's hash that orders the Gamma-Gamma sample: a fixed salt, so a run's
/// sample depends on the customers only.
const SAMPLE_SALT: &str = "segvalue/gamma-gamma";

/// What the fits read from the summary view.
pub(super) struct FitInput {
    pub(super) tuples: Vec<PurchaseTuple>,
    /// Each tuple's covariates (`[clv] covariates`, in `CovariateSpec::columns` order; empty
    /// without them): a tuple is customers sharing (x, t_x, T) and these.
    pub(super) covariates: Vec<Vec<f64>>,
    /// The holdout's tuples, when the view has the `cal_*` columns and the job a holdout.
    pub(super) holdout: Option<Vec<Group<HoldoutTuple>>>,
    /// Repeat buyers' frequency and monetary value, sorted, for Gamma-Gamma.
    pub(super) repeat_frequency: Vec<f64>,
    pub(super) repeat_monetary: Vec<f64>,
    /// Repeat buyers in the view (more than the sample when it is one).
    pub(super) repeat_buyers: u64,
}

impl FitInput {
    pub(super) fn customers(&self) -> u64 {
        self.tuples.iter().map(|t| t.customers).sum()
    }

    /// The tuples grouped by their covariates (one group without them).
    pub(super) fn groups(&self) -> Vec<Group<PurchaseTuple>> {
        clv::group(self.covariates.iter().cloned().zip(self.tuples.iter().copied()))
    }
}

/// The covariates' short names in queries: z0, z1, …
fn covariate_names(spec: &ClvSpec) -> Vec<String> {
    (0..spec.covariates.columns().len()).map(|k| format!("z{k}")).collect()
}

/// ", z0, z1" for a select or group list; empty without covariates.
fn covariate_list(spec: &ClvSpec) -> String {
    covariate_names(spec).iter().map(|z| format!(", {z}")).collect()
}

/// The view's summary columns as DOUBLE under short names (x, tx, t, m; cx, ctx, ct).
fn summary_cte(spec: &ClvSpec, with_calibration: bool) -> String {
    let mut cols: Vec<String> = vec![format!("{} AS id", quote(&spec.id))];
    let short = ["x", "tx", "t", "m"];
    cols.extend(SUMMARY_COLUMNS.iter().zip(short).map(|(c, s)| format!("CAST({} AS DOUBLE) AS {s}", quote(c))));
    if with_calibration {
        cols.extend(CALIBRATION_COLUMNS[..3].iter().zip(["cx", "ctx", "ct"]).map(|(c, s)| format!("CAST({} AS DOUBLE) AS {s}", quote(c))));
    }
    cols.extend(spec.covariates.columns().iter().zip(covariate_names(spec)).map(|(c, z)| format!("CAST({} AS DOUBLE) AS {z}", quote(c))));
    format!("WITH s AS (SELECT {} FROM {})", cols.join(", "), quote(&spec.view))
}


fn f64s(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    b.column_by_name(name).expect("selected").as_primitive::<Float64Type>().iter().collect()
}

fn i64s(b: &RecordBatch, name: &str) -> Vec<i64> {
    b.column_by_name(name).expect("selected").as_primitive::<Int64Type>().values().to_vec()
}

/// Reads and checks everything the fits need, in four queries run at once: the tuples, the
/// checks on every row (aggregates without a `GROUP BY`), the first duplicate id if any, and
/// the Gamma-Gamma rows when there are few enough to take them all (else a sample of them
/// afterwards, once the tuples have counted them).
pub(super) async fn fit_input(ctx: &SessionContext, spec: &ClvSpec, with_calibration: bool, fit_sample: u64) -> Result<FitInput, Error> {
    let (view, discrete) = (spec.view.as_str(), spec.model.discrete());
    let zs = covariate_list(spec);
    let group = if with_calibration { format!("GROUP BY GROUPING SETS ((x, tx, t{zs}), (cx, ctx, ct, x{zs}))") } else { format!("GROUP BY x, tx, t{zs}") };
    let (cal_cols, set) = if with_calibration { ("cx, ctx, ct", "grouping(tx)") } else { ("NULL AS cx, NULL AS ctx, NULL AS ct", "0") };
    // The tuples carry their count only: each aggregate more is a column more in the
    // aggregation's hash tables, whose rows are most of the customers' number (553k tuples of
    // 845k customers in weeks). The checks are aggregates of a query of their own.
    let sql = format!("{cte} SELECT CAST({set} AS BIGINT) AS holdout_set, x, tx, t, {cal_cols}{zs}, count(*) AS n FROM s {group}", cte = summary_cte(spec, with_calibration));
    let checks = format!(
        "{cte} SELECT count(*) - count(id) AS null_ids, count(*) - count(m) AS m_nulls, {m_bad} AS m_bad, \
         sum(CASE WHEN NOT ({rules}) THEN 1 ELSE 0 END) AS broken FROM s",
        cte = summary_cte(spec, false),
        m_bad = non_finite_count("m"),
        rules = summary_rules(discrete),
    );
    let mut tuples = Vec::new();
    let mut holdout = Vec::new();
    // Per summary column (x, t_x, T): NULL and non-finite rows.
    let (mut nulls, mut non_finite) = ([0i64; 3], [0i64; 3]);
    let covariate_columns = spec.covariates.columns();
    let (mut tuple_z, mut z_nulls, mut z_non_finite) = (Vec::new(), vec![0i64; covariate_columns.len()], vec![0i64; covariate_columns.len()]);
    // Batch by batch: at 100M orders there are millions of tuples, and the query's rows would
    // take several times what the tuples do.
    let tuples_scan = for_each_batch(
        ctx,
        view,
        &sql,
        // Partial aggregation pays when it shrinks the rows to repartition by half or more;
        // DataFusion keeps it up to 0.8 groups per row. At 0.65 (weeks, above) skipping it
        // took the query from 146 to 111 ms.
        |options| options.execution.skip_partial_aggregation_probe_ratio_threshold = 0.5,
        |b| {
            let (set, n) = (i64s(b, "holdout_set"), i64s(b, "n"));
            let (x, tx, t, cx, ctx_, ct) = (f64s(b, "x"), f64s(b, "tx"), f64s(b, "t"), cal(b, "cx"), cal(b, "ctx"), cal(b, "ct"));
            let zs: Vec<Vec<Option<f64>>> = covariate_names(spec).iter().map(|z| f64s(b, z)).collect();
            for i in 0..b.num_rows() {
                // The row's covariates; None when one is NULL or not finite (counted below).
                let z: Option<Vec<f64>> = zs.iter().map(|c| c[i].filter(|v| v.is_finite())).collect();
                if set[i] == 1 {
                    // The holdout set: customers known at the calibration end (NULL cal_* for the
                    // others), their calibration summary held to the same rules.
                    if let (Some(cf), Some(cr), Some(ct), Some(f), Some(z)) = (cx[i], ctx_[i], ct[i], x[i], z) {
                        let s = Summary { frequency: vec![cf], recency: vec![cr], tenure: vec![ct], monetary_value: vec![f64::from(cf > 0.0)] };
                        if let Err(clv::ClvError::Input(msg)) = s.check(discrete, &|_| "?".into()) {
                            let msg = msg.replacen("customer '?'", "a customer's calibration summary", 1);
                            return Err(clv::ClvError::Input(format!("view '{view}': {msg}")).into());
                        }
                        holdout.push((z, HoldoutTuple { cal_frequency: cf, cal_recency: cr, cal_tenure: ct, frequency: f, customers: n[i] as u64 }));
                    }
                    continue;
                }
                for (j, v) in [x[i], tx[i], t[i]].into_iter().enumerate() {
                    match v {
                        None => nulls[j] += n[i],
                        Some(v) if !v.is_finite() => non_finite[j] += n[i],
                        Some(_) => {}
                    }
                }
                for (k, c) in zs.iter().enumerate() {
                    match c[i] {
                        None => z_nulls[k] += n[i],
                        Some(v) if !v.is_finite() => z_non_finite[k] += n[i],
                        Some(_) => {}
                    }
                }
                let (Some(x), Some(tx), Some(t), Some(z)) = (x[i], tx[i], t[i], z) else { continue };
                tuples.push(PurchaseTuple { frequency: x, recency: tx, tenure: t, customers: n[i] as u64 });
                tuple_z.push(z);
            }
            Ok(true)
        },
    );
    // Repeat buyers are at most as many as the view's rows: when those are few, all of them
    // are the Gamma-Gamma rows whatever the tuples count.
    let eager = fit_sample.min(EAGER_REPEAT_ROWS);
    let (scanned, checked, duplicate, repeat) = futures::join!(tuples_scan, collect(ctx, view, &checks), first_duplicate(ctx, view, view, &spec.id), repeat_rows(ctx, spec, RepeatRows::AllUpTo(eager)));
    scanned?;
    let checked = checked?;
    let check = |name: &str| checked.iter().map(|b| cast_i64(b.column_by_name(name).expect("selected")).iter().sum::<i64>()).sum::<i64>();
    let (null_ids, m_nulls, m_bad, broken) = (check("null_ids"), check("m_nulls"), check("m_bad"), check("broken"));
    let customers: i64 = tuples.iter().map(|t| t.customers as i64).sum::<i64>() + nulls.iter().sum::<i64>();
    if customers == 0 {
        return Err(FeatureError::Empty { view: view.to_string() }.into());
    }
    if let Some(j) = non_finite.iter().position(|&c| c > 0) {
        return Err(FeatureError::NonFinite { view: view.to_string(), column: SUMMARY_COLUMNS[j].to_string(), count: non_finite[j] as usize }.into());
    }
    if m_bad > 0 {
        return Err(FeatureError::NonFinite { view: view.to_string(), column: SUMMARY_COLUMNS[3].to_string(), count: m_bad as usize }.into());
    }
    if null_ids > 0 {
        return Err(FeatureError::Nulls { view: view.to_string(), column: spec.id.clone(), count: null_ids as usize }.into());
    }
    if let Some(k) = z_non_finite.iter().position(|&c| c > 0) {
        return Err(FeatureError::NonFinite { view: view.to_string(), column: covariate_columns[k].clone(), count: z_non_finite[k] as usize }.into());
    }
    if let Some(k) = z_nulls.iter().position(|&c| c > 0) {
        return Err(FeatureError::Nulls { view: view.to_string(), column: covariate_columns[k].clone(), count: z_nulls[k] as usize }.into());
    }
    duplicate?;
    if let Some(j) = nulls.iter().position(|&c| c > 0) {
        return Err(FeatureError::Nulls { view: view.to_string(), column: SUMMARY_COLUMNS[j].to_string(), count: nulls[j] as usize }.into());
    }
    if m_nulls > 0 {
        return Err(FeatureError::Nulls { view: view.to_string(), column: SUMMARY_COLUMNS[3].to_string(), count: m_nulls as usize }.into());
    }
    if broken > 0 {
        return Err(first_broken(ctx, spec).await?);
    }
    let repeat_buyers: u64 = tuples.iter().filter(|t| t.frequency > 0.0).map(|t| t.customers).sum();
    let (repeat_frequency, repeat_monetary) = match repeat? {
        Some(rows) => rows,
        None => repeat_rows(ctx, spec, RepeatRows::Sample { repeat_buyers, fit_sample }).await?.expect("a sample has no bound"),
    };
    Ok(FitInput { tuples, covariates: tuple_z, holdout: with_calibration.then_some(clv::group(holdout)), repeat_frequency, repeat_monetary, repeat_buyers })
}

/// Gamma-Gamma rows [`fit_input`] reads alongside the tuples, before it knows how many repeat
/// buyers there are: up to 2M (32 MB), so a larger view costs a fraction of a scan more.
const EAGER_REPEAT_ROWS: u64 = 1 << 21;

/// The models' rules on the summary columns (x, tx, t, m) as a SQL condition each row must
/// meet, the rules [`Summary::check`] holds rows to (rows with NULLs are reported by the NULL
/// checks, which come first).
fn summary_rules(discrete: bool) -> String {
    let discrete = if discrete { " AND tx = floor(tx) AND t = floor(t) AND x <= tx" } else { "" };
    format!("x >= 0 AND x = floor(x) AND tx >= 0 AND tx <= t AND (x > 0 OR tx = 0) AND (x = 0 OR tx > 0) AND m >= 0 AND (x = 0 OR m > 0){discrete}")
}

/// `[clv] tracking`: the repeat purchase days in (`cal_end`, `end`] of the customers whose
/// first purchase day is on or before `cal_end`, per day after `cal_end` (1 … ), counted as
/// the summary counts them: a customer's purchases on one day are one.
pub(super) async fn purchases_after(
    ctx: &SessionContext,
    spec: &ClvSpec,
    tracking: &clv::Tracking,
    cal_end: chrono::NaiveDate,
    end: chrono::NaiveDate,
) -> Result<Vec<(u32, f64)>, Error> {
    let sql = format!(
        "WITH p AS (SELECT DISTINCT {id} AS id, CAST({date} AS DATE) AS day FROM {view} WHERE {id} IS NOT NULL AND {date} IS NOT NULL), \
         known AS (SELECT id FROM p GROUP BY id HAVING min(day) <= DATE '{cal_end}') \
         SELECT CAST(p.day - DATE '{cal_end}' AS DOUBLE) AS d, CAST(count(*) AS DOUBLE) AS n \
         FROM p JOIN known k ON k.id = p.id WHERE p.day > DATE '{cal_end}' AND p.day <= DATE '{end}' GROUP BY p.day",
        id = quote(&spec.id),
        date = quote(&tracking.date),
        view = quote(&tracking.view),
    );
    let mut out = Vec::new();
    for b in collect(ctx, &tracking.view, &sql).await? {
        out.extend(f64s(&b, "d").into_iter().zip(f64s(&b, "n")).filter_map(|(d, n)| Some((d? as u32, n?))));
    }
    out.sort_unstable_by_key(|p| p.0);
    Ok(out)
}

fn cal(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = b.column_by_name(name).expect("selected");
    if c.data_type() == &DataType::Float64 { f64s(b, name) } else { vec![None; c.len()] }
}

fn cast_i64(c: &datafusion::arrow::array::ArrayRef) -> Vec<i64> {
    let c = datafusion::arrow::compute::cast(c, &DataType::Int64).expect("integers cast to BIGINT");
    c.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0)).collect()
}

/// The first customer (by id) breaking the models' input rules, in [`Summary::check`]'s words.
async fn first_broken(ctx: &SessionContext, spec: &ClvSpec) -> Result<Error, Error> {
    // Ordered by the id as the view types it (as the customers were loaded before), not as text.
    let sql = format!(
        "{} SELECT CAST(id AS VARCHAR) AS id_text, x, tx, t, m FROM s WHERE NOT ({}) ORDER BY id LIMIT 1",
        summary_cte(spec, false),
        summary_rules(spec.model.discrete())
    );
    let batches = collect(ctx, &spec.view, &sql).await?;
    // The checks counted a row breaking the rules; should the two queries ever
    // disagree, the run still fails with a plain line rather than a panic.
    let unnamed = || clv::ClvError::Input(format!("view '{}': a customer breaks the summary rules", spec.view));
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(unnamed().into()) };
    let v = |name| f64s(b, name)[0].unwrap_or(f64::NAN);
    let s = Summary { frequency: vec![v("x")], recency: vec![v("tx")], tenure: vec![v("t")], monetary_value: vec![v("m")] };
    let id = id_array(b.column(0))?.value(0).to_string();
    Ok(match s.check(spec.model.discrete(), &|_| id.clone()) {
        Err(clv::ClvError::Input(msg)) => clv::ClvError::Input(format!("view '{}': {msg}", spec.view)),
        Err(other) => other,
        Ok(()) => unnamed(),
    }
    .into())
}

/// Which repeat buyers [`repeat_rows`] reads.
#[derive(Debug, Clone, Copy)]
enum RepeatRows {
    /// Every one, unless more than this many arrive (then none: the caller samples).
    AllUpTo(u64),
    /// About `fit_sample` of the view's `repeat_buyers` (every one when they are fewer).
    Sample { repeat_buyers: u64, fit_sample: u64 },
}

/// Repeat buyers' (x, m̄), sorted so the fit does not depend on the order rows arrive in:
/// every one, or about `fit_sample` of them, those whose salted id hash falls below a
/// threshold (a Bernoulli sample: the same customers on every run over the same ids, and a
/// filter the engine streams, where an exact-size `ORDER BY hash LIMIT n` would hold n rows
/// per partition in memory that cannot spill). None when more than `AllUpTo`'s bound arrive.
async fn repeat_rows(ctx: &SessionContext, spec: &ClvSpec, which: RepeatRows) -> Result<Option<(Vec<f64>, Vec<f64>)>, Error> {
    let (pick, cap) = match which {
        RepeatRows::AllUpTo(cap) => (String::new(), cap),
        RepeatRows::Sample { repeat_buyers, fit_sample } => match sample_threshold(repeat_buyers, fit_sample) {
            Some(below) => (format!("AND md5(concat(CAST(id AS VARCHAR), '{SAMPLE_SALT}')) < '{below}'"), u64::MAX),
            None => (String::new(), u64::MAX),
        },
    };
    let sql = format!("{} SELECT x, m FROM s WHERE x > 0 {pick}", summary_cte(spec, false));
    let mut rows: Vec<(f64, f64)> = Vec::new();
    for_each_batch(ctx, &spec.view, &sql, |_| {}, |b| {
        let (x, m) = (f64s(b, "x"), f64s(b, "m"));
        rows.extend(x.iter().zip(&m).map(|(x, m)| (x.unwrap_or(f64::NAN), m.unwrap_or(f64::NAN))));
        Ok(rows.len() as u64 <= cap)
    })
    .await?;
    if rows.len() as u64 > cap {
        return Ok(None);
    }
    // On every core: equal pairs are the same bits, so the order is the same either way.
    rayon::slice::ParallelSliceMut::par_sort_unstable_by(&mut rows[..], |a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    Ok(Some(rows.into_iter().unzip()))
}

/// The hex prefix an md5 (lower-case hex, uniform) must sort below for a row to be kept with
/// probability `fit_sample / rows`; `None` keeps every row.
fn sample_threshold(rows: u64, fit_sample: u64) -> Option<String> {
    (rows > fit_sample).then(|| format!("{:08x}", ((fit_sample as f64 / rows as f64) * 4_294_967_296.0).ceil() as u64))
}

/// The fitted models and the settings the predictions use.
pub(super) struct Scoring {
    pub(super) bgnbd: clv::PurchaseParams,
    /// The purchase model's Laplace covariance (of its log-parameters), for the intervals.
    pub(super) covariance: [[f64; 4]; 4],
    /// The covariates' effects, when the model has covariates: `bgnbd` and `covariance` are
    /// then a customer's whose covariates are all 0, and each customer's come from theirs.
    pub(super) effects: Option<clv::Effects>,
    pub(super) gamma_gamma: GammaGammaParams,
    /// `clv_simple`'s lifetime, in the model's time unit.
    pub(super) lifetime_periods: f64,
}

/// `customer_clv` as a plan over the summary view: the summary columns as DOUBLE, the model's
/// predictions from one `*_customer_values` call per customer (with `intervals`,
/// `*_customer_values_with_interval`: `purchases_p10` … `purchases_p90` too) with the
/// parameters as literals (with covariates, expressions of them: [`Scoring::params`]) and
/// `clv_simple` ([`with_decile`] adds the CLV decile, [`clv_intervals`] the CLV's). Each value
/// is the driver formulas' to the bit (`functions` calls them).
pub(super) fn scored(ctx: &SessionContext, df: DataFrame, spec: &ClvSpec, m: &Scoring, intervals: bool) -> datafusion::error::Result<DataFrame> {
    let g = m.gamma_gamma;
    let (x, tx, t, mv) = (col("frequency"), col("recency"), col("tenure"), col("monetary_value"));
    let per_month = spec.time_unit.per_month();
    let mut args = m.params();
    args.extend([lit(g.p), lit(g.q), lit(g.gamma)]);
    args.extend([lit(spec.margin), lit(spec.horizon_months as f64), lit(spec.monthly_discount_rate), lit(per_month)]);
    if intervals {
        args.extend(m.covariance());
    }
    args.extend([x.clone(), tx.clone(), t.clone(), mv.clone()]);
    let function = format!("{}_customer_values{}", m.bgnbd.model().as_str(), if intervals { "_with_interval" } else { "" });
    let values = ctx.udf(&function)?.call(args);
    // Simple CLV = average order value × purchases per period × lifetime × margin, as
    // `clv::predict` computes it.
    let aov = when(x.clone().gt(lit(0.0)), mv.clone()).otherwise(lit(g.population_mean()))?;
    let rate = when(t.clone().gt(lit(0.0)), x.clone() / t.clone()).otherwise(lit(0.0))?;
    let mut columns = vec![ident(&spec.id)];
    columns.extend(SUMMARY_COLUMNS.iter().map(|c| cast(ident(*c), DataType::Float64).alias(*c)));
    let covariates = spec.covariates.columns();
    columns.extend(covariates.iter().enumerate().map(|(k, c)| cast(ident(c), DataType::Float64).alias(z_name(k))));
    // The id in the type it is published in: cast after the decile's window, it would hide the
    // window's row order from the writer, which would sort every row again.
    let df = crate::publish::bi_types(df.select(columns)?)?;
    let mut with_values = all_but(&df, &[]);
    with_values.push(values.alias(VALUES));
    // The struct's fields as columns by an unnest, not `get_field`: DataFusion 55 pushes field
    // reads towards the scan (`push_down_leaf_projections`), which fails on this plan
    // ("ambiguous" view-qualified and plain id), and the call stays one per customer.
    let df = df.select(with_values)?.unnest_columns(&[VALUES])?;
    let field = |name: &str| ident(format!("{VALUES}.{name}")).alias(name);
    let mut scored = vec![ident(&spec.id), x.clone(), tx.clone(), t.clone(), mv.clone()];
    scored.extend(CUSTOMER_VALUES.map(field));
    scored.push((aov * rate * lit(m.lifetime_periods) * lit(spec.margin)).alias("clv_simple"));
    if intervals {
        scored.extend(CUSTOMER_INTERVAL.map(field));
    }
    // Carried to the intervals' per-customer covariance; [`published`] drops them.
    scored.extend((0..covariates.len()).map(z));
    df.select(scored)
}

/// The plan's column holding `*_customer_values`' struct (not published).
const VALUES: &str = "__values";

/// The plan's name for covariate `k`: hidden from the published table ([`published`]).
fn z_name(k: usize) -> String {
    format!("__z{k}")
}

fn z(k: usize) -> Expr {
    col(z_name(k))
}

/// `customer_clv` as published: without the covariates the plan carries.
pub(super) fn published(df: DataFrame) -> datafusion::error::Result<DataFrame> {
    let columns: Vec<Expr> = df.schema().fields().iter().filter(|f| !f.name().starts_with("__z")).map(|f| ident(f.name())).collect();
    // The frame's own settings (`with_options`):
    // - The decile's window leaves one stream in the table's order. DataFusion would deal it
    //   round robin to every core for the light projection above (the clv quantiles), then
    //   merge it back in order for the writer: a second merge of every column, on one core,
    //   that cost more than it saved.
    // - Twice as many partitions as cores for the scan and the model functions: a file's row
    //   groups are dealt whole to the partitions, so two of them got 4 and 3 of a summary's 7,
    //   and one core idled while the other finished; with four, the cores share them evenly.
    Ok(with_options(df.select(columns)?, |options| {
        options.optimizer.enable_round_robin_repartition = false;
        options.execution.target_partitions *= 2;
    }))
}

impl Scoring {
    /// The purchase model's parameters as the functions take them: literals, or with
    /// covariates each customer's θ_i = θ · exp(Σ sign · γ · z) (`clv::Effects::params_at`).
    fn params(&self) -> Vec<Expr> {
        let values = self.bgnbd.values();
        (0..4)
            .map(|j| {
                let shift = self.effects.iter().flat_map(|e| &e.coefficients).filter(|c| c.parameter == j).map(|c| lit(c.sign * c.value) * z(c.column)).reduce(|a, b| a + b);
                match shift {
                    Some(shift) => lit(values[j]) * exp(shift),
                    None => lit(values[j]),
                }
            })
            .collect()
    }

    /// The upper triangle of each customer's log-parameter covariance, row by row: literals,
    /// or with covariates M Σ Mᵀ as a polynomial in the covariates (`clv::Effects::laplace_at`).
    fn covariance(&self) -> Vec<Expr> {
        let upper = (0..4).flat_map(|i| (i..4).map(move |j| (i, j)));
        let Some((e, full)) = self.effects.as_ref().and_then(|e| Some((e, e.covariance.as_ref()?))) else {
            return upper.map(|(i, j)| lit(self.covariance[i][j])).collect();
        };
        // (coefficient index, sign · z) of those shifting parameter j.
        let on = |j: usize| e.coefficients.iter().enumerate().filter(move |(_, c)| c.parameter == j).map(|(k, c)| (4 + k, c.sign, z(c.column)));
        upper
            .map(|(i, j)| {
                let mut sum = lit(full[[i, j]]);
                for (k, sign, zk) in on(j) {
                    sum = sum + lit(sign * full[[i, k]]) * zk;
                }
                for (k, sign, zk) in on(i) {
                    sum = sum + lit(sign * full[[k, j]]) * zk.clone();
                    for (l, sign_l, zl) in on(j) {
                        sum = sum + lit(sign * sign_l * full[[k, l]]) * zk.clone() * zl;
                    }
                }
                sum
            })
            .collect()
    }
}

/// `customer_clv`'s row order: by CLV, then id. The decile's window ranks the rows in this
/// order, so the writer keeps it instead of sorting every row a second time (by id).
pub(super) fn clv_order(id: &str) -> Vec<String> {
    vec!["clv".into(), id.into()]
}

/// [`scored`] with `clv_decile` after `clv_simple`: 1 + ⌊10 · rank / customers⌋, rank from 0
/// in [`clv_order`] (ascending, as the writer sorts: NULLs first, though none reach here).
pub(super) fn with_decile(df: DataFrame, id: &str, customers: u64) -> datafusion::error::Result<DataFrame> {
    let order = clv_order(id).iter().map(|c| ident(c).sort(true, true)).collect();
    let rank = row_number().order_by(order).build()?;
    let df = df.window(vec![rank.alias("__rank")])?;
    let mut columns = all_but(&df, &["__rank"]);
    let rank0 = cast(col("__rank"), DataType::Int64) - lit(1i64);
    let decile = cast(rank0 * lit(10i64) / lit(customers.max(1) as i64) + lit(1i64), DataType::Int32).alias("clv_decile");
    let at = df.schema().index_of_column_by_name(None, "clv_simple").map_or(columns.len(), |i| i + 1);
    columns.insert(at, decile);
    df.select(columns)
}

/// `df`'s columns but `except`, in order.
fn all_but(df: &DataFrame, except: &[&str]) -> Vec<Expr> {
    df.schema().fields().iter().filter(|f| !except.contains(&f.name().as_str())).map(|f| ident(f.name())).collect()
}

/// [`scored`]'s (with intervals) plan with `clv_p10` … `clv_p90` after its columns.
pub(super) fn clv_intervals(df: DataFrame) -> datafusion::error::Result<DataFrame> {
    // CLV's quantiles: clv / expected_purchases is margin × expected value per purchase × the
    // horizon's mean discount factor (the denominators cancel), the same for every count, so
    // it carries the purchase count's quantiles over (`clv::predictive`).
    let per_purchase = when(col("expected_purchases").gt(lit(0.0)), col("clv") / col("expected_purchases")).otherwise(lit(0.0))?;
    let mut with = all_but(&df, &[]);
    with.extend(["p10", "p50", "p90"].map(|q| (col(format!("purchases_{q}")) * per_purchase.clone()).alias(format!("clv_{q}"))));
    df.select(with)
}

/// Per-customer ids, CLV and P(alive) from a [`scored`] plan, for the segment summary.
pub(super) async fn clv_and_p_alive(df: DataFrame, id: &str) -> Result<(StringArray, Vec<f64>, Vec<f64>), Error> {
    let q = |e| Error::query("customer_clv", e);
    let batches = df.select(vec![cast(ident(id), DataType::Utf8).alias("id"), col("clv"), col("p_alive")]).map_err(q)?.collect().await.map_err(q)?;
    let mut ids = Vec::with_capacity(batches.len());
    for b in &batches {
        ids.push(id_array(b.column(0))?);
    }
    let ids = StringArray::from_iter(ids.iter().flat_map(|a| a.iter()));
    let values = |name: &str| batches.iter().flat_map(|b| f64s(b, name)).map(|v| v.unwrap_or(f64::NAN)).collect();
    Ok((ids, values("clv"), values("p_alive")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_threshold_keeps_the_asked_share_of_hashes() {
        assert_eq!(sample_threshold(10, 10), None);
        assert_eq!(sample_threshold(4, 1).as_deref(), Some("40000000"));
        assert_eq!(sample_threshold(3_000_000, 1_000_000).as_deref(), Some("55555556"));
        // Hex digits sort as their values, so a string comparison is a numeric one.
        let below = sample_threshold(16, 1).unwrap();
        assert!("0fffffff" < below.as_str() && below.as_str() <= "10000000");
    }
}
