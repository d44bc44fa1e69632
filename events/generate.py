"""Sample API Gateway HTTP API (payload 2.0) events for the Official Account webhook, and their env file.

Usage::

    python events/generate.py              # rewrite the files in events/
    python events/generate.py --out DIR    # write them to DIR instead
    sam local invoke OaWebhookFunction -e events/oa-text-safe.json --env-vars events/env.json
    sam local invoke MpWebhookFunction -e events/mp-text-json-safe.json --env-vars events/env.json

What it writes, for the demo Official Account of config/demo-accounts.json:

    oa-verify-get.json        GET: WeChat verifies the URL; the answer is the echostr
    oa-text-plain.json        POST: the text "shop", plain mode
    oa-text-safe.json         POST: the text "shop", safe mode (encrypt_type=aes, msg_signature)
    oa-subscribe-scene.json   POST: a follow through the QR code scene "store_12", safe mode
    mp-text-json-safe.json    POST to the demo Mini Program (MpWebhookFunction): a JSON customer-service
                              text "shop", safe mode (the {"ToUserName", "Encrypt"} envelope)
    env.json                  sam's --env-vars: the demo accounts, the clock-skew check off, Powertools

``devstack.simulator`` signs and encrypts each push as WeChat does, with a fixed timestamp, nonce,
MsgId, request id and encryption prefix: the same code writes the same files. The timestamp is old, so
env.json sets WECHAT_CLOCK_SKEW_SECONDS to "0" (no freshness check), and the handler counts its time budget
from now for a ``timeEpoch`` that old.

env.json's TABLE_NAME and QUEUE_URL are placeholders: a POST records the push in DynamoDB and may queue
jobs, so point them at a deployed stack's TableName and JobsQueueUrl outputs (GET needs neither). sam local
passes a function only the variables template.yaml declares for it. The accounts are local demo values,
never real secrets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]

from wechatpy.crypto.base import BasePrpCrypto  # noqa: E402

from devstack.simulator import MpSimulator, Simulator, http_event  # noqa: E402

EVENTS_DIR = ROOT / "events"
DEMO_ACCOUNTS = ROOT / "config" / "demo-accounts.json"
FUNCTION = "OaWebhookFunction"
MP_FUNCTION = "MpWebhookFunction"

OPENID = "oDemoUser000000000000000001"
TIMESTAMP = 1700000000  # 2023-11-14T22:13:20Z
NONCE = "5f3c2a9e1d"
MSG_ID = 24000000000000001
ECHOSTR = "wxloop-sample-echo"
SCENE = "store_12"
CIPHER_PREFIX = "wxloopsample0001"  # the 16 random bytes WeChat puts before the message it encrypts


def demo_account(kind: str = "oa") -> tuple[str, dict, str]:
    """The first account of ``kind`` in the demo config: its app id, its entry, and the whole document."""
    raw = DEMO_ACCOUNTS.read_text(encoding="utf-8")
    accounts = json.loads(raw)["accounts"]
    app_id = next(k for k, v in accounts.items() if v.get("kind") == kind)
    return app_id, accounts[app_id], raw


@contextlib.contextmanager
def _pinned():
    """The simulator's random nonce and wechatpy's random cipher prefix, fixed."""
    with mock.patch("secrets.token_hex", return_value=NONCE), \
            mock.patch.object(BasePrpCrypto, "get_random_string", return_value=CIPHER_PREFIX):
        yield


def build() -> dict[str, dict]:
    """File name -> JSON document, for every file this script writes."""
    app_id, account, raw_accounts = demo_account()
    sim = Simulator(app_id, account["token"], account.get("encoding_aes_key"))

    def event(name: str, method: str, query: dict, body: str = "") -> tuple[str, dict]:
        doc = http_event(method, app_id, query, body, time_epoch_ms=TIMESTAMP * 1000)
        doc["requestContext"]["requestId"] = f"sample-{name}"
        return f"{name}.json", doc

    def push(xml: str, mode: str) -> tuple[dict, str]:
        pushed = sim.push(xml, mode, openid=OPENID, timestamp=TIMESTAMP)
        return pushed.query, pushed.body

    text = sim.text(OPENID, "shop", create_time=TIMESTAMP, msg_id=MSG_ID)
    with _pinned():
        files = dict([
            event("oa-verify-get", "GET", sim.verify_query(ECHOSTR, timestamp=TIMESTAMP)),
            event("oa-text-plain", "POST", *push(text, "plain")),
            event("oa-text-safe", "POST", *push(text, "safe")),
            event("oa-subscribe-scene", "POST", *push(sim.subscribe(OPENID, SCENE, create_time=TIMESTAMP), "safe")),
        ])
        files.update([_mp_text_event()])
    files["env.json"] = {
        FUNCTION: {"WECHAT_CLOCK_SKEW_SECONDS": "0", "PUSH_BUDGET_SECONDS": "4.0"},
        MP_FUNCTION: {"WECHAT_CLOCK_SKEW_SECONDS": "0", "PUSH_BUDGET_SECONDS": "4.0"},
        "Parameters": {
            "WECHAT_ACCOUNTS": json.dumps(json.loads(raw_accounts), separators=(",", ":")),
            "WECHAT_ACCOUNTS_SECRET": "",
            "TABLE_NAME": "wxloop-dev-Table-PLACEHOLDER",
            "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/wxloop-dev-JobsQueue-PLACEHOLDER",
            "POWERTOOLS_SERVICE_NAME": "wxloop",
            "POWERTOOLS_METRICS_NAMESPACE": "wxloop",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
    }
    return files


def _mp_text_event() -> tuple[str, dict]:
    """The demo Mini Program's JSON text push in safe mode, as an HTTP API event for ``/wechat/mp/{app_id}``."""
    app_id, account, _ = demo_account("mp")
    sim = MpSimulator(app_id, account["token"], account["encoding_aes_key"], fmt="json")
    pushed = sim.push(sim.text(OPENID, "shop", create_time=TIMESTAMP, msg_id=MSG_ID), "safe", openid=OPENID,
                      timestamp=TIMESTAMP)
    doc = http_event("POST", app_id, pushed.query, pushed.body, kind="mp", time_epoch_ms=TIMESTAMP * 1000)
    doc["requestContext"]["requestId"] = "sample-mp-text-json-safe"
    return "mp-text-json-safe.json", doc


def write(out: Path = EVENTS_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in build().items():
        path = out / name
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EVENTS_DIR, help="directory to write (default: events/)")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
