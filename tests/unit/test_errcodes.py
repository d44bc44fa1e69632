"""WeChat errcodes live in one module: their meaning and the action the code takes."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "wxloop"


@pytest.mark.parametrize(("code", "action"), [
    (None, "transient"), (-1, "transient"), (40001, "token_invalid"), (40014, "token_invalid"),
    (42001, "token_invalid"), (40164, "token_fetch"), (40125, "token_fetch"), (45009, "quota_block"),
    (45015, "channel_closed"), (43101, "channel_closed"), (45047, "backoff"), (45157, "tag_exists"),
    (40029, "client_code"), (40163, "client_code"), (45011, "rate_limited"), (40226, "blocked"),
    (40003, "failed"), (0, "failed"),
])
def test_each_code_has_its_action(code, action):
    from wxloop.protocol import errcodes

    assert errcodes.action_of(code) == action
    if code in errcodes.CODES:
        assert errcodes.CODES[code].meaning


@pytest.mark.parametrize(("code", "path", "transient"), [
    (None, "/cgi-bin/message/custom/send", True), (-1, "/cgi-bin/message/custom/send", True),
    (40001, "/cgi-bin/user/info", True), (40164, "/cgi-bin/stable_token", True),
    (40013, "/cgi-bin/stable_token", True), (45015, "/cgi-bin/message/custom/send", False),
    (45009, "/cgi-bin/message/custom/send", False), (40003, "/cgi-bin/message/custom/send", False),
])
def test_the_clients_error_is_transient_by_the_codes_action(code, path, transient):
    from wxloop.adapters.wechat import TOKEN_ERRCODES, WeChatAPIError

    assert WeChatAPIError(code, "x", path=path).transient is transient
    assert TOKEN_ERRCODES == {40001, 40014, 42001}


def _errcode_literals(path: Path) -> list[int]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return [int(t.string) for t in tokens if t.type == tokenize.NUMBER and t.string.isdigit()
            and 40000 <= int(t.string) <= 49999]


def test_no_errcode_is_written_as_a_number_outside_the_errcodes_module():
    """Docstrings and comments may name codes; code refers to them through ``wxloop.protocol.errcodes``."""
    found = {str(p.relative_to(LAYER)): _errcode_literals(p) for p in LAYER.rglob("*.py")
             if p.name != "errcodes.py"}
    assert {k: v for k, v in found.items() if v} == {}
