"""``make run``: the whole backend on this machine, nothing from the cloud.

moto in server mode is the embedded AWS (DynamoDB, SQS, Secrets Manager), the table is created from
``template.yaml``, a fake WeChat API answers the worker, a local gateway serves every HTTP route of the
template, and pumps feed the queue to the worker and the table stream to the stream function.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path

from devstack.table import REPO_ROOT

DEMO_ACCOUNTS = REPO_ROOT / "config" / "demo-accounts.json"
DEMO_RULES = REPO_ROOT / "rules" / "example.yaml"
DEMO_MENU = REPO_ROOT / "rules" / "menu.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    """Everything ``make run`` starts; usable from tests as a context manager."""

    def __init__(self, *, port: int = 3000, accounts_file: Path = DEMO_ACCOUNTS, rules_file: Path | None = DEMO_RULES,
                 menu_file: Path | None = DEMO_MENU, table: str = "wxloop-local", quiet: bool = False):
        self.port, self.accounts_file, self.table, self.quiet = port, accounts_file, table, quiet
        self.rules_file, self.menu_file = rules_file, menu_file
        self.stop_event = threading.Event()
        self._moto = self._gateway = self._fake = None
        self.urls: dict[str, str] = {}
        self.route_paths: list[str] = []

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        from devstack import moto_dynamodb

        moto_dynamodb.apply()
        moto_port = free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        self._moto.start()
        aws_url = f"http://127.0.0.1:{moto_port}"
        env = {
            "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TABLE_NAME": self.table,
            "POWERTOOLS_SERVICE_NAME": "wxloop", "POWERTOOLS_METRICS_NAMESPACE": "wxloop",
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        }
        os.environ.update(env)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("WECHAT_ACCOUNTS_SECRET", None)
        if not os.environ.get("WECHAT_ACCOUNTS"):
            os.environ["WECHAT_ACCOUNTS"] = self.accounts_file.read_text(encoding="utf-8")
        accounts = json.loads(os.environ["WECHAT_ACCOUNTS"])["accounts"]

        from devstack.fake_wechat import FakeWeChat

        self._fake = FakeWeChat({k: v.get("app_secret", "") for k, v in accounts.items()})
        os.environ["WECHAT_API_BASE"] = self._fake.start()
        self.urls["wechat_api"] = os.environ["WECHAT_API_BASE"]

        import boto3

        from devstack.table import create_table

        ddb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        stream_arn = create_table(ddb, self.table)
        dlq = sqs.create_queue(QueueName="wxloop-jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName="wxloop-jobs", Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        })["QueueUrl"]
        os.environ["QUEUE_URL"] = queue
        self.urls.update(aws=aws_url, queue=queue, dlq=dlq)

        self._publish_rules_and_menu(accounts)

        from devstack.gateway import load_function, routes_from_template, serve
        from devstack.pumps import pump_queue, pump_stream
        from devstack.table import load_template

        template = load_template()
        routes = routes_from_template(template)
        self.route_paths = [r.template for r in routes]
        self._gateway = serve(routes, port=self.port)
        self.port = self._gateway.server_address[1]
        self.urls["gateway"] = f"http://127.0.0.1:{self.port}"
        resources = template["Resources"]
        if "WorkerFunction" in resources:
            pump_queue(sqs, queue, load_function("WorkerFunction", template), self.stop_event)
        if "StreamFunction" in resources and stream_arn:
            pump_stream(boto3.client("dynamodbstreams"), stream_arn, load_function("StreamFunction", template),
                        self.stop_event)
        return self

    def _publish_rules_and_menu(self, accounts: dict) -> None:
        """Publish the rule file as the current rule set of the account it names (of every OA when it names
        none), and the menu file to each OA through the fake API, as an operator would with the CLI."""
        from wxloop.adapters import repository
        from wxloop.adapters.wechat import api_client
        from wxloop.rulesfile import load_menu_model, load_rule_set

        oas = [app_id for app_id, acct in accounts.items() if acct.get("kind") == "oa"]
        if self.rules_file:
            named = load_rule_set(self.rules_file)[0].app_id
            for app_id in [named] if named else oas:
                rules, _ = load_rule_set(self.rules_file, app_id=app_id)
                repository.put_rule_set(app_id, rules.to_doc(), rules.version)
        if self.menu_file:
            menu, _ = load_menu_model(self.menu_file)
            for app_id in oas:
                api_client(app_id).menu.create(menu.to_wechat_json())

    def stop(self) -> None:
        self.stop_event.set()
        if self._gateway:
            self._gateway.shutdown()
        if self._fake:
            self._fake.stop()
        if self._moto:
            self._moto.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wxloop-local", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("WXLOOP_PORT", "3000")))
    parser.add_argument("--rules", type=Path, default=DEMO_RULES, help="rule file to publish (default: the demo)")
    parser.add_argument("--menu", type=Path, default=DEMO_MENU, help="menu file to publish (default: the demo)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    stack = LocalStack(port=args.port, rules_file=args.rules, menu_file=args.menu).start()
    accounts = json.loads(os.environ["WECHAT_ACCOUNTS"])["accounts"]
    gw = stack.urls["gateway"]
    print("wxloop is running locally. Ctrl-C stops everything.\n")
    for app_id, acct in accounts.items():
        route = f"/wechat/{acct['kind']}/{{app_id}}"
        if route in stack.route_paths:
            print(f"  {acct['kind'].upper()} {acct.get('name', '')}: {gw}{route.format(app_id=app_id)}")
    print(f"\n  embedded AWS (moto):  {stack.urls['aws']}   table: {stack.table}")
    print(f"  fake WeChat API:      {stack.urls['wechat_api']}   (calls: {stack.urls['wechat_api']}/__fake/calls)")
    print(f"  rules: {args.rules.name}   menu: {args.menu.name}")
    print("\nSend a message as WeChat would (signed, encrypted), in another terminal:")
    print("  .venv/bin/python -m devstack.simulator text shop")
    print("  .venv/bin/python -m devstack.simulator subscribe store_12")
    print("  .venv/bin/python -m devstack.simulator click ABOUT_US")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print("\nstopping…")
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
