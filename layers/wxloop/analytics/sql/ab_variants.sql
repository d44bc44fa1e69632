-- A/B variants: a person's first exposure to an experiment (its variant is sticky; after a merge the
-- earliest exposure wins) in the window, and whether they converted at or after it.
WITH
exposures AS (
  SELECT person, experiment, variant, ts,
         ROW_NUMBER() OVER (PARTITION BY person, experiment ORDER BY ts, variant) AS rn
  FROM events
  WHERE experiment IS NOT NULL AND variant IS NOT NULL
),
firsts AS (
  SELECT person, experiment, variant, ts FROM exposures
  WHERE rn = 1 AND CAST(ts + INTERVAL '8' HOUR AS DATE) BETWEEN :since AND :until
),
-- converted: any conversion at or after the exposure (a campaign reaches customers who converted before it)
converted AS (
  SELECT DISTINCT f.person, f.experiment
  FROM firsts f JOIN events c ON c.person = f.person AND c.type = :conversion AND c.ts >= f.ts
)
SELECT f.experiment, f.variant, COUNT(*) AS exposed, COUNT(c.person) AS converted
FROM firsts f LEFT JOIN converted c ON c.person = f.person AND c.experiment = f.experiment
GROUP BY f.experiment, f.variant
ORDER BY f.experiment, f.variant
