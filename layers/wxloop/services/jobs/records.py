"""The typed job record every kind extends, and the field types kinds share.

A job arrives as JSON ``{"id", "kind", "app_id", ...}``; its kind's record validates it once, at the edge,
so a job of the wrong shape is poison (to the DLQ at once), never a retry that fails the same way.
Unknown fields are ignored (producers may add some); the job as queued is kept for re-queuing.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=512)]
# WeChat's openid alphabet: anything else did not come from WeChat
OpenId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TAG_ID_DIGITS = 10  # WeChat's tag ids are 32-bit


def _ascii_tag_id(value: Any) -> int:
    # str.isdigit() accepts "²" or "٣", which int() then refuses: only ASCII digits are an id
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**TAG_ID_DIGITS:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= TAG_ID_DIGITS:
        return int(value)
    raise ValueError("a tag id is a number of ASCII digits")


TagId = Annotated[int, BeforeValidator(_ascii_tag_id)]


class Job(BaseModel):
    """Fields every job has. ``id`` is stable for the same piece of work (the claim ``JOB#{id}``);
    ``deferrals`` counts re-queues after a per-person cap."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: NonEmpty
    kind: NonEmpty
    app_id: NonEmpty
    deferrals: int = Field(default=0, ge=0)


class PersonJob(Job):
    """A job about one person of the account ``app_id``."""

    openid: OpenId
