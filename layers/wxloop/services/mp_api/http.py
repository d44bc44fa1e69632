"""The HTTP surface of the MP client API: a Powertools resolver with pydantic validation.

``handle(event, context)`` is the whole Lambda handler: it refuses oversized, non-UTF-8 and deeply nested
bodies before any parsing (413 / 400 / 422), then resolves the route. Every answer is JSON; errors have one
shape (``errors.ApiError``) and never carry a stack trace or the input. ``build_app()`` is also what
generates ``openapi.json`` (``python -m wxloop.services.mp_api.http``).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from wxloop.services.mp_api import context as ctx
from wxloop.services.mp_api import models as m
from wxloop.services.mp_api.errors import ApiError, error_body
from wxloop.settings import settings

logger = Logger(child=True)
MAX_BODY_BYTES = 128 * 1024
MAX_DEPTH = 8  # the deepest valid body (events → event → props) is 3
TITLE, VERSION = "wxloop Mini Program client API", "1.0.0"
AppId = Annotated[str, Path(pattern=r"^wx[0-9a-f]{16}$", description="The Mini Program's app id.")]
AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
Limit = Annotated[int, Query(ge=1, le=50, description="Page size.")]
Campaign = Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,23}$")]


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[dict] | None = None  # 422 only: which fields failed, never their values


class ErrorOut(BaseModel):
    """Every answer other than 2xx: ``{"error": {"code", "message"}}`` (the document says so, so that
    generated clients and schema checks accept the API's own errors)."""

    error: ErrorDetail


_ERRORS = ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden"), (404, "not_found"), (409, "conflict"),
           (413, "too_large"), (422, "invalid"), (429, "rate_limited"), (503, "unavailable"))


def responses() -> dict:
    """A route's documented answers: 200 (the route's return model, filled in by the resolver, which
    mutates what it gets: hence a fresh dict per route) and the error shape for every error status."""
    out: dict = {200: {"description": "ok"}}
    out.update({s: {"description": c, "content": {"application/json": {"model": ErrorOut}}} for s, c in _ERRORS})
    return out


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, ensure_ascii=False))


def _claims(app, app_id: str):
    return ctx.authenticate(app_id, app.current_event.headers.get("authorization"))


def build_app() -> APIGatewayHttpResolver:
    """The resolver with every route; Swagger UI at ``/mp/docs/swagger`` unless ``STAGE`` is ``prod``."""
    app = APIGatewayHttpResolver(enable_validation=True)
    _routes(app)
    _reward_routes(app)
    _errors(app)
    if settings().stage != "prod":
        from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

        app.enable_swagger(path="/mp/docs/swagger", title=TITLE, version=VERSION,
                           security_schemes={"bearer": HTTPBearer(bearerFormat="wxloop session token")})
    return app


def _routes(app: APIGatewayHttpResolver) -> None:  # one closure per route: ~50 lines of declarations
    from wxloop.services.mp_api import login, me, privacy, profile

    @app.post("/mp/<app_id>/session", summary="Log in with a wx.login code", responses=responses())
    def session(app_id: AppId, body: m.SessionIn) -> m.SessionOut:
        return login.login(app_id, body.model_dump(exclude_none=True))

    @app.get("/mp/<app_id>/me", summary="The signed-in person", security=AUTH, responses=responses())
    def get_me(app_id: AppId, scene: Annotated[int | None, Query(ge=1000, le=9999)] = None,
               hot: Annotated[bool, Query()] = True) -> m.Person:
        return me.get_me(_claims(app, app_id), scene=scene, hot=hot)

    @app.post("/mp/<app_id>/me/prompt", summary="The follow prompt was shown or dismissed", security=AUTH,
              responses=responses())
    def prompt(app_id: AppId, body: m.PromptIn) -> m.Person:
        return me.record_prompt(_claims(app, app_id), body.action)

    @app.post("/mp/<app_id>/phone", summary="Keep the phone number of a getPhoneNumber code", security=AUTH,
              responses=responses())
    def phone(app_id: AppId, body: m.PhoneIn) -> m.PhoneOut:
        return profile.save_phone(_claims(app, app_id), body.code)

    @app.post("/mp/<app_id>/share-info", summary="The group (openGId) of a shared card", security=AUTH,
              responses=responses())
    def share_info(app_id: AppId, body: m.ShareInfoIn) -> m.ShareInfoOut:
        return profile.share_info(_claims(app, app_id), body.encrypted_data, body.iv)

    @app.post("/mp/<app_id>/events", summary="Journey events from the client", security=AUTH, responses=responses())
    def events(app_id: AppId, body: m.EventsIn) -> m.EventsOut:
        return profile.record_events(_claims(app, app_id), [e.model_dump() for e in body.root])

    @app.put("/mp/<app_id>/preferences", summary="Topics the person chose (mirrored as OA tags)", security=AUTH,
             responses=responses())
    def preferences(app_id: AppId, body: m.PreferencesIn) -> m.PreferencesOut:
        return profile.save_preferences(_claims(app, app_id), body.topics)

    privacy.register(app, lambda app_id: _claims(app, app_id), responses, AUTH)


