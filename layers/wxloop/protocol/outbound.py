"""Rendering a ``Reply``: a passive XML reply through wechatpy's reply classes, or, for what a passive
reply cannot carry (a Mini Program card), the customer-service message JSON the worker sends."""

from __future__ import annotations

# wxloop.protocol (imported first, as this module's package) installs the light wechatpy package.
# "import wechatpy.replies", not "from wechatpy import replies": that form probes the package's attributes,
# which loads all of wechatpy (its HTTP client stack: ~100 ms of cold start).
import wechatpy.replies as wx

from wxloop.domain.replies import Reply, truncate_utf8

SUCCESS = "success"


def _cdata_safe(value: str) -> str:
    # wechatpy wraps strings in CDATA verbatim; "]]>" inside would end it early.
    return value.replace("]]>", "]]]]><![CDATA[>")


def passive_xml(reply: Reply | None, *, openid: str, account: str, now: int) -> str | None:
    """The XML body answering ``openid`` on ``account`` (gh_ id), or None when the reply is not passive."""
    if reply is None or not reply.is_passive:
        if reply is not None and reply.kind == "mp_card" and reply.content:
            return passive_xml(Reply(kind="text", content=reply.content), openid=openid, account=account, now=now)
        return None
    common = {"source": account, "target": openid, "time": now}
    kind = reply.kind
    if kind == "text":
        content = truncate_utf8(reply.content)
        if not content.strip():
            return None  # an empty text reply shows the user an error; say nothing instead
        out = wx.TextReply(content=_cdata_safe(content), **common)
    elif kind == "image":
        out = wx.ImageReply(media_id=reply.media_id, **common)
    elif kind == "voice":
        out = wx.VoiceReply(media_id=reply.media_id, **common)
    elif kind == "video":
        out = wx.VideoReply(media_id=reply.media_id, title=_cdata_safe(reply.title),
                            description=_cdata_safe(reply.description), **common)
    elif kind == "music":
        out = wx.MusicReply(title=_cdata_safe(reply.title), description=_cdata_safe(reply.description),
                            music_url=reply.music_url, hq_music_url=reply.hq_music_url or reply.music_url,
                            thumb_media_id=reply.thumb_media_id, **common)
    elif kind == "news":
        articles = [
            {"title": _cdata_safe(a.title), "description": _cdata_safe(a.description), "url": a.url,
             "image": a.image}
            for a in reply.articles[:1]  # one article per reply (more is refused)
        ]
        if not articles:
            return None
        out = wx.ArticlesReply(articles=articles, **common)
    elif kind == "transfer_customer_service":
        out = wx.TransferCustomerServiceReply(**common)
    else:  # pragma: no cover - PASSIVE_KINDS is exhaustive
        return None
    return out.render()


def cs_message(reply: Reply) -> dict | None:
    """The customer-service message body (without ``touser``) for replies sent through the API."""
    if reply.kind == "mp_card":
        return {
            "msgtype": "miniprogrampage",
            "miniprogrampage": {"title": reply.title, "appid": reply.appid, "pagepath": reply.pagepath,
                                "thumb_media_id": reply.thumb_media_id},
        }
    if reply.kind == "text":
        return {"msgtype": "text", "text": {"content": truncate_utf8(reply.content)}}
    if reply.kind in ("image", "voice"):
        return {"msgtype": reply.kind, reply.kind: {"media_id": reply.media_id}}
    if reply.kind == "news" and reply.articles:
        a = reply.articles[0]
        return {"msgtype": "news", "news": {"articles": [
            {"title": a.title, "description": a.description, "url": a.url, "picurl": a.image}]}}
    return None
