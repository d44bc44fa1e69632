"""What wxloop answers, independent of the wire format.

A ``Reply`` is produced by the rule engine and rendered by ``wxloop.protocol`` as a passive XML reply, or
queued as a customer-service message when a passive reply cannot carry it (a Mini Program card).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# WeChat cuts passive text around 2048 bytes (unconfirmed); we cut on a character boundary below it.
TEXT_LIMIT_BYTES = 2047


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    image: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply. ``kind`` is one of text, image, voice, video, music, news, mp_card, transfer_customer_service.

    text: ``content``; image/voice: ``media_id``; video: ``media_id``, ``title``, ``description``;
    music: ``title``, ``description``, ``music_url``, ``hq_music_url``, ``thumb_media_id``;
    news: ``articles`` (one); mp_card: ``title``, ``appid``, ``pagepath``, ``thumb_media_id``
    (sent as a customer-service ``miniprogrampage``, with ``content`` as the passive text if any).
    """

    kind: str
    content: str = ""
    media_id: str = ""
    title: str = ""
    description: str = ""
    music_url: str = ""
    hq_music_url: str = ""
    thumb_media_id: str = ""
    articles: tuple[Article, ...] = ()
    appid: str = ""
    pagepath: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_passive(self) -> bool:
        return self.kind in PASSIVE_KINDS


@dataclass(frozen=True, slots=True)
class ReplyKind:
    """How one reply kind is carried and filled.

    ``passive``: a passive XML reply can carry it (else it is sent as a customer-service message).
    ``templates``: the ``Reply`` fields an operator writes with ``{placeholders}``, each with how a value placed
    there is escaped: ``text`` (markup neutralised; inside a tag's attributes percent-encoded), ``plain``
    (as is) or ``url`` (percent-encoded). ``articles``: news articles, filled with ``ARTICLE_TEMPLATES``.
    """

    passive: bool
    templates: tuple[tuple[str, str], ...] = ()
    articles: bool = False


# The one table of reply kinds: the rule parser, the renderer and the placeholder scan all read it.
REPLY_KINDS: dict[str, ReplyKind] = {
    "text": ReplyKind(True, (("content", "text"),)),
    "image": ReplyKind(True),
    "voice": ReplyKind(True),
    "video": ReplyKind(True, (("title", "plain"), ("description", "plain"))),
    "music": ReplyKind(True, (("title", "plain"), ("description", "plain"), ("music_url", "url"),
                              ("hq_music_url", "url"))),
    "news": ReplyKind(True, articles=True),
    "mp_card": ReplyKind(False, (("content", "text"), ("title", "plain"), ("pagepath", "url"))),
    # hands the conversation to the account's customer-service staff (the one passive reply an MP has)
    "transfer_customer_service": ReplyKind(True),
}
ARTICLE_TEMPLATES = (("title", "plain"), ("description", "plain"), ("url", "url"))
PASSIVE_KINDS = frozenset(kind for kind, spec in REPLY_KINDS.items() if spec.passive)


def text(content: str) -> Reply:
    return Reply(kind="text", content=content)


def truncate_utf8(content: str, limit: int = TEXT_LIMIT_BYTES, ellipsis: str = "…") -> str:
    """Cut ``content`` to at most ``limit`` UTF-8 bytes on a character boundary, marking the cut."""
    raw = content.encode("utf-8")
    if len(raw) <= limit:
        return content
    room = limit - len(ellipsis.encode("utf-8"))
    return raw[:room].decode("utf-8", errors="ignore") + ellipsis


def mp_link(appid: str, path: str, label: str) -> str:
    """Text that opens a Mini Program page when tapped (the MP must be linked to the OA)."""
    from html import escape

    return (
        f'<a data-miniprogram-appid="{escape(appid)}" data-miniprogram-path="{escape(path)}">'
        f"{escape(label, quote=False)}</a>"
    )
