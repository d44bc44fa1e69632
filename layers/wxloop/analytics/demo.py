"""Synthetic journeys with ground truth (``wxloop demo traffic``): channels, OA -> MP crossing, registration,
conversion, referrals, A/B exposure, churn, UnionID merges and duplicate deliveries.

Deterministic for a seed. Times are spread over the whole Asia/Shanghai day, midnight included, so period
edges are exercised. Built column-wise per UTC day so a million events stay cheap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from wxloop.analytics.kpi import DEFAULT_CONVERSION
from wxloop.analytics.schema import COLUMN_NAMES, SCHEMA_VERSION
from wxloop.domain.experiments import assign_variant

DAY = 86400
SHANGHAI_OFFSET = 8 * 3600
# channel: (weight, starts on the OA, chance to cross to the other platform)
CHANNELS = {"qr_store": (0.25, 0.95, 0.55), "article": (0.25, 0.9, 0.35), "menu": (0.10, 1.0, 0.6),
            "moments_ad": (0.15, 0.2, 0.3), "search": (0.10, 0.3, 0.25), "referral": (0.15, 0.1, 0.5)}
OA_TYPES = ("oa.text", "oa.click", "oa.view_miniprogram", "oa.scan")
MP_TYPES = ("mp.launch", "mp.page_view", "mp.client.add_to_cart", "mp.share")
EXPERIMENT, VARIANTS = "welcome_copy", {"a": 0.5, "b": 0.5}
APPS = {"oa": "wx1234567890abcdef", "mp": "wxabcdef1234567890"}


@dataclass
class Traffic:
    """Generated rows by UTC day (column lists, ``ts`` in epoch ms) and the ground truth."""

    start: date
    days: int
    by_day: dict[int, list[tuple]] = field(default_factory=dict)  # UTC day number -> rows in COLUMN_NAMES order
    truth: dict[str, Any] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        self.by_day.setdefault(row["ts"] // 86_400_000, []).append(tuple(row.get(c) for c in COLUMN_NAMES))

    @property
    def events(self) -> int:
        return sum(len(rows) for rows in self.by_day.values())

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (tests; slow for millions)."""
        return [dict(zip(COLUMN_NAMES, r, strict=True)) for rows in self.by_day.values() for r in rows]

    def write(self, writer) -> int:
        """Write every day's rows through a ``LocalParquetWriter``; returns the number of rows."""
        for day, rows in sorted(self.by_day.items()):
            name = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            writer.write_columns(name, dict(zip(COLUMN_NAMES, map(list, zip(*rows, strict=True)), strict=True)))
        return self.events


class _Person:
    def __init__(self, gen: _Generator, uid: str, channel: str, t0: int) -> None:
        self.gen, self.uid, self.channel, self.t0 = gen, uid, channel, t0
        self.n = 0
        self.alias: str | None = None
        self.merge_at: int | None = None

    def emit(self, etype: str, platform: str, t: int, *, by_user: bool = True, **extra: Any) -> None:
        if t >= self.gen.end:
            return
        self.n += 1
        person = self.alias if self.alias and self.merge_at is not None and t < self.merge_at else self.uid
        row = {"event_id": f"{self.uid}-{self.n}", "person": person, "platform": platform,
               "app": APPS[platform], "type": etype, "ts": t * 1000 + self.gen.rng.randrange(1000),
               "by_user": by_user, "channel": self.channel, "v": SCHEMA_VERSION, **extra}
        self.gen.traffic.add(row)
        if self.gen.rng.random() < 0.005:  # at-least-once delivery: the same record twice
            self.gen.traffic.add(dict(row))
            self.gen.traffic.truth["duplicates"] += 1


