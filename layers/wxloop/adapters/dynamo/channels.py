"""Channels (``CHANNEL#{name}``/``CHANNEL``: kind, code or link, expiry, cost; listed on the index under
``gsi1pk`` ``CHANNELS``) and their per-day counters (``CHANNEL#{name}``/``DAY#{date}``), kept by the stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.codec import ConditionFailed, call, get, marshal, table_name, unmarshal
from wxloop.adapters.dynamo.keys import channel_key

COUNTERS = ("scans", "opens", "new_followers", "new_mp_users", "rewarded")


def put_channel(name: str, fields: Mapping[str, Any]) -> None:
    """Create or replace the channel ``name`` (a renewal replaces the code or link and the expiry)."""
    call("put_item", Item={**channel_key(name), **marshal({**fields, "name": name, "gsi1pk": "CHANNELS",
                                                            "gsi1sk": name})})


def replace_link(name: str, rev: int, fields: Mapping[str, Any]) -> bool:
    """Set a renewed channel's ``fields`` (link, ticket, expiry) and its revision ``rev + 1`` if its revision
    is still ``rev`` (a channel never renewed has none: 0); False when someone renewed (or removed) it
    meanwhile, so two renewals never overwrite each other."""
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": v for i, v in enumerate(fields.values())}
    try:
        call("update_item", Key=channel_key(name),
             UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))) + ", #r = :next",
             ConditionExpression="attribute_exists(pk) AND " + (
                 "(attribute_not_exists(#r) OR #r = :old)" if rev == 0 else "#r = :old"),
             ExpressionAttributeNames={**names, "#r": "rev"},
             ExpressionAttributeValues=marshal({**values, ":old": rev, ":next": rev + 1}))
    except ConditionFailed:
        return False
    return True


def get_channel(name: str) -> dict | None:
    return get(channel_key(name), consistent=False)


def list_channels() -> list[dict]:
    """Every channel (one query of the index per page)."""
    out, kwargs = [], {"TableName": table_name(), "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :c",
                       "ExpressionAttributeValues": marshal({":c": "CHANNELS"})}
    while True:
        page = call("query", **kwargs)
        out += [unmarshal(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def count(name: str, day: str, counter: str, n: int = 1) -> None:
    """Add ``n`` to a channel's counter of ``day`` (a stream replay may count twice: reports, not money)."""
    if counter not in COUNTERS:
        raise ValueError(counter)
    call("update_item", TableName=table_name(), Key=channel_key(name, f"DAY#{day}"),
         UpdateExpression="ADD #c :n", ExpressionAttributeNames={"#c": counter},
         ExpressionAttributeValues=marshal({":n": n}))


def totals(name: str) -> dict[str, int]:
    """A channel's counters summed over its days (one query)."""
    out = dict.fromkeys(COUNTERS, 0)
    kwargs = {"TableName": table_name(), "KeyConditionExpression": "pk = :p AND begins_with(sk, :d)",
              "ExpressionAttributeValues": marshal({":p": f"CHANNEL#{name}", ":d": "DAY#"})}
    while True:
        page = call("query", **kwargs)
        for item in page.get("Items", []):
            for k, v in (unmarshal(item) or {}).items():
                if k in out:
                    out[k] += int(v)
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
