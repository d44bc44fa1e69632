"""Export (PIPL Art. 45): one JSON document of everything held about a person, with a readme of its fields.

``request_export`` records the request on the person (``USER#{uid}``/``EXPORT#{id}``) and either queues
it (``PRIVACY_QUEUE_URL``: the privacy function builds it) or builds it at once (local runs). The document
lands in S3 (``EXPORT_BUCKET``; the answer carries a presigned URL valid ``EXPORT_URL_SECONDS``, 24 h) or
in a local folder (``EXPORT_PATH``). Other people appear anonymised: a referral shows the other side as
``another person``. The sealed phone number is opened for the export (the person's own data, in clear).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wxloop.adapters.dynamo import privacy as data
from wxloop.adapters.dynamo.codec import call, get, marshal
from wxloop.domain import consent
from wxloop.settings import settings

URL_SECONDS = 24 * 3600
README = {
    "person": "Your profile: when and where we first met you, points, follow state, preferences. Sealed values "
              "(session keys) are left out; your phone number is shown in clear under phone.",
    "identities": "Your WeChat ids in each of our apps (openids) and what we keep per id: last interaction, "
                  "customer-service windows, subscription credits (SUB#), subscription events (SUBEV#).",
    "merged_persons": "Records of you under another id that we merged into this one (same UnionID).",
    "consents": "Your consent per purpose (analytics, marketing, personalisation, phone) and its history.",
    "preferences": "Topics you chose in the mini program.",
    "phone": "Your phone number, if you gave it.",
    "points_and_ledger": "Your points balance and every reward entry (LEDGER#).",
    "referrals": "Referrals you made or came through; the other person is shown anonymised.",
    "journey": "What you did with us and when (events kept for a limited time), from the table and the lake.",
    "other_items": "Any other item stored under your ids.",
}


def _dump(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return "<sealed>"
    if isinstance(obj, set | frozenset):
        return sorted(_dump(v) for v in obj)
    if isinstance(obj, Mapping):
        return {str(k): _dump(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_dump(v) for v in obj]
    return obj


def _export_key(uid: str, export_id: str) -> dict:
    return {"pk": {"S": f"USER#{uid}"}, "sk": {"S": f"EXPORT#{export_id}"}}


def request_export(uid: str, *, source: str, now: int | None = None) -> dict:
    """Record an export request and start it; returns the export's status (``status_of``)."""
    now = int(time.time()) if now is None else now
    export_id = uuid.uuid4().hex
    call("put_item", Item={**_export_key(uid, export_id), **marshal(
        {"state": "pending", "requested_at": now, "source": source, "ttl": now + data.EXPORT_TTL_SECONDS})})
    if queue_url := settings().privacy_queue_url:
        from wxloop.adapters import aws

        aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(
            {"kind": "privacy_export", "uid": uid, "export_id": export_id}))
    else:
        build(uid, export_id, now=now)
    # just written: a read that misses it still reports the request (pending) rather than nothing
    return status_of(uid, export_id) or {"id": export_id, "state": "pending"}


def status_of(uid: str, export_id: str) -> dict | None:
    """``{id, state, url?, expires_at?}`` of the person's export, or None (none such, or someone else's)."""
    item = get(_export_key(uid, export_id))
    if item is None:
        return None
    out: dict[str, Any] = {"id": export_id, "state": item.get("state", "pending")}
    if item.get("state") == "ready":
        out["url"], out["expires_at"] = location(str(item["object"]))
    return out


def build(uid: str, export_id: str, *, now: int | None = None) -> str:
    """Gather, store and mark ready; returns the object key (or file path). Idempotent."""
    now = int(time.time()) if now is None else now
    document = gather(uid, now=now)
    key = f"exports/{export_id}.json"
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    store_object(key, body)
    call("update_item", Key=_export_key(uid, export_id), UpdateExpression="SET #s = :r, #o = :k, ready_at = :now",
         ExpressionAttributeNames={"#s": "state", "#o": "object"},
         ExpressionAttributeValues=marshal({":r": "ready", ":k": key, ":now": now}))
    return key


