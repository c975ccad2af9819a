-- One row per customer who bought by the run date: the segmentation input.
-- Heavy-tailed counts and amounts get a log1p companion for clustering.
--
-- The four per-customer inputs are stacked (UNION ALL) and folded with one GROUP BY instead
-- of three joins: an aggregation spills to disk under `[engine] memory_limit`, a hash join
-- does not. Each branch fills its own columns and leaves the others NULL; MAX picks the one
-- value; `has_*` keep the inner joins' meaning (a customer with a profile, orders and a
-- channel mix).
WITH parts AS (
    -- The first branch names and types the columns (DataFusion takes a NULL's type from it).
    SELECT
        customer_id, 0 AS has_customer, 1 AS has_rfm, 0 AS has_mix,
        CAST(NULL AS VARCHAR) AS region, CAST(NULL AS VARCHAR) AS city_tier,
        CAST(NULL AS VARCHAR) AS acquisition_channel, CAST(NULL AS VARCHAR) AS age_band,
        CAST(NULL AS DATE) AS signup_date,
        first_order_ts, last_order_ts,
        recency_days, tenure_days, frequency, order_days,
        monetary, avg_order_value, orders_365d, spend_365d,
        CAST(NULL AS BIGINT) AS sessions_total, CAST(NULL AS BIGINT) AS sessions_90d,
        CAST(NULL AS BIGINT) AS pageviews_90d, CAST(NULL AS DOUBLE) AS avg_session_minutes,
        CAST(NULL AS DOUBLE) AS share_web, CAST(NULL AS DOUBLE) AS share_app,
        CAST(NULL AS DOUBLE) AS share_store, CAST(NULL AS DOUBLE) AS night_share
    FROM customer_rfm
    UNION ALL
    SELECT
        customer_id, 1, 0, 0,
        region, city_tier, acquisition_channel, age_band, signup_date,
        NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL
    FROM customers
    WHERE signup_date <= $run_date
    UNION ALL
    SELECT
        customer_id, 0, 0, 0,
        NULL, NULL, NULL, NULL, NULL,
        NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        sessions_total, sessions_90d, pageviews_90d, avg_session_minutes,
        NULL, NULL, NULL, NULL
    FROM customer_engagement
    UNION ALL
    SELECT
        customer_id, 0, 0, 1,
        NULL, NULL, NULL, NULL, NULL,
        NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL,
        share_web, share_app, share_store, night_share
    FROM customer_channel_mix
)
SELECT
    customer_id,
    MAX(region) AS region,
    MAX(city_tier) AS city_tier,
    MAX(acquisition_channel) AS acquisition_channel,
    MAX(age_band) AS age_band,
    MAX(signup_date) AS signup_date,
    MAX(first_order_ts) AS first_order_ts,
    MAX(last_order_ts) AS last_order_ts,
    MAX(recency_days) AS recency_days,
    MAX(tenure_days) AS tenure_days,
    MAX(frequency) AS frequency,
    MAX(order_days) AS order_days,
    MAX(monetary) AS monetary,
    MAX(avg_order_value) AS avg_order_value,
    MAX(orders_365d) AS orders_365d,
    MAX(spend_365d) AS spend_365d,
    COALESCE(MAX(sessions_total), 0) AS sessions_total,
    COALESCE(MAX(sessions_90d), 0) AS sessions_90d,
    COALESCE(MAX(pageviews_90d), 0) AS pageviews_90d,
    COALESCE(MAX(avg_session_minutes), 0.0) AS avg_session_minutes,
    MAX(share_web) AS share_web,
    MAX(share_app) AS share_app,
    MAX(share_store) AS share_store,
    MAX(night_share) AS night_share,
    ln(1.0 + MAX(frequency)) AS log_frequency,
    ln(1.0 + MAX(monetary)) AS log_monetary,
    ln(1.0 + COALESCE(MAX(sessions_90d), 0)) AS log_sessions_90d
FROM parts
GROUP BY customer_id
HAVING MAX(has_customer) = 1 AND MAX(has_rfm) = 1 AND MAX(has_mix) = 1
