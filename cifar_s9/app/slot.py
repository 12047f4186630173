"""The app's one training slot, shared by every visitor, and the one job type that holds it.

A `Job` is whatever holds the slot (a Train-tab run or an Experiments-tab A/B): a state, a
versioned snapshot that observers wait on, its owners and a stop. `TrainingSlot.run(job, work)`
takes the slot (or raises `Busy` with what the visitor can do), runs `work` in a thread and
frees the slot in a `finally`, so a crash never leaves the app stuck "busy".

Who may do what: a job belongs to the session that started it and to any later session that
presents its run token (an unguessable string the page keeps in the browser, so a reload can
re-attach; compared in constant time). Only an owner can stop it; a heartbeat extends only the
job whose token it carries. A watchdog stops the holder at the policy's `max_hold_s`, and when
no page of its owner has sent a heartbeat for `owner_grace_s` (the owner has gone).
Nothing here knows about Gradio.
"""
from __future__ import annotations

import copy
import enum
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from typing import Callable

from . import redact, texts
from ..errors import UserError


class JobState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


RUNNING, DONE, STOPPED, FAILED = JobState  # the names the modules and tests have always used


@dataclass(frozen=True)
class SlotPolicy:
    """How long anyone may hold the one training slot. A public app (a Space) stops whatever
    holds it past `max_hold_s`, and a job whose owner's page has sent no heartbeat for
    `owner_grace_s` (closed, or an API client that never opened one), so the slot is always
    released; `python app.py --local` lifts both."""
    max_hold_s: float | None = 15 * 60
    # A page pings every HEARTBEAT_S; a hidden browser tab may be throttled to one timer a minute
    # (Chrome's intensive throttling), so the grace is well over a minute, and a reload fits in it.
    owner_grace_s: float | None = 90.0
    check_every_s: float = 1.0   # how often the watchdog looks (a few checks per grace at least)

    def describe(self) -> str:
        if self.max_hold_s is None:
            return "no time limit (local app)"
        return f"at most {self.max_hold_s / 60:g} minutes per run or experiment"


PUBLIC_SLOT, LOCAL_SLOT = SlotPolicy(), SlotPolicy(max_hold_s=None, owner_grace_s=None)
HEARTBEAT_S = 10.0  # the page's heartbeat (a gr.Timer): well inside owner_grace_s
MAX_TOKEN_CHARS = 128  # a run token is 43 characters; anything longer is not one


class Busy(RuntimeError):
    pass


class NotOwner(UserError, PermissionError):
    """The job belongs to another visitor's session."""


@dataclass
class JobSnapshot:
    """What every job shows: its state and its latest message; job types add their fields."""
    state: JobState = RUNNING
    message: str = "starting"

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    def copy(self) -> "JobSnapshot":
        """A copy observers may keep: lists and dicts copied, results (read-only) shared."""
        return replace(self, **{f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                                if isinstance(getattr(self, f.name), (list, dict))})


def valid_token(token) -> str | None:
    """`token` if it could be a run token (a short text), else None: a client sends anything."""
    return token if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS else None


class Job:
    """One holder of the slot. Subclasses set `kind` and `noun` and fill the snapshot."""
    kind, noun = "run", "run"  # kind: for the slot's texts ("run" or "experiment")

    def __init__(self, owner: str, snapshot: JobSnapshot | None = None,
                 on_stop: Callable[[str | None], None] | None = None):
        self.owners = [owner]  # the starter first; sessions that re-attached with the token after
        self.token = secrets.token_urlsafe(32)  # the page's proof of ownership, kept in its browser
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None  # set when the slot's policy stopped the job
        self.seen_at = 0.0  # the slot's clock at the last sign of an owner's page
        self._on_stop = on_stop
        self._cond = threading.Condition()
        self._snap, self._version = snapshot or JobSnapshot(), 0
        self.thread: threading.Thread | None = None

    @property
    def owner(self) -> str:
        return self.owners[0]

    def owned_by(self, owner) -> bool:
        return isinstance(owner, str) and owner in self.owners

    def has_token(self, token) -> bool:
        token = valid_token(token)
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    # -------------------------------------------------------------- observing
    def snapshot(self) -> JobSnapshot:
        with self._cond:
            return self._snap.copy()

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def wait(self, seen_version: int, timeout: float = 1.0) -> int:
        """Block until the version moves past `seen_version` (or timeout); returns the version."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen_version, timeout)
            return self._version

    def _update(self, **changes) -> None:
        self.apply(lambda snap: [setattr(snap, k, v) for k, v in changes.items()])

    def apply(self, change: Callable[[JobSnapshot], object]) -> None:
        """Change the snapshot in place under the lock, and wake the observers."""
        with self._cond:
            change(self._snap)
            self._version += 1
            self._cond.notify_all()

    def note(self) -> str | None:
        """How far it has got, for every visitor's slot line (nothing private)."""
        return self.snapshot().message

    def stop(self, reason: str | None = None) -> None:
        self.stop_reason = reason
        self.stop_event.set()
        self._update(message=f"{reason}: stopping after the current step" if reason
                     else "stopping after the current step")
        if self._on_stop is not None:
            self._on_stop(reason)


