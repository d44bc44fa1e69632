"""Consent per purpose (PIPL Art. 14, 15, 24): what a person agreed to, and what each use of data may do.

A person's consent to one purpose is a ``Consent``: granted or withdrawn, the privacy-policy version it was
given under, when (epoch seconds) and through what (``mp_api``, ``oa_keyword``, ``operator``). Nothing
recorded means ``unknown``: processing that needs consent treats it as not given; marketing treats it as
"not opted out" unless a campaign asks for explicit consent (``wxloop.domain.campaigns``).

The person item keeps the current state of each purpose in ``consent_{purpose}`` (one read serves every
check); a newer record replaces an older one, never the reverse. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

PURPOSES = ("analytics", "marketing", "personalisation", "phone")
SOURCES = ("mp_api", "oa_keyword", "operator", "merge")
State = Literal["granted", "withdrawn", "unknown"]
# Client events the service cannot run without (rewards are paid on them): kept without analytics consent.
STRICTLY_NECESSARY_EVENTS = frozenset({"registered", "order_paid", "phone_bound"})


@dataclass(frozen=True, slots=True)
class Consent:
    purpose: str
    granted: bool
    policy_version: str
    at: int
    source: str

    def to_item(self) -> dict[str, Any]:
        """The stored form (``g``, ``v``, ``at``, ``src``)."""
        return {"g": self.granted, "v": self.policy_version, "at": int(self.at), "src": self.source}


def attribute(purpose: str) -> str:
    """The person item's attribute holding the current state of ``purpose``."""
    return f"consent_{purpose}"


def check_purpose(purpose: str) -> str:
    """``purpose`` when it is one of ``PURPOSES``; raises ValueError otherwise."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")
    return purpose


def from_item(purpose: str, raw: Any) -> Consent | None:
    """The ``Consent`` stored on a person item, or None when absent or malformed."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("g"), bool) or not isinstance(raw.get("at"), int):
        return None
    return Consent(purpose, raw["g"], str(raw.get("v") or ""), int(raw["at"]), str(raw.get("src") or ""))


def state(person: Mapping[str, Any] | None, purpose: str) -> State:
    """``granted``, ``withdrawn`` or ``unknown`` (never recorded) for ``purpose`` on a person item."""
    found = from_item(purpose, (person or {}).get(attribute(purpose)))
    if found is None:
        return "unknown"
    return "granted" if found.granted else "withdrawn"


def allows(person: Mapping[str, Any] | None, purpose: str) -> bool:
    """Whether processing for ``purpose`` may go on: only with consent granted (``unknown`` is no)."""
    return state(person, purpose) == "granted"


def ledger(person: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every purpose's state as the API shows it: ``{purpose: {state, policy_version, at, source}}``."""
    out = {}
    for purpose in PURPOSES:
        found = from_item(purpose, (person or {}).get(attribute(purpose)))
        out[purpose] = {"state": state(person, purpose), "policy_version": found.policy_version if found else None,
                        "at": found.at if found else None, "source": found.source if found else None}
    return out


def newer(current: Mapping[str, Any] | None, incoming: Consent) -> bool:
    """Whether ``incoming`` replaces the stored state ``current`` (same time: a withdrawal wins)."""
    old = from_item(incoming.purpose, current)
    if old is None:
        return True
    return incoming.at > old.at or (incoming.at == old.at and not incoming.granted)


def combine(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, purpose: str) -> dict[str, Any] | None:
    """The stored state of ``purpose`` for two persons merged into one: a withdrawal on either side wins
    (the person said no somewhere), else the newer grant; None when neither recorded anything."""
    left, right = from_item(purpose, a), from_item(purpose, b)
    known = [c for c in (left, right) if c is not None]
    if not known:
        return None
    withdrawn = [c for c in known if not c.granted]
    pick = max(withdrawn or known, key=lambda c: c.at)
    return pick.to_item()


def merged_consents(survivor: Mapping[str, Any], loser: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``consent_{purpose}`` attributes the survivor of a merge must carry (see ``combine``)."""
    out = {}
    for purpose in PURPOSES:
        value = combine(survivor.get(attribute(purpose)), loser.get(attribute(purpose)), purpose)
        if value is not None:
            out[attribute(purpose)] = value
    return out


def campaign_consent(person: Mapping[str, Any] | None) -> State:
    """The marketing state a campaign's ``Reachability.consent`` takes."""
    return state(person, "marketing")


def segment_prefs(person: Mapping[str, Any] | None) -> dict[str, Any]:
    """The preferences a segment may select on: the person's topics only with personalisation consent."""
    prefs = (person or {}).get("prefs")
    if not allows(person, "personalisation") or not isinstance(prefs, Mapping):
        return {}
    return {"topics": tuple(prefs.get("topics") or ())}


def keep_events(person: Mapping[str, Any] | None, names: Sequence[str]) -> list[bool]:
    """For each client event name, whether it may be stored: all with analytics consent, else only the
    strictly necessary ones."""
    if allows(person, "analytics"):
        return [True] * len(names)
    return [name in STRICTLY_NECESSARY_EVENTS for name in names]
