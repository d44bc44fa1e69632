"""The three rights over HTTP (consent, export, erasure) and retention, against moto, the fake WeChat API and
a local lake: after erasure no identifier of the person is left in the table, the lake or the logs."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import MP_APP, OA_APP
from tests.integration.mp_api_kit import call, grant, login, uid_of

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]  # fixtures: fake_wechat, mp_api

PHONE = "13912345678"


@pytest.fixture
def lake_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_PATH", str(tmp_path / "lake"))
    monkeypatch.setenv("EXPORT_PATH", str(tmp_path / "exports"))
    monkeypatch.setenv("ERASURE_SWEEP_SECONDS", "0")
    from wxloop.analytics import lake

    lake.reset()
    yield tmp_path
    lake.reset()


def _put(aws, **item) -> None:
    from wxloop.adapters.repository import marshal

    aws.ddb.put_item(TableName=aws.table, Item=marshal(item))


def _rich_person(aws, mp_api, context, fake_wechat, lake_dir) -> dict:
    """A person with every kind of item: MP and OA identities, a union, a phone, journey events, consent
    history, credits, a code, referrals on both sides, an inviter's ledger entry, a merged person, lake rows."""
    from wxloop.adapters import repository
    from wxloop.analytics.lake import LocalParquetWriter
    from wxloop.analytics.schema import COLUMNS

    oa_uid = repository.create_identity(OA_APP, _inbound("oOaRich"), now=int(time.time()), event=_event(int(time.time())),
                                        reply=None, first_touch={"channel": "oa"}).uid
    repository.link_unionid(OA_APP, "oOaRich", "uRich", int(time.time()))
    token = login(mp_api, context, fake_wechat, openid="oMpRich", unionid="uRich")["token"]
    uid = uid_of(token)
    assert uid == oa_uid  # the unionid led the MP login to the OA person
    mp_uid = "merged000000000000000000000000003"  # a person merged into this one earlier, with its merge log
    _put(aws, pk=f"USER#{mp_uid}", sk="PROFILE", uid=mp_uid, merged_into=uid, openids={})
    _put(aws, pk=f"USER#{mp_uid}", sk="EV#2026-01-01T00:00:00Z#x1", type="mp.launch", uid=mp_uid)
    _put(aws, pk=f"USER#{uid}", sk=f"MERGE#{mp_uid}", at=1, why="unionid")
    fake_wechat.add_phone_code(MP_APP, "pcRich", PHONE)
    assert call(mp_api, context, "POST", "phone", {"code": "pcRich"}, token=token)[0] == 200
    assert call(mp_api, context, "POST", "events", [{"name": "view", "ts": int(time.time() * 1000)}],
                token=token)[0] == 200
    _put(aws, pk=f"ID#{MP_APP}#oMpRich", sk="SUB#tmpl1", remaining=2)
    _put(aws, pk=f"ID#{MP_APP}#oMpRich", sk="SUBEV#ev1", at=1)
    _put(aws, pk="CODE#RICH1234", sk="CODE", owner=uid, scene="inv")
    _put(aws, pk=f"USER#{uid}", sk="INVITE", code="RICH1234")
    _put(aws, pk=f"REF#{uid}", sk="REF", inviter="inviter0000000000000000000000001", state="rewarded")
    _put(aws, pk="USER#inviter0000000000000000000000001", sk="PROFILE", uid="inviter0000000000000000000000001",
         points=10)
    _put(aws, pk="USER#inviter0000000000000000000000001", sk="LEDGER#1", points=10, invitee=uid, reason="invite")
    _put(aws, pk="REF#invitee0000000000000000000000002", sk="REF", inviter=uid, state="pending")
    _put(aws, pk=f"USER#{uid}", sk="LEDGER#2", points=5, invitee="invitee0000000000000000000000002")
    writer = LocalParquetWriter(lake_dir / "lake")
    ts = int(time.time() * 1000)
    rows = [{"event_id": "l1", "person": uid, "inviter": None}, {"event_id": "l2", "person": mp_uid, "inviter": None},
            {"event_id": "l3", "person": "invitee0000000000000000000000002", "inviter": uid}]
    columns = {name: [r.get(name) for r in rows] for name, _, _ in COLUMNS}
    columns.update(platform=["mp"] * 3, app=[MP_APP] * 3, type=["mp.launch"] * 3, ts=[ts] * 3,
                   by_user=[True] * 3, v=[1] * 3)
    writer.write_columns(time.strftime("%Y-%m-%d", time.gmtime()), columns)
    return {"token": token, "uid": uid, "ids": {uid, mp_uid, "oOaRich", "oMpRich", "uRich", PHONE, "RICH1234"}}


