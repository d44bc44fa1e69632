"""Loading reward and campaign YAML files for the operator CLI, with errors that name the file and line.

Same style as ``rulesfile``: a ``ConfigError`` path such as ``campaigns[1].caps.per_day`` becomes
``rules/campaigns.example.yaml:31: campaigns[1].caps.per_day: …``; duplicate keys are refused.
"""

from __future__ import annotations

from pathlib import Path

from wxloop.domain.campaigns import Campaign, parse_campaign_doc
from wxloop.domain.config_doc import ConfigError
from wxloop.domain.rewards import RewardCampaign, parse_reward_doc
from wxloop.rulesfile import FileError, Loaded, load_yaml


def load_reward_campaigns(path: str | Path) -> tuple[tuple[RewardCampaign, ...], Loaded]:
    """Load and validate a rewards file; errors become :class:`FileError` with the offending line."""
    loaded = load_yaml(path)
    if not isinstance(loaded.data, dict):
        raise FileError(loaded.file, 1, "the top level must be a mapping")
    try:
        return parse_reward_doc(loaded.data), loaded
    except ConfigError as exc:
        raise loaded.error(exc.path, exc.message) from None


def load_campaigns(path: str | Path) -> tuple[tuple[Campaign, ...], Loaded]:
    """Load and validate a campaigns file; errors become :class:`FileError` with the offending line."""
    loaded = load_yaml(path)
    if not isinstance(loaded.data, dict):
        raise FileError(loaded.file, 1, "the top level must be a mapping")
    try:
        return parse_campaign_doc(loaded.data), loaded
    except ConfigError as exc:
        raise loaded.error(exc.path, exc.message) from None
