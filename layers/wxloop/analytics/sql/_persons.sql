-- Per-person facts every KPI shares, from events (second part of the prelude).
-- first touch: the person's earliest own action; its channel (none recorded: 'direct')
first_ts AS (SELECT person, MIN(ts) AS ts FROM events WHERE by_user GROUP BY person),
first_touch AS (
  SELECT f.person, f.ts AS first_ts, CAST(f.ts + INTERVAL '8' HOUR AS DATE) AS first_day,
         COALESCE(MIN(e.channel), 'direct') AS channel
  FROM first_ts f JOIN events e ON e.person = f.person AND e.ts = f.ts AND e.by_user
  GROUP BY f.person, f.ts
),
conversions AS (SELECT person, MIN(ts) AS conv_ts FROM events WHERE type = :conversion GROUP BY person)