OTHER = "other0000000000000000000000000009"


def _campaign_history(aws, rich: dict) -> None:
    """The person was planned and sent in one run of a campaign, and is planned in an unreleased bucket of a
    second run beside someone else."""
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service
    from wxloop.services import jobs

    now = int(time.time())
    service.push([{"id": "spring", "accounts": {"oa": OA_APP, "mp": MP_APP}, "segment": {},
                   "content": {"oa_cs": {"text": "New this week"}},
                   "schedule": {"start": "2026-01-01T00:00:00+00:00", "end": "2099-01-01T00:00:00+00:00"}}], now)
    _put(aws, pk=f"USER#{OTHER}", sk="PROFILE", uid=OTHER, openids={OA_APP: "oOther"})
    uid, entry = rich["uid"], [rich["uid"], "oa_cs", OA_APP, "oOaRich"]
    for run, hour in (("r1", now - now % 3600), ("r2", now - now % 3600 + 7200)):
        service.start("spring", now=now, segments=1, run=run, enqueue=lambda t: None)
        store.put_bucket("spring", run, hour, 0, 1, [entry, [OTHER, "oa_cs", OA_APP, "oOther"]])
    assert service.release_run("spring", "r1", now) == 2
    sent = [j for j in aws.jobs() if j["kind"] == "campaign_send" and j["uid"] == uid]
    jobs.run(sent[0], sink=None)
    assert store.get_send("spring", "r1", uid) is not None  # the worker's outcome names the person


def _event(at: int) -> dict:
    return {"id": f"e{at}", "type": "oa.text", "app": OA_APP, "at": at, "detail": {}}


def _inbound(openid: str):
    from wxloop.domain.inbound import Inbound

    return Inbound(openid=openid, to_user=OA_APP, msg_type="text", create_time=int(time.time()), msg_id="1",
                   detail={"content": "hi"})


def _lake_text(root: Path) -> str:
    import pyarrow.parquet as pq

    return json.dumps([pq.read_table(p).to_pylist() for p in sorted(root.rglob("*.parquet"))], default=str)


def _left(aws, ids: set[str]) -> list[dict]:
    text = [(i, json.dumps(i, default=str)) for i in aws.items()]
    return [i for i, t in text if any(x in t for x in ids)]


