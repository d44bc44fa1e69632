"""Benchmark set-up shared by the bench_* modules: demo accounts, fake credentials, import paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OA_APP = "wx1234567890abcdef"
OA_TOKEN = "wxlooptoken"
OA_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def setup_env() -> dict:
    if str(ROOT / "layers") not in sys.path:
        sys.path.insert(0, str(ROOT / "layers"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    env = {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "TABLE_NAME": "wxloop-bench",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/wxloop-bench",
        "WECHAT_ACCOUNTS": (ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"),
        "POWERTOOLS_SERVICE_NAME": "wxloop", "POWERTOOLS_METRICS_NAMESPACE": "wxloop",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
        "RULES_FILE": str(ROOT / "rules" / "example.yaml"),
    }
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    settings_changed()
    return env


def settings_changed() -> None:
    """Benchmarks share one process and change its environment: read the settings again."""
    from wxloop.settings import settings

    settings.cache_clear()


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
