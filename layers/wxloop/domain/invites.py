"""Invites: signed expiring references for share paths, and short codes for QR codes and links (pure).

A reference is ``1.{inviter}.{campaign}.{issued base36}.{mac}``: a version, the inviter's uid, the reward
campaign, the issue time and an HMAC-SHA256 (truncated to 96 bits, base64url) over the rest. Keys are the
config's ``session_keys``: the first signs, every one verifies, so keys rotate. Each is first derived for
this purpose, so an invite MAC can never pass for a session token's. At most ``MAX_REF_CHARS`` characters,
all safe in an MP page path query without escaping (``pages/index/index?ref=…`` stays under the 128-byte
page path limit of ``wxacode.get``).

A scanned code cannot carry a reference (MP ``scene`` ≤ 32 characters, OA ``scene_str`` ≤ 64), so codes and
links carry a short code instead, stored in the table with what it stands for. Codes use an alphabet without
look-alikes (no 0/o, 1/l/i, no upper case), so a code read aloud or typed from a poster survives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

VERSION = "1"
MAX_REF_CHARS = 96
MAC_BYTES = 12
DEFAULT_MAX_AGE = 30 * 86400
MIN_KEY_CHARS = 32  # a shorter key is guessable: it is never used to sign, and ignored when verifying
CLOCK_SKEW = 300  # a reference issued this far in the future still verifies (servers' clocks differ)
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CAMPAIGN = re.compile(r"[a-z0-9][a-z0-9_-]{0,23}")
_PURPOSE = b"wxloop/invite-ref/v1"

CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # 31 symbols: no 0 o 1 l i, lower case only
CODE_LENGTH = 10  # 31**10 ≈ 8e14: guessing a live code is hopeless
MP_SCENE_MAX = 32
OA_SCENE_MAX = 64
OA_SUBSCRIBE_PREFIX = "qrscene_"  # what WeChat puts before the scene in a follow-by-QR event
_CODE = re.compile(f"[{CODE_ALPHABET}]{{6,{MP_SCENE_MAX}}}")


class RefProblem(Enum):
    """Why a reference was refused (logged; the invitee is then treated as arriving without one)."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    FROM_THE_FUTURE = "from_the_future"
    NO_KEYS = "no_keys"


@dataclass(frozen=True, slots=True)
class InviteRef:
    inviter: str
    campaign: str
    issued_at: int


@dataclass(frozen=True, slots=True)
class RefRefused:
    problem: RefProblem


def _derive(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, _PURPOSE, hashlib.sha256).digest()


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def sign_ref(ref: InviteRef, keys: Sequence[str | bytes]) -> str:
    """The signed reference for ``ref``, signed with ``keys[0]``.

    Raises ``ValueError`` when there is no key of at least ``MIN_KEY_CHARS`` characters, the inviter is not a uid-like id (``[A-Za-z0-9_-]{1,40}``),
    the campaign is not a config id, or the issue time is negative."""
    if not keys or len(keys[0]) < MIN_KEY_CHARS:
        raise ValueError(f"no signing key of at least {MIN_KEY_CHARS} characters")
    if not _UID.fullmatch(ref.inviter) or not _CAMPAIGN.fullmatch(ref.campaign) or ref.issued_at < 0:
        raise ValueError("the inviter, campaign or issue time cannot be put in a reference")
    body = f"{VERSION}.{ref.inviter}.{ref.campaign}.{_base36(ref.issued_at)}"
    return f"{body}.{_mac(_derive(keys[0]), body)}"


def verify_ref(
    text: str, keys: Sequence[str | bytes], now: int, *, max_age: int = DEFAULT_MAX_AGE
) -> InviteRef | RefRefused:
    """The reference in ``text`` if one of ``keys`` signed it and it is at most ``max_age`` seconds old,
    else the reason it is refused. Never raises, whatever ``text`` is; the MAC is compared in constant time
    and checked before the time fields are trusted. Keys shorter than ``MIN_KEY_CHARS`` are ignored."""
    keys = [k for k in keys if len(k) >= MIN_KEY_CHARS]
    if not keys:
        return RefRefused(RefProblem.NO_KEYS)
    if not isinstance(text, str) or len(text) > MAX_REF_CHARS or not text.isascii():
        return RefRefused(RefProblem.MALFORMED)
    parts = text.split(".")
    if len(parts) != 5:
        return RefRefused(RefProblem.MALFORMED)
    version, inviter, campaign, issued, mac = parts
    if version != VERSION:
        return RefRefused(RefProblem.UNSUPPORTED_VERSION)
    if not (_UID.fullmatch(inviter) and _CAMPAIGN.fullmatch(campaign) and re.fullmatch(r"[0-9a-z]{1,8}", issued)):
        return RefRefused(RefProblem.MALFORMED)
    body = text[: -len(mac) - 1]
    # every key is tried, so the time taken does not tell which key (or none) matched
    good = [hmac.compare_digest(_mac(_derive(k), body), mac) for k in keys]
    if not any(good):
        return RefRefused(RefProblem.BAD_SIGNATURE)
    issued_at = int(issued, 36)
    if issued_at > now + CLOCK_SKEW:
        return RefRefused(RefProblem.FROM_THE_FUTURE)
    if now - issued_at > max_age:
        return RefRefused(RefProblem.EXPIRED)
    return InviteRef(inviter, campaign, issued_at)


def new_code(length: int = CODE_LENGTH, rand: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A random short code of ``length`` symbols from :data:`CODE_ALPHABET`, unbiased (rejection
    sampling). The caller stores it with a conditional put and draws again on the rare collision."""
    if not 6 <= length <= MP_SCENE_MAX:
        raise ValueError(f"a code has 6 to {MP_SCENE_MAX} symbols")
    limit = 256 - 256 % len(CODE_ALPHABET)  # bytes at or above this would favour the first symbols
    out: list[str] = []
    while len(out) < length:
        for b in rand(length * 2):
            if b < limit and len(out) < length:
                out.append(CODE_ALPHABET[b % len(CODE_ALPHABET)])
    return "".join(out)


def is_code(text: object) -> bool:
    """Whether ``text`` is a well-formed short code (not whether it exists)."""
    return isinstance(text, str) and _CODE.fullmatch(text) is not None


def mp_scene(code: str) -> str:
    """The ``scene`` for ``wxa/getwxacodeunlimit`` carrying ``code`` (≤ 32 characters)."""
    if not is_code(code):
        raise ValueError("not a short code")
    return code


def oa_scene_str(code: str) -> str:
    """The ``scene_str`` for a parametric QR code (``qrcode/create``) carrying ``code`` (≤ 64 characters)."""
    if not is_code(code) or len(code) > OA_SCENE_MAX:
        raise ValueError("not a short code")
    return code


def code_from_scene(scene: object) -> str | None:
    """The short code in an MP launch ``scene`` (URL-decoded by the MP) or an OA event key (``qrscene_…``
    on a follow, bare on a scan); ``None`` when it holds none."""
    if not isinstance(scene, str) or len(scene) > OA_SCENE_MAX + len(OA_SUBSCRIBE_PREFIX):
        return None
    if scene.startswith(OA_SUBSCRIBE_PREFIX):
        scene = scene[len(OA_SUBSCRIBE_PREFIX) :]
    return scene if is_code(scene) else None
