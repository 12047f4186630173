"""The training slot is always released (issue 25.4): a public app stops whatever holds the slot
at its time limit, and says how long the current holder has left; a local app has no limit."""
from __future__ import annotations

from dataclasses import replace

import pytest
from test_jobs import OWNER, REQUEST, finish, tiny_data
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9.app import texts
from cifar_s9.app.jobs import LOCAL_SLOT, PUBLIC_SLOT, STOPPED, SlotPolicy, TrainingJobs

pytestmark = pytest.mark.timeout(SLOW_TEST_S)
LONG = replace(REQUEST, train=replace(REQUEST.train, epochs=50))  # far longer than the limit below


def test_a_run_past_the_slots_limit_is_stopped_and_the_slot_released(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=SlotPolicy(max_hold_s=0.5))
    job = jobs.start(LONG, OWNER)
    assert job.stop_event.wait(HANG_S), "the slot's limit never stopped the run"
    snap = finish(job)
    assert snap.state == STOPPED and len(snap.epochs) < 50
    assert not jobs.busy and jobs.hold_left_s() is None
    if snap.epochs:  # it trained at least one epoch before the limit: the message says why it ended
        assert "stopped at the shared slot's limit" in snap.message


def test_an_experiment_holder_is_stopped_too(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=SlotPolicy(max_hold_s=0.2))
    reasons = []
    assert jobs.acquire_slot(OWNER, "experiment", stop=reasons.append)
    try:
        jobs._watchdog.join(HANG_S)  # the watchdog thread ends once it has called stop
        assert reasons and "slot's limit" in reasons[0]
    finally:
        jobs.release_slot()
    assert not jobs.busy


def test_a_released_slot_cancels_its_watchdog(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=SlotPolicy(max_hold_s=HANG_S))
    reasons = []
    assert jobs.acquire_slot(OWNER, "experiment", stop=reasons.append)
    left = jobs.hold_left_s()
    assert 0 < left <= HANG_S
    watchdog = jobs._watchdog
    jobs.release_slot()
    watchdog.join(HANG_S)
    assert not watchdog.is_alive() and reasons == []


def test_local_apps_have_no_limit_and_the_texts_say_which(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=LOCAL_SLOT)
    assert jobs.acquire_slot(OWNER, "experiment", stop=lambda reason: None)
    assert jobs._watchdog is None and jobs.hold_left_s() is None
    jobs.release_slot()
    assert "15 minutes" in texts.slot_status(False, False, limit=PUBLIC_SLOT.describe())
    assert "no time limit" in LOCAL_SLOT.describe()
    busy = texts.slot_status(True, False, "epoch 3/50", "run", left_s=600)
    assert "at most 10 min" in busy and "another visitor" in busy
