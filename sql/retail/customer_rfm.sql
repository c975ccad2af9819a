-- Recency, frequency and monetary value per customer, as of the run date.
SELECT
    customer_id,
    MIN(order_ts) AS first_order_ts,
    MAX(order_ts) AS last_order_ts,
    CAST(CAST($run_date AS INT) - CAST(MAX(order_date) AS INT) AS BIGINT) AS recency_days,
    CAST(CAST($run_date AS INT) - CAST(MIN(order_date) AS INT) AS BIGINT) AS tenure_days,
    COUNT(*) AS frequency,
    COUNT(DISTINCT order_date) AS order_days,
    SUM(amount) AS monetary,
    AVG(amount) AS avg_order_value,
    SUM(CASE WHEN order_date > $run_date - INTERVAL '365 days' THEN 1 ELSE 0 END) AS orders_365d,
    SUM(CASE WHEN order_date > $run_date - INTERVAL '365 days' THEN amount ELSE 0 END) AS spend_365d
FROM orders_clean
GROUP BY customer_id
