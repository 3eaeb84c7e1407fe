"""Calls that arrive together, run together: group commit for reads.

An event loop serving many clients at once has several record reads waiting at any moment under
load. :class:`Batcher` runs them as one call of ``run(items)`` in a worker thread (one database
round trip for all, one thread hand-off each way for the whole batch) instead of one per request.
It adds no wait: a call that arrives while fewer than ``max_running`` batches are running starts
a batch at once (alone, when the server is quiet); calls arriving meanwhile queue and go in the
next batch as soon as one finishes. Every item still gets its own answer: ``run`` returns one
result (or exception) per item, in order; an exception raised by ``run`` itself goes to every
item of that batch.
"""
from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _LoopQueue(Generic[T, R]):
    """One event loop's waiting items and running batches (touched only on that loop)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.running = 0


class Batcher(Generic[T, R]):
    """``await batcher(item)``: ``item``'s result from ``run(items)``, run in ``executor`` with
    the items that arrived with it (see the module doc). Usable from several event loops."""

    def __init__(self, run: Callable[[Sequence[T]], Sequence[R | BaseException]], executor: Callable[[], Executor],
                 *, max_batch: int = 64, max_running: int = 2) -> None:
        if max_batch < 1 or max_running < 1:
            raise ValueError("max_batch and max_running must be at least 1")
        self._run, self._executor = run, executor
        self.max_batch, self.max_running = max_batch, max_running
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[T, R]] = \
            weakref.WeakKeyDictionary()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        future: asyncio.Future[R] = loop.create_future()
        queue.waiting.append((item, future))
        if queue.running < self.max_running:
            self._start(loop, queue)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop, queue: _LoopQueue[T, R]) -> None:
        batch = [(item, fut) for item, fut in queue.waiting[:self.max_batch] if not fut.cancelled()]
        del queue.waiting[:self.max_batch]
        if not batch:
            return
        queue.running += 1
        try:
            done = loop.run_in_executor(self._executor(), self._run, [item for item, _ in batch])
        except BaseException as exc:  # the executor is shut down: answer, never strand a caller
            queue.running -= 1
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        done.add_done_callback(lambda f: self._finished(loop, queue, batch, f))

    def _finished(self, loop: asyncio.AbstractEventLoop, queue: _LoopQueue[T, R],
                  batch: list[tuple[T, asyncio.Future[R]]], done: asyncio.Future) -> None:
        queue.running -= 1
        failure = done.exception() if not done.cancelled() else asyncio.CancelledError()
        results: Sequence[R | BaseException] = [failure] * len(batch) if failure is not None else done.result()
        if failure is None and len(results) != len(batch):
            results = [RuntimeError(f"batch answered {len(results)} results for {len(batch)} items")] * len(batch)
        for (_, fut), result in zip(batch, results):
            if fut.done():  # the caller went away (cancelled)
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        while queue.waiting and queue.running < self.max_running:
            self._start(loop, queue)
