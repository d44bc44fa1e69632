-- Cross-platform active share per week (Monday-based, Asia/Shanghai): persons with their own actions on
-- both the OA and a Mini Program in the week, over all persons active in the week, against the target.
WITH
active AS (
  SELECT DISTINCT CAST(date_trunc('week', day) AS DATE) AS week, person, platform
  FROM events
  WHERE by_user AND day BETWEEN :since AND :until
),
per_person AS (
  SELECT week, person, COUNT(*) AS platforms FROM active GROUP BY week, person
)
SELECT week,
       COUNT(*) AS active_persons,
       SUM(CASE WHEN platforms >= 2 THEN 1 ELSE 0 END) AS cross_platform_persons,
       CAST(SUM(CASE WHEN platforms >= 2 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS cross_share,
       CAST(:target_share AS DOUBLE) AS target
FROM per_person
GROUP BY week
ORDER BY week
