//! CLV models against lifetimes 0.11.3 (fixture made by scripts/lifetimes_fixture.sh) and
//! against the generator's known parameters.

use segvalue::clv::{self, BgNbdParams, ClvSpec, GammaGammaParams, Summary, TimeUnit};
use serde_json::Value;

use crate::common::*;

fn fixture() -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/lifetimes_bgnbd_gg.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn spec(penalizer: f64) -> ClvSpec {
    ClvSpec {
        view: "s".into(),
        id: "id".into(),
        time_unit: TimeUnit::Weeks,
        horizon_months: 12,
        monthly_discount_rate: 0.01,
        margin: 1.0,
        holdout_days: None,
        penalizer,
        lifetime_periods: None,
    }
}

#[test]
fn fits_on_cdnow_equal_lifetimes_with_and_without_penalizer() {
    let f = fixture();
    let c = &f["cdnow"];
    let s = Summary {
        frequency: floats(&c["frequency"]),
        recency: floats(&c["recency"]),
        tenure: floats(&c["T"]),
        monetary_value: floats(&c["monetary_value"]),
    };
    for pen in ["0.0", "0.01"] {
        let r = clv::value(&s, &spec(pen.parse().unwrap())).unwrap();
        let want = &f["fits"][pen];
        let b = r.bgnbd.params;
        for (name, got) in [("r", b.r), ("alpha", b.alpha), ("a", b.a), ("b", b.b)] {
            let w = want["bgnbd"][name].as_f64().unwrap();
            assert!(rel(got, w) < 1e-4, "penalizer {pen}: BG/NBD {name} = {got}, lifetimes {w}");
        }
        let g = r.gamma_gamma.params;
        for (name, got) in [("p", g.p), ("q", g.q), ("v", g.gamma)] {
            let w = want["gamma_gamma"][name].as_f64().unwrap();
            assert!(rel(got, w) < 1e-4, "penalizer {pen}: Gamma-Gamma {name} = {got}, lifetimes {w}");
        }
    }
}

#[test]
fn per_customer_predictions_equal_lifetimes_to_1e6() {
    let f = fixture();
    let fit = &f["fits"]["0.0"];
    let b = BgNbdParams {
        r: fit["bgnbd"]["r"].as_f64().unwrap(),
        alpha: fit["bgnbd"]["alpha"].as_f64().unwrap(),
        a: fit["bgnbd"]["a"].as_f64().unwrap(),
        b: fit["bgnbd"]["b"].as_f64().unwrap(),
    };
    let g = GammaGammaParams {
        p: fit["gamma_gamma"]["p"].as_f64().unwrap(),
        q: fit["gamma_gamma"]["q"].as_f64().unwrap(),
        gamma: fit["gamma_gamma"]["v"].as_f64().unwrap(),
    };
    let c = &f["customers"];
    let (x, tx, t, m) = (floats(&c["frequency"]), floats(&c["recency"]), floats(&c["T"]), floats(&c["monetary_value"]));
    let col = |k: &str| floats(&c[k]);
    let (pa, e10, e52, ev, clv12) = (col("p_alive"), col("expected_10"), col("expected_52"), col("expected_avg_value"), col("clv_12m"));
    assert!(x.len() >= 3000);
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        let v = g.expected_avg_value(x[i], m[i]);
        let ours = [
            b.p_alive(x[i], tx[i], t[i]),
            b.expected_purchases(10.0, x[i], tx[i], t[i]),
            b.expected_purchases(52.0, x[i], tx[i], t[i]),
            v,
            clv::discounted_clv(&b, v, x[i], tx[i], t[i], &spec(0.0)),
        ];
        for (k, (o, w)) in ours.iter().zip([pa[i], e10[i], e52[i], ev[i], clv12[i]]).enumerate() {
            let e = rel(*o, w);
            worst = worst.max(e);
            assert!(e < 1e-6, "customer {i} quantity {k}: ours {o}, lifetimes {w}");
        }
    }
    eprintln!("worst relative difference to lifetimes: {worst:e}");
}