class _Generator:
    def __init__(self, persons: int, days: int, seed: int, start: date, conversion: str) -> None:
        self.rng = random.Random(seed)
        self.persons, self.days, self.conversion = persons, days, conversion
        self.origin = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) - SHANGHAI_OFFSET
        self.end = self.origin + days * DAY
        self.traffic = Traffic(start, days, truth={"persons": persons, "merged": 0, "duplicates": 0,
                                                   "invitees": 0, "converted": 0, "cross_platform": 0})
        self.uids: list[str] = []

    def run(self) -> Traffic:
        names, weights = list(CHANNELS), [c[0] for c in CHANNELS.values()]
        for i in range(self.persons):
            uid = f"p{i:07d}"
            channel = self.rng.choices(names, weights)[0]
            t0 = self.origin + self.rng.randrange(self.days) * DAY + self.rng.randrange(DAY)
            self.person(_Person(self, uid, channel, t0))
            self.uids.append(uid)
        return self.traffic

    def person(self, p: _Person) -> None:  # one journey, top to bottom: reads as the story it tells
        rng, (_, oa_first, cross_p) = self.rng, CHANNELS[p.channel]
        first = "oa" if rng.random() < oa_first else "mp"
        other = "mp" if first == "oa" else "oa"
        crosses = rng.random() < cross_p
        cross_at = p.t0 + (0 if rng.random() < 0.5 else rng.randrange(1, 10) * DAY) + rng.randrange(60, 4 * 3600)
        if crosses and rng.random() < 0.05:  # an openid-only identity, merged by UnionID when they cross
            p.alias, p.merge_at = f"{p.uid}x", cross_at
            self.traffic.truth["merged"] += 1
        inviter = rng.choice(self.uids) if p.channel == "referral" and self.uids else None
        p.emit("oa.subscribe" if first == "oa" else "mp.launch", first, p.t0)
        if inviter:
            p.emit("referral.attributed", "mp", p.t0 + 1, by_user=False, inviter=inviter)
            self.traffic.truth["invitees"] += 1
        if crosses and cross_at < self.end:
            self.traffic.truth["cross_platform"] += 1
            if p.merge_at is not None:
                p.emit("person.merged", other, cross_at, by_user=False, merged_from=p.alias)
            p.emit("mp.launch" if other == "mp" else "oa.subscribe", other, cross_at)
        self._activity(p, first, other if crosses else None, cross_at)
        self._outcomes(p, first, crosses, cross_at, inviter)

    def _activity(self, p: _Person, first: str, other: str | None, cross_at: int) -> None:
        rng = self.rng
        p_active = 0.30 if other else 0.15
        for d in range(1, 31):
            if rng.random() < 0.04 * (1 if other else 2):  # churn: gone for good
                return
            if rng.random() < p_active:
                day_start = p.t0 - (p.t0 - self.origin) % DAY + d * DAY
                for _ in range(rng.randint(1, 4)):
                    t = day_start + rng.randrange(DAY)
                    plat = other if other and t >= cross_at and rng.random() < 0.5 else first
                    p.emit(rng.choice(OA_TYPES if plat == "oa" else MP_TYPES), plat, t)
            if rng.random() < 0.03:
                p.emit("oa.send.cs", "oa", p.t0 + d * DAY, by_user=False)

    def _outcomes(self, p: _Person, first: str, crosses: bool, cross_at: int, inviter: str | None) -> None:
        rng = self.rng
        mp_at = p.t0 if first == "mp" else cross_at if crosses else None
        if mp_at is None or mp_at >= self.end:
            return
        variant = assign_variant(p.uid, EXPERIMENT, VARIANTS)
        p.emit("mp.page_view", "mp", mp_at + 5, experiment=EXPERIMENT, variant=variant)
        if rng.random() >= 0.55:
            return
        reg_at = mp_at + rng.randrange(30, 3 * DAY)
        p.emit("mp.phone_bound", "mp", reg_at)
        if rng.random() >= (0.55 if variant == "b" else 0.4) * (1.2 if crosses else 1):
            return
        conv_at = reg_at + int(rng.expovariate(1 / (3 * DAY)))
        if conv_at < self.end:
            p.emit(self.conversion, "mp", conv_at)
            self.traffic.truth["converted"] += 1
            if inviter:
                p.emit("reward.granted", "mp", conv_at + 1, by_user=False)


def generate(persons: int, days: int, seed: int, *, start: date | None = None,
             conversion: str = DEFAULT_CONVERSION) -> Traffic:
    """Synthetic traffic of ``persons`` first touching over ``days`` Asia/Shanghai days from ``start``
    (default: ``days`` days before today). ``truth`` counts persons, merges, duplicates, invitees, converters
    and cross-platform persons as generated."""
    if persons < 0 or days < 1:
        raise ValueError("persons >= 0 and days >= 1")
    start = start or (datetime.now(UTC) + timedelta(hours=8)).date() - timedelta(days=days)
    return _Generator(persons, days, seed, start, conversion).run()
