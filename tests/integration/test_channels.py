"""Channels against the fake WeChat API (every kind, errors), renewal, the stream's per-day counters and the
listing; the rewards CLI (validate, push, pull)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tests.conftest import MP_APP, OA_APP, ROOT

pytest_plugins = ["tests.integration.conftest_wechat"]  # fake_wechat


@pytest.mark.parametrize("kind,path,api", [
    ("oa-temp", "", "/cgi-bin/qrcode/create"), ("oa-perm", "", "/cgi-bin/qrcode/create"),
    ("mp-code", "pages/index/index", "/wxa/getwxacodeunlimit"), ("mp-link", "pages/index/index", "/wxa/generate_urllink"),
    ("mp-scheme", "pages/index/index", "/wxa/generatescheme"), ("mp-plain-scheme", "pages/index/index", None)])
def test_every_kind_is_created_stored_and_its_code_resolves_to_the_channel(aws, fake_wechat, tmp_path, kind, path, api):
    from wxloop import cli
    from wxloop.adapters.dynamo import channels, referrals

    out = io.StringIO()
    args = ["channel", "create", f"poster-{kind}", "--kind", kind, "--expire-days", "7", "--out", str(tmp_path)]
    args += ["--path", path] if path else []
    args += ["--app", OA_APP if kind.startswith("oa-") else MP_APP]
    import contextlib

    with contextlib.redirect_stdout(out):
        assert cli.main(args) == 0
    ch = channels.get_channel(f"poster-{kind}")
    assert ch["kind"] == kind and referrals.get_code(ch["code"])["channel"] == f"poster-{kind}"
    assert len(fake_wechat.calls(api)) == (1 if api else 0)
    if kind == "mp-code":
        assert (tmp_path / f"poster-{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert fake_wechat.calls(api)[0]["json"]["scene"] == ch["code"]
    elif kind == "mp-plain-scheme":
        assert ch["link"].startswith(f"weixin://dl/business/?appid={MP_APP}&path=pages%2Findex%2Findex&query=code%3D")
    else:
        assert ch["link"] and ch["link"] in out.getvalue()
    assert (ch["expires_at"] > 0) == (kind in ("oa-temp", "mp-link", "mp-scheme"))


def test_bad_input_and_wechat_errors_are_refused_and_store_nothing(aws, fake_wechat):
    from wxloop.adapters.dynamo import channels as store
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    for name, kind, path, days in (("bad name!", "oa-temp", "", 7), ("x", "sms", "", 7),
                                   ("x", "mp-link", "pages/a?b=1", 7), ("x", "mp-link", "pages/a", 31)):
        with pytest.raises(channels.ChannelError):
            channels.create(name, kind, app_id=MP_APP, path=path, days=days, client=None)
    fake_wechat.fail_next("/wxa/generate_urllink", 40165)
    with pytest.raises(channels.ChannelError, match="WeChat"):
        channels.create("link1", "mp-link", app_id=MP_APP, path="pages/a", days=7, client=api_client(MP_APP))
    assert store.get_channel("link1") is None
    channels.create("dup", "oa-perm", app_id=OA_APP, client=api_client(OA_APP))
    with pytest.raises(channels.ChannelError, match="exists"):
        channels.create("dup", "oa-perm", app_id=OA_APP, client=api_client(OA_APP))


def test_renew_replaces_lapsing_links_and_the_listing_counts_from_the_stream(aws, fake_wechat):
    from wxloop.adapters.dynamo import channels as store
    from wxloop.adapters.wechat import api_client
    from wxloop.domain.inbound import Inbound
    from wxloop.services import channels, oa_push

    now = int(time.time())
    link = channels.create("xhs", "mp-link", app_id=MP_APP, path="pages/a", days=2, client=api_client(MP_APP),
                           cost=30.0)
    qr = channels.create("store", "oa-temp", app_id=OA_APP, days=20, client=api_client(OA_APP), cost=10.0)
    assert [r["lapsing"] for r in sorted(channels.listing(), key=lambda r: r["name"])] == [False, True]
    assert channels.renew(within_days=3, client_for=api_client, now=now) == ["xhs"]
    assert store.get_channel("xhs")["link"] != link["link"]
    # two follows through the store poster, one scan by an existing follower
    for i, event in enumerate(("subscribe", "subscribe", "scan")):
        key = ("qrscene_" if event == "subscribe" else "") + qr["code"]
        inb = Inbound(openid=f"oFollow{i if i < 2 else 0}", to_user=OA_APP, msg_type="event", create_time=now + i,
                      event=event, event_key=key)
        oa_push.record_push(OA_APP, inb, oa_push.plan_reply(OA_APP, inb, now=now + i, first_contact=False),
                            now=now + i, deadline=time.monotonic() + 5)
    aws.run_stream()
    row = next(r for r in channels.listing() if r["name"] == "store")
    assert (row["scans"], row["new_followers"]) == (3, 2) and row["cost_per_new"] == 5.0


def test_rewards_cli_validates_pushes_and_pulls(aws, tmp_path, capsys):
    from wxloop import cli

    example = ROOT / "rules" / "rewards.example.yaml"
    assert cli.main(["rewards", "validate", str(example)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaigns:\n  - id: x\n    qualify: {event: share_card}\n    points: 5\n", encoding="utf-8")
    assert cli.main(["rewards", "validate", str(bad)]) == 2
    assert "bad.yaml:3" in capsys.readouterr().err
    assert cli.main(["rewards", "pull"]) == 1
    assert cli.main(["rewards", "push", str(example), "--version", "v1"]) == 0
    pulled = tmp_path / "pulled.yaml"
    assert cli.main(["rewards", "pull", "-o", str(pulled)]) == 0
    from wxloop.campaignfiles import load_reward_campaigns

    assert [c.id for c in load_reward_campaigns(pulled)[0]] == [c.id for c in load_reward_campaigns(example)[0]]
    assert Path(pulled).read_text(encoding="utf-8").startswith("# version v1")


def test_a_follow_through_an_invite_qr_code_makes_a_pending_referral(aws, fake_wechat):
    from tests.integration.test_rewards import REWARDS_DOC, person
    from wxloop.adapters.dynamo import referrals
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.domain.inbound import Inbound
    from wxloop.services import oa_push, rewards

    store.put_reward_config(REWARDS_DOC, version="1", now=int(time.time()))
    rewards.reset()
    now = int(time.time())
    inviter = person("oQrInviter", at=now - 5000)
    code = rewards.invite_for(MP_APP, inviter)["code"]
    inb = Inbound(openid="oQrFollower", to_user=OA_APP, msg_type="event", create_time=now, event="subscribe",
                  event_key=f"qrscene_{code}")
    touch, _ = oa_push.record_push(OA_APP, inb, oa_push.plan_reply(OA_APP, inb, now=now, first_contact=False),
                                   now=now, deadline=time.monotonic() + 5)
    aws.run_stream()
    ref = referrals.get_referral(touch.uid)
    assert ref["state"] == "pending" and ref["inviter"] == inviter and ref["app_id"] == OA_APP
    rewards.reset()
