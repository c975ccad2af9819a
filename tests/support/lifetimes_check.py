"""lifetimes 0.11.3's view of a published customer_clv table (test peer, never a runtime dependency).

Usage:
  lifetimes_check.py cdnow-orders OUT_DIR
      Writes lifetimes' bundled CDNOW sample (2,357 customers, 6,919 orders) as an orders
      table (customer_id, order_date, amount) in OUT_DIR/orders.parquet.
  lifetimes_check.py periods-summary DATASET OUT_DIR [CUSTOMERS]
      Writes a summary in whole periods (customer_id, frequency, recency, tenure,
      monetary_value) in OUT_DIR/summary.parquet: DATASET "donations" is lifetimes' bundled
      donations data (Fader, Hardie & Shang 2010: 11,104 donors, 6 yearly opportunities),
      "generated" a seeded BG/BB population with 4 to 12 opportunities (20,000 customers
      unless CUSTOMERS says otherwise: the benchmark's 1M); monetary values are
      drawn from a seeded Gamma for the repeat buyers.
  lifetimes_check.py compare MODEL CUSTOMER_CLV_DIR UNIT HORIZON_MONTHS DISCOUNT MARGIN PENALIZER [ORDERS_PARQUET END_DATE]
      Fits lifetimes' BetaGeoFitter (MODEL bgnbd), ModifiedBetaGeoFitter (mbgnbd),
      ParetoNBDFitter (pareto_nbd) or BetaGeoBetaBinomFitter (bgbb, UNIT periods: the jobs'
      periods are 30 days, lifetimes' month) and GammaGammaFitter and predicts every customer's
      P(alive), expected purchases over the horizon, expected average value and discounted
      CLV (times the margin), then prints JSON: the largest relative difference to the
      published column per quantity, with the customer it occurs at, and lifetimes' parameters.
      Without orders lifetimes fits segvalue's published summary columns; with them lifetimes
      builds its own summary from the orders (summary_data_from_transaction_data, ending at
      END_DATE, in UNIT) and the summary columns are compared as well.
  lifetimes_check.py covariates CUSTOMER_CLV_DIR CUSTOMERS_DIR HORIZON
      BG/NBD with covariates, on lifetimes' own likelihood (BetaGeoFitter._negative_log_likelihood,
      which broadcasts over per-customer parameter arrays) and its autograd gradient: the
      covariates are 1 for acquisition_channel paid_search and referral (CUSTOMERS_DIR's
      customers table), shifting alpha_i = alpha exp(-g z), a_i = a exp(g_a z), b_i = b exp(g_b z)
      (PyMC-Marketing's BetaGeoModel). Fitted by scipy's BFGS from alpha = a = b = r = 1 and
      every coefficient 0 on the published summary columns; prints JSON: the parameters named as
      clv_model names them, and the largest relative difference of the published P(alive) and
      expected purchases over HORIZON to lifetimes' at each customer's parameters.
"""
import contextlib
import json
import sys

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import scipy.optimize
from lifetimes import BetaGeoBetaBinomFitter, BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_dataset, load_donations
from lifetimes.utils import ConvergenceError, summary_data_from_transaction_data

# lifetimes' BFGS stops at tol 1e-7 (its default), which leaves the parameters ~3e-7 from the
# optimum: enough for per-customer predictions to differ by ~1e-6 from any other optimiser's.
# From its default start a tighter tol fails with scipy's "precision loss", so each fitter is
# restarted from its own last answer (log-parameters, as lifetimes' x0 takes them) with these
# tighter tols, keeping the last fit that converged. Likelihood, gradient and optimiser stay
# lifetimes' own.
RESTART_TOLS = (1e-8, 1e-9, 1e-10)
# lifetimes' customer_lifetime_value counts periods per month with these factors; the BG/BB
# tests' periods are 30 days (period_days = 30), lifetimes' month.
FREQ = {"weeks": "W", "days": "D", "periods": "M"}
PER_MONTH = {"weeks": 4.345, "days": 30.0, "periods": 1.0}
FITTERS = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto_nbd": ParetoNBDFitter, "bgbb": BetaGeoBetaBinomFitter}
# lifetimes' ParetoNBDFitter minimises with Nelder-Mead from a random start, at tol 1e-4 by
# default, and stops at maxiter 2000: parameters ~1e-3 from the optimum. It is run from a fixed
# start at a tight tol, then restarted from its own answer (a fresh simplex) until the answer
# stops moving; likelihood and optimiser stay lifetimes' own.
PARETO_TOL, PARETO_MAXITER, PARETO_RESTARTS = 1e-12, 20000, 8


