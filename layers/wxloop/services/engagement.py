"""The engagement profile on each person (``eng`` on ``USER#{uid}``/``PROFILE``), kept by the stream function
from every journey event, never on the webhook's path.

Every journey event lands once as a ``USER#{uid}``/``EV#…`` item (pushes through ``journey.record``, the
Mini Program's own events written by its API), so the stream's INSERT records of those items are the one
source. A batch is grouped by person: one read and one conditional write per person per batch. The write
stores the highest stream sequence number applied (``eng_seq``); records at or below it are skipped, so a
replayed batch changes nothing, and a lost race (another batch wrote in between) reads and applies again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from wxloop.adapters.dynamo import people
from wxloop.adapters.dynamo.codec import unmarshal
from wxloop.domain.engagement import JourneyEvent, Profile, from_journey, last_active, update

WRITE_TRIES = 3


def engagement_event(record: Mapping) -> tuple[str, int, JourneyEvent] | None:
    """(uid, stream sequence number, engagement event) of a stream record that inserts a journey event with an
    attention signal, else None."""
    if record.get("eventName") != "INSERT":
        return None
    change = record.get("dynamodb") or {}
    keys = unmarshal(change.get("Keys")) or {}
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    if not (pk.startswith("USER#") and sk.startswith("EV#")):
        return None
    new = unmarshal(change.get("NewImage")) or {}
    try:
        seq, at = int(change.get("SequenceNumber") or 0), int(new.get("at") or 0)
    except (TypeError, ValueError):
        return None
    event = from_journey(str(new.get("type") or ""), at) if at > 0 and seq > 0 else None
    return None if event is None else (pk.removeprefix("USER#"), seq, event)


def apply(found: Iterable[tuple[str, int, JourneyEvent]]) -> int:
    """Fold the events into each person's profile; returns how many persons were written. Raises
    ``RepositoryError`` when DynamoDB fails (the caller counts it: the profile is derived, it holds no shard)."""
    by_person: dict[str, list[tuple[int, JourneyEvent]]] = defaultdict(list)
    for uid, seq, event in found:
        by_person[uid].append((seq, event))
    written = 0
    for uid, events in by_person.items():
        events.sort(key=lambda e: e[0])
        for _ in range(WRITE_TRIES):
            doc, applied, exists = people.get_engagement(uid)
            fresh = [(s, e) for s, e in events if s > applied]
            if not exists or not fresh:
                break
            profile = Profile.from_doc(doc)
            for _, event in fresh:
                profile = update(profile, event)
            if people.put_engagement(uid, profile.to_doc(), seq=fresh[-1][0], expected_seq=applied,
                                     active_at=last_active(profile)):
                written += 1
                break
    return written
