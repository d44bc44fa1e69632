"""A small local HTTP API: turns HTTP requests into API Gateway HTTP API (payload 2.0) events for the
handlers that ``template.yaml`` routes (what ``sam local start-api`` does, without Docker)."""

from __future__ import annotations

import base64
import importlib.util
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack.table import REPO_ROOT, load_template

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's payload limit


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern
    function: str
    handler: Callable[[dict, Any], Any]
    timeout: float = 6.0


def load_function(logical_id: str, template: dict | None = None, root: Path = REPO_ROOT):
    """Import a function's handler (``CodeUri``/``Handler`` from the template) as a module attribute."""
    template = template or load_template()
    props = template["Resources"][logical_id]["Properties"]
    module_name, attr = props["Handler"].rsplit(".", 1)
    path = root / props["CodeUri"] / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"wxloop_fn_{logical_id}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{logical_id}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def function_timeout(logical_id: str, template: dict) -> float:
    """The function's ``Timeout`` in the template (else the Globals' one, else Lambda's 3 s)."""
    props = template["Resources"][logical_id].get("Properties") or {}
    glob = ((template.get("Globals") or {}).get("Function") or {})
    return float(props.get("Timeout") or glob.get("Timeout") or 3)


def function_environment(template: dict) -> dict[str, str]:
    """The literal environment variables the template gives its functions (Globals, then each function's;
    references such as ``!Ref`` and empty values are left out: the stack sets those itself)."""
    blocks = [((template.get("Globals") or {}).get("Function") or {}).get("Environment")]
    blocks += [(res.get("Properties") or {}).get("Environment") for res in template["Resources"].values()
               if res.get("Type") == "AWS::Serverless::Function"]
    out: dict[str, str] = {}
    for block in blocks:
        for name, value in ((block or {}).get("Variables") or {}).items():
            if isinstance(value, str | int | float) and str(value):
                out[name] = str(value)
    return out


def routes_from_template(template: dict | None = None) -> list[Route]:
    template = template or load_template()
    routes = []
    for logical_id, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        events = (res.get("Properties") or {}).get("Events") or {}
        http = [e["Properties"] for e in events.values() if e.get("Type") == "HttpApi"]
        if not http:
            continue
        handler = load_function(logical_id, template)
        for ev in http:
            path = ev["Path"]
            regex = "^" + re.sub(r"\{(\w+)(\+?)\}", lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})", path) + "$"
            routes.append(Route(ev.get("Method", "ANY").upper(), path, re.compile(regex), logical_id, handler,
                                function_timeout(logical_id, template)))
    return routes


class LambdaContext:
    def __init__(self, name: str, timeout_s: float = 6.0):
        self.function_name = name
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        self.aws_request_id = secrets.token_hex(8)
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def encode_body(body: bytes) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``: text as is, other bytes base64 (as API Gateway does)."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def make_event(method: str, route: Route, path: str, params: dict, query: str, headers: dict, body: bytes) -> dict:
    text_body, is_b64 = encode_body(body)
    qs = urllib.parse.parse_qs(query, keep_blank_values=True)
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"{route.method} {route.template}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": {k: ",".join(v) for k, v in qs.items()} or None,
        "pathParameters": params or None,
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "localhost", "stage": "$default",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("User-Agent", "")},
            "requestId": secrets.token_hex(8), "routeKey": f"{route.method} {route.template}",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "body": text_body,
        "isBase64Encoded": is_b64,
    }


def serve(routes: list[Route], host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
    """Start the gateway in a daemon thread; returns the server (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # the handlers log for themselves
            pass

        def _dispatch(self):
            parsed = urllib.parse.urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:  # API Gateway's own limit answers before any function
                self.close_connection = True
                return self._send(413 if length > 0 else 400, {"Content-Type": "application/json"},
                                  b'{"message":"Bad Request"}')
            body = self.rfile.read(length) if length else b""
            for route in routes:
                m = route.pattern.match(parsed.path)
                if m and route.method in ("ANY", self.command):
                    event = make_event(self.command, route, parsed.path, m.groupdict(), parsed.query,
                                       dict(self.headers.items()), body)
                    try:
                        out = route.handler(event, LambdaContext(route.function, route.timeout))
                    except Exception as exc:  # what API Gateway does when a function fails
                        return self._send(500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}',
                                          note=repr(exc))
                    payload = out.get("body") or ""
                    data = base64.b64decode(payload) if out.get("isBase64Encoded") else payload.encode("utf-8")
                    return self._send(int(out.get("statusCode", 200)), out.get("headers") or {}, data)
            return self._send(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')

        def _send(self, status: int, headers: dict, data: bytes, note: str = ""):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
    return server