def _reward_routes(app: APIGatewayHttpResolver) -> None:
    from wxloop.services.mp_api import invites

    @app.get("/mp/<app_id>/invite", summary="My share path and invite code", security=AUTH, responses=responses())
    def invite(app_id: AppId, campaign: Campaign = None) -> m.InviteOut:
        return invites.get_invite(_claims(app, app_id), campaign)

    @app.get("/mp/<app_id>/referrals", summary="My invitations: pending, rewarded, voided", security=AUTH,
             responses=responses())
    def my_referrals(app_id: AppId, limit: Limit = 20,
                     cursor: Annotated[m.Cursor | None, Query()] = None) -> m.ReferralsOut:
        return invites.list_referrals(_claims(app, app_id), limit=limit, cursor=cursor)

    @app.get("/mp/<app_id>/points", summary="My points: balance and ledger", security=AUTH, responses=responses())
    def my_points(app_id: AppId, limit: Limit = 20, cursor: Annotated[m.Cursor | None, Query()] = None
                  ) -> m.PointsOut:
        return invites.list_points(_claims(app, app_id), limit=limit, cursor=cursor)


def _errors(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return _json(exc.status, exc.body())

    @app.exception_handler(RequestValidationError)
    def invalid(exc: RequestValidationError) -> Response:
        fields = [{"at": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))[:200]}
                  for e in exc.errors()[:20]]  # never the input: it may hold codes or personal data
        body = error_body(422, "the request does not match the schema")
        body["error"]["fields"] = fields
        return _json(422, body)

    @app.not_found
    def not_found(_exc: NotFoundError) -> Response:
        return _json(404, error_body(404, "no such route"))

    @app.exception_handler(Exception)
    def crashed(exc: Exception) -> Response:
        from wxloop.adapters.repository import RepositoryError

        if isinstance(exc, RepositoryError):
            logger.error("storage failed", extra={"error": str(exc)[:200]})
            return _json(503, error_body(503, "try again"))
        logger.exception("unhandled error")
        return _json(500, error_body(500, "internal error"))


def _depth(text: str) -> int:
    """The deepest nesting of JSON arrays/objects in ``text`` (strings skipped), scanning once."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def precheck(event: dict) -> dict | None:
    """An error answer for a body no route should parse (too large, not UTF-8, nested too deeply), else
    None. Also decodes a base64 body in place, so the resolver sees text."""
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1) + 4:
        return _raw(413, "body too large")
    if event.get("isBase64Encoded") and body:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _raw(400, "body is not base64")
        try:
            event["body"], event["isBase64Encoded"] = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return _raw(400, "body is not UTF-8")
        body = event["body"]
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        return _raw(413, "body too large")
    if body and _depth(body) > MAX_DEPTH:
        return _raw(422, "body nested too deeply")
    return None


def _raw(status: int, message: str) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(error_body(status, message))}


def openapi_document(app: APIGatewayHttpResolver | None = None) -> str:
    """The OpenAPI document as committed in ``openapi.json`` (stable key order, trailing newline)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schema = (app or build_app()).get_openapi_json_schema(
        title=TITLE, version=VERSION, security_schemes={"bearer": HTTPBearer(bearerFormat="wxloop session token")})
    return json.dumps(json.loads(schema), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(openapi_document())
