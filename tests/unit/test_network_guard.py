"""The suite's network guard (tests/conftest.py): loopback and local sockets pass, anything else fails loudly."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.conftest import NetworkAccessBlocked, is_loopback_host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST.", "[::1]",
                                  "::ffff:127.0.0.1"])
def test_loopback_hosts_are_allowed(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["192.0.2.10", "10.0.0.1", "0.0.0.0", "", "api.weixin.qq.com",
                                  "sqs.us-east-1.amazonaws.com", "128.0.0.1", "::ffff:192.0.2.10", "2001:db8::1"])
def test_other_hosts_are_not(host):
    assert not is_loopback_host(host)


def _listener(family=socket.AF_INET, host="127.0.0.1"):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(2)  # the kernel completes connections to the backlog: no accept needed
    return server


def test_loopback_lookups_and_literals_resolve(network_guard):
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80) and socket.getaddrinfo("192.0.2.10", 80)  # literals: no DNS
    assert network_guard.blocked == []


def test_connecting_to_loopback_works(network_guard):
    with _listener() as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    with _listener() as server, socket.socket() as sock:
        assert sock.connect_ex(server.getsockname()) == 0
    assert network_guard.blocked == []


def test_unix_sockets_work(network_guard):
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
    assert network_guard.blocked == []


@pytest.mark.parametrize("connect", [
    lambda: socket.create_connection(("api.weixin.qq.com", 443), timeout=1),
    lambda: socket.socket().connect(("192.0.2.10", 443)),
    lambda: socket.socket().connect_ex(("192.0.2.10", 443)),
    lambda: socket.socket(socket.AF_INET6).connect(("2001:db8::1", 443)),
    lambda: requests.get("http://192.0.2.10/cgi-bin/stable_token", timeout=1),
    lambda: requests.get("https://api.weixin.qq.com/cgi-bin/stable_token", timeout=1),
    lambda: socket.getaddrinfo("api.weixin.qq.com", 443),
], ids=["create_connection", "connect", "connect_ex", "connect_v6", "requests_ip", "requests_name", "lookup"])
def test_any_other_connection_fails_loudly_and_is_reported(network_guard, connect):
    with pytest.raises(NetworkAccessBlocked):
        connect()
    assert network_guard.blocked
    network_guard.blocked.clear()  # blocked on purpose: the guard would otherwise fail this test at teardown


def test_a_client_left_on_the_real_wechat_api_cannot_reach_it(aws, network_guard, monkeypatch):
    """The default API base is the real WeChat host: a test that forgets the fake fails instead of calling it."""
    from wxloop.adapters import wechat

    monkeypatch.delenv("WECHAT_API_BASE", raising=False)
    wechat.reset()
    assert "api.weixin.qq.com" in wechat.api_base()
    with pytest.raises(Exception):  # whatever the client wraps it in: the guard records it anyway
        wechat.new_client("wx1234567890abcdef").post("message/custom/send", data={"touser": "o"})
    assert network_guard.blocked and all(b.startswith("api.weixin.qq.com:") for b in network_guard.blocked)
    network_guard.blocked.clear()
    wechat.reset()
