-- Time-to-conversion histogram: converters of the first-touch cohort by whole days (30 = 30 days or more).
WITH
durations AS (
  SELECT CAST(date_diff('millisecond', f.first_ts, c.conv_ts) AS DOUBLE) / 1000 AS secs
  FROM first_touch f JOIN conversions c ON c.person = f.person AND c.conv_ts >= f.first_ts
  WHERE f.first_day BETWEEN :since AND :until
)
SELECT LEAST(CAST(FLOOR(secs / 86400) AS BIGINT), 30) AS days, COUNT(*) AS persons
FROM durations
GROUP BY LEAST(CAST(FLOOR(secs / 86400) AS BIGINT), 30)
ORDER BY days
