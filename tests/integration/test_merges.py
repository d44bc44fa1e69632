"""One person across apps: unionid merges through the real entry points (the MP API's login, the worker's
user/info job) and the repository, against moto and the fake WeChat API.

Every case checks the same invariants: one live person owns the unionid and every identity; the merged
person points at it; each ledger sums to its person's balance; the merge is logged once; a repeat writes
nothing.
"""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest

from tests.conftest import ACCOUNTS, MP_APP, OA_APP
from tests.integration.conftest_wechat import new_identity, sqs_event
from tests.integration.mp_api_kit import call, grant, login, people

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]
MP2 = "wxabcdef0000000002"
PHONE = "13912345678"


@pytest.fixture
def two_mps(monkeypatch, fake_wechat):
    """A second Mini Program linked to the OA (same human, same unionid, another openid)."""
    doc = copy.deepcopy(ACCOUNTS)
    doc["accounts"][MP2] = {"kind": "mp", "name": "Second MP", "token": "mp2token", "app_secret": "mp2-secret"}
    doc["accounts"][OA_APP]["linked_mps"] = [MP_APP, MP2]
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(doc))
    fake_wechat.add_account(MP2, "mp2-secret")
    return MP2


@pytest.fixture
def worker():
    from tests.conftest import load_handler

    return load_handler("worker")


def _items(aws, prefix: str = "") -> list[dict]:
    return [i for i in aws.items() if i["sk"].startswith(prefix)]


def _person(aws, uid: str) -> dict:
    return next(i for i in aws.items() if i["pk"] == f"USER#{uid}" and i["sk"] == "PROFILE")


def _seed(aws, uid: str, **attrs) -> None:
    """Write attributes on a person directly (what other parts of the system leave there)."""
    from wxloop.adapters.dynamo.codec import marshal
    from wxloop.adapters.dynamo.keys import person_key

    names = {f"#a{i}": k for i, k in enumerate(attrs)}
    values = marshal({f":a{i}": v for i, v in enumerate(attrs.values())})
    aws.ddb.update_item(TableName=aws.table, Key=person_key(uid), ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                        UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attrs))))


def _put(aws, item: dict) -> None:
    from wxloop.adapters.dynamo.codec import marshal

    aws.ddb.put_item(TableName=aws.table, Item=marshal(item))


def _reward(aws, uid: str, points: int, entry: str = "reward#c1#x") -> None:
    """A balance with its ledger entry, as a reward leaves them."""
    _seed(aws, uid, points=points)
    _put(aws, {"pk": f"USER#{uid}", "sk": f"LEDGER#{entry}", "entry_id": entry, "uid": uid, "points": points})


def _assert_ledgers_balance(aws) -> None:
    for person in people(aws):
        entries = [i for i in aws.items() if i["pk"] == person["pk"] and i["sk"].startswith("LEDGER#")]
        assert sum(e["points"] for e in entries) == int(person.get("points") or 0), person["uid"]


def _user_info(worker, context, fake, app: str, openid: str, unionid: str) -> None:
    fake.add_user(app, openid, unionid=unionid)
    job = {"id": f"ui:{openid}", "kind": "user_info", "app_id": app, "openid": openid}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}


def test_oa_first_then_mp_login_lands_on_the_follower_with_its_qr_attribution(
        aws, mp_api, context, fake_wechat, worker):
    """Given an OA follower (QR scene) whose unionid the user/info job linked, when the same human logs in
    to the MP, then the MP identity joins the follower: one live person, both identities, the QR first
    touch, a merge log, and a person.merged journey event naming both uids."""
    from wxloop.adapters import repository

    oa_uid = new_identity(OA_APP, "oOa1", now=1_000)
    _seed(aws, oa_uid, first_touch={"channel": "qr", "kind": "oa_subscribe", "scene": "store_12", "at": 1_000})
    _user_info(worker, context, fake_wechat, OA_APP, "oOa1", "uH1")
    doc = login(mp_api, context, fake_wechat, openid="oMp1", unionid="uH1", scene=1011)
    live = [p for p in people(aws) if not p.get("merged_into")]
    assert [p["uid"] for p in live] == [oa_uid]
    assert live[0]["openids"] == {OA_APP: "oOa1", MP_APP: "oMp1"}
    assert live[0]["first_touch"]["scene"] == "store_12"
    assert repository.get_identity(MP_APP, "oMp1")["uid"] == oa_uid
    [husk] = [p for p in people(aws) if p.get("merged_into")]
    assert husk["merged_into"] == oa_uid
    [log] = _items(aws, "MERGE#")
    assert log["pk"] == f"USER#{oa_uid}" and log["sk"] == f"MERGE#{husk['uid']}" and log["why"] == "unionid"
    assert f"{MP_APP}:oMp1" in log["moved"]["identities"]
    aws.run_stream()
    [merged] = [e for e in _items(aws, "EV#") if e["type"] == "person.merged"]
    assert merged["pk"] == f"USER#{oa_uid}" and merged["merged_from"] == husk["uid"] and merged["platform"] == "mp"
    status, me = call(mp_api, context, "GET", "me", token=doc["token"])
    assert status == 200 and me["invite_code"] == doc["person"]["invite_code"]