def gather(uid: str, *, now: int) -> dict:
    """The export document of ``uid``: every item a read of its partitions finds, grouped with a readme."""
    holding = data.holdings(uid)
    doc: dict[str, Any] = {"readme": README, "generated_at": datetime.fromtimestamp(now, UTC).isoformat(),
                           "person": {}, "identities": [], "merged_persons": [], "consents": {}, "preferences": {},
                           "phone": None, "points_and_ledger": {"points": 0, "ledger": []}, "referrals": [],
                           "journey": {"table": [], "lake": []}, "other_items": []}
    own = set(holding["uids"])
    for pk, items in holding["items"].items():
        for item in items:
            _place(doc, pk, item, uid, own)
    doc["journey"]["lake"] = _lake_rows(holding["uids"])
    return _dump(doc)


def _place(doc: dict, pk: str, item: Mapping[str, Any], uid: str, own: set[str]) -> None:  # one branch per kind
    sk = str(item.get("sk", ""))
    clean = {k: v for k, v in item.items() if not (k.startswith("mpsk_") or k.startswith("rl_"))}
    if pk.startswith("USER#") and sk == "PROFILE":
        if pk != f"USER#{uid}":
            doc["merged_persons"].append(clean)
            return
        doc["person"] = {k: v for k, v in clean.items() if k != "phone"}
        doc["consents"]["current"] = consent.ledger(item)
        doc["preferences"] = clean.get("prefs") or {}
        doc["points_and_ledger"]["points"] = int(item.get("points") or 0)
        doc["phone"] = _open_phone(uid, item)
    elif sk.startswith("CONSENT#"):
        doc["consents"].setdefault("history", []).append(clean)
    elif sk.startswith("LEDGER#"):
        doc["points_and_ledger"]["ledger"].append(_anonymised(clean, own))
    elif sk.startswith("EV#"):
        doc["journey"]["table"].append(clean)
    elif pk.startswith("REF#") or sk.startswith("REF"):
        doc["referrals"].append(_anonymised(clean, own))
    elif pk.startswith("ID#"):
        doc["identities"].append(clean)
    else:
        doc["other_items"].append(_anonymised(clean, own))


def _anonymised(item: Mapping[str, Any], own: set[str]) -> dict:
    """Another person's uid named on an item becomes ``another person``."""
    return {k: ("another person" if k in ("inviter", "invitee", "referrer") and v not in own else v)
            for k, v in item.items()}


def _open_phone(uid: str, person: Mapping[str, Any]) -> str | None:
    if not person.get("phone"):
        return None
    from wxloop.adapters import mp_store
    from wxloop.services.mp_api.context import signing_keys
    from wxloop.services.mp_api.profile import phone_aad

    plain = mp_store.unseal(person["phone"], phone_aad(uid), signing_keys())
    return plain.decode("ascii") if plain else None


def _lake_rows(uids: list[str]) -> list[dict]:
    """The person's rows in the local lake (``LAKE_PATH``); deployed, the table's journey is the export's
    journey (the lake holds the same events, delivered from the table's stream)."""
    root = settings().lake_path
    if not root or not Path(root, "journey").is_dir():
        return []
    import pyarrow.parquet as pq

    wanted, rows = set(uids), []
    for path in sorted(Path(root, "journey").glob("dt=*/*.parquet")):
        rows += [r for r in pq.read_table(path).to_pylist() if r.get("person") in wanted]
    return rows


# --- where documents live ------------------------------------------------------------------------------


def store_object(key: str, body: bytes) -> None:
    bucket = settings().export_bucket
    if bucket:
        from wxloop.adapters import aws

        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                                    ServerSideEncryption="AES256")
        return
    path = Path(settings().export_path, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def location(key: str) -> tuple[str, int]:
    """(URL, expiry epoch) of a stored document: an S3 presigned GET valid 24 h, or a local file URL."""
    bucket = settings().export_bucket
    if bucket:
        from wxloop.adapters import aws

        url = aws.client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                      ExpiresIn=URL_SECONDS)
        return url, int(time.time()) + URL_SECONDS
    return Path(settings().export_path, key).resolve().as_uri(), 0


def delete_object(key: str) -> None:
    bucket = settings().export_bucket
    if bucket:
        from wxloop.adapters import aws

        aws.client("s3").delete_object(Bucket=bucket, Key=key)
        return
    Path(settings().export_path, key).unlink(missing_ok=True)
