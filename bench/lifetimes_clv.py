"""The peer side of the CLV measurements in bench/harness.py (bench/run): the same CLV work
with lifetimes 0.11.3.

usage: lifetimes_clv.py SUMMARY_PARQUET_DIR OUT_PARQUET [MODEL]
MODEL: bgnbd (BetaGeoFitter, the default), mbgnbd (ModifiedBetaGeoFitter), pareto_nbd
(ParetoNBDFitter) or bgbb (BetaGeoBetaBinomFitter, on a summary in periods of 30 days:
lifetimes' month).
Prints one JSON line: fit seconds, total seconds and the fitted parameters.

ParetoNBDFitter is timed as users run it (its default Nelder-Mead from a seeded random start,
which stops ~1e-3 short of the optimum); after the timed work its answer is taken to the
optimum, untimed, by the tests' restarts (tests/support/lifetimes_check.py), and those
parameters are the ones printed for the correctness check. BetaGeoBetaBinomFitter is timed
as users run it too; its BFGS stops on scipy's precision loss short of the optimum, so its
answer is then finished, untimed, by the tests' Nelder-Mead on its own likelihood
(polish_bgbb).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoBetaBinomFitter, BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from lifetimes_check import fit_pareto, polish_bgbb  # noqa: E402

start = time.perf_counter()
d = pd.read_parquet(sys.argv[1])
t_fit = time.perf_counter()
model = sys.argv[3] if len(sys.argv) > 3 else "bgnbd"
fitter = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto_nbd": ParetoNBDFitter,
          "bgbb": BetaGeoBetaBinomFitter}[model]
np.random.seed(0)
bgf = fitter()
bgf.fit(d["frequency"], d["recency"], d["tenure"])
rep = d[d.frequency > 0]
ggf = GammaGammaFitter()
ggf.fit(rep["frequency"], rep["monetary_value"])
fit_seconds = time.perf_counter() - t_fit
out = pd.DataFrame({"customer_id": d["customer_id"]})
if model == "bgbb":
    # Periods of 30 days; lifetimes' CLV calls `predict`, which BG/BB's fitter does not alias.
    horizon, freq = 12, "M"
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    out["p_alive"] = bgf.conditional_probability_alive(0, d["frequency"], d["recency"], d["tenure"])
else:
    horizon, freq = 12 * 4.345, "W"
    out["p_alive"] = bgf.conditional_probability_alive(d["frequency"], d["recency"], d["tenure"])
out["expected_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, d["frequency"], d["recency"], d["tenure"])
out["expected_avg_value"] = ggf.conditional_expected_average_profit(d["frequency"], d["monetary_value"])
out["clv"] = ggf.customer_lifetime_value(
    bgf, d["frequency"], d["recency"], d["tenure"], d["monetary_value"], time=12, discount_rate=0.01, freq=freq
).values
out.sort_values("customer_id").to_parquet(sys.argv[2], compression="zstd")
total = time.perf_counter() - start
if model == "pareto_nbd":
    bgf = fit_pareto(0.0, d["frequency"], d["recency"], d["tenure"], start=bgf.params_.values * np.array([1.0, bgf._scale, 1.0, bgf._scale]))
if model == "bgbb":
    polish_bgbb(bgf, 0.0, d["frequency"], d["recency"], d["tenure"])
# Gamma-Gamma's apart (gg_…): BG/BB has a gamma of its own.
params = {**{k: float(v) for k, v in bgf.params_.items()}, **{"gg_" + ("gamma" if k == "v" else k): float(v) for k, v in ggf.params_.items()}}
print(json.dumps({"fit_seconds": fit_seconds, "total_seconds": total, "params": params}))
