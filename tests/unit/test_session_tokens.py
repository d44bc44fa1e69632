"""Session tokens: issue, verify, tampering, expiry, rotation, wrong app."""

from __future__ import annotations

import base64
import json

import pytest

from wxloop.domain import session
from wxloop.domain.session import SessionClaims, TokenExpired, TokenInvalid, WrongApp

APP, OTHER = "wxabcdef1234567890", "wx1234567890abcdef"
UID = "0123456789abcdef0123456789abcdef"
K1, K2 = b"first-key-0123456789abcdef", b"second-key-0123456789abcdef"
NOW = 1_800_000_000


def claims(**kw) -> SessionClaims:
    base = {"app_id": APP, "uid": UID, "scene": 1011, "issued_at": NOW, "expires_at": NOW + 3600}
    return SessionClaims(**{**base, **kw})


def test_given_a_fresh_token_when_verified_then_its_claims_come_back():
    token = session.issue(claims(), [K1])
    assert session.verify(token, [K1], app_id=APP, now=NOW + 10) == claims()


def test_given_a_token_when_any_byte_of_claims_or_mac_changes_then_it_is_refused():
    token = session.issue(claims(), [K1])
    version, payload, mac = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "==")) | {"u": "f" * 32}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    for bad in (f"{version}.{forged_payload}.{mac}", f"{version}.{payload}.{mac[:-2]}AA",
                f"v2.{payload}.{mac}", token + ".x", token[:-1], "", "Bearer " + token, "x" * 5000):
        with pytest.raises(TokenInvalid):
            session.verify(bad, [K1], app_id=APP, now=NOW)


def test_given_an_expired_token_then_it_is_refused_as_expired():
    token = session.issue(claims(expires_at=NOW), [K1])
    with pytest.raises(TokenExpired):
        session.verify(token, [K1], app_id=APP, now=NOW)


def test_given_rotated_keys_then_old_tokens_verify_until_their_key_is_dropped():
    old = session.issue(claims(), [K1])
    new = session.issue(claims(), [K2, K1])
    assert session.verify(old, [K2, K1], app_id=APP, now=NOW).uid == UID
    assert session.verify(new, [K2, K1], app_id=APP, now=NOW).uid == UID
    with pytest.raises(TokenInvalid):
        session.verify(old, [K2], app_id=APP, now=NOW)


def test_given_a_token_of_another_app_then_it_is_wrong_app_but_a_forged_one_is_invalid():
    token = session.issue(claims(app_id=OTHER), [K1])
    with pytest.raises(WrongApp):
        session.verify(token, [K1], app_id=APP, now=NOW)
    with pytest.raises(TokenInvalid):
        session.verify(token, [K2], app_id=APP, now=NOW)


def test_given_well_signed_but_malformed_claims_then_refused():
    signed = f"v1.{base64.urlsafe_b64encode(b'[1,2]').rstrip(b'=').decode()}"
    mac = base64.urlsafe_b64encode(session._mac(K1, signed.encode())).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        session.verify(f"{signed}.{mac}", [K1], app_id=APP, now=NOW)


def test_a_short_signing_key_is_refused():
    with pytest.raises(ValueError):
        session.issue(claims(), [b"short"])
