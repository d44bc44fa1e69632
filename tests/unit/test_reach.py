"""Customer-service windows: the 48-hour / 5-message and 1-minute / 3-message rules."""

from wxloop.domain.reach import MESSAGE, SHORT, open_cs_windows

T = 1_700_000_000


def names(identity, now):
    return [(w.window.name, w.left) for w in open_cs_windows(identity, now)]


def test_a_user_message_opens_48_hours_for_5_messages():
    identity = {"win_msg_at": T, "win_msg_sent": 0}
    assert names(identity, T) == [("msg", 5)]
    assert names(identity, T + MESSAGE.seconds - 1) == [("msg", 5)]
    assert names(identity, T + MESSAGE.seconds) == []
    assert names({**identity, "win_msg_sent": 4}, T + 10) == [("msg", 1)]
    assert names({**identity, "win_msg_sent": 5}, T + 10) == []


def test_a_click_or_follow_opens_1_minute_for_3_messages_spent_before_the_48_hours():
    identity = {"win_msg_at": T, "win_msg_sent": 1, "win_evt_at": T + 100, "win_evt_sent": 2}
    assert names(identity, T + 100) == [("evt", 1), ("msg", 4)]
    assert names(identity, T + 100 + SHORT.seconds) == [("msg", 4)]
    assert names({**identity, "win_evt_sent": 3}, T + 101) == [("msg", 4)]


def test_nothing_known_means_no_window():
    assert names(None, T) == [] and names({}, T) == []
    assert names({"win_msg_at": "garbage"}, T) == []
    # opened after the caller read its clock (a push recorded since, or a webhook clock ahead): open
    assert names({"win_msg_at": T + 5, "win_msg_sent": 0}, T) == [("msg", 5)]
