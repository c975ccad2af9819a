-- Recency, frequency and monetary value per customer, as of the run date.
-- Money is summed as DECIMAL: exact sums do not depend on the order rows arrive in, so the
-- output is the same byte for byte whatever the number of threads. Averages are exact sums
-- divided as DOUBLE (not AVG of a DECIMAL, whose scale differs between engines).
SELECT
    customer_id,
    MIN(order_ts) AS first_order_ts,
    MAX(order_ts) AS last_order_ts,
    $run_date - MAX(order_date) AS recency_days,
    $run_date - MIN(order_date) AS tenure_days,
    COUNT(*) AS frequency,
    COUNT(DISTINCT order_date) AS order_days,
    CAST(SUM(CAST(amount AS DECIMAL(18, 2))) AS DOUBLE) AS monetary,
    CAST(SUM(CAST(amount AS DECIMAL(18, 2))) AS DOUBLE) / COUNT(*) AS avg_order_value,
    SUM(CASE WHEN order_date > $run_date - INTERVAL '365 days' THEN 1 ELSE 0 END) AS orders_365d,
    CAST(SUM(CASE WHEN order_date > $run_date - INTERVAL '365 days' THEN CAST(amount AS DECIMAL(18, 2)) ELSE 0 END) AS DOUBLE) AS spend_365d
FROM orders_clean
GROUP BY customer_id
