"""Writes tests/fixtures/lifetimes_bgnbd_gg.json: what lifetimes 0.11.3 computes, for the
CLV equality tests. Run with scripts/lifetimes_fixture.sh (it makes the venv).

1. CDNOW (bundled with lifetimes): BG/NBD and Gamma-Gamma fitted by lifetimes, with and
   without a penalizer, plus the summary data itself.
2. About 3,000 varied customers (x, t_x, T, m) with per-customer P(alive), expected purchases
   over 10 and 52 weeks and the 12-month discounted CLV, for the CDNOW parameters.
"""
import json
import sys

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

out = sys.argv[1]
d = load_cdnow_summary_data_with_monetary_value()
fits = {}
for pen in (0.0, 0.01):
    bgf = BetaGeoFitter(penalizer_coef=pen)
    bgf.fit(d["frequency"], d["recency"], d["T"])
    rep = d[d.frequency > 0]
    ggf = GammaGammaFitter(penalizer_coef=pen)
    ggf.fit(rep["frequency"], rep["monetary_value"])
    fits[str(pen)] = {
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "bgnbd_ll": float(-bgf._negative_log_likelihood_),
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
    }

bgf = BetaGeoFitter()
bgf.fit(d["frequency"], d["recency"], d["T"])
rep = d[d.frequency > 0]
ggf = GammaGammaFitter()
ggf.fit(rep["frequency"], rep["monetary_value"])

rng = np.random.default_rng(20261123)
n = 3000
x = rng.integers(0, 60, n).astype(float)
x[: n // 5] = 0
T = rng.uniform(0.5, 80.0, n)
tx = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
m = np.where(x > 0, rng.gamma(2.0, 20.0, n) + 0.5, 0.0)
cust = {
    "frequency": x.tolist(),
    "recency": tx.tolist(),
    "T": T.tolist(),
    "monetary_value": m.tolist(),
    "p_alive": bgf.conditional_probability_alive(x, tx, T).tolist(),
    "expected_10": bgf.conditional_expected_number_of_purchases_up_to_time(10, x, tx, T).tolist(),
    "expected_52": bgf.conditional_expected_number_of_purchases_up_to_time(52, x, tx, T).tolist(),
    "expected_avg_value": ggf.conditional_expected_average_profit(x, m).tolist(),
    "clv_12m": ggf.customer_lifetime_value(
        bgf, pd.Series(x), pd.Series(tx), pd.Series(T), pd.Series(m), time=12, discount_rate=0.01, freq="W"
    ).tolist(),
}
fixture = {
    "cdnow": {
        "frequency": d["frequency"].astype(float).tolist(),
        "recency": d["recency"].astype(float).tolist(),
        "T": d["T"].astype(float).tolist(),
        "monetary_value": d["monetary_value"].astype(float).tolist(),
    },
    "fits": fits,
    "customers": cust,
}
with open(out, "w") as f:
    json.dump(fixture, f)
print("wrote", out, "r,alpha,a,b =", fits["0.0"]["bgnbd"])
