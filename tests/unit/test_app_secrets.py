"""App secrets in a second secret: merged into the config only where ``WECHAT_APP_SECRETS_SECRET`` is set,
which the template sets only for the token-fetching functions; the webhook's config never holds one."""

from __future__ import annotations

import copy
import dataclasses
import json

import moto  # noqa: F401 - before any AWS client exists
import pytest

from tests.conftest import ACCOUNTS, MP_APP, OA_APP
from tests.unit.test_template import FUNCTION_ROLES, TOKEN_FETCHERS, function_env
from wxloop.config import ConfigError, load_config, merge_app_secrets

SECRET_VALUES = {OA_APP: "oa-secret-from-the-second-secret", MP_APP: "mp-secret-from-the-second-secret"}
APP_SECRETS = {"accounts": {app: {"app_secret": value} for app, value in SECRET_VALUES.items()}}


def _without_app_secrets() -> dict:
    doc = copy.deepcopy(ACCOUNTS)
    for account in doc["accounts"].values():
        account.pop("app_secret", None)
    return doc


def test_merge_puts_each_app_secret_into_its_account():
    config = merge_app_secrets(json.dumps(_without_app_secrets()), json.dumps(APP_SECRETS))
    assert config.account(OA_APP).app_secret.get_secret_value() == SECRET_VALUES[OA_APP]
    assert config.account(MP_APP).app_secret.get_secret_value() == SECRET_VALUES[MP_APP]
    assert config.account(OA_APP).encoding_aes_key is not None  # the rest of the document is kept
    assert SECRET_VALUES[OA_APP] not in repr(config)


@pytest.mark.parametrize("secrets, message", [
    ({"accounts": {"wx0000000000000bad": {"app_secret": "x"}}}, "no such account"),
    ({"accounts": {OA_APP: {"app_secret": "x", "token": "y"}}}, "token"),
    ({"accounts": {OA_APP: {}}}, "app_secret"),
    ({"accounts": {OA_APP: {"app_secret": ""}}}, "app_secret"),
    ({"apps": {}}, "accounts"),
    ([1, 2], "app secrets invalid"),
    ("{not json", "not JSON"),
])
def test_a_bad_app_secrets_document_is_refused_naming_the_field(secrets, message):
    raw = secrets if isinstance(secrets, str) else json.dumps(secrets)
    with pytest.raises(ConfigError, match=message) as err:
        merge_app_secrets(json.dumps(_without_app_secrets()), raw)
    assert "secret-from" not in str(err.value)


def test_app_secrets_in_both_documents_are_refused():
    """With a second secret, an app secret left in the accounts document would reach the webhooks."""
    with pytest.raises(ConfigError, match=rf"accounts\.{OA_APP}\.app_secret") as err:
        merge_app_secrets(json.dumps(ACCOUNTS), json.dumps(APP_SECRETS))
    assert "demo-oa-secret" not in str(err.value)


@pytest.fixture
def secrets(monkeypatch):
    """Both secrets in moto; the config comes from them, as deployed."""
    from moto import mock_aws

    with mock_aws():
        import boto3
        from aws_lambda_powertools.utilities import parameters

        client = boto3.client("secretsmanager", region_name="us-east-1")
        accounts = client.create_secret(Name="wxloop-accounts", SecretString=json.dumps(_without_app_secrets()))
        app = client.create_secret(Name="wxloop-app-secrets", SecretString=json.dumps(APP_SECRETS))
        monkeypatch.delenv("WECHAT_ACCOUNTS", raising=False)
        monkeypatch.setenv("WECHAT_ACCOUNTS_MAX_AGE", "0")
        parameters.clear_caches()
        parameters.base.DEFAULT_PROVIDERS.clear()  # its client must be made inside moto
        yield {"WECHAT_ACCOUNTS_SECRET": accounts["ARN"], "WECHAT_APP_SECRETS_SECRET": app["ARN"]}
        parameters.base.DEFAULT_PROVIDERS.clear()


@pytest.mark.parametrize("function_id", sorted(FUNCTION_ROLES))
def test_only_token_fetchers_hold_app_secrets(function_id, secrets, monkeypatch):
    """Each function's config, loaded with the secret variables the template gives that function."""
    declared = function_env(function_id)
    for name, arn in secrets.items():
        if name in declared:
            monkeypatch.setenv(name, arn)
        else:
            monkeypatch.delenv(name, raising=False)
    config = load_config(with_app_secrets=function_id in TOKEN_FETCHERS)  # as each function's code asks
    held = {app for app, account in config.accounts.items() if account.app_secret is not None}
    if function_id in TOKEN_FETCHERS:
        assert held == set(SECRET_VALUES)
        assert config.account(OA_APP).app_secret.get_secret_value() == SECRET_VALUES[OA_APP]
    else:
        assert held == set()
        assert config.account(OA_APP).token.get_secret_value()  # the webhook still verifies pushes


def test_the_worker_fetches_tokens_with_the_second_secrets_app_secret(secrets, monkeypatch):
    from wxloop.adapters import wechat

    for name, arn in secrets.items():
        monkeypatch.setenv(name, arn)
    wechat.reset()
    try:
        assert wechat.api_client(OA_APP).secret == SECRET_VALUES[OA_APP]
    finally:
        wechat.reset()


@pytest.mark.parametrize("keys", [[""], ["short"], ["x" * 31], ["x" * 40, "y" * 31]])
def test_a_session_key_shorter_than_32_characters_is_refused(keys):
    from wxloop.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="session_keys: .*shorter than 32"):
        parse_config({"accounts": {}, "session_keys": keys})
    assert len(parse_config({"accounts": {}, "session_keys": ["k" * 32]}).session_keys) == 1


def test_the_default_loader_holds_no_app_secret_even_when_the_document_has_them(monkeypatch):
    """Dev keeps app secrets in the one document: the webhooks' loader (the default) still drops them."""
    import wxloop.config as config_mod
    from wxloop.services import oa_push

    doc = copy.deepcopy(_without_app_secrets())
    for app, value in SECRET_VALUES.items():
        doc["accounts"][app]["app_secret"] = value
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(doc))
    monkeypatch.delenv("WECHAT_APP_SECRETS_SECRET", raising=False)
    webhook = load_config()
    assert all(acc.app_secret is None for acc in webhook.accounts.values())
    assert all(v not in repr(dataclasses.asdict(webhook)) for v in SECRET_VALUES.values())
    assert webhook.account(OA_APP).token.get_secret_value()  # pushes still verify
    fetcher = load_config(with_app_secrets=True)
    assert fetcher.account(OA_APP).app_secret.get_secret_value() == SECRET_VALUES[OA_APP]
    seen = []
    monkeypatch.setattr(config_mod, "load_config", lambda **kw: seen.append(kw) or webhook)
    assert oa_push.endpoint_for(OA_APP, "oa") is not None
    assert seen == [{}]  # the push path loads through the default: no app secrets
