"""Every environment variable wxloop reads, as one typed object parsed once per container.

``settings()`` validates the environment at first use and caches the result; a malformed value fails
naming the variable. An empty variable counts as unset (SAM passes unset parameters as ""). The table in
``docs/configuration.md`` is generated from this model (``make configuration-doc``; a test fails when it
drifts).
"""

# No pydantic here: every function reads its settings at INIT, and importing pydantic (~200 ms) would add
# half again to the webhook's cold start. Fields are declared as for pydantic, checked by a few plain lines.
# No `from __future__ import annotations`: the field types are read from the class's annotations.
import os
import types
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar

WECHAT_API = "https://api.weixin.qq.com"


class Field:
    """One setting: its variable (``alias``), default, meaning and lower bound; ``kind`` comes from the
    annotation (str, int, float, bool, or one of them ``| None``)."""

    __slots__ = ("alias", "default", "description", "ge", "kind", "optional")

    def __init__(self, alias: str, default: Any, description: str, ge: float | None = None) -> None:
        self.alias, self.default, self.description, self.ge = alias, default, description, ge
        self.kind: type = str
        self.optional = False

    def parse(self, raw: str) -> Any:
        """The value of the variable's text; ``ValueError`` saying what is wrong."""
        if self.kind is bool:
            return raw.strip().lower() in ("1", "true")
        try:
            value = self.kind(raw)
        except ValueError:
            raise ValueError(f"must be {'an integer' if self.kind is int else 'a number'}") from None
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be at least {self.ge:g}")
        return value


def _env(name: str, default: Any, description: str, **limits: Any) -> Any:
    return Field(name, default, description, limits.get("ge"))


