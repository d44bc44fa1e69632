"""Whether to ask a Mini Program user to follow the linked Official Account, and how (pure).

WeChat renders the ``<official-account>`` component only when the MP was cold-started from a few scenes;
a hot start (back from the background) keeps what the cold start allowed. Elsewhere the fallback is a
customer-service message carrying the OA's follow card, which WeChat delivers only inside an open MP
customer-service window (the worker checks the window before sending, so "else nothing" holds there).
Never to a follower; not again within the cool-down after the person dismissed it. The operating rules
forbid forcing or rewarding a follow: this only decides when a plain invitation may appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

COMPONENT_SCENES = frozenset({1011, 1017, 1025, 1047, 1124})  # wechat-rules.md: where WeChat renders it
DEFAULT_COOLDOWN_DAYS = 7

Mode = Literal["component", "cs_message", "none"]


@dataclass(frozen=True, slots=True)
class PromptDecision:
    """``mode``: ``component`` (render ``<official-account>``), ``cs_message`` (queue the follow card as a
    customer-service message; sent only inside an open window) or ``none``. ``reason`` names the rule."""

    mode: Mode
    reason: str


def effective_scene(cold_scene: int | None, launch_scene: int | None, *, hot: bool) -> int | None:
    """The scene that decides the component: a hot start keeps the cold start's scene."""
    return cold_scene if hot else launch_scene


def decide(*, linked_oa: bool, following: bool | None, scene: int | None, dismissed_at: int | None,
           now: int, cooldown_days: int = DEFAULT_COOLDOWN_DAYS) -> PromptDecision:
    """The follow prompt for one person now.

    ``following``: the person's follow state of the linked OA (None: not known, e.g. no OA identity yet: a
    prompt may show). ``scene``: the effective launch scene (see ``effective_scene``). ``dismissed_at``: when
    the person last dismissed the prompt (epoch s), if ever.
    """
    if not linked_oa:
        return PromptDecision("none", "no_linked_oa")
    if following is True:
        return PromptDecision("none", "follower")
    if dismissed_at and now - int(dismissed_at) < cooldown_days * 86400:
        return PromptDecision("none", "dismissed")
    if scene in COMPONENT_SCENES:
        return PromptDecision("component", "scene")
    return PromptDecision("cs_message", "scene_without_component")