def test_mp_first_then_oa_moves_points_follow_state_and_keeps_the_earlier_touch(
        aws, mp_api, context, fake_wechat, worker):
    """Given an MP person with the unionid, and an OA follower (earlier, with points and a follow state),
    when user/info reveals the unionid, then the follower merges into the MP person: points move with a
    ledger entry on each side, the follow state and the earlier first touch come along."""
    login(mp_api, context, fake_wechat, openid="oMp2", unionid="uH2", scene=1011)
    [mp_person] = people(aws)
    mp_uid = mp_person["uid"]
    _reward(aws, mp_uid, 3)
    oa_uid = new_identity(OA_APP, "oOa2", now=mp_person["created_at"] - 500)
    _seed(aws, oa_uid, **{"first_touch": {"channel": "qr", "scene": "s9", "at": mp_person["created_at"] - 500},
                          f"fol_{OA_APP}": {"f": True, "at": 5}})
    _reward(aws, oa_uid, 5)
    _user_info(worker, context, fake_wechat, OA_APP, "oOa2", "uH2")
    survivor, loser = _person(aws, mp_uid), _person(aws, oa_uid)
    assert loser["merged_into"] == mp_uid and loser["points"] == 0
    assert survivor["points"] == 8 and survivor[f"fol_{OA_APP}"] == {"f": True, "at": 5}
    assert survivor["first_touch"]["scene"] == "s9"
    assert survivor["openids"] == {MP_APP: "oMp2", OA_APP: "oOa2"}
    _assert_ledgers_balance(aws)
    before = aws.items()
    from wxloop.adapters import repository

    assert repository.link_unionid(OA_APP, "oOa2", "uH2", 99) == mp_uid  # a retry of the same merge
    assert aws.items() == before


def test_two_mps_the_old_session_lands_on_the_survivor_with_the_phone_resealed(
        aws, mp_api, context, fake_wechat, two_mps):
    """Given a person in MP2 (phone bound, topics chosen) known only by openid, and the same human in MP1
    with the unionid, when MP2 later reveals the unionid, then MP2's person merges into MP1's: the phone is
    re-sealed for the survivor, topics are the union, and GET me with MP2's old token shows the survivor."""
    from wxloop.adapters import mp_store
    from wxloop.services.mp_api.context import signing_keys
    from wxloop.services.mp_api.profile import phone_aad

    token_a = login(mp_api, context, fake_wechat, openid="oMpA", unionid="uH3")["token"]
    [first] = people(aws)
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["tea"]}, token=token_a)[0] == 200
    code = "code-mp2-first"
    fake_wechat.add_code(two_mps, code, "oMpB", None)
    status, doc = call(mp_api, context, "POST", "session", {"code": code}, app_id=two_mps)
    assert status == 200
    token_b = doc["token"]
    from wxloop.domain import session

    uid_b = session.verify(token_b, signing_keys(), app_id=two_mps, now=int(time.time())).uid
    grant(uid_b, ("personalisation", "phone"))  # what the MP's consent page would have asked
    fake_wechat.add_phone_code(two_mps, "pcB", PHONE)
    assert call(mp_api, context, "POST", "phone", {"code": "pcB"}, token=token_b, app_id=two_mps)[0] == 200
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["coffee"]}, token=token_b, app_id=two_mps)[0] == 200
    fake_wechat.add_code(two_mps, "code-mp2-again", "oMpB", "uH3")
    assert call(mp_api, context, "POST", "session", {"code": "code-mp2-again"}, app_id=two_mps)[0] == 200

    survivor = _person(aws, first["uid"])
    assert survivor["openids"] == {MP_APP: "oMpA", two_mps: "oMpB"}
    assert survivor["prefs"]["topics"] == ["tea", "coffee"] and survivor["topics_seen"] >= {"tea", "coffee"}
    assert mp_store.unseal(survivor["phone"], phone_aad(first["uid"]), signing_keys()) == PHONE.encode()
    [husk] = [p for p in people(aws) if p.get("merged_into")]
    assert "phone" not in husk and "phone_masked" not in husk  # the husk keeps no PII
    assert PHONE not in json.dumps(aws.items(), default=repr)
    status, me = call(mp_api, context, "GET", "me", token=token_b, app_id=two_mps)
    assert status == 200 and me["phone"] == "139****5678" and me["topics"] == ["tea", "coffee"]


