"""The ``tag_topics`` job: mirror the topics a person chose in the MP onto the linked OA as user tags.

Job fields: ``app_id`` (the OA), ``openid`` (the person's OA openid), ``uid``, ``version`` (the preferences'
``v``), ``topics`` (tag every one) and ``remove`` (untag). A job older than the person's current preferences
is skipped: the newer job carries the whole state. Tag ids are created on demand (``tags/create``; a name
WeChat already has is looked up with ``tags/get``) and cached in the table (``TAGS#{oa}``/``TAG#{name}``).
Tagging one openid is ``tags/members/batchtagging`` / ``batchuntagging`` with a list of one.
"""

from __future__ import annotations

from collections.abc import Mapping

from wxloop.adapters import mp_store, repository
from wxloop.protocol.errcodes import TAG_NAME_EXISTS


def _tag_id(client, oa_app_id: str, name: str, *, create: bool) -> int | None:
    found = mp_store.get_tag_id(oa_app_id, name)
    if found is not None:
        return found
    if not create:
        return None
    from wxloop.adapters.wechat import WeChatAPIError

    try:
        tag_id = int(client.tag.create(name)["id"])
    except WeChatAPIError as exc:
        if exc.errcode != TAG_NAME_EXISTS:
            raise
        tags = client.tag.get() or []  # wechatpy returns the "tags" list
        matches = [int(t["id"]) for t in tags if isinstance(t, Mapping) and t.get("name") == name]
        if not matches:
            raise
        tag_id = matches[0]
    mp_store.put_tag_id(oa_app_id, name, tag_id)
    return tag_id


def run_tag_topics(job: Mapping, client) -> str:
    """Run one ``tag_topics`` job with the OA's WeChat ``client``; returns the job's detail."""
    person = repository.get_person(str(job["uid"])) or {}
    prefs = raw if isinstance(raw := person.get("prefs"), Mapping) else {}
    if int(prefs.get("v") or 0) > int(job.get("version") or 0):
        return "stale"
    oa, openid = job["app_id"], job["openid"]
    for name in job.get("topics") or ():
        client.tag.tag_user(_tag_id(client, oa, str(name), create=True), openid)
    for name in job.get("remove") or ():
        tag_id = _tag_id(client, oa, str(name), create=False)
        if tag_id is not None:  # a topic never tagged has no tag to take off
            client.tag.untag_user(tag_id, openid)
    return "tagged"
