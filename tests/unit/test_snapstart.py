"""SnapStart priming: the hook registers only inside a Lambda runtime, and priming leaves the clients and the
config ready without calling DynamoDB or SQS."""

from __future__ import annotations

import importlib
import sys
import types

import moto  # noqa: F401 - before any AWS client exists
import pytest

from wxloop import snapstart
from wxloop.adapters import aws


def test_outside_a_lambda_runtime_nothing_is_registered(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails as without the package
    assert importlib.reload(snapstart).REGISTERED is False


def test_inside_a_lambda_runtime_the_priming_hook_is_registered_before_snapshot(monkeypatch):
    registered = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = registered.append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    module = importlib.reload(snapstart)
    assert module.REGISTERED is True
    assert [f.__name__ for f in registered] == ["prime"]


def test_priming_creates_the_shared_clients_and_parses_the_config_without_a_request(monkeypatch):
    aws.reset()
    calls = []
    monkeypatch.setattr("botocore.endpoint.Endpoint.make_request", lambda *a, **k: calls.append(a))
    assert snapstart.prime() == ["dynamodb", "sqs"]
    assert set(aws._clients) == {"dynamodb", "sqs"}
    assert calls == []  # no socket to carry into the snapshot


def test_priming_a_wrong_config_fails_so_no_snapshot_is_published(monkeypatch):
    from wxloop.config import ConfigError

    monkeypatch.setenv("WECHAT_ACCOUNTS", '{"accounts": {"wx1234567890abcdef": {"kind": "oa"}}}')
    with pytest.raises(ConfigError, match="token"):
        snapstart.prime()