def test_consent_is_read_and_changed_over_http_and_withdrawal_stops_processing(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oCons", consents=())["token"]
    status, doc = call(mp_api, context, "GET", "privacy/consent", token=token)
    assert status == 200 and {p["state"] for p in doc.values()} == {"unknown"}
    now_ms = int(time.time() * 1000)
    batch = [{"name": "view", "ts": now_ms}, {"name": "order_paid", "ts": now_ms}]
    assert call(mp_api, context, "POST", "events", batch, token=token) == (200, {"accepted": 1})  # necessary only
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["a"]}, token=token)[0] == 403
    fake_wechat.add_phone_code(MP_APP, "pcCons", PHONE)
    assert call(mp_api, context, "POST", "phone", {"code": "pcCons"}, token=token)[0] == 403
    assert not fake_wechat.calls("/wxa/business/getuserphonenumber")  # refused before asking WeChat
    body = {"policy_version": "2026-11", "purposes": {"analytics": True, "personalisation": True, "marketing": True}}
    status, doc = call(mp_api, context, "PUT", "privacy/consent", body, token=token)
    assert status == 200 and doc["analytics"]["state"] == "granted" and doc["phone"]["state"] == "unknown"
    assert doc["analytics"]["policy_version"] == "2026-11" and doc["analytics"]["source"] == "mp_api"
    batch = [{"name": "view", "ts": now_ms + 1}, {"name": "tap", "ts": now_ms + 2}]
    assert call(mp_api, context, "POST", "events", batch, token=token) == (200, {"accepted": 2})
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["a"]}, token=token)[0] == 200

    time.sleep(1.1)  # a later second: the withdrawal is newer than the grant
    withdraw = {"policy_version": "2026-11", "purposes": {"analytics": False, "personalisation": False,
                                                          "marketing": False}}
    assert call(mp_api, context, "PUT", "privacy/consent", withdraw, token=token)[0] == 200
    batch = [{"name": "view", "ts": now_ms + 3}]
    assert call(mp_api, context, "POST", "events", batch, token=token) == (200, {"accepted": 0})
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["b"]}, token=token)[0] == 403

    from wxloop.adapters import repository
    from wxloop.domain import campaigns, consent
    from wxloop.domain.channel_pick import Reachability

    person = repository.get_person(uid_of(token))
    assert consent.segment_prefs(person) == {}  # preference segments see nothing without personalisation
    view = campaigns.PersonView(uid=person["uid"], mp_prefs=consent.segment_prefs(person),
                                reach=Reachability(consent=consent.campaign_consent(person)))
    segment = campaigns.Segment()
    assert not campaigns.matches(segment, view, int(time.time()))  # withdrawn: never selected
    history = [i for i in aws.items() if i["sk"].startswith("CONSENT#analytics#")]
    assert [h["g"] for h in sorted(history, key=lambda h: h["sk"])] == [True, False]


def test_an_older_consent_change_never_overwrites_a_newer_one(aws):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import privacy
    from wxloop.domain.consent import Consent, state

    uid = repository.create_identity(OA_APP, _inbound("oOrder"), now=100, event=_event(100), reply=None,
                                     first_touch={}).uid
    assert privacy.record_consent(uid, Consent("marketing", False, "v1", 200, "oa_keyword")) == uid
    assert privacy.record_consent(uid, Consent("marketing", True, "v1", 150, "mp_api")) is None
    assert privacy.record_consent(uid, Consent("marketing", True, "v1", 200, "mp_api")) is None  # tie: no wins
    assert state(repository.get_person(uid), "marketing") == "withdrawn"


def test_export_holds_every_item_a_scan_finds_for_the_person(aws, mp_api, context, fake_wechat, lake_dir):
    rich = _rich_person(aws, mp_api, context, fake_wechat, lake_dir)
    status, doc = call(mp_api, context, "POST", "privacy/export", token=rich["token"])
    assert status == 200 and doc["state"] == "ready"
    assert call(mp_api, context, "GET", f"privacy/export/{doc['id']}", token=rich["token"])[1]["url"] == doc["url"]
    other = login(mp_api, context, fake_wechat, openid="oOther")["token"]
    assert call(mp_api, context, "GET", f"privacy/export/{doc['id']}", token=other)[0] == 404  # not theirs
    exported = json.loads(Path(doc["url"].removeprefix("file://")).read_text())
    text = json.dumps(exported)
    keys = {(i["pk"], i["sk"]) for i in _left(aws, rich["ids"] - {PHONE})}
    owned = {k for k in keys if not k[0].startswith(("USER#inviter", "REF#invitee"))}  # other people's items
    missing = [k for k in owned if f'"{k[0]}"' not in text or f'"{k[1]}"' not in text]
    assert not missing, missing
    assert exported["phone"] == PHONE and set(exported["readme"]) >= {"person", "journey", "referrals"}
    assert "invitee0000000000000000000000002" not in text and "inviter0000000000000000000000001" not in text
    assert {r["event_id"] for r in exported["journey"]["lake"]} == {"l1", "l2"}


