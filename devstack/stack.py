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
import shlex
import signal
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.table import REPO_ROOT

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from moto.server import ThreadedMotoServer

    from devstack.fake_wechat import FakeWeChat

DEMO_ACCOUNTS = REPO_ROOT / "config" / "demo-accounts.json"
DEMO_RULES = REPO_ROOT / "rules" / "example.yaml"
DEMO_MENU = REPO_ROOT / "rules" / "menu.yaml"
DEMO_MP_RULES = REPO_ROOT / "rules" / "mp-example.yaml"  # the demo MP's customer-service rules


ENV_FILE = REPO_ROOT / ".local" / "env"
LAKE_DIR = REPO_ROOT / ".local" / "lake"  # the journey lake `make run` writes and `wxloop kpi` reads
# Stable by default so the CLI and a browser tab keep working across restarts; 0 lets the OS pick.
PORTS = {"WXLOOP_PORT": ("gateway", 3000), "WXLOOP_AWS_PORT": ("embedded AWS", 3001),
         "WXLOOP_WECHAT_PORT": ("fake WeChat API", 3002)}


class PortInUse(RuntimeError):
    """A port the stack needs is taken (most often: the stack is already running)."""


def ports_from_env(environ=os.environ) -> dict[str, int]:
    """Port of each server (``WXLOOP_PORT``, ``WXLOOP_AWS_PORT``, ``WXLOOP_WECHAT_PORT``; 0 = any)."""
    return {name: int(environ.get(name) or default) for name, (_, default) in PORTS.items()}


