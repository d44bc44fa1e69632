"""Accounts configuration: the same JSON document in ``WECHAT_ACCOUNTS`` or in a Secrets Manager secret.

Validated with pydantic at start; unknown fields are errors so a typo surfaces at once, with the field's
path in the message. Secrets (token, AES key, app secret) are ``SecretStr``: they never print.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from functools import lru_cache
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from wxloop.settings import settings

_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")
# A shorter key (or "") would let anyone forge invite references and session tokens. Each user of these keys
# derives its own purpose key from them first (invites: HMAC(key, "wxloop/invite-ref/v1")); session tokens
# must do the same with their own purpose, so one kind of MAC never verifies as another.
SESSION_KEY_MIN_CHARS = 32


class ConfigError(RuntimeError):
    """The accounts configuration is missing or invalid; the message names the field."""


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["oa", "mp"]
    name: str = ""
    token: SecretStr = Field(min_length=3, max_length=32)
    encoding_aes_key: SecretStr | None = None
    app_secret: SecretStr | None = None
    linked_mps: tuple[str, ...] = ()
    push_format: Literal["xml", "json"] = "xml"
    # Message mode of pushes: compat/safe accept only encrypted pushes (encrypt_type=aes + msg_signature);
    # unset means safe with an encoding_aes_key and plain without one.
    mode: Literal["plain", "compat", "safe"] | None = None

    @model_validator(mode="after")
    def _mode_needs_key(self) -> Account:
        if self.mode in ("compat", "safe") and self.encoding_aes_key is None:
            raise ValueError(f"mode {self.mode!r} needs an encoding_aes_key")
        return self

    @property
    def message_mode(self) -> str:
        """The effective message mode: ``mode`` if set, else ``safe`` with a key and ``plain`` without."""
        return self.mode or ("safe" if self.encoding_aes_key is not None else "plain")

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        key = v.get_secret_value()
        if len(key) != 43:
            raise ValueError("encoding_aes_key must be 43 characters")
        try:  # WeChat's key is base64 of the 32-byte AES key, without its trailing "="
            raw = base64.b64decode(key + "=", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("encoding_aes_key must be the console's 43 base64 characters")
        return v

    @field_validator("linked_mps")
    @classmethod
    def _linked_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for app_id in v:
            if not _APP_ID.match(app_id):
                raise ValueError(f"not an app id: {app_id!r}")
        if len(v) > 10:
            raise ValueError("an Official Account links at most 10 Mini Programs")
        return v


class AccountsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, Account]
    session_keys: tuple[SecretStr, ...] = ()
    partner_keys: dict[str, SecretStr] = Field(default_factory=dict)  # key id → secret (the partner API)

    @field_validator("accounts")
    @classmethod
    def _app_ids(cls, v: dict[str, Account]) -> dict[str, Account]:
        for app_id in v:
            if not _APP_ID.match(app_id):
                raise ValueError(f"not an app id: {app_id!r}")
        return v

    @field_validator("session_keys")
    @classmethod
    def _long_session_keys(cls, v: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for n, key in enumerate(v):
            if len(key.get_secret_value()) < SESSION_KEY_MIN_CHARS:
                raise ValueError(f"session key {n} is shorter than {SESSION_KEY_MIN_CHARS} characters "
                                 "(use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return v

    @field_validator("partner_keys")
    @classmethod
    def _partner_keys(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in v.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key_id):
                raise ValueError(f"not a partner key id: {key_id!r}")
            if len(secret.get_secret_value()) < SESSION_KEY_MIN_CHARS:
                raise ValueError(f"partner key {key_id} is shorter than {SESSION_KEY_MIN_CHARS} characters")
        return v

    def account(self, app_id: str) -> Account | None:
        return self.accounts.get(app_id)

    def plain_mode_accounts(self, kind: str) -> list[str]:
        """App ids of ``kind`` whose pushes are unencrypted: their bodies are only as trustworthy as the
        network path."""
        return sorted(app_id for app_id, a in self.accounts.items() if a.kind == kind and a.message_mode == "plain")


def parse_config(raw: str | bytes | dict) -> AccountsConfig:
    """Validate a config document; raises ``ConfigError`` naming the offending field."""
    try:
        doc = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        return AccountsConfig.model_validate(doc)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"accounts config is not JSON: {exc.msg} at line {exc.lineno}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"accounts config invalid: {problems}") from None


class _AppSecret(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app_secret: SecretStr = Field(min_length=1)


class _AppSecrets(BaseModel):
    """The second secret's document: ``{"accounts": {app_id: {"app_secret": "..."}}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: dict[str, _AppSecret]


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
        secrets_doc = _AppSecrets.model_validate(extra)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"app secrets invalid: {problems}") from None
    accounts = doc.get("accounts") if isinstance(doc, dict) else None
    if not isinstance(accounts, dict):
        return parse_config(doc)  # names what is wrong with the config document itself
    merged = dict(accounts)
    for app_id, account in accounts.items():
        if isinstance(account, dict) and "app_secret" in account:
            raise ConfigError(f"accounts config invalid: accounts.{app_id}.app_secret: belongs in the app "
                              "secrets secret when one is set")
    for app_id, entry in secrets_doc.accounts.items():
        if not isinstance(merged.get(app_id), dict):
            raise ConfigError(f"app secrets invalid: accounts.{app_id}: no such account in the accounts config")
        merged[app_id] = {**merged[app_id], "app_secret": entry.app_secret.get_secret_value()}
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
    accounts = {app: acc.model_copy(update={"app_secret": None}) for app, acc in config.accounts.items()}
    return config.model_copy(update={"accounts": accounts})


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