def cdnow_orders(out_dir):
    d = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+",
                     names=["customer_id", "customer_index", "date", "quantity", "amount"],
                     converters={"date": str})
    orders = pd.DataFrame({
        "customer_id": d["customer_id"].map(lambda i: f"C{i:05d}"),
        "order_date": pd.to_datetime(d["date"], format="%Y%m%d").dt.date,
        "amount": d["amount"].astype(float),
    })
    orders.to_parquet(f"{out_dir}/orders.parquet", index=False)
    print(json.dumps({"orders": len(orders), "customers": int(orders.customer_id.nunique())}))


def periods_summary(dataset, out_dir, customers="20000"):
    rng = np.random.default_rng(11)
    if dataset == "donations":
        d = load_donations()
        d = d.loc[d.index.repeat(d["weights"])]
        x, tx, n = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "periods"))
    else:
        # The model itself, period by period: drop out before each opportunity with
        # probability theta, buy at it with probability p while alive.
        size = int(customers)
        n = rng.integers(4, 13, size).astype(float)
        p, theta = rng.beta(0.9, 2.2, size), rng.beta(0.8, 3.5, size)
        x, tx, alive = np.zeros(size), np.zeros(size), np.ones(size, dtype=bool)
        for t in range(1, 13):
            open_ = t <= n
            alive &= ~(open_ & (rng.random(size) < theta))
            buy = alive & open_ & (rng.random(size) < p)
            x += buy
            tx = np.where(buy, t, tx)
    m = np.where(x > 0, rng.gamma(4.0, 10.0, len(x)), 0.0)
    ids = [f"D{i:06d}" for i in range(len(x))]
    pd.DataFrame({"customer_id": ids, "frequency": x, "recency": tx, "tenure": n, "monetary_value": m}).to_parquet(f"{out_dir}/summary.parquet", index=False)
    print(json.dumps({"customers": len(x)}))


def fit_pareto(penalizer, *columns, start=None):
    """ParetoNBDFitter's fit, restarted from its own answer (see PARETO_TOL); `start` in the
    fit's rescaled time, ones by default."""
    start = np.ones(4) if start is None else start
    for _ in range(PARETO_RESTARTS):
        f = ParetoNBDFitter(penalizer_coef=penalizer).fit(*columns, tol=PARETO_TOL, maxiter=PARETO_MAXITER, initial_params=start)
        # initial_params are in the fit's rescaled time; params_ in the original unit.
        answer = f.params_.values * np.array([1.0, f._scale, 1.0, f._scale])
        if np.allclose(answer, start, rtol=1e-12, atol=0.0):
            break
        start = answer
    return f


def fit(fitter, penalizer, *columns):
    """lifetimes' fit, then its restarts from its own answer at RESTART_TOLS."""
    if fitter is ParetoNBDFitter:
        return fit_pareto(penalizer, *columns)
    # lifetimes prints the optimiser's report on a failed fit: keep stdout for the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        best = fitter(penalizer_coef=penalizer).fit(*columns)
        for tol in RESTART_TOLS:
            try:
                best = fitter(penalizer_coef=penalizer).fit(*columns, tol=tol, initial_params=np.log(best.params_.values))
            except ConvergenceError:
                break
    if fitter is BetaGeoBetaBinomFitter:
        polish_bgbb(best, penalizer, *columns)
    return best


