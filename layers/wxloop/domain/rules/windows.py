"""Time windows: when a rule is open, read in Asia/Shanghai, and how a ``window`` field is parsed.

``dates`` from/to are inclusive; daily ``hours`` like ``"09:00-18:00"`` end exclusive (minute resolution);
``weekdays`` mon..sun. A span that crosses midnight (``"22:00-02:00"``) belongs to the day it starts on: with
``weekdays: [fri]`` it is open from Friday 22:00 to Saturday 02:00, and ``dates`` apply to that day too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from wxloop.domain.rules.errors import RuleError
from wxloop.domain.rules.fields import no_unknown as _no_unknown

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")



def _shanghai_tz(key: str = "Asia/Shanghai") -> tzinfo:
    """Asia/Shanghai from the system tz database (no ``tzdata`` package needed on Linux), else UTC+8.

    China has observed no daylight saving time since 1991, so the fixed offset is exact for every date a
    rule can name.
    """
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(key)
    except Exception:  # ZoneInfoNotFoundError, or no tz database at all on a slim image
        return timezone(timedelta(hours=8), "CST")


SHANGHAI = _shanghai_tz()


def local_time(now: datetime) -> datetime:
    """``now`` in Asia/Shanghai; a naive ``now`` is taken as UTC (what Lambda clocks give)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(SHANGHAI)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When a rule is open, in Asia/Shanghai. Empty parts do not restrict."""

    date_from: date | None = None
    date_to: date | None = None
    hours: tuple[tuple[int, int], ...] = ()  # (start minute, end minute), end exclusive; start > end crosses midnight
    weekdays: frozenset[int] = frozenset()  # ISO weekday numbers, Monday = 1

    def is_open(self, now: datetime) -> bool:
        return self.is_open_local(local_time(now))

    def is_open_local(self, local: datetime) -> bool:
        day = local.date()
        if not self.hours:
            return self._day_ok(day)
        minute = local.hour * 60 + local.minute
        for start, end in self.hours:
            if start < end:
                if start <= minute < end and self._day_ok(day):
                    return True
            else:  # crosses midnight: the part after midnight belongs to the previous day
                if minute >= start and self._day_ok(day):
                    return True
                if minute < end and self._day_ok(day - timedelta(days=1)):
                    return True
        return False

    def _day_ok(self, day: date) -> bool:
        if self.date_from is not None and day < self.date_from:
            return False
        if self.date_to is not None and day > self.date_to:
            return False
        return not self.weekdays or day.isoweekday() in self.weekdays

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.date_from or self.date_to:
            dates = {}
            if self.date_from:
                dates["from"] = self.date_from.isoformat()
            if self.date_to:
                dates["to"] = self.date_to.isoformat()
            doc["dates"] = dates
        if self.hours:
            doc["hours"] = [f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.hours]
        if self.weekdays:
            doc["weekdays"] = [WEEKDAYS[d - 1] for d in sorted(self.weekdays)]
        return doc


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"



# ------------------------------------------------------------------------------------------ parsing


def _parse_date(raw: object, path: str) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise RuleError(path, f"must be a date like 2025-01-31, not {raw!r}")


def _parse_hours(raw: object, path: str) -> tuple[tuple[int, int], ...]:
    spans = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(spans, list) or not spans:
        raise RuleError(path, 'must be like "09:00-18:00" (or a list of such spans)')
    out = []
    for n, span in enumerate(spans):
        where = path if isinstance(raw, str) else f"{path}[{n}]"
        m = _HOURS_RE.match(span.strip()) if isinstance(span, str) else None
        if not m:
            raise RuleError(where, f'must be like "09:00-18:00", not {span!r}')
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise RuleError(where, f"{span!r} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise RuleError(where, f"{span!r} is empty; use 00:00-24:00 for the whole day")
        out.append((start, end))
    return tuple(out)


def parse_window(raw: object, path: str) -> TimeWindow:  # noqa: C901  # three optional fields, each checked in turn
    if not isinstance(raw, Mapping):
        raise RuleError(path, "a mapping with dates, hours and/or weekdays")
    _no_unknown(raw, {"dates", "hours", "weekdays"}, path)
    date_from = date_to = None
    if raw.get("dates") is not None:
        dates = raw["dates"]
        if not isinstance(dates, Mapping) or not dates:
            raise RuleError(f"{path}.dates", "a mapping with from and/or to")
        _no_unknown(dates, {"from", "to"}, f"{path}.dates")
        if dates.get("from") is not None:
            date_from = _parse_date(dates["from"], f"{path}.dates.from")
        if dates.get("to") is not None:
            date_to = _parse_date(dates["to"], f"{path}.dates.to")
        if date_from and date_to and date_from > date_to:
            raise RuleError(f"{path}.dates", "from is after to")
    hours = _parse_hours(raw["hours"], f"{path}.hours") if raw.get("hours") is not None else ()
    weekdays: set[int] = set()
    if raw.get("weekdays") is not None:
        days = raw["weekdays"]
        if not isinstance(days, list) or not days:
            raise RuleError(f"{path}.weekdays", "a non-empty list like [mon, tue]")
        for n, day in enumerate(days):
            if isinstance(day, str) and day.strip().lower()[:3] in WEEKDAYS:
                weekdays.add(WEEKDAYS.index(day.strip().lower()[:3]) + 1)
            elif isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7:
                weekdays.add(day)
            else:
                raise RuleError(f"{path}.weekdays[{n}]", f"must be mon..sun (or ISO 1..7), not {day!r}")
    if date_from is None and date_to is None and not hours and not weekdays:
        raise RuleError(path, "is empty")
    return TimeWindow(date_from, date_to, hours, frozenset(weekdays))

