//! Synthetic e-commerce data with known ground truth.
//!
//! Each customer belongs to a [`Persona`] (drawn by its share) whose parameters drive the
//! behavioural model, per customer (time in days from `start`):
//! 1. Sign-up on a day drawn as `H · U^signup_power` (below 1: later sign-ups more likely);
//!    with probability `purchase_prob` the customer buys, the first purchase `Exp(mean 5 days)`
//!    later.
//! 2. Repeat purchases follow BG/NBD (Fader, Hardie & Lee 2005): a Poisson process with rate
//!    λ ~ Gamma(r, α) per week, and after each repeat purchase the customer drops out with
//!    probability p ~ Beta(a, b).
//! 3. Order values follow Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"):
//!    z ~ Gamma(shape p_spend, rate ν) with ν ~ Gamma(shape q, rate γ), so E[z] = p·γ/(q − 1).
//! 4. Each order's channel from the persona's channel mix (or, in the single population, a
//!    preferred channel for 70 % of orders).
//! 5. Sessions arrive at rate `sessions_per_purchase · λ + sessions_base` per day while the
//!    customer is alive and for an `Exp(mean 45 days)` tail after dropping out.
//!
//! [`TruthParams::new`] draws from five personas ([`personas`]) that overlap on every single
//! feature, so segmentation has a truth to recover; [`TruthParams::single`] is one population
//! (BG/NBD and Gamma-Gamma parameters shared by everyone), for checking the CLV fits.
//!
//! Every customer has its own RNG stream derived from the seed, so the output depends only on
//! the parameters. [`generate`] is pure; [`write_dataset`] writes the Parquet files,
//! drawing customers in parallel chunks so memory stays bounded at any size (the rows are the
//! same as one [`generate`] call, whatever the thread count).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use rand::Rng;
use rand::distributions::WeightedIndex;
use rand_distr::{Beta, Distribution, Exp, Gamma, LogNormal, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::Serialize;

/// Parameters of the generator: the ground truth later stages are checked against.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TruthParams {
    pub customers: usize,
    pub seed: u64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The populations customers are drawn from; their shares sum to 1.
    pub personas: Vec<Persona>,
    /// How a customer's acquisition source shifts the purchase and drop-out rates (none by
    /// default): the truth a covariate fit (`[clv] covariates`) recovers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<SourceEffect>,
}

/// The covariate effects of one acquisition source on BG/NBD's rates, as `clv::covariates`
/// parametrises them: a customer acquired through `source` has α · exp(−purchase),
/// a · exp(dropout_a) and b · exp(dropout_b).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceEffect {
    pub source: &'static str,
    pub purchase: f64,
    pub dropout_a: f64,
    pub dropout_b: f64,
}

/// One population of customers and the parameters of its behaviour.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Persona {
    pub name: &'static str,
    /// Share of the customers.
    pub share: f64,
    /// Probability that a customer buys at all.
    pub purchase_prob: f64,
    /// BG/NBD, with time in weeks.
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    /// Gamma-Gamma.
    pub p_spend: f64,
    pub q: f64,
    pub gamma: f64,
    /// Each order's channel by these weights (web, app, store); `None`: a preferred channel
    /// drawn uniformly and used for 70 % of orders, the rest uniform.
    pub channels: Option<[f64; 3]>,
    /// Sessions per day while active: `sessions_per_purchase · λ_day + sessions_base`.
    pub sessions_per_purchase: f64,
    pub sessions_base: f64,
    /// Sign-up day `H · U^signup_power`.
    pub signup_power: f64,
}

impl Persona {
    /// The single population: everyone shares one BG/NBD and one Gamma-Gamma prior.
    pub fn everyone() -> Persona {
        Persona {
            name: "everyone",
            share: 1.0,
            purchase_prob: 0.85,
            r: 0.9,
            alpha: 6.0,
            a: 0.6,
            b: 3.0,
            p_spend: 6.0,
            q: 3.5,
            gamma: 20.0,
            channels: None,
            sessions_per_purchase: 2.0,
            sessions_base: 0.01,
            signup_power: 0.7,
        }
    }
}

