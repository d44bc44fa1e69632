"""Pure parts of channels (what WeChat would refuse, the plain scheme) and of the partner signature."""

from __future__ import annotations

import pytest

from wxloop.services import channels
from wxloop.services.partner_api import signature


@pytest.mark.parametrize("name,kind,path,days", [
    ("", "oa-temp", "", 7), ("a b", "oa-temp", "", 7), ("x" * 65, "oa-perm", "", 7), ("ok", "sms", "", 7),
    ("ok", "mp-link", "", 7), ("ok", "mp-link", "pages/a?x=1", 7), ("ok", "mp-scheme", "pages/a", 0),
    ("ok", "oa-temp", "", 31)])
def test_what_wechat_would_refuse_is_refused_before_any_call(name, kind, path, days):
    with pytest.raises(channels.ChannelError):
        channels.check(name, kind, path, days)


def test_permanent_kinds_take_any_days_and_the_plain_scheme_encodes_its_query():
    channels.check("poster", "oa-perm", "", 999)
    channels.check("sms", "mp-plain-scheme", "pages/index/index", 0)
    link = channels.plain_scheme("wxabcdef1234567890", "pages/index/index", "abc234defg")
    assert link == ("weixin://dl/business/?appid=wxabcdef1234567890&path=pages%2Findex%2Findex"
                    "&query=code%3Dabc234defg")


def test_the_signature_covers_method_path_time_nonce_key_and_body():
    base = ("s" * 40, "POST", "/partner/wx1/events", "1700000000", "n" * 16, "idem-0001", b"{}")
    sig = signature(*base)
    assert len(sig) == 64
    for i in range(1, 7):
        changed = list(base)
        changed[i] = changed[i] + (b"x" if isinstance(changed[i], bytes) else "x")
        assert signature(*changed) != sig, i
