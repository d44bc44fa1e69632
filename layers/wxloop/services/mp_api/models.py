"""Request and response bodies of the MP client API; the committed ``openapi.json`` is generated from them.

Inputs are bounded everywhere (lengths, counts, flat props), and unknown fields are refused (422).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
)

Short = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Topic = Annotated[str, StringConstraints(min_length=1, max_length=30, pattern=r"^[^\x00-\x1f\x7f,]+$")]
PropValue = Annotated[str, StringConstraints(max_length=256)] | int | float | bool | None
MAX_EVENTS = 50
MAX_PROPS = 20
MAX_PROPS_BYTES = 1024


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        description="The code from wx.login().")
    scene: int | None = Field(None, ge=1000, le=9999, description="Launch scene (wx.getLaunchOptionsSync).")
    query: dict[Short, Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        None, max_length=20, description="Launch query; `ch` or `channel` names the acquisition channel.")
    referrer_app: Annotated[str, StringConstraints(pattern=r"^wx[0-9a-f]{16}$")] | None = Field(
        None, description="referrerInfo.appId: the MP that opened this one (scenes 1037, 1038).")
    hot: bool = Field(False, description="A hot start (onShow): the cold start's scene keeps deciding.")


class FollowState(BaseModel):
    oa_app_id: str | None = None
    following: bool | None = Field(None, description="None: not known (no identity of the OA yet).")


class Prompt(BaseModel):
    mode: Literal["component", "cs_message", "none"]
    reason: str


class Person(BaseModel):
    points: int = 0
    invite_code: str
    phone: str | None = Field(None, description="Masked, e.g. 138****1234.")
    topics: list[str] = []
    follow: FollowState
    prompt: Prompt


class SessionOut(BaseModel):
    token: str
    expires_at: int
    person: Person


class PromptIn(_In):
    action: Literal["shown", "dismissed"]


class PhoneIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class PhoneOut(BaseModel):
    phone: str = Field(description="Masked.")


class ShareInfoIn(_In):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    encrypted_data: Annotated[str, StringConstraints(min_length=24, max_length=4096,
                                                     pattern=r"^[A-Za-z0-9+/=]+$")] = Field(alias="encryptedData")
    iv: Annotated[str, StringConstraints(min_length=24, max_length=24, pattern=r"^[A-Za-z0-9+/=]+$")]


class ShareInfoOut(BaseModel):
    open_gid: str


class EventIn(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    page: Annotated[str, StringConstraints(max_length=256)] = ""
    ts: int = Field(ge=0, description="Client time, epoch milliseconds.")
    session_id: Annotated[str, StringConstraints(max_length=64)] = ""
    props: dict[Short, PropValue] = Field(default_factory=dict, max_length=MAX_PROPS,
                                          description="Flat: nested objects and arrays are refused.")

    @field_validator("props")
    @classmethod
    def _props_size(cls, v: dict) -> dict:
        import json

        if len(json.dumps(v, ensure_ascii=False).encode("utf-8")) > MAX_PROPS_BYTES:
            raise ValueError(f"props larger than {MAX_PROPS_BYTES} bytes")
        return v


class EventsIn(RootModel[Annotated[list[EventIn], Field(max_length=MAX_EVENTS)]]):
    """A batch of at most 50 events."""


class EventsOut(BaseModel):
    accepted: int


# a person's topics: at most 20, each once, in the order chosen
Topics = Annotated[list[Topic], Field(max_length=20), AfterValidator(lambda v: list(dict.fromkeys(v)))]


class PreferencesIn(_In):
    topics: Topics


class PreferencesOut(BaseModel):
    topics: list[str]
    synced: bool = Field(description="False when the person has no identity of the linked OA yet.")


# --- invites, referrals, points ----------------------------------------------------------------------------

Cursor = Annotated[str, StringConstraints(max_length=512, pattern=r"^[A-Za-z0-9_=-]+$")]


class InviteOut(BaseModel):
    path: str = Field(description="The MP page path to share (carries a signed, expiring reference).")
    ref: str = Field(description="The signed reference alone.")
    code: str = Field(description="The short code for MP codes, OA QR codes and typing.")
    campaign: str
    expires_at: int = Field(description="When the reference stops counting (epoch seconds).")


class ReferralOut(BaseModel):
    state: Literal["pending", "rewarded", "voided", "reversed", "moved"]
    campaign: str
    channel: str = ""
    created_at: int
    points: int = 0
    reason: str = ""


class ReferralTotals(BaseModel):
    pending: int = 0
    rewarded: int = 0
    voided: int = 0
    reversed: int = 0


class ReferralsOut(BaseModel):
    referrals: list[ReferralOut]
    totals: ReferralTotals = Field(description="Of this page.")
    next: str | None = Field(None, description="Cursor of the next page; absent on the last page.")


class LedgerOut(BaseModel):
    points: int
    reason: str
    campaign: str = ""
    at: int
    kind: str = ""


class PointsOut(BaseModel):
    balance: int
    entries: list[LedgerOut]
    next: str | None = None