/// The five personas of the default data. Each overlaps another on every single feature
/// (recency, frequency, spend, sessions, app share); together they separate.
pub fn personas() -> Vec<Persona> {
    let base = Persona { signup_power: 3.0, ..Persona::everyone() };
    vec![
        // Loyal app-first regulars: buy about every two weeks, rarely leave, live in the app.
        Persona {
            name: "app regulars",
            share: 0.22,
            purchase_prob: 0.95,
            r: 12.0,
            alpha: 24.0,
            a: 0.2,
            b: 200.0,
            channels: Some([0.1, 0.85, 0.05]),
            sessions_per_purchase: 3.0,
            sessions_base: 0.03,
            ..base.clone()
        },
        // Bargain hunters: small baskets every few weeks, on the web.
        Persona {
            name: "bargain hunters",
            share: 0.26,
            purchase_prob: 0.9,
            r: 12.0,
            alpha: 30.0,
            a: 0.3,
            b: 150.0,
            p_spend: 6.0,
            q: 6.0,
            gamma: 20.0,
            channels: Some([0.85, 0.1, 0.05]),
            sessions_per_purchase: 1.0,
            sessions_base: 0.05,
            ..base.clone()
        },
        // High-value store customers: big baskets in the shop, hardly ever online.
        Persona {
            name: "store big spenders",
            share: 0.16,
            purchase_prob: 0.95,
            r: 12.0,
            alpha: 160.0,
            a: 0.3,
            b: 40.0,
            p_spend: 6.0,
            q: 6.0,
            gamma: 100.0,
            channels: Some([0.05, 0.05, 0.9]),
            sessions_per_purchase: 0.3,
            sessions_base: 0.002,
            ..base.clone()
        },
        // Browsers who rarely buy: online most days, an order now and then.
        Persona {
            name: "browsers",
            share: 0.16,
            purchase_prob: 0.7,
            r: 12.0,
            alpha: 400.0,
            a: 0.3,
            b: 40.0,
            channels: Some([0.75, 0.2, 0.05]),
            sessions_per_purchase: 2.0,
            sessions_base: 0.6,
            ..base.clone()
        },
        // Lapsed one-timers: signed up early, bought once or twice, gone.
        Persona {
            name: "lapsed one-timers",
            share: 0.2,
            purchase_prob: 0.95,
            r: 4.0,
            alpha: 16.0,
            a: 6.0,
            b: 1.0,
            channels: Some([0.9, 0.05, 0.05]),
            sessions_per_purchase: 2.0,
            sessions_base: 0.02,
            signup_power: 3.0,
            ..base
        },
    ]
}

impl TruthParams {
    /// Customers drawn from the five [`personas`].
    pub fn new(customers: usize, seed: u64) -> TruthParams {
        TruthParams { personas: personas(), ..TruthParams::single(customers, seed) }
    }

    /// Customers drawn from one population ([`Persona::everyone`]) whose acquisition source
    /// shifts their rates: paid search buys more and leaves sooner, referrals buy less and
    /// stay.
    pub fn with_covariates(customers: usize, seed: u64) -> TruthParams {
        let effects = vec![
            SourceEffect { source: "paid_search", purchase: 0.6, dropout_a: 0.5, dropout_b: -0.4 },
            SourceEffect { source: "referral", purchase: -0.4, dropout_a: -0.3, dropout_b: 0.3 },
        ];
        TruthParams { effects, ..TruthParams::single(customers, seed) }
    }

    /// Customers drawn from one population ([`Persona::everyone`]).
    pub fn single(customers: usize, seed: u64) -> TruthParams {
        TruthParams {
            customers,
            seed,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date"),
            end: NaiveDate::from_ymd_opt(2025, 12, 31).expect("valid date"),
            personas: vec![Persona::everyone()],
            effects: Vec::new(),
        }
    }
}

/// The generated tables plus per-customer truth.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub params: TruthParams,
    pub customers: RecordBatch,
    pub orders: RecordBatch,
    pub sessions: RecordBatch,
    pub truth: RecordBatch,
}

const REGIONS: &[&str] = &["north", "south", "east", "west"];
const CITY_TIERS: &[&str] = &["tier1", "tier2", "tier3"];
const ACQUISITION: &[&str] = &["organic", "paid_search", "social", "referral", "email"];
const AGE_BANDS: &[&str] = &["18-24", "25-34", "35-44", "45-54", "55+"];
const CHANNELS: &[&str] = &["web", "app", "store"];
const CATEGORIES: &[&str] = &["electronics", "fashion", "home", "beauty", "grocery", "sports"];

