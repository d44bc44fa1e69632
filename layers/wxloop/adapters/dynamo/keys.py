"""Every table key of wxloop, in one place (item layout in the README, "Data")."""

from __future__ import annotations

import hashlib


def person_key(uid: str) -> dict:
    return {"pk": {"S": f"USER#{uid}"}, "sk": {"S": "PROFILE"}}


def identity_pk(app_id: str, openid: str) -> str:
    return f"ID#{app_id}#{openid}"


def identity_key(app_id: str, openid: str) -> dict:
    return {"pk": {"S": identity_pk(app_id, openid)}, "sk": {"S": "ID"}}


def parse_identity_pk(pk: str) -> tuple[str, str] | None:
    """(app_id, openid) of an identity item's ``pk``, or None when it is no identity key."""
    prefix, _, rest = pk.partition("#")
    app_id, _, openid = rest.partition("#")
    return (app_id, openid) if prefix == "ID" and app_id and openid else None


def union_key(unionid: str) -> dict:
    return {"pk": {"S": f"UNION#{unionid}"}, "sk": {"S": "ID"}}


def journey_pk(uid: str) -> str:
    return f"USER#{uid}"


def journey_sk(at_iso: str, event_id: str) -> str:
    return f"EV#{at_iso}#{event_id}"


def subscribe_credit_key(app_id: str, openid: str, template_id: str) -> dict:
    return {"pk": {"S": identity_pk(app_id, openid)}, "sk": {"S": f"SUB#{template_id}"}}


def subscribe_event_marker(app_id: str, openid: str, event_id: str) -> dict:
    return {"pk": identity_pk(app_id, openid), "sk": f"SUBEV#{event_id}"}


def token_key(app_id: str) -> dict:
    return {"pk": {"S": f"TOKEN#{app_id}"}, "sk": {"S": "TOKEN"}}


def job_key(job_id: str) -> dict:
    # hashed: a job id may name a person (prefs:{oa}:{uid}:…), a claim item must not
    return {"pk": {"S": "JOB#" + hashlib.blake2b(job_id.encode("utf-8"), digest_size=16).hexdigest()},
            "sk": {"S": "JOB"}}


def quota_key(app_id: str, api: str) -> dict:
    return {"pk": {"S": f"QUOTA#{app_id}"}, "sk": {"S": f"API#{api}"}}


def rules_key(app_id: str, sk: str) -> dict:
    return {"pk": {"S": f"RULES#{app_id}"}, "sk": {"S": sk}}


def identity_of(item: dict) -> tuple[str, str] | None:
    """(app_id, openid) when a plain item (or an item's keys) is an identity item, else None."""
    if item.get("sk") != "ID":
        return None
    return parse_identity_pk(str(item.get("pk", "")))


def query_binding_key(app_id: str, signature: str) -> dict:
    return {"pk": {"S": f"PUSHQ#{app_id}#{signature}"}, "sk": {"S": "PUSHQ"}}


# --- invites, referrals, rewards, channels, the partner API --------------------------------------------


def code_key(code: str) -> dict:
    return {"pk": {"S": f"CODE#{code}"}, "sk": {"S": "CODE"}}


def referral_key(invitee_uid: str) -> dict:
    return {"pk": {"S": f"REF#{invitee_uid}"}, "sk": {"S": "REF"}}


def inviter_index_pk(inviter_uid: str) -> str:
    """``gsi1pk`` of a referral: an inviter's invites, listed by one query of the index."""
    return f"INVITER#{inviter_uid}"


def ledger_key(uid: str, entry_id: str) -> dict:
    return {"pk": {"S": f"USER#{uid}"}, "sk": {"S": f"LEDGER#{entry_id}"}}


def reward_counter_key(campaign: str, counter: str) -> dict:
    """A cap counter of a reward campaign: ``TOTAL``, ``INV#{uid}`` or ``INV#{uid}#DAY#{date}``."""
    return {"pk": {"S": f"RCAP#{campaign}"}, "sk": {"S": counter}}


def reward_config_key(sk: str) -> dict:
    return {"pk": {"S": "REWARDS#config"}, "sk": {"S": sk}}


def channel_key(name: str, sk: str = "CHANNEL") -> dict:
    """A channel (``CHANNEL``) or one of its per-day counters (``DAY#{date}``)."""
    return {"pk": {"S": f"CHANNEL#{name}"}, "sk": {"S": sk}}


def partner_nonce_key(key_id: str, nonce: str) -> dict:
    return {"pk": {"S": f"PNONCE#{key_id}#{nonce}"}, "sk": {"S": "NONCE"}}


def partner_idempotency_key(app_id: str, key: str) -> dict:
    return {"pk": {"S": f"PIDEM#{app_id}#{key}"}, "sk": {"S": "PIDEM"}}


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


def campaign_key(campaign_id: str, sk: str) -> dict:
    """Campaign items: ``DEF`` (the document), ``RUN#{run}``, ``SEND#{run}#{uid}``, ``DUE#{run}#{hour}#…``."""
    return {"pk": {"S": campaign_pk(campaign_id)}, "sk": {"S": sk}}


# Campaign ids match ``[a-z0-9][a-z0-9_-]*``: ``~`` never collides with one. The catalogue lists stored
# campaigns; ACTIVE lists the runs the release tick looks at.
CAMPAIGN_CATALOG = "~"