def check_free(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Raise ``PortInUse`` naming the first fixed port another process listens on."""
    for name, port in ports.items():
        if not port:
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind (TIME_WAIT is fine)
            try:
                s.bind((host, port))
            except OSError:
                raise PortInUse(f"port {port} ({PORTS[name][0]}) is already in use: is `make run` already "
                                f"running? Stop it, or choose another port with {name}=...") from None


def queue_attributes(template: dict, dlq_arn: str, logical_id: str = "JobsQueue") -> dict[str, str]:
    """The jobs queue's visibility timeout and redrive count as the template sets them."""
    props = (template["Resources"].get(logical_id) or {}).get("Properties") or {}
    receives = (props.get("RedrivePolicy") or {}).get("maxReceiveCount", 3)
    return {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30)),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(receives)})}


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """``export NAME=value`` lines a shell can source (owner-only: the accounts hold app secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `make run` while it runs: `source` it, or use `make cli ARGS=...`."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def remove_env_file(path: Path) -> None:
    """Remove the file if this process wrote it (a newer stack may have replaced it)."""
    try:
        if f"WXLOOP_STACK_PID={os.getpid()}\n" in path.read_text(encoding="utf-8"):
            path.unlink()
    except OSError:
        pass


class LocalStack:
    """Everything ``make run`` starts; usable from tests as a context manager."""

    def __init__(self, *, ports: dict[str, int] | None = None, accounts_file: Path = DEMO_ACCOUNTS, rules_file: Path | None = DEMO_RULES,
                 menu_file: Path | None = DEMO_MENU, table: str = "wxloop-local", quiet: bool = False):
        self.ports = {**ports_from_env({}), **(ports or {})}
        self.port = self.ports["WXLOOP_PORT"]
        self.accounts_file, self.table, self.quiet = accounts_file, table, quiet
        self.rules_file, self.menu_file = rules_file, menu_file
        self.stop_event = threading.Event()
        self._moto: ThreadedMotoServer | None = None
        self._gateway: ThreadingHTTPServer | None = None
        self._fake: FakeWeChat | None = None
        self.urls: dict[str, str] = {}
        self.route_paths: list[str] = []

    # long: brings up AWS, the fake WeChat API, the table, the accounts and the gateway, in that order
    def start(self) -> LocalStack:
        """Start embedded AWS, the fake WeChat API, the table and queues, the rules and menu, the gateway and
        the pumps, in that order; ``urls`` then names each."""
        from devstack import moto_dynamodb
        from devstack.table import load_template

        check_free(self.ports)
        moto_dynamodb.apply()
        aws_url = self._start_aws()
        template = load_template()
        accounts = self._environment(aws_url, template)
        self._start_fake_wechat(accounts)
        sqs, queue, stream_arn = self._create_table_and_queues(template)
        self.urls.update(aws=aws_url, queue=queue)
        self._publish_rules_and_menu(accounts)
        self._serve(template, sqs, queue, stream_arn)
        return self

    def _start_aws(self) -> str:
        """moto in server mode; its URL."""
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.ports["WXLOOP_AWS_PORT"], verbose=False)
        self._moto.start()
        return f"http://127.0.0.1:{self._moto.get_host_and_port()[1]}"

    def _environment(self, aws_url: str, template: dict) -> dict:
        """The process environment the functions see (the template's, pointed at this stack); the accounts."""
        from devstack.gateway import function_environment

        os.environ.update({
            "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TABLE_NAME": self.table,
            "POWERTOOLS_SERVICE_NAME": "wxloop", "POWERTOOLS_METRICS_NAMESPACE": "wxloop",
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        })
        os.environ.setdefault("ERASURE_SWEEP_SECONDS", "0")  # no scheduler here: an erasure sweeps at once
        os.environ.setdefault("EXPORT_PATH", str(LAKE_DIR.parent / "exports"))  # exports as local files
        for name, value in function_environment(template).items():  # as deployed, unless set here
            os.environ.setdefault(name, value)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("WECHAT_ACCOUNTS_SECRET", None)
        os.environ.pop("LAKE_STREAM_NAME", None)  # no Firehose here: the stream writes the same Parquet layout
        os.environ.setdefault("LAKE_PATH", str(LAKE_DIR))
        if not os.environ.get("WECHAT_ACCOUNTS"):
            os.environ["WECHAT_ACCOUNTS"] = self.accounts_file.read_text(encoding="utf-8")
        return json.loads(os.environ["WECHAT_ACCOUNTS"])["accounts"]

    def _start_fake_wechat(self, accounts: dict) -> None:
        from devstack.fake_wechat import FakeWeChat

        self._fake = FakeWeChat({k: v.get("app_secret", "") for k, v in accounts.items()},
                                port=self.ports["WXLOOP_WECHAT_PORT"])
        os.environ["WECHAT_API_BASE"] = self._fake.start()
        self.urls["wechat_api"] = os.environ["WECHAT_API_BASE"]

    def _create_table_and_queues(self, template: dict):
        """The table (with its stream) and the jobs queue with its DLQ, as the template defines them."""
        import boto3

        from devstack.table import create_table

        sqs = boto3.client("sqs")
        stream_arn = create_table(boto3.client("dynamodb"), self.table)
        dlq = sqs.create_queue(QueueName="wxloop-jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName="wxloop-jobs", Attributes=queue_attributes(template, dlq_arn))["QueueUrl"]
        os.environ["QUEUE_URL"] = queue
        self.urls["dlq"] = dlq
        from wxloop.settings import settings

        settings.cache_clear()  # the environment is complete now: read it again, as a new container would
        return sqs, queue, stream_arn

    def _serve(self, template: dict, sqs, queue: str, stream_arn: str | None) -> None:
        """The gateway for every route of the template, and the pumps feeding the worker and the stream."""
        import boto3

        from devstack.gateway import function_timeout, load_function, routes_from_template, serve
        from devstack.pumps import pump_queue, pump_stream

        routes = routes_from_template(template)
        self.route_paths = [r.template for r in routes]
        self._gateway = serve(routes, port=self.port)
        self.port = self._gateway.server_address[1]
        self.urls["gateway"] = f"http://127.0.0.1:{self.port}"
        resources = template["Resources"]
        if "WorkerFunction" in resources:
            pump_queue(sqs, queue, load_function("WorkerFunction", template), self.stop_event,
                       timeout=function_timeout("WorkerFunction", template))
        if "StreamFunction" in resources and stream_arn:
            pump_stream(boto3.client("dynamodbstreams"), stream_arn, load_function("StreamFunction", template),
                        self.stop_event, timeout=function_timeout("StreamFunction", template))

    def cli_environment(self) -> dict[str, str]:
        """What a CLI in another shell needs to talk to this stack (written to ``.local/env``)."""
        names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "TABLE_NAME", "QUEUE_URL", "WECHAT_API_BASE", "WECHAT_ACCOUNTS", "LAKE_PATH",
                 "EXPORT_PATH", "ERASURE_SWEEP_SECONDS")
        return {"WXLOOP_STACK_PID": str(os.getpid()), "WXLOOP_GATEWAY_URL": self.urls["gateway"],
                **{n: os.environ[n] for n in names if n in os.environ},
                "WECHAT_ACCOUNTS": json.dumps(json.loads(os.environ["WECHAT_ACCOUNTS"]), ensure_ascii=False)}

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
        mp_rules = load_rule_set(DEMO_MP_RULES)[0] if self.rules_file == DEMO_RULES else None
        if mp_rules is not None and mp_rules.app_id is not None and mp_rules.app_id in accounts:
            repository.put_rule_set(mp_rules.app_id, mp_rules.to_doc(), mp_rules.version)
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
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="gateway port (default WXLOOP_PORT or 3000)")
    parser.add_argument("--rules", type=Path, default=DEMO_RULES, help="rule file to publish (default: the demo)")
    parser.add_argument("--menu", type=Path, default=DEMO_MENU, help="menu file to publish (default: the demo)")
    parser.add_argument("--env-file", type=Path, default=Path(os.environ.get("WXLOOP_ENV_FILE") or ENV_FILE),
                        help="where to write the CLI's environment (default .local/env)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    ports = ports_from_env()
    if args.port is not None:
        ports["WXLOOP_PORT"] = args.port
    try:
        stack = LocalStack(ports=ports, rules_file=args.rules, menu_file=args.menu).start()
    except (PortInUse, OSError) as exc:  # one clear line, not a traceback
        print(f"wxloop: {exc}", file=sys.stderr)
        return 1
    write_env_file(args.env_file, stack.cli_environment())
    _print_banner(stack, args)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print("\nstopping…")
    remove_env_file(args.env_file)
    stack.stop()
    return 0


def _print_banner(stack: LocalStack, args: argparse.Namespace) -> None:
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
    print(f"  CLI environment:      {args.env_file}   (make cli ARGS='rules pull', or source it)")
    print("\nSend a message as WeChat would (signed, encrypted), in another terminal:")
    print("  .venv/bin/python -m devstack.simulator text shop")
    print("  .venv/bin/python -m devstack.simulator subscribe store_12")
    print("  .venv/bin/python -m devstack.simulator mp-text 积分 --format json   (a Mini Program push; mp-enter, mp-popup ...)")
    print("  .venv/bin/python -m devstack.simulator click ABOUT_US")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
