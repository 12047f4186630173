"""Concurrent requests for the same network run as one batch (issue 25: faster serving under load).

A 32x32 forward pass is mostly per-call overhead: on the 2-core machine one image's logits cost
2.7 ms and four images' 7.3 ms (1.8 ms each); one Grad-CAM 13.7 ms and four 24.5 ms (6.1 ms
each). So when several handlers ask for the same kind of work at once, one of them runs it for
all of them.

The batching is opportunistic and never waits on a timer: a call whose kind of work is not
running starts at once with everything queued for it; a call that finds it running queues and
is taken by the next batch. An idle server answers one request exactly as before; a busy one
answers several per pass. At most `max_batch` items go in one pass, and a failed batch is retried
item by item, so one bad item fails only its own request.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

RunBatch = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


@dataclass(eq=False)
class _Call:
    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True


@dataclass(eq=False)
class Coalescer:
    """`coalescer(key, item)` returns `run_batch(key, items)[i]` for its item, where `items`
    are the items of the calls with the same key that were waiting together (oldest first).
    `run_batch` must give each item the result it would get alone."""
    run_batch: RunBatch
    max_batch: int = 8
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _waiting: dict = field(default_factory=dict, repr=False)   # key -> [_Call], oldest first
    _running: set = field(default_factory=set, repr=False)     # keys with a batch in flight
    batches: int = 0   # passes run (tests and the benchmark read them)
    items: int = 0     # items answered in them

    def __call__(self, key: Hashable, item: Any) -> Any:
        call = _Call(item)
        with self._cond:
            self._waiting.setdefault(key, []).append(call)
        while True:
            with self._cond:
                while not call.done and key in self._running:
                    self._cond.wait()
                if call.done:
                    break
                batch = self._take(key)
            self._run(key, batch)
        if call.error is not None:
            raise call.error
        return call.result

    def waiting(self, key: Hashable) -> int:
        """Calls of `key` queued for the next pass."""
        with self._cond:
            return len(self._waiting.get(key, ()))

    def _take(self, key: Hashable) -> list[_Call]:
        """The oldest waiting calls of `key` (this caller's among them, or before it); the caller
        holds the lock and becomes the key's runner."""
        queue = self._waiting[key]
        batch, queue[:] = queue[:self.max_batch], queue[self.max_batch:]
        if not queue:
            del self._waiting[key]
        self._running.add(key)
        return batch

    def _run(self, key: Hashable, batch: list[_Call]) -> None:
        try:
            self._answer(key, batch)
        finally:
            with self._cond:
                self._running.discard(key)
                self.batches += 1
                self.items += len(batch)
                self._cond.notify_all()

    def _answer(self, key: Hashable, batch: list[_Call]) -> None:
        try:
            results = list(self.run_batch(key, [c.item for c in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch gave {len(results)} results for {len(batch)} items")
        except BaseException as error:  # noqa: BLE001 (each caller gets its own outcome)
            if len(batch) == 1:
                batch[0].settle(error=error)
                return
            for call in batch:  # one bad item fails only its own request
                try:
                    call.settle(result=self.run_batch(key, [call.item])[0])
                except BaseException as own:  # noqa: BLE001
                    call.settle(error=own)
            return
        for call, result in zip(batch, results):
            call.settle(result=result)
