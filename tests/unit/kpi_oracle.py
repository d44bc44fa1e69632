"""An independent Python computation of every KPI, from the KPI definitions (not from the SQL).

Plain loops over lake rows (dicts with ``ts`` in epoch ms), so a mistake in a SQL join, filter or time zone
shows up as a difference. Definitions it implements are the ones written in each ``sql/*.sql`` header.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

SHANGHAI = timedelta(hours=8)


def local_day(ts_ms: int) -> date:
    return (datetime.fromtimestamp(ts_ms / 1000, UTC) + SHANGHAI).date()


class Oracle:
    def __init__(self, rows, *, since: date, until: date, conversion: str, registration, erased=(),
                 target: float = 0.4) -> None:
        self.since, self.until, self.conversion, self.registration = since, until, conversion, set(registration)
        self.target = target
        end = int(datetime(until.year, until.month, until.day, 16, tzinfo=UTC).timestamp() * 1000)
        unique, seen = [], set()
        for r in rows:
            key = r["event_id"]  # a repeated delivery: the same event id (and the same content)
            if key in seen or r["ts"] >= end:
                continue
            seen.add(key)
            unique.append(r)
        merges: dict[str, str] = {}
        for r in unique:
            if r["type"] == "person.merged" and r.get("merged_from") and r["merged_from"] != r["person"]:
                old = merges.get(r["merged_from"])
                merges[r["merged_from"]] = r["person"] if old is None else min(old, r["person"])

        def resolve(p):
            s = merges.get(p)
            return p if s is None else merges.get(s, s)

        erased = set(erased)
        self.events = []
        for r in unique:
            person = resolve(r["person"])
            if r["type"] == "person.merged" or person in erased or r["person"] in erased:
                continue
            inviter = resolve(r["inviter"]) if r.get("inviter") else None
            self.events.append({**r, "person": person, "inviter": None if inviter in erased else inviter,
                                "day": local_day(r["ts"])})
        self.by_person = defaultdict(list)
        for e in self.events:
            self.by_person[e["person"]].append(e)
        self.first = {}
        for p, evs in self.by_person.items():
            own = [e for e in evs if e["by_user"]]
            if own:
                t = min(e["ts"] for e in own)
                chans = [e["channel"] for e in own if e["ts"] == t and e["channel"] is not None]
                self.first[p] = (t, local_day(t), min(chans) if chans else "direct")
        self.conv, self.conv_last = {}, {}
        for p, evs in self.by_person.items():
            ts = [e["ts"] for e in evs if e["type"] == conversion]
            if ts:
                self.conv[p], self.conv_last[p] = min(ts), max(ts)

    def in_window(self, d: date) -> bool:
        return self.since <= d <= self.until

    def cohort(self):
        return {p: f for p, f in self.first.items() if self.in_window(f[1])}

    def cross_platform_share(self):
        weeks = defaultdict(lambda: defaultdict(set))
        for e in self.events:
            if e["by_user"] and self.in_window(e["day"]):
                week = e["day"] - timedelta(days=e["day"].weekday())
                weeks[week][e["person"]].add(e["platform"])
        out = []
        for week in sorted(weeks):
            persons = weeks[week]
            cross = sum(1 for p in persons.values() if len(p) >= 2)
            out.append({"week": week.isoformat(), "active_persons": len(persons), "cross_platform_persons": cross,
                        "cross_share": cross / len(persons), "target": self.target})
        return out

    def time_to_conversion(self):
        cohort = self.cohort()
        d = sorted(self._secs())
        n = len(d)
        median = None
        if n:
            median = (d[(n - 1) // 2] + d[n // 2]) / 2 / 86400
        return [{"persons": len(cohort), "converted": n, "conversion_rate": n / len(cohort) if cohort else None,
                 "median_days": median, "mean_days": sum(d) / n / 86400 if n else None,
                 "share_under_7d": sum(1 for x in d if x < 7 * 86400) / n if n else None}]

    def _secs(self):
        out = []
        for p, (t, _, _) in self.cohort().items():
            c = self.conv.get(p)
            if c is not None and c >= t:
                out.append((c - t) / 1000)
        return out

    def conversion_histogram(self):
        buckets = defaultdict(int)
        for s in self._secs():
            buckets[min(int(s // 86400), 30)] += 1
        return [{"days": k, "persons": v} for k, v in sorted(buckets.items())]

    def retention(self):
        segment = {}
        for p, (_, d0, _) in self.cohort().items():
            plats = {e["platform"] for e in self.by_person[p] if e["by_user"] and e["day"] == d0}
            segment[p] = ("cross" if len(plats) >= 2 else "single", d0)
        out = []
        for seg in ("cross", "single"):
            for n in range(1, 31):
                eligible = [p for p, (s, d0) in segment.items() if s == seg and (self.until - d0).days >= n]
                if not eligible:
                    continue
                kept = sum(1 for p in eligible if any(
                    e["by_user"] and e["day"] == segment[p][1] + timedelta(days=n) for e in self.by_person[p]))
                out.append({"segment": seg, "day": n, "eligible": len(eligible), "retained": kept,
                            "rate": kept / len(eligible)})
        return out

    def funnel(self):
        rows = defaultdict(lambda: [0, 0, 0, 0, 0])
        for p, (_, _, channel) in self.cohort().items():
            evs = self.by_person[p]
            row = rows[channel]
            row[0] += 1
            steps = [lambda e: e["by_user"] and e["platform"] == "oa",
                     lambda e: e["by_user"] and e["platform"] == "mp",
                     lambda e: e["type"] in self.registration,
                     lambda e: e["type"] == self.conversion]
            at = None
            for i, step in enumerate(steps):
                ts = [e["ts"] for e in evs if step(e) and (at is None or e["ts"] >= at)]
                if not ts:
                    break
                at = min(ts)
                row[i + 1] += 1
        out = [{"channel": c, "persons": r[0], "oa_touch": r[1], "mp_open": r[2], "registered": r[3],
                "converted": r[4]} for c, r in rows.items()]
        return sorted(out, key=lambda r: (-r["persons"], r["channel"]))

    def referrals(self):
        attributions = defaultdict(list)
        for e in self.events:
            if e["type"] == "referral.attributed" and e["inviter"] and e["inviter"] != e["person"]:
                attributions[e["person"]].append((e["ts"], e["inviter"]))
        invites = {}
        for p, items in attributions.items():
            ts, inviter = min(items)
            if self.in_window(local_day(ts)):
                invites[p] = (ts, inviter)
        converted = sum(1 for p, (ts, _) in invites.items() if self.conv.get(p) is not None and self.conv[p] >= ts)
        active = len({e["person"] for e in self.events if e["by_user"] and self.in_window(e["day"])})
        return [{"active_persons": active, "inviters": len({i for _, i in invites.values()}),
                 "invitees": len(invites), "converted_invitees": converted,
                 "invite_conversion": converted / len(invites) if invites else None,
                 "k_factor": converted / active if active else None}]

    def channels(self):
        rows = defaultdict(list)
        for p, (t, _, channel) in self.cohort().items():
            evs = self.by_person[p]
            plats = {e["platform"] for e in evs if e["by_user"]}
            reg = any(e["type"] in self.registration for e in evs)
            c = self.conv.get(p)
            conv = c is not None and c >= t
            rows[channel].append((len(plats) >= 2, reg, conv, (c - t) / 1000 / 86400 if conv else None))
        out = []
        for ch, items in rows.items():
            days = [x[3] for x in items if x[3] is not None]
            out.append({"channel": ch, "persons": len(items), "cross_platform": sum(x[0] for x in items),
                        "registered": sum(x[1] for x in items), "converted": sum(x[2] for x in items),
                        "conversion_rate": sum(x[2] for x in items) / len(items),
                        "mean_days_to_convert": sum(days) / len(days) if days else None})
        return sorted(out, key=lambda r: (-r["persons"], r["channel"]))

    def engagement(self):
        scores = defaultdict(lambda: [0, set()])
        for e in self.events:
            if e["by_user"] and self.in_window(e["day"]):
                s = scores[e["person"]]
                s[0] += 1 if e["platform"] == "oa" else 2
                s[1].add(e["day"])
        buckets = defaultdict(list)
        labels = {1: "<10", 2: "10-24", 3: "25-49", 4: "50-99", 5: "100+"}
        for pts, days in scores.values():
            score = pts + 5 * len(days)
            b = 1 if score < 10 else 2 if score < 25 else 3 if score < 50 else 4 if score < 100 else 5
            buckets[b].append(score)
        return [{"bucket": b, "label": labels[b], "persons": len(v), "mean_score": sum(v) / len(v)}
                for b, v in sorted(buckets.items())]

    def ab_variants(self):
        firsts = {}
        for e in self.events:
            if e.get("experiment") and e.get("variant"):
                key = (e["person"], e["experiment"])
                cand = (e["ts"], e["variant"])
                if key not in firsts or cand < firsts[key]:
                    firsts[key] = cand
        counts = defaultdict(lambda: [0, 0])
        for (p, exp), (ts, variant) in firsts.items():
            if self.in_window(local_day(ts)):
                c = counts[(exp, variant)]
                c[0] += 1
                c[1] += int(self.conv_last.get(p) is not None and self.conv_last[p] >= ts)  # any, not only the first
        return [{"experiment": k[0], "variant": k[1], "exposed": v[0], "converted": v[1]}
                for k, v in sorted(counts.items())]
