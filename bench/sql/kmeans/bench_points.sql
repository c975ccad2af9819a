-- The benchmark points as they are.
SELECT customer_id, x1, x2, x3, x4, x5, x6 FROM points