def polish_bgbb(f, penalizer, x, tx, n):
    """BetaGeoBetaBinomFitter's BFGS stops on scipy's "precision loss" at every restart tol on
    the generated population, ~3e-6 from the optimum (its likelihood is flat there, NLL within
    3e-14): Nelder-Mead on lifetimes' own likelihood takes its answer the rest of the way."""
    # On the distinct (x, t_x, n) with their counts, as lifetimes' `weights` take them: the
    # same mean likelihood, a few hundred rows instead of every customer.
    rows, counts = np.unique(np.column_stack([np.asarray(c).astype(int) for c in (x, tx, n)]), axis=0, return_counts=True)
    args = (rows[:, 0], rows[:, 1], rows[:, 2], counts, penalizer)
    r = scipy.optimize.minimize(f._negative_log_likelihood, np.log(f.params_.values), args=args, method="Nelder-Mead",
                                options={"xatol": 1e-12, "fatol": 1e-16, "maxiter": 20000})
    f.params_ = pd.Series(np.exp(r.x), index=f.params_.index)


def std_errors(f, x, tx, t):
    """lifetimes' standard errors: sqrt(diag(params² · inv(its Hessian of the mean objective in
    log-parameters) / n)). Its Pareto/NBD fitter keeps no Hessian (its likelihood is not
    autograd's): there, central differences of that fitter's own objective (a sum over
    customers, in natural parameters and rescaled time) in log-parameters."""
    if getattr(f, "_hessian_", None) is not None:
        return f.standard_errors_
    unscale = np.array([1.0, f._scale, 1.0, f._scale])
    theta = np.log(f.params_.values * unscale)
    args = (np.asarray(x, float), np.asarray(tx, float) * f._scale, np.asarray(t, float) * f._scale, np.ones(len(x)), f.penalizer_coef)
    nll = lambda v: f._negative_log_likelihood(np.exp(v), *args)
    step, eye, hessian = 1e-3, np.eye(4), np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            a, b = step * eye[i], step * eye[j]
            hessian[i, j] = (nll(theta + a + b) - nll(theta + a - b) - nll(theta - a + b) + nll(theta - a - b)) / (4 * step * step)
    return pd.Series(f.params_.values * np.sqrt(np.diag(np.linalg.inv(hessian))), index=f.params_.index)


def pareto_quantiles(f, pub, x, tx, t, horizon):
    """The published purchases_p10/p50/p90 against the quantiles of lifetimes' conditional PMF
    of Pareto/NBD purchases (`conditional_probability_of_n_purchases_up_to_time`, Fader &
    Hardie's note 028, eq. 16) at its fitted parameters. segvalue's mix in the parameters'
    uncertainty, which can move a quantile only where lifetimes' CDF passes within a hair of q:
    per quantile, the customers whose quantiles differ, and those of them whose CDF clears q by
    more than 0.01 (`differ_clear`)."""
    x, tx, t = (np.asarray(c, dtype=float) for c in (x, tx, t))
    qs = {"purchases_p10": 0.1, "purchases_p50": 0.5, "purchases_p90": 0.9}
    theirs = {c: np.full(len(x), -1) for c in qs}
    margin = {c: np.full(len(x), np.inf) for c in qs}
    cdf, below = np.zeros(len(x)), np.zeros(len(x))
    for n in range(10_000):
        cdf = cdf + np.asarray(f.conditional_probability_of_n_purchases_up_to_time(n, horizon, x, tx, t), dtype=float)
        for c, q in qs.items():
            new = (theirs[c] < 0) & (cdf >= q)
            theirs[c][new] = n
            margin[c][new] = np.minimum(cdf[new] - q, q - below[new])
        below = cdf.copy()
        if all((v >= 0).all() for v in theirs.values()):
            break
    out = {}
    for c in qs:
        differ = pub[c].to_numpy() != theirs[c]
        out[c] = {"customers": len(x), "differ": int(differ.sum()), "differ_clear": int((differ & (margin[c] > 0.01)).sum())}
    return out


