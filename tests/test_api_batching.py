"""api.batching.Batcher: calls that arrive together run as one batch, each gets its own answer."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.batching import Batcher


class Recorder:
    """A batch function that records the batches it ran and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.threads: set[str] = set()

    def __call__(self, items):  # noqa: ANN001, ANN204
        self.release.wait(5)
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


@pytest.fixture
def executor():
    pool = ThreadPoolExecutor(4, thread_name_prefix="batch-test")
    yield pool
    pool.shutdown(wait=True)


def test_a_lone_call_runs_at_once_in_the_executor(executor):
    run = Recorder()
    batcher = Batcher(run, lambda: executor)
    assert asyncio.run(batcher(4)) == 40
    assert run.batches == [[4]]
    assert all(name.startswith("batch-test") for name in run.threads)


def test_calls_waiting_together_share_a_batch_and_keep_their_own_answers(executor):
    run = Recorder()
    batcher = Batcher(run, lambda: executor, max_running=1)

    async def main():  # noqa: ANN202
        run.release.clear()  # the first batch holds the only slot while the others arrive
        first = asyncio.ensure_future(batcher(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher(i)) for i in range(1, 9)]
        await asyncio.sleep(0.05)
        run.release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(main())
    assert run.batches == [[0], [1, 2, 3, 4, 5, 6, 7, 8]]
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, ValueError) and str(result) == f"odd {i}"
        else:
            assert result == i * 10


def test_batches_are_capped_and_run_at_most_max_running_at_once(executor):
    running, peak, sizes = 0, 0, []
    lock = threading.Lock()
    gate = threading.Event()

    def run(items):  # noqa: ANN001, ANN202
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            sizes.append(len(items))
        gate.wait(5)
        with lock:
            running -= 1
        return list(items)

    batcher = Batcher(run, lambda: executor, max_batch=3, max_running=2)

    async def main():  # noqa: ANN202
        calls = [asyncio.ensure_future(batcher(i)) for i in range(10)]
        await asyncio.sleep(0.1)
        gate.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(main()) == list(range(10))
    assert peak == 2
    assert max(sizes) == 3 and sum(sizes) == 10


def test_a_failing_batch_fails_each_of_its_calls_and_the_next_batch_still_runs(executor):
    calls = 0

    def run(items):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return [i for i in items]

    batcher = Batcher(run, lambda: executor)

    async def main():  # noqa: ANN202
        first = await asyncio.gather(batcher(1), return_exceptions=True)
        second = await batcher(2)
        return first, second

    (first,), second = asyncio.run(main())
    assert isinstance(first, ConnectionError)
    assert second == 2


def test_a_wrong_number_of_results_is_an_error_not_a_misattributed_answer(executor):
    bad = Batcher(lambda items: list(items) + [99], lambda: executor)
    with pytest.raises(RuntimeError, match="2 results for 1 items"):
        asyncio.run(bad(5))


def test_a_cancelled_call_does_not_disturb_the_others(executor):
    run = Recorder()
    batcher = Batcher(run, lambda: executor, max_running=1)

    async def main():  # noqa: ANN202
        run.release.clear()
        first = asyncio.ensure_future(batcher(0))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher(2))
        kept = asyncio.ensure_future(batcher(4))
        await asyncio.sleep(0.01)
        gone.cancel()
        run.release.set()
        return await first, await kept, gone.cancelled()

    assert asyncio.run(main()) == (0, 40, True)
    assert [4] in run.batches and all(2 not in b for b in run.batches)


def test_a_shut_down_executor_answers_with_its_error(executor):
    executor.shutdown()
    batcher = Batcher(lambda items: list(items), lambda: executor)
    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(batcher(1))


def test_each_event_loop_has_its_own_queue(executor):
    run = Recorder()
    batcher = Batcher(run, lambda: executor)
    assert asyncio.run(batcher(2)) == 20
    assert asyncio.run(batcher(4)) == 40  # a second loop (a new TestClient, a second server thread)
    assert run.batches == [[2], [4]]


def test_limits_are_checked():
    with pytest.raises(ValueError):
        Batcher(lambda items: items, lambda: None, max_batch=0)  # type: ignore[arg-type, return-value]
