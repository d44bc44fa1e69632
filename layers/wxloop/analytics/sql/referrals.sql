-- Referrals: invitees are persons first attributed to an inviter (referral.attributed, never themselves)
-- in the window; invite conversion = invitees converting after attribution / invitees;
-- K-factor = converted invitees / persons active in the window (new converting persons each active one brings).
WITH
attributed AS (
  SELECT person AS invitee, inviter, ts, ROW_NUMBER() OVER (PARTITION BY person ORDER BY ts, inviter) AS rn
  FROM events
  WHERE type = 'referral.attributed' AND inviter IS NOT NULL AND inviter <> person
),
invites AS (
  SELECT invitee, inviter, ts FROM attributed
  WHERE rn = 1 AND CAST(ts + INTERVAL '8' HOUR AS DATE) BETWEEN :since AND :until
),
converted AS (
  SELECT i.invitee FROM invites i JOIN conversions c ON c.person = i.invitee AND c.conv_ts >= i.ts
),
active AS (
  SELECT COUNT(DISTINCT person) AS persons FROM events WHERE by_user AND day BETWEEN :since AND :until
)
SELECT (SELECT persons FROM active) AS active_persons,
       (SELECT COUNT(DISTINCT inviter) FROM invites) AS inviters,
       (SELECT COUNT(*) FROM invites) AS invitees,
       (SELECT COUNT(*) FROM converted) AS converted_invitees,
       (SELECT CAST(COUNT(*) AS DOUBLE) FROM converted) / NULLIF((SELECT COUNT(*) FROM invites), 0)
         AS invite_conversion,
       (SELECT CAST(COUNT(*) AS DOUBLE) FROM converted) / NULLIF((SELECT persons FROM active), 0) AS k_factor