def worst(ours, theirs, ids):
    """The largest relative difference |ours − theirs| / |theirs| and the customer it is at."""
    denom = np.maximum(np.abs(theirs), 1e-300)
    r = np.where(ours == theirs, 0.0, np.abs(ours - theirs) / denom)
    i = int(np.argmax(r))
    return {"rel": float(r[i]), "customer": str(ids[i]), "segvalue": float(ours[i]), "lifetimes": float(theirs[i])}


def compare(model, published, unit, horizon_months, discount, margin, penalizer, orders=None, end=None):
    pub = ds.dataset(published, format="parquet", partitioning="hive").to_table().to_pandas()
    pub = pub.sort_values("customer_id").set_index("customer_id")
    out = {"customers": len(pub)}
    if orders is not None:
        o = pd.read_parquet(orders)
        s = summary_data_from_transaction_data(o, "customer_id", "order_date", monetary_value_col="amount",
                                               observation_period_end=end, freq=FREQ[unit]).sort_index()
        out["lifetimes_customers"] = len(s)
        assert list(s.index) == list(pub.index), "the published customers are not lifetimes' summary customers"
        ids = s.index.to_numpy()
        summary = {"frequency": "frequency", "recency": "recency", "tenure": "T", "monetary_value": "monetary_value"}
        out["summary"] = {c: worst(pub[c].to_numpy(), s[l].to_numpy(), ids) for c, l in summary.items()}
        x, tx, t, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
    else:
        ids = pub.index.to_numpy()
        x, tx, t, m = pub["frequency"], pub["recency"], pub["tenure"], pub["monetary_value"]
    bgf = fit(FITTERS[model], penalizer, x, tx, t)
    if model == "bgbb":
        # lifetimes' customer_lifetime_value calls `predict`, which only its continuous-time
        # fitters alias; BG/BB's P(alive) takes the periods ahead first (0: now).
        bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
        p_alive = bgf.conditional_probability_alive(0, x, tx, t)
    else:
        p_alive = bgf.conditional_probability_alive(x, tx, t)
    repeat = x > 0
    ggf = fit(GammaGammaFitter, penalizer, x[repeat], m[repeat])
    horizon = horizon_months * PER_MONTH[unit]
    theirs = {
        "p_alive": np.asarray(p_alive, dtype=float),
        "expected_purchases": np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, t), dtype=float),
        "expected_avg_value": np.asarray(ggf.conditional_expected_average_profit(x, m), dtype=float),
        "clv": margin * np.asarray(ggf.customer_lifetime_value(bgf, x, tx, t, m, time=horizon_months,
                                                               discount_rate=discount, freq=FREQ[unit]), dtype=float),
    }
    out["predictions"] = {c: worst(pub[c].to_numpy(), v, ids) for c, v in theirs.items()}
    if model == "pareto_nbd" and "purchases_p90" in pub.columns:
        out["intervals"] = pareto_quantiles(bgf, pub, x, tx, t, horizon)
    # Apart: BG/BB's gamma is not Gamma-Gamma's (lifetimes' v).
    out["params"] = {k: float(v) for k, v in bgf.params_.items()}
    out["std_errors"] = {k: float(v) for k, v in std_errors(bgf, x, tx, t).items()}
    out["gamma_gamma_params"] = {("gamma" if k == "v" else k): float(v) for k, v in ggf.params_.items()}
    print(json.dumps(out))


COVARIATES = ("paid_search", "referral")


