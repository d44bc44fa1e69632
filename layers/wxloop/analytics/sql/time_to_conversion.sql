-- First touch -> conversion: persons whose first touch is in the window, their first conversion after it
-- (up to :until); median (exact, by rank), mean, share of converters under 7 days.
WITH
cohort AS (
  SELECT f.person, f.first_ts, c.conv_ts
  FROM first_touch f LEFT JOIN conversions c ON c.person = f.person AND c.conv_ts >= f.first_ts
  WHERE f.first_day BETWEEN :since AND :until
),
durations AS (
  SELECT CAST(date_diff('millisecond', first_ts, conv_ts) AS DOUBLE) / 1000 AS secs FROM cohort WHERE conv_ts IS NOT NULL
),
ranked AS (
  SELECT secs, ROW_NUMBER() OVER (ORDER BY secs) AS rn, COUNT(*) OVER () AS n FROM durations
)
SELECT (SELECT COUNT(*) FROM cohort) AS persons,
       (SELECT COUNT(*) FROM durations) AS converted,
       (SELECT CAST(COUNT(*) AS DOUBLE) FROM durations) / NULLIF((SELECT COUNT(*) FROM cohort), 0) AS conversion_rate,
       (SELECT AVG(secs) / 86400 FROM ranked
         WHERE rn = FLOOR((n + 1) / 2.0) OR rn = FLOOR((n + 2) / 2.0)) AS median_days,
       (SELECT AVG(secs) / 86400 FROM durations) AS mean_days,
       (SELECT CAST(SUM(CASE WHEN secs < 7 * 86400 THEN 1 ELSE 0 END) AS DOUBLE) / NULLIF(COUNT(*), 0)
          FROM durations) AS share_under_7d
