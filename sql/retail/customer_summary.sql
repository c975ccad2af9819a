-- Fader–Hardie summary per customer for the CLV models, in weeks (time_unit = "weeks"):
-- frequency = distinct purchase days - 1, recency = first to last purchase day,
-- tenure (the papers' T) = first purchase day to the run date,
-- monetary_value = mean value of the repeat purchase days (0 without repeats).
WITH days AS (
    SELECT customer_id, order_date, SUM(CAST(amount AS DECIMAL(18, 2))) AS day_value
    FROM orders_clean
    GROUP BY customer_id, order_date
),
spans AS (
    SELECT customer_id, MIN(order_date) AS first_day, MAX(order_date) AS last_day, COUNT(*) AS purchase_days
    FROM days
    GROUP BY customer_id
)
SELECT
    s.customer_id,
    CAST(s.purchase_days - 1 AS DOUBLE) AS frequency,
    CAST(s.last_day - s.first_day AS DOUBLE) / 7.0 AS recency,
    CAST($run_date - s.first_day AS DOUBLE) / 7.0 AS tenure,
    -- The exact DECIMAL sum divided as DOUBLE, so every engine gets the same bits.
    COALESCE(
        CAST(SUM(CASE WHEN d.order_date > s.first_day THEN d.day_value END) AS DOUBLE)
            / NULLIF(COUNT(CASE WHEN d.order_date > s.first_day THEN 1 END), 0),
        0.0) AS monetary_value
FROM spans s
JOIN days d ON d.customer_id = s.customer_id
GROUP BY s.customer_id, s.purchase_days, s.first_day, s.last_day
