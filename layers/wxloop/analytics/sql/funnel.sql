-- Funnel by first-touch channel, steps in order: OA touch -> MP open (an own action on a Mini Program at or
-- after the OA touch) -> registration/phone (:registration, at or after) -> conversion (at or after).
WITH
cohort AS (
  SELECT person, channel FROM first_touch WHERE first_day BETWEEN :since AND :until
),
s1 AS (
  SELECT c.person, MIN(e.ts) AS ts
  FROM cohort c JOIN events e ON e.person = c.person AND e.by_user AND e.platform = 'oa'
  GROUP BY c.person
),
s2 AS (
  SELECT s.person, MIN(e.ts) AS ts
  FROM s1 s JOIN events e ON e.person = s.person AND e.by_user AND e.platform = 'mp' AND e.ts >= s.ts
  GROUP BY s.person
),
s3 AS (
  SELECT s.person, MIN(e.ts) AS ts
  FROM s2 s JOIN events e ON e.person = s.person AND e.type IN :registration AND e.ts >= s.ts
  GROUP BY s.person
),
s4 AS (
  SELECT s.person, MIN(e.ts) AS ts
  FROM s3 s JOIN events e ON e.person = s.person AND e.type = :conversion AND e.ts >= s.ts
  GROUP BY s.person
)
SELECT c.channel,
       COUNT(*) AS persons,
       COUNT(s1.person) AS oa_touch,
       COUNT(s2.person) AS mp_open,
       COUNT(s3.person) AS registered,
       COUNT(s4.person) AS converted
FROM cohort c
LEFT JOIN s1 ON s1.person = c.person
LEFT JOIN s2 ON s2.person = c.person
LEFT JOIN s3 ON s3.person = c.person
LEFT JOIN s4 ON s4.person = c.person
GROUP BY c.channel
ORDER BY COUNT(*) DESC, c.channel
