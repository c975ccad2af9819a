-- One row per customer who bought by the run date: the segmentation input.
-- Heavy-tailed counts and amounts get a log1p companion for clustering.
SELECT
    c.customer_id,
    c.region,
    c.city_tier,
    c.acquisition_channel,
    c.age_band,
    c.signup_date,
    r.first_order_ts,
    r.last_order_ts,
    r.recency_days,
    r.tenure_days,
    r.frequency,
    r.order_days,
    r.monetary,
    r.avg_order_value,
    r.orders_365d,
    r.spend_365d,
    COALESCE(e.sessions_total, 0) AS sessions_total,
    COALESCE(e.sessions_90d, 0) AS sessions_90d,
    COALESCE(e.pageviews_90d, 0) AS pageviews_90d,
    COALESCE(e.avg_session_minutes, 0.0) AS avg_session_minutes,
    m.share_web,
    m.share_app,
    m.share_store,
    m.night_share,
    ln(1.0 + r.frequency) AS log_frequency,
    ln(1.0 + r.monetary) AS log_monetary,
    ln(1.0 + COALESCE(e.sessions_90d, 0)) AS log_sessions_90d
FROM customers c
JOIN customer_rfm r ON r.customer_id = c.customer_id
LEFT JOIN customer_engagement e ON e.customer_id = c.customer_id
JOIN customer_channel_mix m ON m.customer_id = c.customer_id
WHERE c.signup_date <= $run_date