def test_the_same_merge_from_two_threads_happens_once(aws):
    """Given two persons with one unionid, when two threads link it at once, then exactly one merge lands:
    one log, the points moved once, both threads answer the survivor."""
    from wxloop.adapters import repository

    owner = new_identity(OA_APP, "oOa5", now=100)
    repository.link_unionid(OA_APP, "oOa5", "uH5", 101)
    loser = new_identity(MP_APP, "oMp5", now=200)
    _reward(aws, loser, 7)
    barrier, answers, errors = threading.Barrier(2), [], []

    def link():
        barrier.wait()
        try:
            answers.append(repository.link_unionid(MP_APP, "oMp5", "uH5", 300))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=link) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and answers == [owner, owner]
    assert len(_items(aws, "MERGE#")) == 1
    assert _person(aws, owner)["points"] == 7 and _person(aws, loser)["points"] == 0
    _assert_ledgers_balance(aws)


def test_two_losers_merging_into_one_survivor_at_once_lose_nothing(aws):
    """Given two persons merging into the same survivor concurrently, then the survivor ends with both
    balances and both persons' topics (a merge computed from a stale survivor fails its guard and reads
    again)."""
    from wxloop.adapters import repository

    owner = new_identity(OA_APP, "oOa6", now=100)
    repository.link_unionid(OA_APP, "oOa6", "uH6", 101)
    losers = [new_identity(MP_APP, "oMp6a", now=200), new_identity(OA_APP + "0", "oX6", now=200)]
    for i, uid in enumerate(losers):
        _reward(aws, uid, 10 + i)
        _seed(aws, uid, prefs={"topics": [f"t{i}"], "v": i + 1, "at": 1})
    barrier = threading.Barrier(2)

    def link(app, openid):
        barrier.wait()
        repository.link_unionid(app, openid, "uH6", 300)

    threads = [threading.Thread(target=link, args=a) for a in ((MP_APP, "oMp6a"), (OA_APP + "0", "oX6"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    survivor = _person(aws, owner)
    assert survivor["points"] == 21 and sorted(survivor["prefs"]["topics"]) == ["t0", "t1"]
    assert len(_items(aws, "MERGE#")) == 2
    _assert_ledgers_balance(aws)


def test_a_write_to_the_loser_during_the_merge_is_not_lost(aws, monkeypatch):
    """Given a loser whose preferences change between the merge's read and its write, then the merge's
    guard fails, it reads again, and the survivor gets the new topics."""
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import merges

    owner = new_identity(OA_APP, "oOa7", now=100)
    repository.link_unionid(OA_APP, "oOa7", "uH7", 101)
    loser = new_identity(MP_APP, "oMp7", now=200)
    _seed(aws, loser, prefs={"topics": ["old"], "v": 1, "at": 1})
    real, raced = merges.consent_of, []

    def consent_then_race(uid):
        if uid == loser and not raced:
            raced.append(uid)
            _seed(aws, loser, prefs={"topics": ["new"], "v": 2, "at": 2})
        return real(uid)

    monkeypatch.setattr(merges, "consent_of", consent_then_race)
    original_plan = repository.link_unionid.__globals__["plan_merge"]
    reads = []

    def plan_once_stale(survivor, loser_item, **kw):
        reads.append(loser_item.get("prefs"))
        if len(reads) == 1:  # the first plan is made from the read before the race
            loser_item = {**loser_item, "prefs": {"topics": ["old"], "v": 1, "at": 1}}
        return original_plan(survivor, loser_item, **kw)

    monkeypatch.setitem(repository.link_unionid.__globals__, "plan_merge", plan_once_stale)
    assert repository.link_unionid(MP_APP, "oMp7", "uH7", 300) == owner
    assert len(reads) == 2  # the stale plan's transaction was refused
    assert _person(aws, owner)["prefs"]["topics"] == ["new"]


def test_a_merge_of_a_merged_person_follows_merged_into(aws):
    """Given an identity still naming a person that was merged (a race left it behind) and a union that
    still names a merged person, then linking lands on the live survivor, repoints both, and writes no
    second merge log."""
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo.keys import union_key

    owner = new_identity(OA_APP, "oOa8", now=100)
    repository.link_unionid(OA_APP, "oOa8", "uH8", 101)
    loser = new_identity(MP_APP, "oMp8", now=200)
    assert repository.link_unionid(MP_APP, "oMp8", "uH8", 300) == owner
    _put(aws, {"pk": "ID#wx00000000000000cc#oLeft", "sk": "ID", "uid": loser, "app_id": "wx00000000000000cc"})
    assert repository.link_unionid("wx00000000000000cc", "oLeft", "uH8", 400) == owner
    assert repository.get_identity("wx00000000000000cc", "oLeft")["uid"] == owner
    assert len(_items(aws, "MERGE#")) == 1
    assert repository.resolve_person(loser)["uid"] == owner

    aws.ddb.update_item(TableName=aws.table, Key=union_key("uH8"), UpdateExpression="SET uid = :l",
                        ExpressionAttributeValues={":l": {"S": loser}})  # a union left naming the husk
    newcomer = new_identity(MP_APP + "0", "oMp8b", now=500)
    assert repository.link_unionid(MP_APP + "0", "oMp8b", "uH8", 600) == owner
    assert _person(aws, newcomer)["merged_into"] == owner
    union = next(i for i in aws.items() if i["pk"] == "UNION#uH8")
    assert union["uid"] == owner


def test_consent_takes_the_stricter_record(aws):
    """Given a marketing grant on the survivor and a withdrawal on the loser, then the survivor ends
    withdrawn; a purpose only the loser had comes along; the loser's records stay as they were."""
    from wxloop.adapters import repository

    owner = new_identity(OA_APP, "oOa9", now=100)
    repository.link_unionid(OA_APP, "oOa9", "uH9", 101)
    loser = new_identity(MP_APP, "oMp9", now=200)
    _put(aws, {"pk": f"USER#{owner}", "sk": "CONSENT#marketing", "state": "granted", "at": 10, "policy": "v1"})
    _put(aws, {"pk": f"USER#{loser}", "sk": "CONSENT#marketing", "state": "withdrawn", "at": 5, "policy": "v1"})
    _put(aws, {"pk": f"USER#{loser}", "sk": "CONSENT#analytics", "state": "granted", "at": 6, "policy": "v2"})
    repository.link_unionid(MP_APP, "oMp9", "uH9", 300)
    consent = {i["sk"]: i for i in aws.items() if i["pk"] == f"USER#{owner}" and i["sk"].startswith("CONSENT#")}
    assert consent["CONSENT#marketing"]["state"] == "withdrawn" and consent["CONSENT#marketing"]["merged_from"] == loser
    assert consent["CONSENT#analytics"]["state"] == "granted"
    assert len([i for i in aws.items() if i["pk"] == f"USER#{loser}" and i["sk"].startswith("CONSENT#")]) == 2


def test_a_merge_too_large_for_one_transaction_writes_nothing(aws, monkeypatch):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import merges

    owner = new_identity(OA_APP, "oOa10", now=100)
    repository.link_unionid(OA_APP, "oOa10", "uH10", 101)
    new_identity(MP_APP, "oMp10", now=200)
    monkeypatch.setattr(merges, "MAX_TRANSACTION_ITEMS", 4)
    before = aws.items()
    with pytest.raises(merges.MergeTooLarge):
        repository.link_unionid(MP_APP, "oMp10", "uH10", 300)
    assert aws.items() == before and owner


def test_topics_chosen_in_the_mp_reach_the_oa_once_the_follower_is_merged(aws, mp_api, context, fake_wechat, worker):
    """Given MP topics chosen before the OA openid was known (nothing to tag then), when the follower merges
    in, then the merge's journey event carries a tag_topics job for the OA openid, which the stream queues."""
    token = login(mp_api, context, fake_wechat, openid="oMp11", unionid="uH11")["token"]
    status, doc = call(mp_api, context, "PUT", "preferences", {"topics": ["tea"]}, token=token)
    assert status == 200 and doc["synced"] is False
    aws.jobs()  # drain what the login queued
    new_identity(OA_APP, "oOa11")
    _user_info(worker, context, fake_wechat, OA_APP, "oOa11", "uH11")
    jobs = [j for j in aws.jobs() if j["kind"] == "tag_topics"]
    assert [(j["app_id"], j["openid"], j["topics"]) for j in jobs] == [(OA_APP, "oOa11", ["tea"])]