#[derive(Default)]
struct Columns {
    c_id: Vec<String>,
    c_signup: Vec<i32>,
    c_region: Vec<&'static str>,
    c_tier: Vec<&'static str>,
    c_acq: Vec<&'static str>,
    c_age: Vec<&'static str>,
    o_id: Vec<i64>,
    o_cust: Vec<String>,
    o_ts: Vec<i64>,
    o_amount: Vec<f64>,
    o_qty: Vec<i32>,
    o_channel: Vec<&'static str>,
    o_cat: Vec<&'static str>,
    s_cust: Vec<String>,
    s_ts: Vec<i64>,
    s_pv: Vec<i32>,
    s_dur: Vec<i32>,
    t_persona: Vec<&'static str>,
    t_lambda: Vec<f64>,
    t_p: Vec<f64>,
    t_nu: Vec<f64>,
    t_buyer: Vec<bool>,
    t_alive: Vec<bool>,
}

fn pick<R: Rng>(rng: &mut R, xs: &[&'static str]) -> &'static str {
    xs[rng.gen_range(0..xs.len())]
}

/// Draws the dataset. Pure and deterministic in `params`.
pub fn generate(params: &TruthParams) -> Dataset {
    build(params.clone(), draw(params, 0..params.customers))
}

/// A persona's distributions, built once per draw.
struct Drawn<'a> {
    persona: &'a Persona,
    lambda: Gamma<f64>,
    p: Beta<f64>,
    nu: Gamma<f64>,
    channel: Option<WeightedIndex<f64>>,
}

impl<'a> Drawn<'a> {
    fn new(persona: &'a Persona) -> Drawn<'a> {
        Drawn {
            persona,
            lambda: Gamma::new(persona.r, 1.0 / persona.alpha).expect("r, alpha > 0"),
            p: Beta::new(persona.a, persona.b).expect("a, b > 0"),
            nu: Gamma::new(persona.q, 1.0 / persona.gamma).expect("q, gamma > 0"),
            channel: persona.channels.map(|w| WeightedIndex::new(w).expect("channel weights")),
        }
    }
}

/// Draws customers `range`; their order ids count from 1 within the range.
fn draw(params: &TruthParams, range: Range<usize>) -> Columns {
    let epoch = params.start.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
    let start_days = params.start.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days();
    let horizon = (params.end - params.start).num_days() as f64 + 1.0;
    let personas: Vec<Drawn> = params.personas.iter().map(Drawn::new).collect();
    let shares = WeightedIndex::new(params.personas.iter().map(|p| p.share)).expect("persona shares");
    let first_delay = Exp::new(1.0 / 5.0).expect("rate > 0");
    let tail = Exp::new(1.0 / 45.0).expect("rate > 0");
    let pageviews = Poisson::new(4.0).expect("rate > 0");
    let qty = Poisson::new(0.7).expect("rate > 0");
    let secs_per_page = LogNormal::new(40f64.ln(), 0.6).expect("sigma > 0");

    let mut c = Columns::default();
    let mut order_id = 0i64;
    for i in range {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // One population draws nothing here, so its rows are those of the generator before personas.
        let which = if personas.len() == 1 { 0 } else { shares.sample(&mut rng) };
        let d = &personas[which];
        let persona = d.persona;
        let id = format!("C{:07}", i + 1);
        let signup = (horizon * rng.r#gen::<f64>().powf(persona.signup_power)).floor().min(horizon - 1.0);
        let acq = pick(&mut rng, ACQUISITION);
        c.c_id.push(id.clone());
        c.c_signup.push((start_days + signup as i64) as i32);
        c.c_region.push(pick(&mut rng, REGIONS));
        c.c_tier.push(pick(&mut rng, CITY_TIERS));
        c.c_acq.push(acq);
        c.c_age.push(pick(&mut rng, AGE_BANDS));

        // λ is drawn per week (the papers' unit) and used per day. A source's effect scales
        // λ's Gamma by exp(purchase) (α · exp(−purchase)) and draws p from its own Beta.
        let effect = params.effects.iter().find(|e| e.source == acq);
        let lambda_week: f64 = d.lambda.sample(&mut rng) * effect.map_or(1.0, |e| e.purchase.exp());
        let lambda_day = lambda_week / 7.0;
        let p: f64 = match effect {
            Some(e) => Beta::new(persona.a * e.dropout_a.exp(), persona.b * e.dropout_b.exp()).expect("a, b > 0").sample(&mut rng),
            None => d.p.sample(&mut rng),
        };
        let nu: f64 = d.nu.sample(&mut rng);
        let spend = Gamma::new(persona.p_spend, 1.0 / nu).expect("nu > 0");
        let night_owl = rng.gen_bool(0.15);
        let pref_channel = pick(&mut rng, CHANNELS);
        let pref_category = pick(&mut rng, CATEGORIES);
        let buyer = rng.gen_bool(persona.purchase_prob);

        let mut purchase_days = Vec::new();
        let mut alive = true;
        let mut active_until = horizon;
        if buyer {
            let t0 = signup + first_delay.sample(&mut rng);
            if t0 < horizon {
                purchase_days.push(t0);
                let gap = Exp::new(lambda_day.max(1e-12)).expect("rate > 0");
                let mut t = t0;
                loop {
                    t += gap.sample(&mut rng);
                    if t >= horizon {
                        break;
                    }
                    purchase_days.push(t);
                    // BG/NBD: drop-out is possible after each repeat purchase.
                    if rng.gen_bool(p) {
                        alive = false;
                        active_until = t;
                        break;
                    }
                }
            }
        } else {
            active_until = signup;
        }
        for &day in &purchase_days {
            order_id += 1;
            let ts = epoch + micros_in_day(&mut rng, day, night_owl);
            let amount: f64 = spend.sample(&mut rng);
            c.o_id.push(order_id);
            c.o_cust.push(id.clone());
            c.o_ts.push(ts);
            c.o_amount.push(((amount * 100.0).round() / 100.0).max(1.0));
            c.o_qty.push(1 + qty.sample(&mut rng) as i32);
            let channel = match &d.channel {
                Some(w) => CHANNELS[w.sample(&mut rng)],
                None if rng.gen_bool(0.7) => pref_channel,
                None => pick(&mut rng, CHANNELS),
            };
            c.o_channel.push(channel);
            c.o_cat.push(if rng.gen_bool(0.5) { pref_category } else { pick(&mut rng, CATEGORIES) });
        }

        // Sessions: while active, then a browsing tail after the last activity.
        let session_rate = persona.sessions_per_purchase * lambda_day + persona.sessions_base;
        let session_end = (active_until + tail.sample(&mut rng)).min(horizon);
        let gap = Exp::new(session_rate).expect("rate > 0");
        let mut t = signup;
        loop {
            t += gap.sample(&mut rng);
            if t >= session_end {
                break;
            }
            let pv = 1 + pageviews.sample(&mut rng) as i32;
            let secs: f64 = secs_per_page.sample(&mut rng);
            c.s_cust.push(id.clone());
            c.s_ts.push(epoch + micros_in_day(&mut rng, t, night_owl));
            c.s_pv.push(pv);
            c.s_dur.push((secs * pv as f64).round().min(86_400.0) as i32);
        }

        c.t_persona.push(persona.name);
        c.t_lambda.push(lambda_week);
        c.t_p.push(p);
        c.t_nu.push(nu);
        c.t_buyer.push(!purchase_days.is_empty());
        c.t_alive.push(alive);
    }
    c
}

/// Microseconds from `start` to a time on day `floor(day)`; night owls act 20:00–02:00 (the
/// small hours on the same calendar day, so nothing spills past the end date).
fn micros_in_day<R: Rng>(rng: &mut R, day: f64, night_owl: bool) -> i64 {
    let hour = if night_owl { (20.0 + 6.0 * rng.r#gen::<f64>()) % 24.0 } else { 8.0 + 12.0 * rng.r#gen::<f64>() };
    let secs = day.floor() * 86_400.0 + (hour * 3600.0).floor();
    secs as i64 * 1_000_000
}

fn utc_micros(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

fn strs(v: Vec<&'static str>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn batch(fields: Vec<(&str, DataType)>, cols: Vec<ArrayRef>) -> RecordBatch {
    let schema = Schema::new(fields.into_iter().map(|(n, t)| Field::new(n, t, false)).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
}

fn build(params: TruthParams, c: Columns) -> Dataset {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let customers = batch(
        vec![
            ("customer_id", DataType::Utf8),
            ("signup_date", DataType::Date32),
            ("region", DataType::Utf8),
            ("city_tier", DataType::Utf8),
            ("acquisition_channel", DataType::Utf8),
            ("age_band", DataType::Utf8),
        ],
        vec![
            Arc::new(StringArray::from(c.c_id.clone())),
            Arc::new(Date32Array::from(c.c_signup)),
            strs(c.c_region),
            strs(c.c_tier),
            strs(c.c_acq),
            strs(c.c_age),
        ],
    );
    let orders = batch(
        vec![
            ("order_id", DataType::Int64),
            ("customer_id", DataType::Utf8),
            ("order_ts", ts.clone()),
            ("amount", DataType::Float64),
            ("quantity", DataType::Int32),
            ("channel", DataType::Utf8),
            ("category", DataType::Utf8),
        ],
        vec![
            Arc::new(Int64Array::from(c.o_id)),
            Arc::new(StringArray::from(c.o_cust)),
            utc_micros(c.o_ts),
            Arc::new(Float64Array::from(c.o_amount)),
            Arc::new(Int32Array::from(c.o_qty)),
            strs(c.o_channel),
            strs(c.o_cat),
        ],
    );
    let sessions = batch(
        vec![
            ("customer_id", DataType::Utf8),
            ("session_ts", ts),
            ("pageviews", DataType::Int32),
            ("duration_s", DataType::Int32),
        ],
        vec![
            Arc::new(StringArray::from(c.s_cust)),
            utc_micros(c.s_ts),
            Arc::new(Int32Array::from(c.s_pv)),
            Arc::new(Int32Array::from(c.s_dur)),
        ],
    );
    let truth = batch(
        vec![
            ("customer_id", DataType::Utf8),
            ("persona", DataType::Utf8),
            ("lambda_per_week", DataType::Float64),
            ("p_dropout", DataType::Float64),
            ("nu", DataType::Float64),
            ("buyer", DataType::Boolean),
            ("alive_at_end", DataType::Boolean),
        ],
        vec![
            Arc::new(StringArray::from(c.c_id)),
            strs(c.t_persona),
            Arc::new(Float64Array::from(c.t_lambda)),
            Arc::new(Float64Array::from(c.t_p)),
            Arc::new(Float64Array::from(c.t_nu)),
            Arc::new(BooleanArray::from(c.t_buyer)),
            Arc::new(BooleanArray::from(c.t_alive)),
        ],
    );
    Dataset {
        params,
        customers,
        orders,
        sessions,
        truth,
    }
}

/// Customers drawn per chunk: bounds memory (about 0.5M orders and 1.2M sessions per chunk).
const CHUNK: usize = 100_000;

/// Rows written per table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub customers: usize,
    pub orders: usize,
    pub sessions: usize,
}

/// Generates `params` and writes `<dir>/{customers,orders,sessions}/part-00000.parquet`,
/// `<dir>/truth/customers.parquet` and `<dir>/truth/params.json`.
///
/// Chunks of customers are drawn in parallel and written in order, with order ids shifted to
/// continue across chunks, so the files hold exactly the rows of [`generate`].
pub fn write_dataset(dir: &Path, params: &TruthParams) -> std::io::Result<Written> {
    write_chunks(dir, params, CHUNK)
}

fn write_chunks(dir: &Path, params: &TruthParams, chunk: usize) -> std::io::Result<Written> {
    use rayon::prelude::*;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(std::io::Error::other)?))
        // A fixed creator string keeps the files byte-identical across segvalue versions.
        .set_created_by("segvalue generate".into())
        .build();
    let chunks: Vec<Range<usize>> =
        (0..params.customers).step_by(chunk).map(|lo| lo..(lo + chunk).min(params.customers)).collect();
    let mut writers: Vec<ArrowWriter<std::fs::File>> = Vec::new();
    let mut written = Written::default();
    for wave in chunks.chunks(rayon::current_num_threads().max(1)) {
        let drawn: Vec<Columns> = wave.par_iter().map(|r| draw(params, r.clone())).collect();
        for mut c in drawn {
            let base = written.orders as i64;
            c.o_id.iter_mut().for_each(|id| *id += base);
            let ds = build(params.clone(), c);
            let tables = [("customers", &ds.customers), ("orders", &ds.orders), ("sessions", &ds.sessions), ("truth", &ds.truth)];
            if writers.is_empty() {
                for (table, batch) in tables {
                    let sub = dir.join(table);
                    std::fs::create_dir_all(&sub)?;
                    let name = if table == "truth" { "customers.parquet" } else { "part-00000.parquet" };
                    let file = std::fs::File::create(sub.join(name))?;
                    writers.push(ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).map_err(std::io::Error::other)?);
                }
            }
            for (w, (_, batch)) in writers.iter_mut().zip(tables) {
                w.write(batch).map_err(std::io::Error::other)?;
            }
            written.customers += ds.customers.num_rows();
            written.orders += ds.orders.num_rows();
            written.sessions += ds.sessions.num_rows();
        }
    }
    for w in writers {
        w.close().map_err(std::io::Error::other)?;
    }
    let json = serde_json::to_string_pretty(params).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("truth").join("params.json"), json + "\n")?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::TimestampMicrosecondType;

    fn to_datetime(micros: i64) -> Option<chrono::NaiveDateTime> {
        chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
    }

    #[test]
    fn chunked_files_hold_the_rows_of_one_draw() {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let params = TruthParams::new(250, 3);
        let dir = tempfile::tempdir().unwrap();
        let n = write_chunks(dir.path(), &params, 7).unwrap();
        let whole = generate(&params);
        for (table, expected) in [("customers", &whole.customers), ("orders", &whole.orders), ("sessions", &whole.sessions)] {
            let file = std::fs::File::open(dir.path().join(table).join("part-00000.parquet")).unwrap();
            let batches: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()).collect();
            let read = datafusion::arrow::compute::concat_batches(&expected.schema(), &batches).unwrap();
            assert_eq!(&read, expected, "{table}");
        }
        assert_eq!((n.customers, n.orders), (250, whole.orders.num_rows()));
    }

    #[test]
    fn same_seed_same_data_different_seed_different_data() {
        let a = generate(&TruthParams::new(200, 1));
        let b = generate(&TruthParams::new(200, 1));
        let c = generate(&TruthParams::new(200, 2));
        assert_eq!(a.orders, b.orders);
        assert_ne!(a.orders, c.orders);
    }

    #[test]
    fn nothing_after_the_end_date() {
        let ds = generate(&TruthParams::new(3000, 3));
        let end = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let ts = ds.orders.column(2).as_primitive::<TimestampMicrosecondType>();
        assert!(ts.values().iter().all(|&t| to_datetime(t).unwrap() < end));
        assert!(ts.len() > 3000, "expected repeat buying, got {} orders", ts.len());
    }

    #[test]
    fn customers_come_from_each_persona_by_its_share() {
        let params = TruthParams::new(20_000, 4);
        let ds = generate(&params);
        let persona = ds.truth.column_by_name("persona").unwrap().as_string::<i32>();
        for p in &params.personas {
            let share = persona.iter().filter(|v| *v == Some(p.name)).count() as f64 / 20_000.0;
            assert!((share - p.share).abs() < 0.015, "{}: {share} of the customers, {} wanted", p.name, p.share);
        }
        let single = generate(&TruthParams::single(2_000, 4));
        assert!(single.truth.column_by_name("persona").unwrap().as_string::<i32>().iter().all(|v| v == Some("everyone")));
    }

    #[test]
    fn mean_order_value_is_near_the_gamma_gamma_mean() {
        let params = TruthParams::single(3000, 5);
        let ds = generate(&params);
        let p = &params.personas[0];
        let amounts = ds.orders.column(3).as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let mean = amounts.values().iter().sum::<f64>() / amounts.len() as f64;
        // E[z] = p·γ/(q − 1) = 48; orders weight heavy buyers, so allow a wide band.
        let expected = p.p_spend * p.gamma / (p.q - 1.0);
        assert!((mean / expected - 1.0).abs() < 0.15, "mean {mean} vs {expected}");
    }
}
