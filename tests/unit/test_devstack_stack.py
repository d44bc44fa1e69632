"""The dev stack's small pieces: ports, the CLI's env file, template-driven settings, body encoding."""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket

import pytest

from devstack import stack
from devstack.gateway import encode_body, function_environment, function_timeout
from devstack.table import load_template


def test_ports_default_stable_and_overridable():
    assert stack.ports_from_env({}) == {"WXLOOP_PORT": 3000, "WXLOOP_AWS_PORT": 3001, "WXLOOP_WECHAT_PORT": 3002}
    assert stack.ports_from_env({"WXLOOP_AWS_PORT": "0"})["WXLOOP_AWS_PORT"] == 0


def test_a_taken_port_is_named_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(stack.PortInUse) as err:
            stack.check_free({"WXLOOP_AWS_PORT": 0, "WXLOOP_PORT": port})
    message = str(err.value)
    assert f"port {port} (gateway)" in message and "WXLOOP_PORT" in message and "\n" not in message


def test_env_file_is_owner_only_sourceable_and_removed_only_by_its_writer(tmp_path):
    path = tmp_path / ".local" / "env"
    accounts = json.dumps({"accounts": {"wx1": {"token": "it's $HOME"}}})
    stack.write_env_file(path, {"WXLOOP_STACK_PID": str(os.getpid()), "WECHAT_ACCOUNTS": accounts})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    line = next(x for x in path.read_text().splitlines() if x.startswith("export WECHAT_ACCOUNTS="))
    assert shlex.split(line.partition("=")[2]) == [accounts]
    stack.write_env_file(path, {"WXLOOP_STACK_PID": "1"})  # another stack's file stays
    stack.remove_env_file(path)
    assert path.exists()
    stack.write_env_file(path, {"WXLOOP_STACK_PID": str(os.getpid())})
    stack.remove_env_file(path)
    assert not path.exists()


def test_settings_come_from_the_template():
    template = load_template()
    assert function_timeout("OaWebhookFunction", template) == 6
    assert function_timeout("WorkerFunction", template) == 30
    env = function_environment(template)
    assert env["WXLOOP_AWS_MAX_ATTEMPTS"] == "1" and "WECHAT_ACCOUNTS" not in env and "TABLE_NAME" not in env
    attrs = stack.queue_attributes(template, "arn:dlq")
    assert attrs["VisibilityTimeout"] == "180"
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": "10"}


@pytest.mark.parametrize("body, expected", [
    (b"", (None, False)),
    ("<xml>积分</xml>".encode(), ("<xml>积分</xml>", False)),
    (b"<xml>\xff\xfe</xml>", (base64.b64encode(b"<xml>\xff\xfe</xml>").decode(), True)),
])
def test_body_is_text_or_base64_as_api_gateway_sends_it(body, expected):
    assert encode_body(body) == expected
