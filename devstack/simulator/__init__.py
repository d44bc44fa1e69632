"""Plays WeChat: signed and encrypted pushes (``pushes``) and the command line that posts them to a running
wxloop (``cli``, ``python -m devstack.simulator``)."""

from devstack.simulator.cli import main
from devstack.simulator.pushes import MODES, MpSimulator, Push, Simulator, _sign, _xml, http_event

__all__ = ["MODES", "MpSimulator", "Push", "Simulator", "_sign", "_xml", "http_event", "main"]
