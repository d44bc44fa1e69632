"""Consent changes from every source: the MP API, the OA opt-out keyword, the operator's CLI."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import identities, people
from wxloop.adapters.dynamo import privacy as data
from wxloop.domain import consent

logger = Logger(child=True)


def change(uid: str, choices: Mapping[str, bool], *, policy_version: str, source: str,
           now: int | None = None) -> dict:
    """Grant or withdraw each purpose in ``choices`` for the person ``uid``; returns the person's consent
    ledger afterwards (``domain.consent.ledger``). A change older than the stored one is ignored. Raises
    ValueError for an unknown purpose or source, ``RepositoryError`` when DynamoDB fails."""
    now = int(time.time()) if now is None else now
    if source not in consent.SOURCES:
        raise ValueError(f"unknown source {source!r}")
    landed = uid
    for purpose, granted in choices.items():
        record = consent.Consent(consent.check_purpose(purpose), bool(granted), policy_version, now, source)
        landed = data.record_consent(uid, record) or landed
    return consent.ledger(people.get_person(landed))


def current(uid: str) -> dict:
    """The person's consent ledger (every purpose; ``unknown`` where nothing was recorded)."""
    return consent.ledger(people.get_person(uid))


def opt_out_by_openid(app_id: str, openid: str, *, at: int, source: str = "oa_keyword") -> str:
    """The person behind (app_id, openid) withdraws marketing consent (an OA "TD"/"退订" message); returns
    ``withdrawn``, ``unchanged`` (a newer state stands) or ``unknown`` (no such identity)."""
    identity = identities.get_identity(app_id, openid)
    if not identity or not identity.get("uid"):
        return "unknown"
    record = consent.Consent("marketing", False, "", int(at), source)
    landed = data.record_consent(str(identity["uid"]), record)
    logger.info("marketing opt-out", extra={"app_id": app_id, "changed": landed is not None})
    return "withdrawn" if landed else "unchanged"