def test_erasure_leaves_no_identifier_in_the_table_lake_or_logs(aws, mp_api, context, fake_wechat, lake_dir,
                                                                 caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="wxloop")  # everything our code logs (AWS SDK wire logs are off)
    rich = _rich_person(aws, mp_api, context, fake_wechat, lake_dir)
    _campaign_history(aws, rich)
    assert call(mp_api, context, "POST", "privacy/export", token=rich["token"])[0] == 200
    status, doc = call(mp_api, context, "DELETE", "privacy/me", token=rich["token"])
    assert status == 200 and doc["state"] == "done"
    buckets = [i for i in aws.items() if i["sk"].startswith("DUE#r2#")]
    assert [b["entries"] for b in buckets] == [[[OTHER, "oa_cs", OA_APP, "oOther"]]]  # the other person stays
    from wxloop.services.privacy import lake

    lake.current().compact(now=int(time.time()), keep_seconds=0)
    assert _left(aws, rich["ids"]) == []
    assert not any(x in _lake_text(lake_dir / "lake") for x in rich["ids"])
    import pyarrow.parquet as pq

    rows = [r for p in (lake_dir / "lake" / "journey").rglob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert [(r["event_id"], r["inviter"]) for r in rows] == [("l3", None)]  # the invitee's own row stays
    from datetime import UTC

    assert abs(rows[0]["ts"].replace(tzinfo=UTC).timestamp() - time.time()) < 120  # rewritten, same time
    assert not list((lake_dir / "exports").rglob("*.json"))  # the exported copy went too
    logs = caplog.text + "".join(capsys.readouterr())
    assert not [x for x in rich["ids"] if x in logs]
    ledger = [i for i in aws.items() if i["pk"] == "USER#inviter0000000000000000000000001"]
    assert {i["sk"] for i in ledger} == {"PROFILE", "LEDGER#1"}  # the inviter's ledger stays, unlinked
    assert [i["invitee"] for i in ledger if i["sk"] == "LEDGER#1"] == ["erased"]
    audit = [i for i in aws.items() if i["pk"].startswith("ERASURE#")]
    assert audit[0]["state"] == "done" and audit[0]["source"] == "mp_api"
    untag = [j for j in aws.jobs() if j["kind"] == "untag_all"]
    assert [(j["app_id"], j["openid"]) for j in untag] == [(OA_APP, "oOaRich")]
    assert call(mp_api, context, "GET", "me", token=rich["token"])[0] == 401  # the person is gone
    again = login(mp_api, context, fake_wechat, openid="oMpRich")["token"]
    assert uid_of(again) != rich["uid"]  # who comes back starts anew


def test_a_crashed_erasure_is_completed_by_resume(aws, mp_api, context, fake_wechat, lake_dir, monkeypatch):
    rich = _rich_person(aws, mp_api, context, fake_wechat, lake_dir)
    from wxloop.adapters.dynamo import erasure as store
    from wxloop.adapters.dynamo.codec import RepositoryError
    from wxloop.services.privacy import erasure

    real, calls = store.delete_keys, []

    def crash_on_second(keys):
        calls.append(1)
        if len(calls) == 2:
            raise RepositoryError("connection reset")
        return real(keys)

    monkeypatch.setattr(store, "delete_keys", crash_on_second)
    with pytest.raises(RepositoryError):
        erasure.erase(rich["uid"], source="operator")
    assert _left(aws, rich["ids"])  # half done
    [open_request] = store.pending()
    assert erasure.resume() == {"done": 1}
    assert _left(aws, rich["ids"]) == [] and store.pending() == []
    assert store.audit(open_request["sk"])["state"] == "done"
    assert erasure.erase(rich["uid"], source="operator") == {"request_id": None, "state": "gone"}  # idempotent
    assert [i["state"] for i in aws.items() if i["pk"].startswith("ERASURE#")] == ["done"]


def test_erasure_under_concurrent_pushes_from_the_same_person(aws, mp_api, context, fake_wechat, lake_dir,
                                                              atomic_ddb):
    from devstack.simulator import Simulator
    from tests.conftest import OA_AES_KEY, OA_TOKEN, load_handler
    from tests.integration.oa_webhook_kit import post
    from wxloop.adapters import repository
    from wxloop.services.privacy import erasure

    oa, sim = load_handler("oa_webhook"), Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    post(oa, context, sim, sim.text("oBusy", "hello", msg_id=1), "safe")
    uid = repository.get_identity(OA_APP, "oBusy")["uid"]
    stop = threading.Event()

    def pushes():
        n = 2
        while not stop.is_set() and n < 40:
            post(oa, context, sim, sim.text("oBusy", f"m{n}", msg_id=n), "safe")
            n += 1

    worker = threading.Thread(target=pushes)
    worker.start()
    try:
        erasure.erase(uid, source="mp_api", sweep_after=3600)
    finally:
        stop.set()
        worker.join()
    aws.run_stream()  # in-flight journey records land (some under the old uid)
    assert erasure.resume(now=int(time.time()) + 7200) == {"done": 1}  # the sweep
    assert _left(aws, {uid}) == []
    current = repository.get_identity(OA_APP, "oBusy")
    assert current is None or current["uid"] != uid  # a later push started a new person


def test_retention_purge_erases_only_people_inactive_past_the_period(aws, lake_dir):
    from wxloop.adapters import repository
    from wxloop.services.privacy import retention

    now = int(time.time())
    old = repository.create_identity(OA_APP, _inbound("oOld"), now=now - 400 * 86400, event=_event(now),
                                     reply=None, first_touch={}).uid
    recent = repository.create_identity(OA_APP, _inbound("oNew"), now=now - 10 * 86400, event=_event(now),
                                        reply=None, first_touch={}).uid
    assert retention.purge(now=now, days=365) == {"inactive": 1, "erased": 1}
    assert repository.get_person(old) is None and repository.get_person(recent) is not None
    assert _left(aws, {old, "oOld"}) == []


def test_an_oa_td_message_withdraws_marketing_consent_through_a_job(aws, context, fake_wechat):
    from devstack.simulator import Simulator
    from tests.conftest import OA_AES_KEY, OA_TOKEN, load_handler
    from tests.integration.oa_webhook_kit import post
    from wxloop.adapters import repository
    from wxloop.domain import consent
    from wxloop.services import jobs

    oa, sim = load_handler("oa_webhook"), Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    post(oa, context, sim, sim.text("oTd", "hello", msg_id=1), "safe")
    uid = repository.get_identity(OA_APP, "oTd")["uid"]
    grant(uid, ["marketing"], at=int(time.time()) - 60)
    post(oa, context, sim, sim.text("oTd", "退订", msg_id=2), "safe")
    [job] = [j for j in aws.jobs() if j["kind"] == "consent_withdraw"]
    assert str(jobs.run(job, sink=None)).startswith("ok")
    person = repository.get_person(uid)
    assert consent.state(person, "marketing") == "withdrawn" and person[consent.attribute("marketing")]["src"] \
        == "oa_keyword"



def test_the_cli_changes_consent_exports_and_erases_for_requests_by_other_channels(aws, lake_dir, capsys):
    from wxloop import cli
    from wxloop.adapters import repository
    from wxloop.domain import consent

    uid = repository.create_identity(OA_APP, _inbound("oDesk"), now=int(time.time()), event=_event(int(time.time())),
                                     reply=None, first_touch={}).uid
    assert cli.main(["privacy", "consent", "--app", OA_APP, "--openid", "oDesk", "--withdraw", "marketing"]) == 0
    assert consent.state(repository.get_person(uid), "marketing") == "withdrawn"
    assert cli.main(["privacy", "export", "--uid", uid]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("file://")
    assert json.loads(Path(path).read_text())["person"]["uid"] == uid
    assert cli.main(["privacy", "erase", "--uid", uid]) == 2  # no --yes: nothing happens
    assert repository.get_person(uid) is not None
    assert cli.main(["privacy", "erase", "--uid", uid, "--yes"]) == 0
    assert _left(aws, {uid, "oDesk"}) == []
