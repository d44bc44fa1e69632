"""``/mp/{app_id}/privacy/...``: the person's rights over HTTP (consent, export, rectify, erase).

Every call is counted against the person's rate limit first (one request that also resolves a merged
person to the survivor). Answers never carry identifiers (the export document is fetched from its URL).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wxloop.services.mp_api import me
from wxloop.services.mp_api.errors import ApiError
from wxloop.services.mp_api.models import Person, Topics

Version = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
AppId = Annotated[str, Path(pattern=r"^wx[0-9a-f]{16}$", description="The Mini Program's app id.")]
ExportId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The export's id.")]
State = Literal["granted", "withdrawn", "unknown"]


class PurposeState(BaseModel):
    state: State
    policy_version: str | None = None
    at: int | None = None
    source: str | None = None


class ConsentOut(BaseModel):
    analytics: PurposeState
    marketing: PurposeState
    personalisation: PurposeState
    phone: PurposeState


class Choices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    analytics: bool | None = None
    marketing: bool | None = None
    personalisation: bool | None = None
    phone: bool | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy_version: Version = Field(description="The privacy policy version the person saw.")
    purposes: Choices = Field(description="true grants, false withdraws; a purpose left out is unchanged.")


class ExportOut(BaseModel):
    id: str
    state: Literal["pending", "ready"]
    url: str | None = Field(None, description="Where to fetch the JSON document (24 h).")
    expires_at: int | None = None


class ErasureOut(BaseModel):
    request_id: str | None
    state: Literal["done", "sweep_due", "queued", "gone"]


class RectifyIn(BaseModel):
    """What a person may correct (PIPL Art. 46): everything else on the person is derived or WeChat's.
    Unknown fields are refused (422), so nobody can set points, ids or follow state this way."""

    model_config = ConfigDict(extra="forbid")
    remove_phone: bool = Field(False, description="Forget the phone number (bind a new one with POST phone).")
    topics: Topics | None = Field(None, description="Replace the chosen topics.")


def _rectify(app_id: str, who, body: RectifyIn) -> Person:
    """Correct what is held about the person ``who`` (session claims; counted against its rate limit): the
    topics first (without personalisation consent: 403 and nothing else changes), then forget the phone
    number when asked. Returns the person as ``GET me`` shows it."""
    now, remove_phone = int(time.time()), body.remove_phone
    use = me.counted(who.uid, now)  # the one count of this call; the steps below do not count again
    if body.topics is not None:
        from wxloop.services.mp_api import profile

        profile.save_preferences(who, body.topics, person=use.item)
    if remove_phone:
        from wxloop.adapters.dynamo import privacy as data

        use = me.counted(use.uid, now, count=False, sets={"phone_removed_at": now})
        data.forget(use.uid, ("phone", "phone_masked", "phone_at"))
    use = me.counted(use.uid, now, count=False)
    return me.summary(use.item, app_id, use.uid, me.prompt_for(use.item, app_id, None, now))


# long: one closure per route, each a few lines of declaration
def register(app: APIGatewayHttpResolver, claims, errors, auth: list) -> None:
    """Add the privacy routes to ``app``; ``claims(app_id)`` authenticates the caller."""

    @app.get("/mp/<app_id>/privacy/consent", summary="Consent per purpose", security=auth, responses=errors())
    def get_consent(app_id: AppId) -> ConsentOut:
        from wxloop.services.privacy import consent

        return consent.current(me.counted(claims(app_id).uid, int(time.time())).uid)

    @app.put("/mp/<app_id>/privacy/consent", summary="Grant or withdraw consent", security=auth, responses=errors())
    def put_consent(app_id: AppId, body: ConsentIn) -> ConsentOut:
        from wxloop.services.privacy import consent

        use = me.counted(claims(app_id).uid, int(time.time()))
        choices = {k: v for k, v in body.purposes.model_dump().items() if v is not None}
        return consent.change(use.uid, choices, policy_version=body.policy_version, source="mp_api")

    @app.post("/mp/<app_id>/privacy/export", summary="Export everything held about me", security=auth,
              responses=errors())
    def post_export(app_id: AppId) -> ExportOut:
        from wxloop.services.privacy import export

        return export.request_export(me.counted(claims(app_id).uid, int(time.time())).uid, source="mp_api")

    @app.get("/mp/<app_id>/privacy/export/<export_id>", summary="An export's state and URL", security=auth,
             responses=errors())
    def get_export(app_id: AppId, export_id: ExportId) -> ExportOut:
        from wxloop.services.privacy import export

        found = export.status_of(me.counted(claims(app_id).uid, int(time.time())).uid, export_id)
        if found is None:
            raise ApiError(404, "no such export")
        return found

    @app.patch("/mp/<app_id>/privacy/me", summary="Correct what we hold", security=auth, responses=errors())
    def rectify(app_id: AppId, body: RectifyIn) -> Person:
        return _rectify(app_id, claims(app_id), body)

    @app.delete("/mp/<app_id>/privacy/me", summary="Erase everything held about me", security=auth,
                responses=errors())
    def erase(app_id: AppId) -> ErasureOut:
        from wxloop.services.privacy import erasure

        use = me.counted(claims(app_id).uid, int(time.time()))
        return erasure.erase(use.uid, source="mp_api")

