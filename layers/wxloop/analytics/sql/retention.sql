-- D1..D30 retention of the first-touch cohort, cross-platform vs single-platform. A person is
-- cross-platform when their first-touch day (day 0) has own actions on both platforms; retained on day n
-- when they act on day 0 + n. Only persons whose day n is on or before :until count for day n.
WITH
cohort AS (
  SELECT person, first_day FROM first_touch WHERE first_day BETWEEN :since AND :until
),
day0 AS (
  SELECT c.person, c.first_day, COUNT(DISTINCT e.platform) AS platforms
  FROM cohort c JOIN events e ON e.person = c.person AND e.by_user AND e.day = c.first_day
  GROUP BY c.person, c.first_day
),
segmented AS (
  SELECT person, first_day, CASE WHEN platforms >= 2 THEN 'cross' ELSE 'single' END AS segment FROM day0
),
offsets AS (SELECT n FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15), (16), (17), (18), (19), (20), (21), (22), (23), (24), (25), (26), (27), (28), (29), (30)) AS t(n)),
eligible AS (
  SELECT s.segment, o.n, COUNT(*) AS persons
  FROM segmented s CROSS JOIN offsets o
  WHERE date_diff('day', s.first_day, :until) >= o.n
  GROUP BY s.segment, o.n
),
active_days AS (
  SELECT DISTINCT s.segment, s.person, date_diff('day', s.first_day, e.day) AS n
  FROM segmented s JOIN events e ON e.person = s.person AND e.by_user AND e.day > s.first_day
),
retained AS (
  SELECT segment, n, COUNT(*) AS persons FROM active_days WHERE n <= 30 GROUP BY segment, n
)
SELECT el.segment, el.n AS day, el.persons AS eligible, COALESCE(r.persons, 0) AS retained,
       CAST(COALESCE(r.persons, 0) AS DOUBLE) / el.persons AS rate
FROM eligible el LEFT JOIN retained r ON r.segment = el.segment AND r.n = el.n
ORDER BY el.segment, el.n
