"""Invite references (signed, expiring, rotatable) and short codes for QR codes and links."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxloop.domain.invites import (
    CODE_ALPHABET,
    MAX_REF_CHARS,
    MP_SCENE_MAX,
    InviteRef,
    RefProblem,
    RefRefused,
    code_from_scene,
    is_code,
    mp_scene,
    new_code,
    oa_scene_str,
    sign_ref,
    verify_ref,
)

T = 1_790_000_000
KEYS = ["new-key-0123456789abcdef0123456789", "old-key-0123456789abcdef0123456789"]
UID = "0123456789abcdef0123456789abcdef"
REF = InviteRef(UID, "spring-2027", T)


def problem(result):
    assert isinstance(result, RefRefused), result
    return result.problem


def test_a_signed_reference_verifies_and_fits_an_mp_page_path():
    text = sign_ref(REF, KEYS)
    assert verify_ref(text, KEYS, T + 60) == REF
    assert len(text) <= MAX_REF_CHARS
    assert set(text) <= set(string.ascii_letters + string.digits + "-_.")  # no escaping in a query
    assert len(f"pages/index/index?ref={text}".encode()) <= 128


def test_rotation_the_first_key_signs_and_every_key_verifies():
    old = sign_ref(REF, KEYS[1:])
    assert verify_ref(old, KEYS, T) == REF
    assert verify_ref(sign_ref(REF, KEYS), KEYS[1:], T) == RefRefused(RefProblem.BAD_SIGNATURE)
    assert problem(verify_ref(old, ["another-key-0123456789abcdef01234"], T)) is RefProblem.BAD_SIGNATURE


@pytest.mark.parametrize("short", ["", "k1", "x" * 31])
def test_a_short_key_never_signs_and_never_verifies(short):
    """An empty or short session key would let anyone compute the MAC: it is refused, not used."""
    with pytest.raises(ValueError, match="at least 32"):
        sign_ref(REF, [short])
    forged_body = f"1.{REF.inviter}.{REF.campaign}.{T:x}"
    import base64
    import hashlib
    import hmac

    derived = hmac.new(short.encode(), b"wxloop/invite-ref/v1", hashlib.sha256).digest()
    mac = base64.urlsafe_b64encode(hmac.new(derived, forged_body.encode(), hashlib.sha256).digest()[:12])
    forged = f"{forged_body}.{mac.decode().rstrip('=')}"
    assert problem(verify_ref(forged, [short], T)) is RefProblem.NO_KEYS
    assert problem(verify_ref(forged, [short, *KEYS], T)) is RefProblem.BAD_SIGNATURE


def test_tampering_with_any_field_breaks_the_signature():
    text = sign_ref(REF, KEYS)
    version, inviter, campaign, issued, mac = text.split(".")
    forged = [
        f"{version}.{'f' * 32}.{campaign}.{issued}.{mac}",  # another inviter
        f"{version}.{inviter}.other.{issued}.{mac}",
        f"{version}.{inviter}.{campaign}.{int(issued, 36) + 86400:x}.{mac}",  # extended life
        f"{version}.{inviter}.{campaign}.{issued}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
    ]
    for text in forged:
        assert problem(verify_ref(text, KEYS, T)) in (RefProblem.BAD_SIGNATURE, RefProblem.MALFORMED)


def test_expired_and_future_references_are_refused_after_the_signature():
    text = sign_ref(REF, KEYS)
    assert problem(verify_ref(text, KEYS, T + 31 * 86400)) is RefProblem.EXPIRED
    assert verify_ref(text, KEYS, T + 86400, max_age=86400) == REF
    assert problem(verify_ref(text, KEYS, T + 86401, max_age=86400)) is RefProblem.EXPIRED
    assert problem(verify_ref(text, KEYS, T - 3600)) is RefProblem.FROM_THE_FUTURE


def test_garbage_never_raises_and_gets_a_reason():
    for junk in ["", "x", "1.a.b.c", "2.a.b.c.d", "1." * 40, "é" * 10, "1.a.b.zzzzzzzzz.d", "x" * 10_000, None, 42]:
        assert isinstance(verify_ref(junk, KEYS, T), RefRefused)  # type: ignore[arg-type]
    assert problem(verify_ref("2.a.b.c.d", KEYS, T)) is RefProblem.UNSUPPORTED_VERSION
    assert problem(verify_ref(sign_ref(REF, KEYS), [], T)) is RefProblem.NO_KEYS


def test_a_purpose_key_is_derived_so_a_plain_hmac_with_the_session_key_does_not_verify():
    import base64
    import hashlib
    import hmac

    body = sign_ref(REF, KEYS).rsplit(".", 1)[0]
    raw = hmac.new(KEYS[0].encode(), body.encode(), hashlib.sha256).digest()[:12]
    plain = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert problem(verify_ref(f"{body}.{plain}", KEYS, T)) is RefProblem.BAD_SIGNATURE


@settings(deadline=None)  # shared CI machines: timing is not what is tested
@given(
    inviter=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    campaign=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,23}", fullmatch=True),
    issued=st.integers(0, 4_000_000_000),
    age=st.integers(0, 30 * 86400),
)
def test_property_every_signable_reference_round_trips(inviter, campaign, issued, age):
    ref = InviteRef(inviter, campaign, issued)
    text = sign_ref(ref, KEYS)
    assert len(text) <= MAX_REF_CHARS
    assert verify_ref(text, KEYS, issued + age) == ref


def test_codes_are_unambiguous_and_fit_both_scenes():
    assert not set(CODE_ALPHABET) & set("01ilo" + string.ascii_uppercase)
    code = new_code()
    assert is_code(code) and len(code) == 10
    assert mp_scene(code) == code and oa_scene_str(code) == code
    assert len(new_code(MP_SCENE_MAX)) == MP_SCENE_MAX
    assert code_from_scene(f"qrscene_{code}") == code and code_from_scene(code) == code
    for bad in ["", "abc", "O0Il1abcde", "abcdefghij!", "x" * 200, None]:
        assert code_from_scene(bad) is None


def test_code_generation_is_unbiased_rejection_sampling():
    # bytes 248..255 would favour the first 8 symbols: they are skipped
    stream = iter([255, 250, 248, 0, 30, 31] * 10)
    code = new_code(6, rand=lambda n: bytes(next(stream) for _ in range(n)))
    assert code == "2z22z2"  # 0 -> "2", 30 -> "z", 31 wraps to "2"