class Settings:
    """The process settings. Attribute names are the variables' names in lower case, shortened where a
    prefix says nothing; the alias of each field is the variable. Frozen once built."""

    model_fields: ClassVar[dict[str, Field]]

    # -- where things are
    table_name: str = _env("TABLE_NAME", "", "The single DynamoDB table.")
    queue_url: str = _env("QUEUE_URL", "", "The SQS jobs queue (worker jobs: WeChat API calls).")
    stage: str = _env("STAGE", "dev", "Deployment stage; `prod` hides the MP API's OpenAPI document.")
    aws_region: str = _env("AWS_REGION", "", "AWS region (set by Lambda); else `AWS_DEFAULT_REGION`, else us-east-1.")
    aws_default_region: str = _env("AWS_DEFAULT_REGION", "", "AWS region when `AWS_REGION` is unset.")
    # -- accounts
    wechat_accounts: str = _env("WECHAT_ACCOUNTS", "", "The accounts config JSON (local runs and tests).")
    wechat_accounts_secret: str = _env(
        "WECHAT_ACCOUNTS_SECRET", "", "Secrets Manager id of the accounts config JSON (deployed).")
    wechat_app_secrets_secret: str = _env(
        "WECHAT_APP_SECRETS_SECRET", "", "Secrets Manager id of the app secrets, read only by token-fetching code.")
    wechat_accounts_max_age: int = _env(
        "WECHAT_ACCOUNTS_MAX_AGE", 300, "Seconds a fetched secret is cached before it is read again.", ge=0)
    # -- WeChat
    wechat_api_base: str = _env("WECHAT_API_BASE", WECHAT_API, "WeChat API base URL (a local fake in dev and tests).")
    wechat_api_timeout: float = _env("WECHAT_API_TIMEOUT", 5.0, "Seconds per WeChat API call.", ge=0)
    clock_skew_seconds: int = _env(
        "WECHAT_CLOCK_SKEW_SECONDS", 300, "Max |now - timestamp| accepted on pushes; `0` disables the check.", ge=0)
    push_budget_seconds: float = _env(
        "PUSH_BUDGET_SECONDS", 4.0, "Seconds the webhook may spend before it answers and queues the rest.", ge=0)
    token_refresh_margin_seconds: int = _env(
        "TOKEN_REFRESH_MARGIN_SECONDS", 300, "The refresher renews an access token this long before expiry.", ge=0)
    token_use_margin_seconds: int = _env(
        "TOKEN_USE_MARGIN_SECONDS", 60, "A stored token this close to expiry is not used.", ge=0)
    job_lease_seconds: int = _env("JOB_LEASE_SECONDS", 60, "How long a worker holds a job before another may.", ge=0)
    # -- data
    journey_retention_days: int = _env("JOURNEY_RETENTION_DAYS", 180, "Days a journey event is kept (TTL).", ge=0)
    rules_file: str = _env("RULES_FILE", "", "A rules YAML file served instead of the table's (local runs).")
    rules_refresh_seconds: float = _env(
        "RULES_REFRESH_SECONDS", 30.0, "Seconds the in-memory rule set is served before it is checked again.", ge=0)
    # -- Mini Program API
    mp_session_ttl_seconds: int = _env("MP_SESSION_TTL_SECONDS", 172800, "Lifetime of an MP session token.", ge=0)
    mp_rate_limit_per_minute: int = _env("MP_RATE_LIMIT_PER_MINUTE", 120, "MP API calls per person a minute.", ge=0)
    follow_prompt_cooldown_days: int = _env(
        "FOLLOW_PROMPT_COOLDOWN_DAYS", 7, "Days between two prompts to follow the OA.", ge=0)
    mp_event_skew_seconds: int = _env(
        "MP_EVENT_SKEW_SECONDS", 300, "How far in the future an MP client's event time may be.", ge=0)
    invite_page: str = _env("INVITE_PAGE", "pages/index/index", "The Mini Program page an invite code opens.")
    # -- partner API
    partner_skew_seconds: int = _env(
        "PARTNER_SKEW_SECONDS", 300, "Max |now - timestamp| accepted on a partner API request.", ge=0)
    # -- privacy (consent, export, erasure, retention)
    plan_queue_url: str = _env("PLAN_QUEUE_URL", "", "The campaign planner's queue: one task per scan segment.")
    privacy_queue_url: str = _env(
        "PRIVACY_QUEUE_URL", "", "Queue of the privacy function (deployed); unset: exports and erasures run inline.")
    erasure_sweep_seconds: int = _env(
        "ERASURE_SWEEP_SECONDS", 900, "Seconds after an erasure before its sweep runs (`0`: at once).", ge=0)
    export_bucket: str = _env("EXPORT_BUCKET", "", "S3 bucket of personal data exports (deployed).")
    export_path: str = _env(
        "EXPORT_PATH", ".local/exports", "Folder of personal data exports when `EXPORT_BUCKET` is unset.")
    retention_inactive_days: int = _env(
        "RETENTION_INACTIVE_DAYS", 365, "Days without activity after which a person is erased (at least 30).", ge=0)
    lake_bucket: str = _env("LAKE_BUCKET", "", "S3 bucket of the lake (erasures rewrite its files).")
    lake_erased_keep_seconds: int | None = _env(
        "LAKE_ERASED_KEEP_SECONDS", None,
        "Seconds erased lake files are kept before compaction deletes them; unset: a day (the CLI: none).", ge=0)
    # -- AWS calls (a function's own bounds; unset: the per-service defaults)
    aws_connect_timeout: float | None = _env("WXLOOP_AWS_CONNECT_TIMEOUT", None, "Seconds to connect to AWS.", ge=0)
    aws_read_timeout: float | None = _env("WXLOOP_AWS_READ_TIMEOUT", None, "Seconds to wait for an AWS answer.", ge=0)
    aws_max_attempts: int | None = _env("WXLOOP_AWS_MAX_ATTEMPTS", None, "Attempts per AWS call.", ge=0)
    # -- metrics
    metrics_namespace: str = _env("POWERTOOLS_METRICS_NAMESPACE", "wxloop", "CloudWatch namespace of the metrics.")
    service_name: str = _env("POWERTOOLS_SERVICE_NAME", "wxloop", "Service name on logs and metrics.")
    metrics_disabled: bool = _env("POWERTOOLS_METRICS_DISABLED", False, "`true` or `1`: emit no metrics.")
    # -- analytics (the KPI function and the CLI)
    lake_stream_name: str = _env("LAKE_STREAM_NAME", "", "Firehose stream the journey records go to.")
    lake_path: str = _env("LAKE_PATH", "", "A local folder used as the lake instead of Firehose (local runs).")
    lake_database: str = _env("LAKE_DATABASE", "", "Glue database of the lake.")
    athena_workgroup: str = _env("ATHENA_WORKGROUP", "", "Athena workgroup the KPI queries run in.")
    kpi_window_days: int = _env("KPI_WINDOW_DAYS", 28, "Days of journeys the daily KPI run looks at.", ge=1)
    kpi_registration_events: str = _env(
        "KPI_REGISTRATION_EVENTS", "", "Comma-separated event types that count as registration.")
    kpi_conversion_event: str = _env("KPI_CONVERSION_EVENT", "", "The event type that counts as conversion.")

    def __init__(self, values: Mapping[str, Any]) -> None:
        for name, field in self.model_fields.items():
            object.__setattr__(self, name, values.get(name, field.default))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("settings are read once; change the environment and call settings.cache_clear()")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Settings":
        """The settings of ``environ``; raises ``RuntimeError`` naming each malformed variable."""
        values, problems = {}, []
        for name, field in cls.model_fields.items():
            raw = environ.get(field.alias, "")
            if raw == "":
                continue
            try:
                values[name] = field.parse(raw)
            except ValueError as exc:
                problems.append(f"{field.alias} {exc}, got {raw!r}")
        if problems:
            raise RuntimeError(f"environment invalid: {'; '.join(problems)}")
        if "wechat_api_base" in values:
            values["wechat_api_base"] = values["wechat_api_base"].rstrip("/")
        return cls(values)

    @property
    def region(self) -> str:
        return self.aws_region or self.aws_default_region or "us-east-1"


def _fields() -> dict[str, Field]:
    out = {}
    for name, annotation in Settings.__annotations__.items():
        field = Settings.__dict__.get(name)
        if not isinstance(field, Field):
            continue
        args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        field.optional = isinstance(annotation, types.UnionType)
        field.kind = args[0] if field.optional else annotation
        out[name] = field
        delattr(Settings, name)  # an instance holds the value; the class keeps the field in model_fields
    return out


Settings.model_fields = _fields()


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process's environment, parsed at first use; a malformed value fails naming the
    variable. Tests that change the environment call ``settings.cache_clear()``."""
    return Settings.from_env(os.environ)


def configuration_table() -> str:
    """The Markdown table of every variable (name, default, meaning), as docs/configuration.md shows it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        default = field.default
        shown = "" if default in ("", None) else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `{field.alias}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(configuration_table(), end="")
