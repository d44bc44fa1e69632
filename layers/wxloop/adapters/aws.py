"""AWS clients: botocore directly (``import boto3`` alone costs ~200 ms of cold start through s3transfer),
created lazily once per container, with timeouts that fit WeChat's 5-second budget.

``AWS_ENDPOINT_URL`` (honoured by botocore) points every client at the local stack.
"""

from __future__ import annotations

import functools
import threading

from wxloop.settings import settings

_clients: dict[str, object] = {}
_lock = threading.Lock()

# Connect/read timeouts and attempts per service. DynamoDB and SQS answer in milliseconds; a request that
# has not answered in a second is better retried once than waited on.
_TUNING = {
    "dynamodb": {"connect_timeout": 0.5, "read_timeout": 1.0, "attempts": 2},
    "sqs": {"connect_timeout": 0.5, "read_timeout": 1.0, "attempts": 2},
}


def client(service: str):
    """The shared botocore client for ``service`` (thread-safe, created on first use)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            import botocore.config
            import botocore.session

            tuning = {**_TUNING.get(service, {"connect_timeout": 2, "read_timeout": 10, "attempts": 3}),
                      **_overrides()}
            cfg = botocore.config.Config(
                connect_timeout=tuning["connect_timeout"],
                read_timeout=tuning["read_timeout"],
                retries={"mode": "standard", "total_max_attempts": tuning["attempts"]},
                max_pool_connections=20,
            )
            region = settings().region
            session = botocore.session.get_session()
            session.register_component("data_loader", _loader(session.get_config_variable("data_path")))
            found = session.create_client(service, region_name=region, config=cfg)
            _clients[service] = found
    return found


@functools.lru_cache(maxsize=2)
def _loader(data_path: str | None):
    """One botocore data loader per process (per ``AWS_DATA_PATH``): each session would otherwise parse the
    service models and the ~1 MB endpoints file again (tens of ms per client); credentials and settings stay
    per session."""
    import botocore.loaders

    return botocore.loaders.create_loader(data_path)


def _overrides() -> dict:
    """``WXLOOP_AWS_CONNECT_TIMEOUT`` / ``WXLOOP_AWS_READ_TIMEOUT`` (seconds) / ``WXLOOP_AWS_MAX_ATTEMPTS``:
    a function's own bounds for every AWS call, e.g. the webhook's, which must answer WeChat in time and has
    its own fallback (the queue), so it makes one attempt with short timeouts."""
    env = settings()
    given = {"connect_timeout": env.aws_connect_timeout, "read_timeout": env.aws_read_timeout,
             "attempts": env.aws_max_attempts}
    return {key: value for key, value in given.items() if value is not None}


def reset() -> None:
    """Forget every client (tests swap the AWS backend between cases)."""
    with _lock:
        _clients.clear()
