"""Events wechatpy 1.8.18 does not know, registered in its own registry so ``parse_message`` types them.

``subscribe_msg_popup_event``, ``subscribe_msg_change_event`` and ``subscribe_msg_sent_event`` carry a
``List`` that is an object for one item and an array for several; ``subscriptions`` always gives a list.
"""

from __future__ import annotations

from wechatpy.events import BaseEvent, register_event

import wxloop.protocol  # noqa: F401

_CONTAINERS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}
_FIELDS = {
    "TemplateId": "template_id",
    "SubscribeStatusString": "status",
    "PopupScene": "popup_scene",
    "MsgID": "msg_id",
    "ErrorCode": "error_code",
    "ErrorStatus": "error_status",
}


def subscriptions(data: dict) -> list[dict]:
    """The items of a subscribe-message event as a list of flat dicts (template_id, status, …)."""
    container = data.get(_CONTAINERS.get(str(data.get("Event", "")).lower(), ""), data)
    items = container.get("List") if isinstance(container, dict) else None
    if items is None:
        return []
    if isinstance(items, dict):
        items = [items]
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append({_FIELDS.get(k, k): str(v) for k, v in item.items() if v is not None})
    return out


class _SubscribeMsgEvent(BaseEvent):
    @property
    def subscriptions(self) -> list[dict]:
        return subscriptions(self._data)


@register_event("subscribe_msg_popup_event")
class SubscribeMsgPopupEvent(_SubscribeMsgEvent):
    event = "subscribe_msg_popup_event"


@register_event("subscribe_msg_change_event")
class SubscribeMsgChangeEvent(_SubscribeMsgEvent):
    event = "subscribe_msg_change_event"


@register_event("subscribe_msg_sent_event")
class SubscribeMsgSentEvent(_SubscribeMsgEvent):
    event = "subscribe_msg_sent_event"
