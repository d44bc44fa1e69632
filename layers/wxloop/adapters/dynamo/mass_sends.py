"""A campaign run's OA mass send (``oa_mass``): its tag batches on the run item and the account's mass quota.

| item | pk | sk | holds |
|---|---|---|---|
| run (``wxloop.adapters.dynamo.campaigns``) | ``CAMPAIGN#{id}`` | ``RUN#{run}`` | ``mass_batches`` (ids of the tag batches queued), ``mass_tagged`` (ids done), ``mass_final`` (every batch is queued), ``mass_tag`` (the run's OA tag id), ``mass_sent_at``, counters ``n_mass_*`` |
| mass quota | ``QUOTA#{app}`` | ``MASS#{period}`` | ``n`` sends used in the period (a Shanghai day or month), ``runs`` that counted; TTL |

Batch ids are sets, not counters, so a batch queued or tagged twice (a bucket released again, a job retried)
counts once; the mass send is due when ``mass_final`` is set and ``mass_tagged`` holds every queued batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from wxloop.adapters.dynamo.codec import ConditionFailed, call, conditional_update, get, marshal
from wxloop.adapters.dynamo.keys import campaign_key

QUOTA_KEEP_SECONDS = 40 * 86400  # a month's counter outlives its month


def _run_key(campaign_id: str, run: str) -> dict:
    return campaign_key(campaign_id, f"RUN#{run}")


def add_batches(campaign_id: str, run: str, batch_ids: Iterable[str]) -> None:
    """Record tag batches as queued (idempotent)."""
    ids = sorted(set(batch_ids))
    if ids:
        call("update_item", Key=_run_key(campaign_id, run), UpdateExpression="ADD mass_batches :b",
             ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":b": {"SS": ids}})


def mark_final(campaign_id: str, run: str) -> None:
    """Every tag batch of the run is queued: the mass send may go once they are all tagged."""
    conditional_update(Key=_run_key(campaign_id, run), UpdateExpression="SET mass_final = :t",
                       ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues=marshal({":t": True}))


def mark_tagged(campaign_id: str, run: str, batch_id: str, members: int, *, failed: int = 0) -> bool:
    """A batch is tagged: its id joins ``mass_tagged`` and its members ``n_mass_tagged`` (and ``failed``, the
    members of a batch WeChat refused, ``n_skip_mass_tag_failed``), once, in one write (False: it had been
    marked)."""
    return conditional_update(
        Key=_run_key(campaign_id, run),
        UpdateExpression="ADD mass_tagged :b, n_mass_tagged :n" + (", n_skip_mass_tag_failed :f" if failed else ""),
        ConditionExpression="attribute_exists(pk) AND NOT contains(mass_tagged, :id)",
        ExpressionAttributeValues={":b": {"SS": [batch_id]}, ":n": {"N": str(int(members))},
                                   ":id": {"S": batch_id}, **({":f": {"N": str(int(failed))}} if failed else {})},
    ) is not None


def state(campaign_id: str, run: str) -> dict:
    """The run's mass fields: ``batches``, ``tagged`` (sets), ``final``, ``tag`` (id or None), ``members``."""
    item = get(_run_key(campaign_id, run)) or {}
    return {"batches": set(item.get("mass_batches") or ()), "tagged": set(item.get("mass_tagged") or ()),
            "final": bool(item.get("mass_final")), "tag": int(item["mass_tag"]) if "mass_tag" in item else None,
            "members": int(item.get("n_mass_tagged") or 0)}


def claim_tag(campaign_id: str, run: str, tag_id: int) -> int:
    """Store ``tag_id`` as the run's tag unless one is stored; returns the run's tag id."""
    try:
        call("update_item", Key=_run_key(campaign_id, run), UpdateExpression="SET mass_tag = :t",
             ConditionExpression="attribute_exists(pk) AND attribute_not_exists(mass_tag)",
             ExpressionAttributeValues=marshal({":t": int(tag_id)}))
    except ConditionFailed:
        return int((get(_run_key(campaign_id, run)) or {})["mass_tag"])
    return int(tag_id)


def spend_quota(app_id: str, period: str, limit: int, run_key: str, now: int) -> bool:
    """Count one mass send of ``run_key`` against the account's ``period`` (at most ``limit``); True when
    counted now or before (a retried send counts once), False when the period's quota is used up."""
    key = {"pk": {"S": f"QUOTA#{app_id}"}, "sk": {"S": f"MASS#{period}"}}
    try:
        call("update_item", Key=key, UpdateExpression="ADD n :one, runs :r SET #ttl = :ttl",
             ConditionExpression="(attribute_not_exists(n) OR n < :limit) AND "
                                 "(attribute_not_exists(runs) OR NOT contains(runs, :rk))",
             ExpressionAttributeNames={"#ttl": "ttl"},
             ExpressionAttributeValues={":one": {"N": "1"}, ":r": {"SS": [run_key]}, ":rk": {"S": run_key},
                                        ":limit": {"N": str(int(limit))}, ":ttl": {"N": str(now + QUOTA_KEEP_SECONDS)}})
    except ConditionFailed:
        return run_key in ((get(key) or {}).get("runs") or ())
    return True


def begin_send(campaign_id: str, run: str, now: int) -> bool:
    """Mark the run's mass send as going out, once: False when it went before (a retried job must not send a
    second mass message; at most once is the safe side)."""
    return conditional_update(
        Key=_run_key(campaign_id, run), UpdateExpression="SET mass_sent_at = :now",
        ConditionExpression="attribute_exists(pk) AND attribute_not_exists(mass_sent_at)",
        ExpressionAttributeValues=marshal({":now": int(now)})) is not None
