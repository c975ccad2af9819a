-- Monthly cohort retention: of the customers whose first order fell in cohort_month, how many
-- ordered again `months_since_first` months later.
WITH firsts AS (
    SELECT customer_id, MIN(date_trunc('month', order_date)) AS cohort_month
    FROM orders_clean
    GROUP BY customer_id
),
activity AS (
    SELECT DISTINCT
        o.customer_id,
        f.cohort_month,
        CAST((date_part('year', o.order_date) - date_part('year', f.cohort_month)) * 12
             + date_part('month', o.order_date) - date_part('month', f.cohort_month) AS INT) AS months_since_first
    FROM orders_clean o
    JOIN firsts f ON f.customer_id = o.customer_id
),
sizes AS (
    SELECT cohort_month, COUNT(*) AS cohort_size
    FROM firsts
    GROUP BY cohort_month
),
-- Counted per (cohort, month) first, then joined to the few cohort sizes: joining the sizes to
-- every active customer would make a sort-merge join (the plan under a memory cap) hold all of
-- one cohort's rows at once, since each cohort month is a single join key.
counts AS (
    SELECT cohort_month, months_since_first, COUNT(*) AS active_customers
    FROM activity
    GROUP BY cohort_month, months_since_first
)
SELECT
    CAST(c.cohort_month AS DATE) AS cohort_month,
    c.months_since_first,
    s.cohort_size,
    c.active_customers,
    CAST(c.active_customers AS DOUBLE) / s.cohort_size AS retention_rate
FROM counts c
JOIN sizes s ON s.cohort_month = c.cohort_month
