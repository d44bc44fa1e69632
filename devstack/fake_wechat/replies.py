"""What the fake answers: a JSON (or raw) body with a status, WeChat's error shape, and a tiny PNG."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def _png(width: int = 1, height: int = 1) -> bytes:
    """A valid, tiny, white PNG (what ``getwxacodeunlimit`` returns, minus the code)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class _Reply:
    __slots__ = ("status", "body", "content_type")

    def __init__(self, body: Any, status: int = 200, content_type: str = "application/json; charset=utf-8"):
        self.status = status
        self.content_type = content_type
        self.body = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


def _err(code: int, msg: str) -> _Reply:
    return _Reply({"errcode": code, "errmsg": msg})


_OK = {"errcode": 0, "errmsg": "ok"}
