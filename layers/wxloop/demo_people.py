"""Demo people for trying campaigns on the local stack (``wxloop demo people N``), and for the volume tests.
They belong to the demo accounts (``config/demo-accounts.json``): seeding them elsewhere makes people no
WeChat account knows.

Each person gets the items real traffic would leave: the person (openids, follow state, points, consent,
an engagement profile replayed from generated journey events), an OA and an MP identity (customer-service
windows opened by their last message) and, for some, an MP subscribe credit for the example campaign's
template. Generated from a seed, so runs are repeatable.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator

from wxloop.adapters.dynamo.codec import RepositoryError, call, marshal, table_name
from wxloop.domain.consent import Consent
from wxloop.domain.engagement import JourneyEvent, last_active, replay

OA, MP = "wx1234567890abcdef", "wxabcdef1234567890"
TEMPLATE = "tmpl-new-arrivals"


def person_items(i: int, rng: random.Random, now: int) -> list[dict]:
    """The items of demo person ``i`` (plain dicts with ``pk``/``sk``)."""
    uid = uuid.UUID(int=rng.getrandbits(128)).hex
    oa_openid, mp_openid = f"oDemoOA{i:08d}", f"oDemoMP{i:08d}"
    days_ago = rng.choice([1, 3, 8, 10, 14, 20, 25, 40])
    last = now - days_ago * 86400 - rng.randint(0, 86399)
    hour_bias = rng.choice([11, 12, 19, 20, 21])
    events = [JourneyEvent(rng.choice(["message", "session", "page_view"]), rng.choice(["oa", "mp"]),
                           last - rng.randint(0, 20) * 86400 + ((hour_bias - 8) % 24) * 3600 - last % 86400)
              for _ in range(rng.randint(1, 10))]
    events.append(JourneyEvent("message", rng.choice(["oa", "mp"]), last))
    following = rng.random() < 0.7
    profile = replay(sorted(events, key=lambda e: e.at))
    person = {"pk": f"USER#{uid}", "sk": "PROFILE", "uid": uid, "created_at": last - 60 * 86400,
              "first_touch": {"channel": rng.choice(["oa", "mp", "poster"])},
              "openids": {OA: oa_openid, MP: mp_openid}, "points": rng.randint(0, 800),
              f"fol_{OA}": {"f": following, "at": last}, "eng": json.dumps(profile.to_doc(), separators=(",", ":")),
              "active_at": last_active(profile)}
    if rng.random() < 0.1:  # opted out of marketing pushes (the record ``domain.consent`` keeps)
        person["consent_marketing"] = Consent("marketing", False, "2026-01", last - 86400, "mp_api").to_item()
    window = {"win_msg_at": last, "win_msg_sent": rng.randint(0, 2)} if days_ago <= 1 else {}
    items = [person,
             {"pk": f"ID#{OA}#{oa_openid}", "sk": "ID", "uid": uid, "app_id": OA, "openid": oa_openid,
              "following": following, "last_at": last, **window},
             {"pk": f"ID#{MP}#{mp_openid}", "sk": "ID", "uid": uid, "app_id": MP, "openid": mp_openid, "last_at": last,
              **window}]
    if rng.random() < 0.5:
        items.append({"pk": f"ID#{MP}#{mp_openid}", "sk": f"SUB#{TEMPLATE}", "remaining": rng.randint(1, 2),
                      "updated_at": last})
    return items


def generate(count: int, *, now: int, seed: int = 1) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(count):
        yield from person_items(i, rng, now)


def seed(count: int, *, now: int, seed: int = 1) -> int:
    """Write ``count`` demo people to the table (BatchWriteItem, 25 items a request); returns ``count``."""
    batch: list[dict] = []
    for item in generate(count, now=now, seed=seed):
        batch.append({"PutRequest": {"Item": marshal(item)}})
        if len(batch) == 25:
            _write(batch)
            batch = []
    if batch:
        _write(batch)
    return count


def _write(batch: list[dict]) -> None:
    pending: dict = {table_name(): batch}
    for _ in range(8):
        pending = call("batch_write_item", RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return
    raise RepositoryError("demo people left unprocessed")
