"""The follow-prompt matrix: scene x follow state x dismissal, and hot starts."""

from __future__ import annotations

import pytest

from wxloop.domain.follow_prompt import COMPONENT_SCENES, decide, effective_scene

NOW = 1_800_000_000
DAY = 86400


@pytest.mark.parametrize("scene", sorted(COMPONENT_SCENES) + [1001, 1037, 1044, 1089, None])
@pytest.mark.parametrize("following", [True, False, None])
@pytest.mark.parametrize("dismissed_days_ago", [None, 1, 6.9, 7, 30])
def test_matrix(scene, following, dismissed_days_ago):
    dismissed_at = None if dismissed_days_ago is None else int(NOW - dismissed_days_ago * DAY)
    got = decide(linked_oa=True, following=following, scene=scene, dismissed_at=dismissed_at, now=NOW,
                 cooldown_days=7)
    if following is True:
        assert (got.mode, got.reason) == ("none", "follower")
    elif dismissed_days_ago is not None and dismissed_days_ago < 7:
        assert (got.mode, got.reason) == ("none", "dismissed")
    elif scene in COMPONENT_SCENES:
        assert got.mode == "component"
    else:
        assert got.mode == "cs_message"


def test_no_linked_oa_means_no_prompt():
    assert decide(linked_oa=False, following=False, scene=1011, dismissed_at=None, now=NOW).mode == "none"


def test_hot_start_keeps_the_cold_start_scene():
    assert effective_scene(1011, 1089, hot=True) == 1011
    assert effective_scene(1089, 1011, hot=True) == 1089
    assert effective_scene(1089, 1011, hot=False) == 1011
