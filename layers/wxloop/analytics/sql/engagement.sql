-- Engagement score of each person active in the window: 1 per own OA action, 2 per own Mini Program action,
-- 5 per active day; distribution in five buckets.
WITH
per_person AS (
  SELECT person, SUM(CASE WHEN platform = 'oa' THEN 1 ELSE 2 END) + 5 * COUNT(DISTINCT day) AS score
  FROM events
  WHERE by_user AND day BETWEEN :since AND :until
  GROUP BY person
),
bucketed AS (
  SELECT score,
         CASE WHEN score < 10 THEN 1 WHEN score < 25 THEN 2 WHEN score < 50 THEN 3
              WHEN score < 100 THEN 4 ELSE 5 END AS bucket
  FROM per_person
)
SELECT bucket,
       CASE bucket WHEN 1 THEN '<10' WHEN 2 THEN '10-24' WHEN 3 THEN '25-49' WHEN 4 THEN '50-99'
                   ELSE '100+' END AS label,
       COUNT(*) AS persons,
       AVG(CAST(score AS DOUBLE)) AS mean_score
FROM bucketed
GROUP BY bucket
ORDER BY bucket
