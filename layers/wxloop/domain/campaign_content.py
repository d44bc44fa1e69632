"""A campaign's content per channel, its accounts, and its A/B variants (pure parsing and choice).

``content`` holds one message per channel (``oa_cs``, ``mp_cs``, ``mp_subscribe``, ``oa_template``,
``oa_mass``). ``variants`` (optional) lists weighted alternatives, each replacing the content of some
channels::

    variants:
      a: {weight: 1}                                   # the content as given
      b: {weight: 1, content: {mp_cs: {text: "..."}}}  # another text on the MP

Each person gets one variant for good (``variant_for``: a hash of the experiment ``campaign:{id}`` and the
person, ``wxloop.domain.experiments.assign_variant``); the send records it in the journey, and the KPI report
compares the variants' conversion. A mass send is one message to everyone, so ``oa_mass`` cannot vary; a
subscribe message keeps its template (the planner chose each person by their credits for it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wxloop.domain import config_doc as doc
from wxloop.domain.experiments import assign_variant

APP_ID = re.compile(r"wx[0-9a-f]{16}")
CONTENT_KEYS = ("oa_cs", "mp_cs", "mp_subscribe", "oa_template", "oa_mass")
MAX_VARIANTS = 10


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    content: Mapping[str, Mapping[str, Any]]  # the channels it replaces


def experiment_of(campaign_id: str) -> str:
    return f"campaign:{campaign_id}"


def variant_for(campaign_id: str, variants: tuple[Variant, ...], uid: str) -> Variant | None:
    """The variant ``uid`` gets (always the same one), or None when the campaign has no variants."""
    if not variants:
        return None
    # by name: the assignment must not depend on the order a stored copy of the document kept
    name = assign_variant(uid, experiment_of(campaign_id), sorted((v.name, v.weight) for v in variants))
    return next(v for v in variants if v.name == name)


def variants_of(value: object, content: Mapping[str, Mapping[str, Any]], path: str) -> tuple[Variant, ...]:
    """The ``variants`` mapping: names, weights (> 0, default 1), content replacing channels of ``content``."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise doc.ConfigError(path, "must be a mapping of variant names")
    m = dict(value)
    if not 2 <= len(m) <= MAX_VARIANTS:
        raise doc.ConfigError(path, f"lists 2 to {MAX_VARIANTS} variants")
    out = []
    for name, spec in m.items():
        where = f"{path}.{name}"
        doc.text(name, where, pattern=doc.NAME)  # names go into the journey and the KPI report
        v = doc.mapping(spec if spec is not None else {}, where, ("weight", "content"))
        weight = doc.number(v.get("weight", 1), f"{where}.weight", low=0.001, high=1000)
        replaced = content_of(v["content"], f"{where}.content") if "content" in v else {}
        for channel in replaced:
            if channel == "oa_mass":
                raise doc.ConfigError(f"{where}.content.oa_mass", "a mass send is one message to everyone: it cannot vary")
            if channel not in content:
                raise doc.ConfigError(f"{where}.content.{channel}", "the campaign has no content for this channel")
            if channel == "mp_subscribe" and replaced[channel]["template_id"] != content[channel]["template_id"]:
                raise doc.ConfigError(f"{where}.content.mp_subscribe.template_id", "a variant keeps the campaign's "
                                      "template: the planner picks people by their credits for it")
        out.append(Variant(str(name), float(weight), replaced))
    return tuple(out)


def _message(value: object, path: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    """A CS or mass message: exactly one of ``kinds`` (text, news, miniprogrampage, media_id)."""
    m = doc.mapping(value, path, kinds)
    if len(m) != 1:
        raise doc.ConfigError(path, f"must have exactly one of: {', '.join(kinds)}")
    kind, body = next(iter(m.items()))
    if kind in ("text", "media_id"):
        return {kind: doc.text(body, f"{path}.{kind}", max_len=600)}
    fields = {"news": ("title", "description", "url", "picurl"),
              "miniprogrampage": ("title", "pagepath", "thumb_media_id")}[kind]
    b = doc.mapping(body, f"{path}.{kind}", fields, fields[:2] if kind == "news" else fields)
    return {kind: {k: doc.text(v, f"{path}.{kind}.{k}", max_len=1024) for k, v in b.items()}}


def _template(value: object, path: str, *, subscribe: bool) -> dict[str, Any]:
    keys = ("template_id", "page", "data") if subscribe else ("template_id", "url", "miniprogram", "data")
    m = doc.mapping(value, path, keys, ("template_id", "data"))
    out: dict[str, Any] = {"template_id": doc.text(m["template_id"], f"{path}.template_id", max_len=64),
                           "data": doc.template_data(m["data"], f"{path}.data", subscribe=subscribe)}
    for k in ("page", "url"):
        if k in m:
            out[k] = doc.text(m[k], f"{path}.{k}", max_len=1024)
    if "miniprogram" in m:
        mp = doc.mapping(m["miniprogram"], f"{path}.miniprogram", ("appid", "pagepath"), ("appid", "pagepath"))
        out["miniprogram"] = {"appid": doc.text(mp["appid"], f"{path}.miniprogram.appid", pattern=APP_ID),
                              "pagepath": doc.text(mp["pagepath"], f"{path}.miniprogram.pagepath", max_len=1024)}
    return out


def content_of(value: object, path: str) -> dict[str, Mapping[str, Any]]:
    m = doc.mapping(value, path, CONTENT_KEYS)
    if not m:
        raise doc.ConfigError(path, f"needs at least one of: {', '.join(CONTENT_KEYS)}")
    parse = {
        "oa_cs": lambda v, p: _message(v, p, ("text", "news", "miniprogrampage")),
        "mp_cs": lambda v, p: _message(v, p, ("text", "miniprogrampage")),
        "oa_mass": lambda v, p: _message(v, p, ("text", "media_id")),
        "mp_subscribe": lambda v, p: _template(v, p, subscribe=True),
        "oa_template": lambda v, p: _template(v, p, subscribe=False),
    }
    return {k: parse[k](v, f"{path}.{k}") for k, v in m.items()}


def accounts_of(value: object, path: str) -> dict[str, str]:
    m = doc.mapping(value, path, ("oa", "mp", "oa_type"))
    out: dict[str, str] = {k: doc.text(m[k], f"{path}.{k}", pattern=APP_ID) for k in ("oa", "mp") if k in m}
    out["oa_type"] = doc.choice(m.get("oa_type", "subscription"), f"{path}.oa_type", ("service", "subscription"))
    return out


def check_channels(content: Mapping[str, Any], accounts: Mapping[str, str], purpose: str, path: str) -> None:
    for ch in content:
        platform = "oa" if ch.startswith("oa_") else "mp"
        if platform not in accounts:
            raise doc.ConfigError(f"{path}.content.{ch}", f"needs accounts.{platform}")
    if "oa_template" in content:
        if purpose != "service":
            raise doc.ConfigError(f"{path}.content.oa_template", "template messages are for service notices only "
                                                                 "(purpose: service), never marketing")
        if accounts.get("oa_type") != "service":
            raise doc.ConfigError(f"{path}.content.oa_template", "template messages need a service account "
                                                                 "(accounts.oa_type: service)")