def covariates(published, customers, horizon):
    from autograd import hessian as autograd_hessian
    from autograd import numpy as anp
    from autograd import value_and_grad

    pub = ds.dataset(published, format="parquet", partitioning="hive").to_table().to_pandas()
    cust = ds.dataset(customers, format="parquet").to_table(columns=["customer_id", "acquisition_channel"]).to_pandas()
    pub = pub.merge(cust, on="customer_id", how="left").sort_values("customer_id")
    for c in COVARIATES:
        pub[c] = (pub["acquisition_channel"] == c).astype(float)
    g = pub.groupby(["frequency", "recency", "tenure", *COVARIATES]).size().reset_index(name="n")
    x, tx, t, w = (g[c].to_numpy() for c in ("frequency", "recency", "tenure", "n"))
    z = g[list(COVARIATES)].to_numpy()
    w = w.astype(float)

    def per_customer(phi, z):
        # phi: ln r, ln alpha, ln a, ln b, then per covariate the alpha, a, b coefficients.
        k = len(COVARIATES)
        gp, ga, gb = phi[4:4 + k], phi[4 + k:4 + 2 * k], phi[4 + 2 * k:4 + 3 * k]
        ones = anp.ones(len(z))
        return anp.stack([phi[0] * ones, phi[1] - anp.dot(z, gp), phi[2] + anp.dot(z, ga), phi[3] + anp.dot(z, gb)])

    def nll(phi):
        return BetaGeoFitter._negative_log_likelihood(per_customer(phi, z), x, tx, t, w, 0.0)[0]

    f = value_and_grad(nll)
    # BFGS at lifetimes' tol, restarted at tighter ones keeping the last that converged (as
    # `fit` does), then Newton steps with autograd's Hessian of the same likelihood: BFGS
    # stops ~1e-7 from the optimum, enough to move a small P(alive) by ~1e-6.
    phi, converged = np.zeros(4 + 3 * len(COVARIATES)), False
    for tol in (1e-7,) + RESTART_TOLS:
        r = scipy.optimize.minimize(f, phi, jac=True, method="BFGS", options={"gtol": tol, "maxiter": 5000})
        if r.success or not converged:
            phi, converged = r.x, converged or bool(r.success)
    hessian = autograd_hessian(nll)
    for _ in range(3):
        step = np.linalg.solve(hessian(phi), f(phi)[1])
        if not np.all(np.isfinite(step)) or nll(phi - step) > nll(phi):
            break
        phi = phi - step
    names = ["r", "alpha", "a", "b"]
    params = {n: float(np.exp(v)) for n, v in zip(names, phi[:4])}
    k = len(COVARIATES)
    for j, rate in enumerate(("purchase_coefficient_alpha", "dropout_coefficient_a", "dropout_coefficient_b")):
        for i, c in enumerate(COVARIATES):
            params[f"{rate}[{c}]"] = float(phi[4 + j * k + i])
    # Each customer's predictions at their own parameters, by lifetimes' formulas.
    zc = pub[list(COVARIATES)].to_numpy()
    theta = np.exp(np.asarray(per_customer(phi, zc)))
    px, ptx, pt = (pub[c].to_numpy() for c in ("frequency", "recency", "tenure"))
    ids = pub["customer_id"].to_numpy()
    theirs = {"p_alive": np.empty(len(pub)), "expected_purchases": np.empty(len(pub))}
    for key in np.unique(zc, axis=0):
        rows = np.all(zc == key, axis=1)
        bgf = BetaGeoFitter()
        bgf.params_ = pd.Series(theta[:, rows][:, 0], index=names)
        theirs["p_alive"][rows] = bgf.conditional_probability_alive(px[rows], ptx[rows], pt[rows])
        theirs["expected_purchases"][rows] = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, px[rows], ptx[rows], pt[rows])
    out = {"customers": len(pub), "converged": converged, "params": params,
           "predictions": {c: worst(pub[c].to_numpy(), v, ids) for c, v in theirs.items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "cdnow-orders":
        cdnow_orders(*args)
    elif cmd == "periods-summary":
        periods_summary(*args)
    elif cmd == "covariates":
        published, customers, horizon = args
        covariates(published, customers, float(horizon))
    else:
        model, published, unit, h, disc, margin, pen, *rest = args
        compare(model, published, unit, int(h), float(disc), float(margin), float(pen), *rest)
