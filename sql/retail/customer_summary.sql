-- Fader–Hardie summary per customer for the CLV models, in weeks (time_unit = "weeks"):
-- frequency = distinct purchase days - 1, recency = first to last purchase day,
-- tenure (the papers' T) = first purchase day to the run date,
-- monetary_value = mean value of the repeat purchase days (0 without repeats).
--
-- The cal_* columns are the same summary as of $calibration_end (run date - [clv]
-- holdout_days), NULL for customers whose first purchase came after it: the holdout check
-- reads them from this one scan instead of computing the view a second time.
WITH days AS (
    SELECT customer_id, order_date, SUM(CAST(amount AS DECIMAL(18, 2))) AS day_value
    FROM orders_clean
    GROUP BY customer_id, order_date
),
spans AS (
    SELECT
        customer_id,
        MIN(order_date) AS first_day,
        MAX(order_date) AS last_day,
        COUNT(*) AS purchase_days,
        MAX(CASE WHEN order_date <= $calibration_end THEN order_date END) AS cal_last_day,
        COUNT(CASE WHEN order_date <= $calibration_end THEN 1 END) AS cal_purchase_days
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
        0.0) AS monetary_value,
    CASE WHEN s.cal_purchase_days > 0 THEN CAST(s.cal_purchase_days - 1 AS DOUBLE) END AS cal_frequency,
    CASE WHEN s.cal_purchase_days > 0 THEN CAST(s.cal_last_day - s.first_day AS DOUBLE) / 7.0 END AS cal_recency,
    CASE WHEN s.cal_purchase_days > 0 THEN CAST($calibration_end - s.first_day AS DOUBLE) / 7.0 END AS cal_tenure,
    CASE WHEN s.cal_purchase_days > 0 THEN COALESCE(
        CAST(SUM(CASE WHEN d.order_date > s.first_day AND d.order_date <= $calibration_end THEN d.day_value END) AS DOUBLE)
            / NULLIF(COUNT(CASE WHEN d.order_date > s.first_day AND d.order_date <= $calibration_end THEN 1 END), 0),
        0.0) END AS cal_monetary_value
FROM spans s
JOIN days d ON d.customer_id = s.customer_id
GROUP BY s.customer_id, s.purchase_days, s.first_day, s.last_day, s.cal_purchase_days, s.cal_last_day
