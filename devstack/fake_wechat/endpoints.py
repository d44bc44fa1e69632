"""The fakes of WeChat's API endpoints, one function per path (``ROUTES``), called with the fake's lock held;
``app_id`` is the app of the call's ``access_token`` (None for the open endpoints)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.fake_wechat.replies import _OK, _err, _png, _Reply

if TYPE_CHECKING:
    from devstack.fake_wechat.server import FakeWeChat

TOKEN_TTL = 7200
STABLE_RENEW_BEFORE = 300  # stable_token hands out a new token from 5 minutes before expiry
OLD_TOKEN_GRACE = 300  # a /cgi-bin/token fetch leaves the previous token valid this long


def _token(fake: FakeWeChat, _app: str | None, q: dict, _doc: dict) -> _Reply:
    if q.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    app_id = q.get("appid", "")
    problem = fake._check_credentials(app_id, q.get("secret", ""))
    if problem:
        return problem
    old = fake._stable.get(app_id)
    if old and old in fake._tokens:  # the previous token stays valid for a while, as on the real API
        fake._tokens[old] = (app_id, min(fake._tokens[old][1], fake.clock() + OLD_TOKEN_GRACE))
    token = fake._new_token(app_id)
    fake._stable[app_id] = token
    return _Reply({"access_token": token, "expires_in": TOKEN_TTL})


def _stable_token(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if doc.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    app_id = str(doc.get("appid", ""))
    problem = fake._check_credentials(app_id, str(doc.get("secret", "")))
    if problem:
        return problem
    current = fake._stable.get(app_id)
    left = fake._tokens[current][1] - fake.clock() if current in fake._tokens else 0
    if doc.get("force_refresh") or left <= STABLE_RENEW_BEFORE:
        current = fake._issue_stable(app_id, invalidate_previous=bool(doc.get("force_refresh")))
        left = TOKEN_TTL
    return _Reply({"access_token": current, "expires_in": int(left)})


def _jscode2session(fake: FakeWeChat, _app: str | None, q: dict, _doc: dict) -> _Reply:
    app_id, code = q.get("appid", ""), q.get("js_code", "")
    problem = fake._check_credentials(app_id, q.get("secret", ""))
    if problem:
        return problem
    if not code or code.startswith("invalid"):
        return _err(40029, "invalid code")
    if (app_id, code) in fake._used_codes:
        return _err(40163, "code been used")
    fake._used_codes.add((app_id, code))
    openid = fake.openid_for_code(app_id, code)
    out = {"openid": openid, "session_key": fake.session_key(app_id, openid)}
    unionid = (fake._codes.get((app_id, code)) or {}).get("unionid") or \
        (fake._users.get((app_id, openid)) or {}).get("unionid")
    if unionid:
        out["unionid"] = unionid
    return _Reply(out)


def _phone(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    code = str(doc.get("code", ""))
    if not code or code.startswith("invalid"):
        return _err(40029, "invalid code")
    known = fake._phone_codes.get((app_id, code))
    if known:
        phone, country = known["phone"], known["country_code"]
    else:
        phone, country = "138" + str(int(hashlib.sha1(code.encode()).hexdigest(), 16))[:8], "86"  # noqa: S324
    return _Reply({**_OK, "phone_info": {
        "phoneNumber": phone if country == "86" else f"+{country}{phone}", "purePhoneNumber": phone,
        "countryCode": country, "watermark": {"timestamp": int(fake.clock()), "appid": app_id}}})


def _user_info(fake: FakeWeChat, app_id: str | None, q: dict, _doc: dict) -> _Reply:
    openid = q.get("openid", "")
    if not openid:
        return _err(40003, "invalid openid")
    user = fake._users.get((app_id, openid))
    if user is None:  # permissive: any openid is a follower without unionid
        user = {"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": int(fake.clock()),
                "remark": "", "groupid": 0, "tagid_list": [], "subscribe_scene": "ADD_SCENE_OTHERS",
                "qr_scene": 0, "qr_scene_str": ""}
    user = {k: v for k, v in user.items() if k != "phone"}
    user["tagid_list"] = sorted(fake._user_tags.get((app_id, openid), set()))
    if not user.get("subscribe"):
        return _Reply({"subscribe": 0, "openid": openid, **({"unionid": user["unionid"]} if "unionid" in user else {})})
    return _Reply(user)


def _needs(*fields: str) -> Callable:
    def endpoint(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
        for name in fields:
            if not doc.get(name):
                return _err(44002 if not doc else 47001, f"data format error: {name} missing")
        return _Reply(_OK)

    return endpoint


def _qrcode(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if not doc.get("action_name"):
        return _err(47001, "data format error")
    ticket = "gQ" + secrets.token_urlsafe(30)
    out: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[:22]}"}
    if doc["action_name"].startswith("QR_LIMIT"):
        return _Reply(out)
    out["expire_seconds"] = min(int(doc.get("expire_seconds") or 60), 2592000)
    return _Reply(out)


def _wxacode(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    scene = str(doc.get("scene", ""))
    if not scene or len(scene) > 32:
        return _err(40169, "invalid length for scene")
    return _Reply(_png(8, 8), content_type="image/png")


def _urllink(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if len(str(doc.get("query", ""))) > 1024 or "?" in str(doc.get("path", "")):
        return _err(40212, "invalid query")
    if doc.get("expire_type") == 1 and not 1 <= int(doc.get("expire_interval") or 0) <= 30:
        return _err(40212, "invalid expire_interval")
    return _Reply({**_OK, "url_link": "https://wxaurl.cn/" + secrets.token_urlsafe(9)})


def _scheme(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    jump = doc.get("jump_wxa") or {}
    if len(str(jump.get("query", ""))) > 1024 or "?" in str(jump.get("path", "")):
        return _err(40212, "invalid query")
    if doc.get("expire_type") == 1 and not 1 <= int(doc.get("expire_interval") or 0) <= 30:
        return _err(40212, "invalid expire_interval")
    return _Reply({**_OK, "openlink": "weixin://dl/business/?t=" + secrets.token_urlsafe(9)})


def _tags_create(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    name = str((doc.get("tag") or {}).get("name", ""))
    if not name or len(name) > 30:
        return _err(45158, "tag name too long")
    tags = fake._tags.setdefault(app_id or "", {})
    if name in tags.values():
        return _err(45157, "invalid tag name")
    tag_id = 100 + len(tags)
    tags[tag_id] = name
    return _Reply({"tag": {"id": tag_id, "name": name}})


def _tags_get(fake: FakeWeChat, app_id: str | None, _q: dict, _doc: dict) -> _Reply:
    tags = fake._tags.get(app_id or "", {})
    return _Reply({"tags": [{"id": tag_id, "name": name, "count": 0} for tag_id, name in sorted(tags.items())]})


def _tags_of(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    return _Reply({"tagid_list": sorted(fake._user_tags.get((app_id, str(doc.get("openid", ""))), set()))})


def _tagging(add: bool) -> Callable:
    def endpoint(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
        openids, tag_id = doc.get("openid_list") or [], doc.get("tagid")
        if not openids or tag_id is None:
            return _err(40032, "invalid openid list")
        if len(openids) > 50:
            return _err(40032, "too many openids")
        for openid in openids:
            tags = fake._user_tags.setdefault((app_id, openid), set())
            (tags.add if add else tags.discard)(int(tag_id))
        return _Reply(_OK)

    return endpoint


def _tags_delete(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    tag_id = int((doc.get("tag") or {}).get("id") or 0)
    if tag_id not in fake._tags.get(app_id or "", {}):
        return _err(45058, "tag not found")  # also WeChat's answer for the reserved tags 0, 1, 2
    del fake._tags[app_id or ""][tag_id]
    for tags in fake._user_tags.values():
        tags.discard(tag_id)
    return _Reply(_OK)


def _mass_sendall(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    target = doc.get("filter") or {}
    if not target.get("is_to_all") and int(target.get("tag_id") or -1) not in fake._tags.get(app_id or "", {}):
        return _err(40050, "invalid tag id")
    msgtype = doc.get("msgtype")
    if msgtype not in ("text", "mpnews", "image", "voice", "mpvideo", "wxcard") or msgtype not in doc:
        return _err(40008, "invalid message type")
    return _Reply({**_OK, "msg_id": 1000 + len(fake._calls), "msg_data_id": 2000 + len(fake._calls)})


ROUTES: dict[str, Callable[[FakeWeChat, str | None, dict, dict], _Reply]] = {
    "/cgi-bin/token": _token,
    "/cgi-bin/stable_token": _stable_token,
    "/sns/jscode2session": _jscode2session,
    "/wxa/business/getuserphonenumber": _phone,
    "/cgi-bin/user/info": _user_info,
    "/cgi-bin/message/custom/send": _needs("touser", "msgtype"),
    "/cgi-bin/message/subscribe/send": _needs("touser", "template_id"),
    "/cgi-bin/menu/create": _needs("button"),
    "/cgi-bin/qrcode/create": _qrcode,
    "/wxa/getwxacodeunlimit": _wxacode,
    "/wxa/generate_urllink": _urllink,
    "/wxa/generatescheme": _scheme,
    "/cgi-bin/tags/members/batchtagging": _tagging(True),
    "/cgi-bin/tags/members/batchuntagging": _tagging(False),
    "/cgi-bin/tags/create": _tags_create,
    "/cgi-bin/tags/get": _tags_get,
    "/cgi-bin/tags/getidlist": _tags_of,
    "/cgi-bin/tags/delete": _tags_delete,
    "/cgi-bin/message/mass/sendall": _mass_sendall,
}
