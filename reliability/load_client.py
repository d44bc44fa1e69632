"""A lean asyncio HTTP/1.1 load client for the OA webhook (run in its own process, so its work does not
share the stack's interpreter lock): ``python -m reliability.load_client URL APP TOKEN AES SECONDS CONC``.
Prints one JSON line: pushes, errors, statuses, latencies' p50/p99, pushes per second."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.parse
from collections import Counter

from devstack.simulator import Simulator


async def _one(reader, writer, host: str, path: str, body: bytes) -> int:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _sender(n: int, url: str, sim: Simulator, app: str, until: float, out: dict) -> None:
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    i = 0
    while time.monotonic() < until:
        i += 1
        openid = f"oLoad{n:03d}{i % 50:04d}".ljust(28, "x")  # repeat people: the warm hot path
        push = sim.push(sim.text(openid, f"load {n} {i}"), ("plain", "safe")[i % 2])
        path = f"{parts.path}/wechat/oa/{app}?{urllib.parse.urlencode(push.query)}"
        start = time.perf_counter()
        try:
            status = await _one(reader, writer, parts.netloc, path, push.body.encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            status = 0
            writer.close()
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        out["lat"].append(time.perf_counter() - start)
        out["status"][status] += 1
    writer.close()


async def run(url: str, app: str, token: str, aes: str, seconds: float, concurrency: int) -> dict:
    sim = Simulator(app, token, aes or None)
    out = {"lat": [], "status": Counter()}
    start = time.monotonic()
    await asyncio.gather(*(_sender(n, url, sim, app, start + seconds, out) for n in range(concurrency)))
    elapsed = time.monotonic() - start
    lat = sorted(out["lat"])

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p / 100 * (len(lat) - 1)))] * 1000, 1) if lat else 0.0

    errors = sum(v for s, v in out["status"].items() if s != 200)
    return {"pushes": len(lat), "seconds": round(elapsed, 1), "pushes_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100), "errors": errors,
            "statuses": {str(k): v for k, v in out["status"].items()}, "concurrency": concurrency}


if __name__ == "__main__":
    url, app, token, aes, seconds, conc = sys.argv[1:7]
    print(json.dumps(asyncio.run(run(url, app, token, aes, float(seconds), int(conc)))))
