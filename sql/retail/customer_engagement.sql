-- Browsing engagement per customer: sessions, pageviews and session length.
SELECT
    customer_id,
    COUNT(*) AS sessions_total,
    SUM(CASE WHEN session_ts >= $run_end_ts - INTERVAL '90 days' THEN 1 ELSE 0 END) AS sessions_90d,
    SUM(CASE WHEN session_ts >= $run_end_ts - INTERVAL '90 days' THEN pageviews ELSE 0 END) AS pageviews_90d,
    AVG(duration_s) / 60.0 AS avg_session_minutes
FROM sessions
WHERE session_ts < $run_end_ts
GROUP BY customer_id
