"""The training slot is always released (issue 25.4): a public app stops whatever holds the slot
at its time limit, and says how long the current holder has left; a local app has no limit."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from test_jobs import OWNER, REQUEST, STRANGER, finish, tiny_data
from synthetic import FakeClock
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9.app import texts
from cifar_s9.app.jobs import LOCAL_SLOT, PUBLIC_SLOT, STOPPED, Busy, NotOwner, SlotPolicy, TrainingJobs

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


# ---------------------------------------------------------------- the owner has gone (issue 25)

@pytest.fixture
def gate():
    """Holds a run in its data loading until opened (also at teardown)."""
    event = threading.Event()
    yield event
    event.set()


def gated(gate):
    return lambda: (gate.wait(HANG_S), tiny_data())[1]


# the watchdog thread sleeps longer than any test: the test calls `check` after moving the clock
MOVED_BY_HAND = SlotPolicy(max_hold_s=15 * 60, owner_grace_s=60, check_every_s=HANG_S)
FORGED = ["", None, 7, {"token": "x"}, ["x"], "x" * 5000, "../../etc/passwd"]


def test_a_run_whose_owner_sends_no_heartbeat_is_stopped_after_the_grace(tmp_path, gate):
    clock = FakeClock(1000.0)
    jobs = TrainingJobs(tmp_path, gated(gate), policy=MOVED_BY_HAND, clock=clock)
    job = jobs.start(LONG, OWNER)
    clock.now += 59
    assert jobs.check() is None and not job.stop_event.is_set()
    assert jobs.heartbeat(job.token)  # the owner's page is open: 60 s more from now
    clock.now += 59                   # 118 s since the start, 59 since the heartbeat
    assert jobs.check() is None and not job.stop_event.is_set()
    near_miss = job.token[:-1] + ("A" if job.token[-1] != "A" else "B")
    for forged in [near_miss, *FORGED]:  # a forged token extends nothing
        assert not jobs.heartbeat(forged)
    clock.now += 2
    reason = jobs.check()
    assert reason and "page was closed" in reason and job.stop_event.is_set()
    gate.set()
    snap = finish(job)
    assert snap.state == STOPPED and not jobs.busy
    assert not jobs.heartbeat(job.token)  # a finished run's token keeps nothing alive


def test_a_request_from_an_owner_session_is_a_sign_of_life_and_only_for_its_own_job(tmp_path, gate):
    clock = FakeClock(1000.0)
    jobs = TrainingJobs(tmp_path, gated(gate), policy=MOVED_BY_HAND, clock=clock)
    job = jobs.start(LONG, OWNER)
    clock.now += 50
    for stranger in (STRANGER, "", None, 7):
        assert not jobs.seen(stranger)
    assert job.seen_at == 1000.0
    assert jobs.seen(OWNER) and job.seen_at == 1050.0  # e.g. an API client polling its status
    clock.now += 50
    assert jobs.check() is None
    job.stop_event.set()  # what is checked is above: no need to train the 50 epochs
    gate.set()
    assert finish(job).state == STOPPED


def test_the_watchdog_stops_a_run_with_no_page_on_its_own(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=SlotPolicy(owner_grace_s=0.3, check_every_s=0.05))
    job = jobs.start(LONG, OWNER)
    assert job.stop_event.wait(HANG_S), "the watchdog never stopped a run nobody watches"
    assert "page was closed" in job.stop_reason
    snap = finish(job)
    assert snap.state == STOPPED and len(snap.epochs) < 50 and not jobs.busy


def test_a_reloaded_page_reattaches_with_the_token_and_only_with_it(tmp_path, gate):
    clock = FakeClock(1000.0)
    jobs = TrainingJobs(tmp_path, gated(gate), policy=MOVED_BY_HAND, clock=clock)
    job = jobs.start(LONG, OWNER)
    for forged in [job.token.upper() if job.token.upper() != job.token else "y" * 43, *FORGED]:
        assert jobs.attach(forged, "reloaded") is None
    assert job.owners == [OWNER]
    with pytest.raises(NotOwner):
        jobs.stop("reloaded")
    clock.now += 50
    assert jobs.attach(job.token, "reloaded") is job  # the same browser, a new session
    clock.now += 50                                   # 100 s since the start, 50 since the reload
    assert jobs.check() is None
    assert "**your** run" in jobs.status("reloaded") and "another visitor" in jobs.status(STRANGER)
    with pytest.raises(NotOwner):
        jobs.stop(STRANGER)
    assert jobs.stop("reloaded") and job.stop_event.is_set()
    gate.set()
    assert finish(job).state == STOPPED


def test_the_busy_message_says_what_a_waiting_visitor_can_do(tmp_path, gate):
    clock = FakeClock(1000.0)
    jobs = TrainingJobs(tmp_path, gated(gate), policy=MOVED_BY_HAND, clock=clock)
    job = jobs.start(LONG, OWNER)
    clock.now += 5 * 60
    with pytest.raises(Busy) as refused:
        jobs.start(REQUEST, STRANGER)
    text = str(refused.value)
    assert "Wait for it" in text and "at most 10 min" in text and "Train tab" not in text
    with pytest.raises(Busy, match="Your training run is already in progress"):
        jobs.start(REQUEST, OWNER)
    job.stop_event.set()  # what is checked is above: no need to train the 50 epochs
    gate.set()
    assert finish(job).state == STOPPED
