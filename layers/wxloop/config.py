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

_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")


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

    @field_validator("accounts")
    @classmethod
    def _app_ids(cls, v: dict[str, Account]) -> dict[str, Account]:
        for app_id in v:
            if not _APP_ID.match(app_id):
                raise ValueError(f"not an app id: {app_id!r}")
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


@lru_cache(maxsize=4)
def _parse_cached(raw: str) -> AccountsConfig:
    return parse_config(raw)


def load_config() -> AccountsConfig:
    """The current config: ``WECHAT_ACCOUNTS`` inline, else the secret ``WECHAT_ACCOUNTS_SECRET``.

    The secret is read through Powertools Parameters (cached for ``WECHAT_ACCOUNTS_MAX_AGE`` seconds, default
    300), so a rotated secret is picked up without a redeploy; parsing is cached per document.
    """
    inline = os.environ.get("WECHAT_ACCOUNTS")
    if inline:
        return _parse_cached(inline)
    secret_id = os.environ.get("WECHAT_ACCOUNTS_SECRET")
    if not secret_id:
        raise ConfigError("set WECHAT_ACCOUNTS (JSON) or WECHAT_ACCOUNTS_SECRET (secret id)")
    from aws_lambda_powertools.utilities import parameters

    max_age = int(os.environ.get("WECHAT_ACCOUNTS_MAX_AGE", "300"))
    raw = parameters.get_secret(secret_id, max_age=max_age)
    return _parse_cached(raw if isinstance(raw, str) else raw.decode())