class TrainingSlot:
    """The single training slot shared by every visitor of one app process. `clock` is
    injectable so tests can move time instead of waiting for it."""

    def __init__(self, policy: SlotPolicy = PUBLIC_SLOT, clock: Callable[[], float] = time.monotonic):
        self.policy, self.clock = policy, clock
        self._lock = threading.Lock()   # held for as long as a job holds the slot
        self._guard = threading.Lock()  # guards the fields below
        self.current: Job | None = None  # the job holding the slot, or the last one that did
        self._held_since: float | None = None
        self._released: threading.Event | None = None
        self._watchdog: threading.Thread | None = None
        # owner -> their latest job per kind, and the jobs whose token a reloaded page may present
        self._latest: OrderedDict[tuple[str, str], Job] = OrderedDict()
        self._recent: list[Job] = []

    KEEP_OWNERS, KEEP_RECENT = 512, 16

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    # -------------------------------------------------------------- holding
    def hold(self, job: Job) -> bool:
        """Take the slot for `job`; False when busy. Whoever gets it must call `release`."""
        if not self._lock.acquire(blocking=False):
            return False
        now = self.clock()
        with self._guard:
            self.current, self._held_since, job.seen_at = job, now, now
            for owner in job.owners:
                self._remember(owner, job)
            self._recent = [*self._recent, job][-self.KEEP_RECENT:]
            if self.policy.max_hold_s is not None or self.policy.owner_grace_s is not None:
                self._released = threading.Event()
                self._watchdog = threading.Thread(target=self._watch, args=(job, self._released),
                                                  name="cifar_s9-slot-watchdog", daemon=True)
                self._watchdog.start()
        return True

    def release(self) -> None:
        with self._guard:
            if self._released is not None:
                self._released.set()
            self._held_since, self._released, self._watchdog = None, None, None
        self._lock.release()

    def acquire_slot(self, owner: str, kind: str = "experiment",
                     stop: Callable[[str | None], None] | None = None) -> bool:
        """Hold the slot for work that runs elsewhere (`stop(reason)` is how the watchdog ends
        it); False when busy. Release it with `release_slot`."""
        job = Job(owner, on_stop=stop)
        job.kind = job.noun = kind
        return self.hold(job)

    def release_slot(self) -> None:
        self.release()

    def run(self, job: Job, work: Callable[[], dict], before: Callable[[], None] | None = None) -> Job:
        """Hold the slot for `job`, call `before()`, and run `work` (returning the final snapshot
        changes) in a thread; the slot is free before observers see the final state. Busy when
        the slot is taken."""
        if not self.hold(job):
            raise Busy(self.busy_message(job.owner))

        def target():
            final = dict(state=FAILED, error="interrupted", message=f"the {job.noun} was interrupted")
            try:
                final = work()
            finally:  # free the slot first, so whoever sees the final state can start again at once
                self.release()
                job._update(**final)

        try:
            if before is not None:
                before()
            job.thread = threading.Thread(target=target, name=f"cifar_s9-{job.kind}", daemon=True)
            job.thread.start()
        except BaseException:
            self.release()
            raise
        return job

    # -------------------------------------------------------------- the watchdog
    def _watch(self, job: Job, released: threading.Event) -> None:
        while not released.wait(self.policy.check_every_s):
            if self.check(job) is not None:
                return

    def check(self, job: Job | None = None) -> str | None:
        """Stop the holder if it is past the hold limit or its owner has gone; the reason, or
        None. The watchdog calls this every `check_every_s`; tests call it after moving the clock."""
        with self._guard:
            holder, since = self.current, self._held_since
        if holder is None or since is None or (job is not None and holder is not job) \
                or holder.stop_event.is_set():
            return None
        now, p = self.clock(), self.policy
        reason = None
        if p.max_hold_s is not None and now - since >= p.max_hold_s:
            reason = f"stopped at the shared slot's limit of {p.max_hold_s / 60:g} minutes"
        elif p.owner_grace_s is not None and now - holder.seen_at >= p.owner_grace_s:
            reason = f"stopped because its page was closed (no sign of it for {p.owner_grace_s:.0f} s)"
        if reason is not None:
            holder.stop(reason)
        return reason

    def hold_left_s(self) -> float | None:
        """Seconds before whatever holds the slot is stopped; None when free or unlimited."""
        since = self._held_since
        if since is None or self.policy.max_hold_s is None:
            return None
        return max(0.0, self.policy.max_hold_s - (self.clock() - since))

    # -------------------------------------------------------------- owners
    def _remember(self, owner: str, job: Job) -> None:
        key = (owner, job.kind)
        self._latest.pop(key, None)
        self._latest[key] = job
        while len(self._latest) > self.KEEP_OWNERS:
            self._latest.popitem(last=False)

    def latest(self, owner: str, kind: str) -> Job | None:
        """`owner`'s latest job of `kind` (started or re-attached), running or not."""
        with self._guard:
            return self._latest.get((owner, kind)) if isinstance(owner, str) else None

    def find(self, token) -> Job | None:
        """The recent job whose token this is: every candidate compared in constant time."""
        with self._guard:
            recent = list(self._recent)
        found = None
        for job in recent:
            if job.has_token(token):  # no early exit: the time taken says nothing of which matched
                found = job
        return found

    def attach(self, token, owner: str) -> Job | None:
        """A page (a reload, a second tab) presents `token`: its session becomes an owner of
        that job (stop, results, activation) and it counts as a sign of life. None for a
        token of no recent job, which changes nothing."""
        job = self.find(token)
        if job is None or not isinstance(owner, str) or not owner:
            return None
        with self._guard:
            if owner not in job.owners:
                job.owners.append(owner)
            self._remember(owner, job)
            job.seen_at = self.clock()
        return job

    def heartbeat(self, token) -> bool:
        """The page of a job's owner is still open: extends the job that holds `token` only, and
        only while it holds the slot. A token of no such job changes nothing."""
        with self._guard:
            holder = self.current if self.busy else None
        if holder is None or not holder.has_token(token):
            return False
        holder.seen_at = self.clock()
        return True

    def seen(self, owner) -> bool:
        """A request from one of the holder's owner sessions (an API client polling its own
        experiment's status): a sign of life for that job only; anyone else's changes nothing."""
        holder = self.holder()
        if holder is None or not holder.owned_by(owner):
            return False
        holder.seen_at = self.clock()
        return True

    def stop(self, owner: str, kind: str | None = None) -> bool:
        """Ask the holder (of `kind`, if given) to stop; False when nothing of this owner's is
        running; NotOwner when it belongs to another session (which is told nothing about it)."""
        job = self.holder()
        if job is None or job.snapshot().finished:
            return False
        if job.owned_by(owner) and kind is not None and job.kind != kind:
            return False
        if not job.owned_by(owner):
            raise NotOwner(f"The {job.noun} in progress was started by another visitor; only they can stop it.")
        job.stop()
        return True

    # -------------------------------------------------------------- texts
    def holder(self) -> Job | None:
        with self._guard:
            return self.current if self.busy else None

    def status(self, owner: str) -> str:
        """The slot line every tab shows: free, or whose job holds it, how far it is, how long
        at most it may still hold the slot."""
        job = self.holder()
        if job is None:
            return texts.slot_status(False, False, limit=self.policy.describe())
        note = job.note()
        return texts.slot_status(True, job.owned_by(owner), redact.scrub(note) if note else None,
                                 job.kind, self.hold_left_s())

    def busy_message(self, owner: str) -> str:
        """Why a start was refused, and what this visitor can do about it."""
        job = self.holder()
        if job is not None and job.owned_by(owner):
            return (f"Your {job.noun} is already in progress in the training slot; stop it "
                    "(its Stop button) before starting another.")
        eta = getattr(job.snapshot(), "eta_s", None) if job is not None else None
        return texts.busy_text(job.noun if job is not None else "run", self.hold_left_s(), eta)
