-- Per first-touch channel (cohort: first touch in the window): persons, how many became cross-platform,
-- registered and converted (up to :until), the conversion rate and the mean days to convert.
WITH
cohort AS (
  SELECT person, first_ts, channel FROM first_touch WHERE first_day BETWEEN :since AND :until
),
platforms AS (
  SELECT c.person, COUNT(DISTINCT e.platform) AS n
  FROM cohort c JOIN events e ON e.person = c.person AND e.by_user
  GROUP BY c.person
),
registered AS (
  SELECT DISTINCT c.person FROM cohort c JOIN events e ON e.person = c.person AND e.type IN :registration
)
SELECT c.channel,
       COUNT(*) AS persons,
       SUM(CASE WHEN p.n >= 2 THEN 1 ELSE 0 END) AS cross_platform,
       COUNT(r.person) AS registered,
       COUNT(v.person) AS converted,
       CAST(COUNT(v.person) AS DOUBLE) / COUNT(*) AS conversion_rate,
       AVG(CAST(date_diff('millisecond', c.first_ts, v.conv_ts) AS DOUBLE) / 1000) / 86400 AS mean_days_to_convert
FROM cohort c
JOIN platforms p ON p.person = c.person
LEFT JOIN registered r ON r.person = c.person
LEFT JOIN conversions v ON v.person = c.person AND v.conv_ts >= c.first_ts
GROUP BY c.channel
ORDER BY COUNT(*) DESC, c.channel
