"""Recording a push (``wxloop.services.recording``) against in-memory fakes: no moto, milliseconds."""

from __future__ import annotations

import time

import pytest

from tests.fakes import FakeIdentityStore
from wxloop.domain.inbound import Inbound
from wxloop.services import recording

APP = "wx1234567890abcdef"


def _text(openid="oU1", msg_id="1", create_time=1_700_000_000) -> Inbound:
    return Inbound(openid=openid, to_user="gh_abc", msg_type="text", create_time=create_time, msg_id=msg_id,
                   content="secret words")


def _job(inb: Inbound, *, platform="oa", at=1_700_000_000, jobs=None) -> dict:
    return {"id": f"{inb.dedupe_key}:touch", "kind": "touch", "platform": platform, "app_id": APP,
            "inbound": recording.inbound_to_dict(inb), "at": at, "jobs": jobs}


def test_given_a_queued_first_contact_when_recorded_late_then_the_person_is_created_and_the_unionid_looked_up():
    store = FakeIdentityStore()
    assert recording.record_later(_job(_text()), store) == "recorded"
    ev = store.identities[(APP, "oU1")]["ev"]
    assert ev["type"] == "oa.text" and [j["kind"] for j in ev["jobs"]] == ["user_info"]
    assert store.people["u1"]["first_touch"]["channel"] == "oa"


def test_given_a_push_recorded_once_when_the_job_is_delivered_again_then_it_is_a_duplicate():
    store = FakeIdentityStore()
    job = _job(_text())
    recording.record_later(job, store)
    assert recording.record_later(job, store) == "duplicate"
    assert len(store.people) == 1


def test_given_the_mini_program_platform_then_events_and_first_touch_say_mp():
    store = FakeIdentityStore()
    recording.record_later(_job(_text(), platform="mp"), store)
    assert store.identities[(APP, "oU1")]["ev"]["type"] == "mp.text"
    assert store.people["u1"]["first_touch"]["channel"] == "mp"


def test_a_queued_push_never_carries_what_the_person_wrote():
    assert "secret words" not in str(_job(_text()))


def test_a_late_push_keeps_the_newer_state():
    store = FakeIdentityStore()
    recording.record_later(_job(_text(msg_id="2"), at=2_000), store)
    assert recording.record_later(_job(_text(msg_id="1"), at=1_000), store) == "recorded"
    assert store.identities[(APP, "oU1")]["last_at"] == 2_000


@pytest.mark.parametrize("age_ms,left", [(None, 4.0), (1000, 3.0), (40_000, 4.0), (-5000, 4.0)])
def test_the_deadline_counts_from_api_gateways_arrival_within_its_30_s(age_ms, left):
    from wxloop.services.oa_push import deadline_for

    epoch = None if age_ms is None else time.time() * 1000 - age_ms
    assert deadline_for(epoch) - time.monotonic() == pytest.approx(left, abs=0.2)
