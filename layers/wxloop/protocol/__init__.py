"""WeChat wire protocol, on top of wechatpy.

wechatpy's package ``__init__`` imports its HTTP client stack (requests, pay, oauth), about 100 ms of cold
start that a webhook which never calls WeChat does not need. ``wechatpy()`` loads only the protocol
submodules (crypto, parser, replies, utils) behind a light package object; the full package still loads
on first use of anything else, so code that wants ``wechatpy.WeChatClient`` keeps working.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _install_light_package() -> None:
    if "wechatpy" in sys.modules:
        return
    spec = importlib.util.find_spec("wechatpy")
    if spec is None or spec.submodule_search_locations is None:  # pragma: no cover - broken install
        raise ImportError("wechatpy is not installed")
    light = types.ModuleType("wechatpy")
    light.__path__ = list(spec.submodule_search_locations)
    light.__spec__ = spec
    light.__file__ = spec.origin

    def __getattr__(name: str):  # the rest of the real package, on demand
        if name.startswith("__"):
            raise AttributeError(name)
        assert spec.origin is not None  # found above as a regular package
        code = compile(open(spec.origin, encoding="utf-8").read(), spec.origin, "exec")  # noqa: SIM115
        exec(code, light.__dict__)  # noqa: S102 - wechatpy's own __init__, run once
        del light.__dict__["__getattr__"]
        return light.__dict__[name]

    light.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["wechatpy"] = light


_install_light_package()
