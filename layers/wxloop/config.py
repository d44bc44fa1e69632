"""Accounts configuration: the same JSON document in ``WECHAT_ACCOUNTS`` or in a Secrets Manager secret.

Validated at start; unknown fields are errors so a typo surfaces at once, with the field's path in the
message. Secrets (token, AES key, app secret) are ``Secret``: they never print. Plain checks, not pydantic:
every webhook validates this document at INIT, and importing pydantic costs more than the rest of the
webhook's own code together (see docs/cold-start.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from wxloop.settings import settings

_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")
_PARTNER_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
# A shorter key (or "") would let anyone forge invite references and session tokens. Each user of these keys
# derives its own purpose key from them first (invites: HMAC(key, "wxloop/invite-ref/v1")); session tokens
# must do the same with their own purpose, so one kind of MAC never verifies as another.
SESSION_KEY_MIN_CHARS = 32
KINDS = ("oa", "mp")
PUSH_FORMATS = ("xml", "json")
MODES = ("plain", "compat", "safe")


class ConfigError(RuntimeError):
    """The accounts configuration is missing or invalid; the message names the field."""


class _Invalid(ValueError):
    """One problem at one path of the document (collected, then reported together)."""

    def __init__(self, path: tuple, msg: str) -> None:
        super().__init__(msg)
        self.path, self.msg = path, msg


class Secret:
    """A secret string that never prints (``repr``/``str`` show stars); ``get_secret_value()`` reads it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


SecretStr = Secret  # the name the rest of the code and older callers know


@dataclass(frozen=True)
class Account:
    kind: str
    token: Secret
    name: str = ""
    encoding_aes_key: Secret | None = None
    app_secret: Secret | None = None
    linked_mps: tuple[str, ...] = ()
    push_format: str = "xml"
    # Message mode of pushes: compat/safe accept only encrypted pushes (encrypt_type=aes + msg_signature);
    # unset means safe with an encoding_aes_key and plain without one.
    mode: str | None = None

    @property
    def message_mode(self) -> str:
        """The effective message mode: ``mode`` if set, else ``safe`` with a key and ``plain`` without."""
        return self.mode or ("safe" if self.encoding_aes_key is not None else "plain")


@dataclass(frozen=True)
class AccountsConfig:
    accounts: dict[str, Account]
    session_keys: tuple[Secret, ...] = ()
    partner_keys: dict[str, Secret] = field(default_factory=dict)  # key id → secret (the partner API)

    def account(self, app_id: str) -> Account | None:
        return self.accounts.get(app_id)

    def plain_mode_accounts(self, kind: str) -> list[str]:
        """App ids of ``kind`` whose pushes are unencrypted: their bodies are only as trustworthy as the
        network path."""
        return sorted(app_id for app_id, a in self.accounts.items() if a.kind == kind and a.message_mode == "plain")


