-- Channel and time-of-day habits: share of each customer's orders per channel, and at night.
SELECT
    customer_id,
    AVG(CASE WHEN channel = 'web' THEN 1.0 ELSE 0.0 END) AS share_web,
    AVG(CASE WHEN channel = 'app' THEN 1.0 ELSE 0.0 END) AS share_app,
    AVG(CASE WHEN channel = 'store' THEN 1.0 ELSE 0.0 END) AS share_store,
    AVG(CASE WHEN date_part('hour', order_ts) >= 20 OR date_part('hour', order_ts) < 6 THEN 1.0 ELSE 0.0 END) AS night_share
FROM orders_clean
GROUP BY customer_id
