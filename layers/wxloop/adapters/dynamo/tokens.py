"""Access tokens: one item per app, ``TOKEN#{app_id}``/``TOKEN`` (access_token, expires_at, version,
fetched_at, and while someone is fetching: lease_owner, lease_until). Protocol in ``wxloop.adapters.wechat``."""

from __future__ import annotations

from wxloop.adapters.dynamo.codec import conditional_update, get, marshal, unmarshal
from wxloop.adapters.dynamo.keys import token_key


def get_token(app_id: str) -> dict | None:
    """The token item (strongly consistent read), or None; raises ``RepositoryError``."""
    return get(token_key(app_id))


def lease_token(app_id: str, owner: str, *, now: int, lease_seconds: int, due_before: int) -> bool:
    """Take the right to fetch a new token; True for exactly one caller at a time.

    Granted only when no unexpired lease exists AND the stored token is missing or expires before
    ``due_before`` (so a caller that read a stale item does not fetch again right after another stored).
    """
    out = conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET lease_owner = :owner, lease_until = :until",
        ConditionExpression="(attribute_not_exists(lease_until) OR lease_until < :now) AND "
        "(attribute_not_exists(expires_at) OR expires_at < :due)",
        ExpressionAttributeValues=marshal(
            {":owner": owner, ":until": now + lease_seconds, ":now": now, ":due": due_before}
        ),
    )
    return out is not None


def store_token(app_id: str, token: str, *, expires_at: int, owner: str, now: int) -> int | None:
    """Store a fetched token and drop the lease; returns the new version, or None when ``owner`` no longer
    holds the lease (ours ran out and another instance leased, stored or gave up since): a fetch that
    outlived its lease never overwrites a newer token. Each lease needs its own ``owner`` value."""
    out = conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET access_token = :t, expires_at = :exp, fetched_at = :now, "
        "version = if_not_exists(version, :zero) + :one REMOVE lease_owner, lease_until",
        ConditionExpression="lease_owner = :owner",
        ExpressionAttributeValues=marshal(
            {":t": token, ":exp": expires_at, ":now": now, ":zero": 0, ":one": 1, ":owner": owner}
        ),
        ReturnValues="UPDATED_NEW",
    )
    return None if out is None else int((unmarshal(out["Attributes"]) or {})["version"])


def release_token_lease(app_id: str, owner: str) -> None:
    """Give the lease back after a failed fetch, so a waiting instance can try at once."""
    conditional_update(
        Key=token_key(app_id),
        UpdateExpression="REMOVE lease_owner, lease_until",
        ConditionExpression="lease_owner = :owner",
        ExpressionAttributeValues=marshal({":owner": owner}),
    )


def expire_token(app_id: str, token: str, *, now: int) -> bool:
    """Compare-and-expire: mark the stored token expired only if it is still ``token`` (the one WeChat just
    rejected). False when a newer token is already stored: a stale failure never expires a fresh token."""
    out = conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET expires_at = :zero, expired_at = :now",
        ConditionExpression="access_token = :t",
        ExpressionAttributeValues=marshal({":zero": 0, ":now": now, ":t": token}),
    )
    return out is not None
