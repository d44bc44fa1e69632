-- The shared prelude of every KPI (common table expressions, prepended by the runner).
-- journey: the lake table (Parquet, partition dt = UTC arrival day); erased: persons every KPI excludes.
-- Days are Asia/Shanghai days (UTC+8 all year). A record delivered twice (same event_id) counts once.
-- Only the few ids seen twice are aggregated: grouping every record by id with ten MIN()s cost twice the CPU.
-- The lake writer refuses a record without an id, so NOT IN never meets a NULL.
window_records AS (
  SELECT event_id, person, platform, type, ts, by_user, channel, experiment, variant, inviter, merged_from
  FROM journey
  WHERE dt <= :dt_until AND ts < :ts_until AND event_id IS NOT NULL
),
repeated AS (SELECT event_id FROM window_records GROUP BY event_id HAVING COUNT(*) > 1),
raw AS (
  SELECT event_id, person, platform, type, ts, by_user, channel, experiment, variant, inviter, merged_from
  FROM window_records
  WHERE event_id NOT IN (SELECT event_id FROM repeated)
  UNION ALL
  SELECT event_id, MIN(person) AS person, MIN(platform) AS platform, MIN(type) AS type, MIN(ts) AS ts,
         bool_or(by_user) AS by_user, MIN(channel) AS channel, MIN(experiment) AS experiment,
         MIN(variant) AS variant, MIN(inviter) AS inviter, MIN(merged_from) AS merged_from
  FROM window_records
  WHERE event_id IN (SELECT event_id FROM repeated)
  GROUP BY event_id
),
-- person.merged: merged_from's events belong to person; a survivor merged later is followed one more hop
merges AS (
  SELECT merged_from AS alias, MIN(person) AS survivor
  FROM raw
  WHERE type = 'person.merged' AND merged_from IS NOT NULL AND merged_from <> person
  GROUP BY merged_from
),
aliases AS (
  SELECT m1.alias, COALESCE(m2.survivor, m1.survivor) AS survivor
  FROM merges m1 LEFT JOIN merges m2 ON m2.alias = m1.survivor
),
gone AS (SELECT DISTINCT person FROM erased),
events AS (
  SELECT COALESCE(a.survivor, r.person) AS person, r.platform, r.type, r.ts,
         CAST(r.ts + INTERVAL '8' HOUR AS DATE) AS day, r.by_user, r.channel, r.experiment, r.variant,
         CASE WHEN gi.person IS NULL THEN COALESCE(ai.survivor, r.inviter) END AS inviter
  FROM raw r
  LEFT JOIN aliases a ON a.alias = r.person
  LEFT JOIN aliases ai ON ai.alias = r.inviter
  LEFT JOIN gone gi ON gi.person = COALESCE(ai.survivor, r.inviter)
  LEFT JOIN gone g1 ON g1.person = COALESCE(a.survivor, r.person)
  LEFT JOIN gone g2 ON g2.person = r.person
  WHERE r.type <> 'person.merged' AND g1.person IS NULL AND g2.person IS NULL
)