# -- validation: each check raises _Invalid(path, message) ------------------------------------------------
def _object(v, path: tuple, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(v, dict):
        raise _Invalid(path, "Input should be a valid dictionary")
    problems = [_problem(_Invalid((*path, n), "Field required")) for n in sorted(required - v.keys())]
    problems += [_problem(_Invalid((*path, n), "Extra inputs are not permitted")) for n in v if n not in allowed]
    if problems:  # every missing and unknown field at once, as a typo fix needs both names
        raise _Invalid((), "; ".join(problems))
    return v


def _text(v, path: tuple, *, min_len: int = 0, max_len: int | None = None) -> str:
    if not isinstance(v, str):
        raise _Invalid(path, "Input should be a valid string")
    if len(v) < min_len:
        raise _Invalid(path, f"String should have at least {min_len} character{'s' if min_len > 1 else ''}")
    if max_len is not None and len(v) > max_len:
        raise _Invalid(path, f"String should have at most {max_len} characters")
    return v


def _choice(v, path: tuple, options: tuple[str, ...]) -> str:
    if v not in options:
        raise _Invalid(path, "Input should be " + " or ".join(repr(o) for o in options))
    return v


def _aes_key(v, path: tuple) -> Secret:
    key = _text(v, path)
    if len(key) != 43:
        raise _Invalid(path, "encoding_aes_key must be 43 characters")
    try:  # WeChat's key is base64 of the 32-byte AES key, without its trailing "="
        raw = base64.b64decode(key + "=", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise _Invalid(path, "encoding_aes_key must be the console's 43 base64 characters")
    return Secret(key)


def _account(v, path: tuple) -> Account:
    allowed = {"kind", "name", "token", "encoding_aes_key", "app_secret", "linked_mps", "push_format", "mode"}
    _object(v, path, allowed, {"kind", "token"})
    linked = v.get("linked_mps", ())
    if not isinstance(linked, (list, tuple)):
        raise _Invalid((*path, "linked_mps"), "Input should be a valid tuple")
    for n, app_id in enumerate(linked):
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise _Invalid((*path, "linked_mps", n), f"not an app id: {app_id!r}")
    if len(linked) > 10:
        raise _Invalid((*path, "linked_mps"), "an Official Account links at most 10 Mini Programs")
    mode = v.get("mode")
    account = Account(
        kind=_choice(v["kind"], (*path, "kind"), KINDS),
        name=_text(v.get("name", ""), (*path, "name")),
        token=Secret(_text(v["token"], (*path, "token"), min_len=3, max_len=32)),
        encoding_aes_key=None if v.get("encoding_aes_key") is None else _aes_key(v["encoding_aes_key"],
                                                                                 (*path, "encoding_aes_key")),
        app_secret=None if v.get("app_secret") is None else Secret(_text(v["app_secret"], (*path, "app_secret"))),
        linked_mps=tuple(linked),
        push_format=_choice(v.get("push_format", "xml"), (*path, "push_format"), PUSH_FORMATS),
        mode=None if mode is None else _choice(mode, (*path, "mode"), MODES),
    )
    if account.mode in ("compat", "safe") and account.encoding_aes_key is None:
        raise _Invalid(path, f"mode {account.mode!r} needs an encoding_aes_key")
    return account


def _secrets_list(v, path: tuple) -> tuple[Secret, ...]:
    if not isinstance(v, (list, tuple)):
        raise _Invalid(path, "Input should be a valid tuple")
    keys = tuple(Secret(_text(k, (*path, n))) for n, k in enumerate(v))
    for n, key in enumerate(keys):
        if len(key) < SESSION_KEY_MIN_CHARS:
            raise _Invalid(path, f"session key {n} is shorter than {SESSION_KEY_MIN_CHARS} characters "
                                 "(use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return keys


def _partner_keys(v, path: tuple) -> dict[str, Secret]:
    if not isinstance(v, dict):
        raise _Invalid(path, "Input should be a valid dictionary")
    out = {}
    for key_id, secret in v.items():
        if not _PARTNER_KEY_ID.fullmatch(key_id):
            raise _Invalid(path, f"not a partner key id: {key_id!r}")
        if len(_text(secret, (*path, key_id))) < SESSION_KEY_MIN_CHARS:
            raise _Invalid(path, f"partner key {key_id} is shorter than {SESSION_KEY_MIN_CHARS} characters")
        out[key_id] = Secret(secret)
    return out


def _accounts_config(doc) -> AccountsConfig:
    _object(doc, (), {"accounts", "session_keys", "partner_keys"}, {"accounts"})
    if not isinstance(doc["accounts"], dict):
        raise _Invalid(("accounts",), "Input should be a valid dictionary")
    for app_id in doc["accounts"]:
        if not _APP_ID.match(app_id):
            raise _Invalid(("accounts",), f"not an app id: {app_id!r}")
    accounts = {app_id: _account(a, ("accounts", app_id)) for app_id, a in doc["accounts"].items()}
    return AccountsConfig(accounts, _secrets_list(doc.get("session_keys", ()), ("session_keys",)),
                          _partner_keys(doc.get("partner_keys", {}), ("partner_keys",)))


def _problem(exc: _Invalid) -> str:
    return f"{'.'.join(str(p) for p in exc.path)}: {exc.msg}" if exc.path else exc.msg


def parse_config(raw: str | bytes | dict) -> AccountsConfig:
    """Validate a config document; raises ``ConfigError`` naming the offending field (never a value)."""
    try:
        doc = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        return _accounts_config(doc)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"accounts config is not JSON: {exc.msg} at line {exc.lineno}") from None
    except _Invalid as exc:
        raise ConfigError(f"accounts config invalid: {_problem(exc)}") from None


def _app_secrets(doc) -> dict[str, str]:
    """The second secret's document: ``{"accounts": {app_id: {"app_secret": "..."}}}`` → app id → secret."""
    _object(doc, (), {"accounts"}, {"accounts"})
    if not isinstance(doc["accounts"], dict):
        raise _Invalid(("accounts",), "Input should be a valid dictionary")
    out = {}
    for app_id, entry in doc["accounts"].items():
        path = ("accounts", app_id)
        _object(entry, path, {"app_secret"}, {"app_secret"})
        out[app_id] = _text(entry["app_secret"], (*path, "app_secret"), min_len=1)
    return out


def merge_app_secrets(raw_config: str | bytes | dict, raw_secrets: str | bytes | dict) -> AccountsConfig:
    """The config document with the app secrets of the second secret put into its accounts.

    The result has the shape of one document in which each account carries its ``app_secret``. Raises
    ``ConfigError`` (naming the field, never a value) when the secrets document is not
    ``{"accounts": {app_id: {"app_secret": str}}}``, names an account the config lacks, or when the config
    document carries an ``app_secret`` itself (with a second secret, app secrets live only there).
    """
    try:
        doc = json.loads(raw_config) if isinstance(raw_config, (str, bytes)) else raw_config
        extra = json.loads(raw_secrets) if isinstance(raw_secrets, (str, bytes)) else raw_secrets
    except json.JSONDecodeError as exc:
        raise ConfigError(f"accounts config or app secrets not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        app_secrets = _app_secrets(extra)
    except _Invalid as exc:
        raise ConfigError(f"app secrets invalid: {_problem(exc)}") from None
    accounts = doc.get("accounts") if isinstance(doc, dict) else None
    if not isinstance(accounts, dict):
        return parse_config(doc)  # names what is wrong with the config document itself
    merged = dict(accounts)
    for app_id, account in accounts.items():
        if isinstance(account, dict) and "app_secret" in account:
            raise ConfigError(f"accounts config invalid: accounts.{app_id}.app_secret: belongs in the app "
                              "secrets secret when one is set")
    for app_id, secret in app_secrets.items():
        if not isinstance(merged.get(app_id), dict):
            raise ConfigError(f"app secrets invalid: accounts.{app_id}: no such account in the accounts config")
        merged[app_id] = {**merged[app_id], "app_secret": secret}
    return parse_config({**doc, "accounts": merged})


@lru_cache(maxsize=4)
def _parse_cached(raw: str) -> AccountsConfig:
    return parse_config(raw)


@lru_cache(maxsize=4)
def _parse_without_app_secrets_cached(raw: str) -> AccountsConfig:
    return without_app_secrets(parse_config(raw))


@lru_cache(maxsize=4)
def _merge_cached(raw: str, raw_secrets: str) -> AccountsConfig:
    return merge_app_secrets(raw, raw_secrets)


def without_app_secrets(config: AccountsConfig) -> AccountsConfig:
    """``config`` with every account's ``app_secret`` removed (everything else as is)."""
    return replace(config, accounts={app: replace(acc, app_secret=None) for app, acc in config.accounts.items()})


def _secret_text(secret_id: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    max_age = settings().wechat_accounts_max_age
    raw = parameters.get_secret(secret_id, max_age=max_age)
    return raw if isinstance(raw, str) else raw.decode()


def load_config(*, with_app_secrets: bool = False) -> AccountsConfig:
    """The current config: ``WECHAT_ACCOUNTS`` inline, else the secret ``WECHAT_ACCOUNTS_SECRET``.

    By default no account carries its ``app_secret`` (validated, then dropped): the webhooks and the MP API
    never need one, so none is held in their memory even when the document has them (dev). Token-fetching
    code asks ``with_app_secrets=True``; then, when ``WECHAT_APP_SECRETS_SECRET`` is set (deployed, given
    only to the worker and the token refresher), the app secrets come from that second secret
    (``merge_app_secrets``). Secrets are read through Powertools Parameters (cached for
    ``WECHAT_ACCOUNTS_MAX_AGE`` seconds, default 300), so a rotated secret is picked up without a redeploy;
    parsing is cached per document.
    """
    # The document's source is read per call, not once: tools and tests switch accounts in one process.
    inline = os.environ.get("WECHAT_ACCOUNTS")
    secret_id = os.environ.get("WECHAT_ACCOUNTS_SECRET")
    if not inline and not secret_id:
        raise ConfigError("set WECHAT_ACCOUNTS (JSON) or WECHAT_ACCOUNTS_SECRET (secret id)")
    raw = inline or _secret_text(secret_id or "")
    if not with_app_secrets:
        return _parse_without_app_secrets_cached(raw)
    app_secrets_id = os.environ.get("WECHAT_APP_SECRETS_SECRET")
    if app_secrets_id:
        return _merge_cached(raw, _secret_text(app_secrets_id))
    return _parse_cached(raw)
