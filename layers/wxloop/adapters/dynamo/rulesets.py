"""Rule sets: items under ``RULES#{app_id}``, one per version (sk ``v#{version}``) and a ``CURRENT`` pointer
that also carries a copy of the document, so the cache loads the live set in one read. The document is
stored as a JSON string (zlib-compressed binary when large) to stay clear of DynamoDB's nesting limits and
of the 400 KB item cap."""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Mapping

from wxloop.adapters.dynamo.codec import RepositoryError, TransactionCancelled, call, get, marshal, table_name
from wxloop.adapters.dynamo.keys import rules_key
from wxloop.domain.rules.stored import inflate_rules_doc

RULES_DOC_INLINE_MAX = 200_000  # bytes of JSON kept as a plain string; larger documents are compressed
RULES_DOC_MAX = 350_000  # bytes stored per item (each item holds one copy; DynamoDB's cap is 400 KB)


class RuleVersionConflict(RepositoryError):
    """That version was already stored with different content (push it under a new version)."""


def _rules_body(doc: Mapping) -> tuple[dict, str]:
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) <= RULES_DOC_INLINE_MAX:
        return {"doc": raw.decode("utf-8")}, sha
    packed = zlib.compress(raw, 9)
    if len(packed) > RULES_DOC_MAX:
        raise RepositoryError(f"rule set too large to store ({len(packed)} bytes compressed)")
    return {"doc_z": packed}, sha


def _rules_doc(item: Mapping) -> dict:
    if "doc_z" in item:
        return json.loads(inflate_rules_doc(bytes(item["doc_z"])).decode("utf-8"))
    return json.loads(item["doc"])


def put_rule_set(app_id: str, doc: dict, version: str) -> None:
    """Store ``doc`` as rule-set ``version`` of ``app_id`` and make it current, in one transaction.

    Pushing the same version with the same content again is a no-op that re-points CURRENT at it; the same
    version with different content raises ``RuleVersionConflict`` and changes nothing. Other failures raise
    ``RepositoryError``.
    """
    body, sha = _rules_body(doc)
    now = int(time.time())
    version_item = {"version": version, "sha": sha, "stored_at": now, **body}
    current_item = {"version": version, "sha": sha, "updated_at": now, **body}
    table = table_name()
    try:
        call("transact_write_items", TransactItems=[
            {"Put": {
                "TableName": table,
                "Item": {**rules_key(app_id, f"v#{version}"), **marshal(version_item)},
                "ConditionExpression": "attribute_not_exists(pk) OR #sha = :sha",
                "ExpressionAttributeNames": {"#sha": "sha"},
                "ExpressionAttributeValues": marshal({":sha": sha}),
            }},
            {"Put": {"TableName": table, "Item": {**rules_key(app_id, "CURRENT"), **marshal(current_item)}}},
        ])
    except TransactionCancelled as exc:
        if exc.reasons and exc.reasons[0] == "ConditionalCheckFailed":
            raise RuleVersionConflict(
                f"rule set version {version!r} of {app_id} already exists with different content"
            ) from exc
        raise


def get_rule_set(app_id: str, version: str | None = None) -> tuple[str, dict] | None:
    """``(version, doc)`` of the given version, or of the current one when ``version`` is None."""
    item = get(rules_key(app_id, "CURRENT" if version is None else f"v#{version}"))
    if not item:
        return None
    return item["version"], _rules_doc(item)


def current_rule_version(app_id: str) -> str | None:
    """The current rule-set version of ``app_id`` (a small eventually consistent read), or None."""
    item = get(rules_key(app_id, "CURRENT"), consistent=False, ProjectionExpression="#v",
               ExpressionAttributeNames={"#v": "version"})
    return item.get("version") if item else None
