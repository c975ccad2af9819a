-- Orders observed by the run date: valid amounts and customers only.
SELECT
    order_id,
    customer_id,
    order_ts,
    CAST(order_ts AS DATE) AS order_date,
    amount,
    quantity,
    channel,
    category
FROM orders
WHERE order_ts < $run_end_ts
  AND customer_id IS NOT NULL
  AND amount > 0
