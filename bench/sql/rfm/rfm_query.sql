-- The reference query of issue #10 over the raw orders: one aggregate per customer, as a
-- BI analyst would write it. Published as is by bench/harness.py and run in DuckDB unchanged.
SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS spend, AVG(amount) AS avg_amount, MIN(order_ts) AS first_ts, MAX(order_ts) AS last_ts, COUNT(DISTINCT CAST(order_ts AS DATE)) AS order_days FROM orders GROUP BY customer_id
