"""``WorkerPool``: bounded threads, bounded queue, draining."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

import pytest
from bridge_harness import DEADLINE

from asgishift.bridge._pool import WorkerPool


def blocker(gate: threading.Event, started: threading.Semaphore) -> Callable[[], None]:
    def job() -> None:
        started.release()
        assert gate.wait(DEADLINE)

    return job


def test_capacity_is_workers_plus_queue_and_threads_start_lazily() -> None:
    pool = WorkerPool(max_workers=2, max_queue=1)
    gate, started = threading.Event(), threading.Semaphore(0)
    assert pool.threads == 0
    assert pool.submit(blocker(gate, started))
    assert pool.threads == 1
    assert pool.submit(blocker(gate, started))
    assert pool.threads == 2
    assert started.acquire(timeout=DEADLINE)
    assert started.acquire(timeout=DEADLINE)
    assert not pool.queued  # two jobs, two threads
    assert pool.submit(blocker(gate, started))  # queued
    assert pool.threads == 2
    assert pool.queued
    assert not pool.submit(lambda: None)  # full
    assert pool.in_flight == 3
    idle = threading.Event()
    pool.when_idle(idle.set)
    gate.set()
    assert idle.wait(DEADLINE)
    assert pool.in_flight == 0
    assert not pool.queued
    pool.stop_threads()


def test_idle_thread_is_reused() -> None:
    pool = WorkerPool(max_workers=4, max_queue=0)
    names: list[str] = []
    for _ in range(5):
        done = threading.Event()

        def job(done: threading.Event = done) -> None:
            names.append(threading.current_thread().name)
            done.set()

        assert pool.submit(job)
        assert done.wait(DEADLINE)
        idle = threading.Event()
        pool.when_idle(idle.set)
        assert idle.wait(DEADLINE)
    assert pool.threads == 1
    assert len(set(names)) == 1
    pool.stop_threads()


def test_close_refuses_and_reopen_accepts() -> None:
    pool = WorkerPool(max_workers=1, max_queue=0)
    pool.close()
    assert pool.closing
    assert not pool.submit(lambda: None)
    pool.reopen()
    done = threading.Event()
    assert pool.submit(done.set)
    assert done.wait(DEADLINE)
    pool.stop_threads()


def test_when_idle_runs_at_once_without_jobs() -> None:
    pool = WorkerPool(max_workers=1, max_queue=0)
    called: list[bool] = []
    pool.when_idle(lambda: called.append(True))
    assert called == [True]


def test_stop_threads_lets_workers_exit() -> None:
    pool = WorkerPool(max_workers=3, max_queue=0, name="pool-test-stop")
    gate, started = threading.Event(), threading.Semaphore(0)
    for _ in range(3):
        assert pool.submit(blocker(gate, started))
    for _ in range(3):
        assert started.acquire(timeout=DEADLINE)
    workers = [t for t in threading.enumerate() if t.name.startswith("pool-test-stop")]
    assert len(workers) == 3
    gate.set()
    pool.stop_threads()
    for worker in workers:
        worker.join(DEADLINE)
        assert not worker.is_alive()
    assert pool.threads == 0


def test_raising_job_is_logged_and_thread_survives(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkerPool(max_workers=1, max_queue=0)

    def bad() -> None:
        raise RuntimeError("job failed")

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        assert pool.submit(bad)
        done = threading.Event()
        idle = threading.Event()
        pool.when_idle(idle.set)
        assert idle.wait(DEADLINE)
        assert pool.submit(done.set)
        assert done.wait(DEADLINE)
    assert "job failed" in caplog.text
    assert pool.threads == 1
    pool.stop_threads()


@pytest.mark.parametrize(
    ("workers", "queue"),
    [pytest.param(0, 0, id="no-workers"), pytest.param(1, -1, id="negative-queue")],
)
def test_invalid_sizes(workers: int, queue: int) -> None:
    with pytest.raises(ValueError, match="max_"):
        WorkerPool(workers, queue)


def test_follow_up_runs_once_the_job_no_longer_counts() -> None:
    pool = WorkerPool(max_workers=1, max_queue=0)
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def follow_up() -> None:
        seen.append((pool.in_flight, threading.current_thread().name))
        done.set()

    def job() -> Callable[[], None]:
        seen.append((pool.in_flight, threading.current_thread().name))
        return follow_up

    assert pool.submit(job)
    assert done.wait(DEADLINE)
    (busy, job_thread), (free, follow_up_thread) = seen
    assert (busy, free) == (1, 0)
    assert follow_up_thread == job_thread
    pool.stop_threads()


def test_raising_follow_up_is_logged_and_thread_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = WorkerPool(max_workers=1, max_queue=0)

    def bad_follow_up() -> None:
        raise RuntimeError("follow-up failed")

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        assert pool.submit(lambda: bad_follow_up)
        idle = threading.Event()
        pool.when_idle(idle.set)
        assert idle.wait(DEADLINE)
        done = threading.Event()
        assert pool.submit(done.set)
        assert done.wait(DEADLINE)
    assert "follow-up failed" in caplog.text
    assert pool.threads == 1
    pool.stop_threads()


def test_a_burst_of_blocking_jobs_reaches_every_thread() -> None:
    """Every thread of the pool runs at once when the jobs block (none waits behind another)."""
    workers = 6
    pool = WorkerPool(max_workers=workers, max_queue=0)
    for _ in range(2):  # the second round finds every thread idle
        _all_at_once(pool, workers)
    assert pool.threads == workers
    pool.stop_threads()


def _all_at_once(pool: WorkerPool, count: int) -> None:
    """Run ``count`` jobs that each wait until all of them run (fails unless they can)."""
    barrier = threading.Barrier(count)
    done = threading.Semaphore(0)

    def meet() -> None:
        barrier.wait(DEADLINE)  # breaks (and the test fails) unless all run at once
        done.release()

    for _ in range(count):
        assert pool.submit(meet)
    for _ in range(count):
        assert done.acquire(timeout=DEADLINE)
    assert not barrier.broken


def test_stopped_threads_still_run_the_jobs_queued_ahead() -> None:
    pool = WorkerPool(max_workers=1, max_queue=2, name="pool-test-drain")
    gate, started = threading.Event(), threading.Semaphore(0)
    assert pool.submit(blocker(gate, started))
    assert started.acquire(timeout=DEADLINE)
    ran = [threading.Event(), threading.Event()]
    assert pool.submit(ran[0].set)
    assert pool.submit(ran[1].set)
    assert pool.queued
    worker = next(t for t in threading.enumerate() if t.name.startswith("pool-test-drain"))
    pool.stop_threads()
    assert pool.threads == 0
    gate.set()
    assert ran[0].wait(DEADLINE)
    assert ran[1].wait(DEADLINE)
    worker.join(DEADLINE)
    assert not worker.is_alive()


def _one_at_a_time(pool: WorkerPool, count: int) -> list[str]:
    """Run ``count`` jobs one after another, as sequential requests do; return their threads.

    Each next job is submitted from the follow-up's signal, as the bridge's event loop
    submits the next request once the previous one's end is posted.
    """
    names: list[str] = []
    for _ in range(count):
        posted = threading.Event()

        def job(posted: threading.Event = posted) -> Callable[[], None]:
            names.append(threading.current_thread().name)
            return posted.set

        assert pool.submit(job)
        assert posted.wait(DEADLINE)
    return names


def test_jobs_one_at_a_time_after_a_burst_stay_on_one_thread() -> None:
    """After a burst started many threads, sequential jobs do not rotate over them.

    Idle threads on the shared queue are woken first in, first out; the hot thread
    (the last to finish) takes the next job instead, so its stack stays in the caches.
    """
    workers = 8
    pool = WorkerPool(max_workers=workers, max_queue=0, name="pool-test-hot")
    _all_at_once(pool, workers)
    assert pool.threads == workers
    names = _one_at_a_time(pool, 3 * workers)
    assert len(set(names)) == 1
    pool.stop_threads()


def test_stop_threads_ends_the_hot_thread() -> None:
    pool = WorkerPool(max_workers=2, max_queue=0, name="pool-test-hot-stop")
    _one_at_a_time(pool, 2)
    workers = [t for t in threading.enumerate() if t.name.startswith("pool-test-hot-stop")]
    assert [t.name for t in workers] == ["pool-test-hot-stop-1"]
    pool.stop_threads()
    workers[0].join(DEADLINE)
    assert not workers[0].is_alive()
    # A new job starts a fresh thread.
    assert _one_at_a_time(pool, 1) == ["pool-test-hot-stop-2"]
    pool.stop_threads()


def test_a_queued_job_is_not_left_behind_by_a_thread_turning_hot() -> None:
    """A thread that finishes while a job waits runs it instead of becoming the hot thread."""
    pool = WorkerPool(max_workers=1, max_queue=5)
    for _ in range(50):
        gate, started = threading.Event(), threading.Semaphore(0)
        ran = threading.Event()
        assert pool.submit(blocker(gate, started))
        assert started.acquire(timeout=DEADLINE)
        assert pool.submit(ran.set)  # waits behind the only thread
        gate.set()
        assert ran.wait(DEADLINE)
    pool.stop_threads()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_pool_used_before_fork_runs_jobs_in_the_child() -> None:
    """The parent's threads (its hot thread too) do not exist in a forked child."""
    pool = WorkerPool(max_workers=2, max_queue=0, name="pool-test-fork")
    _one_at_a_time(pool, 2)  # the parent now has a hot thread
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 3
        try:
            ran = threading.Event()
            code = 0 if pool.submit(ran.set) and ran.wait(DEADLINE) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # 1: the job never ran
    assert _one_at_a_time(pool, 1) == ["pool-test-fork-1"]  # the parent's pool is untouched
    pool.stop_threads()


def test_a_burst_wakes_one_idle_thread_at_a_time() -> None:
    """Jobs submitted while an idle thread is on its way wait for it (or a running thread).

    Waking an idle thread per job costs two context switches per job when the
    jobs are short; Python 3.13's ``queue.SimpleQueue`` hands each item to a
    sleeping getter, which made a burst of 50 requests twice as dear. The
    switch interval is raised so that the woken thread cannot take the GIL
    while this thread submits.
    """
    idle = 4
    pool = WorkerPool(max_workers=2 * idle, max_queue=10, name="pool-test-burst")
    _all_at_once(pool, idle)  # four threads, all idle now
    done = threading.Semaphore(0)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        for _ in range(6):
            assert pool.submit(done.release)
        after_burst = (len(pool._idle), len(pool._backlog), pool.threads)
    finally:
        sys.setswitchinterval(interval)
    for _ in range(6):
        assert done.acquire(timeout=DEADLINE)
    # One idle thread woken with the first job, five jobs waiting, no thread started.
    assert after_burst == (idle - 1, 5, idle)
    pool.stop_threads()


@pytest.mark.parametrize("submitters", [1, 4])
def test_every_job_of_many_short_bursts_runs(submitters: int) -> None:
    """No job waits for ever, whatever the order of submits, wake-ups and finishing threads.

    Bursts of jobs, some of which block for a moment, from one or several
    threads, the pool idle between bursts: a job left in the backlog with every
    thread idle and none on its way would never run, and the test would fail on
    the first such job.
    """
    pool = WorkerPool(max_workers=6, max_queue=10_000, name="pool-test-stress")
    per_submitter = 600
    done = threading.Semaphore(0)
    pause = threading.Event()  # never set: wait() is a short sleep that drops the GIL

    def short() -> None:
        done.release()

    def blocking() -> None:
        pause.wait(0.0005)
        done.release()

    def submit_all(seed: int) -> None:
        for index in range(per_submitter):
            assert pool.submit(blocking if (index * 7 + seed) % 11 == 0 else short)
            if index % 50 == 49:  # let every thread go idle between bursts
                idle = threading.Event()
                pool.when_idle(idle.set)
                assert idle.wait(DEADLINE)

    threads = [threading.Thread(target=submit_all, args=(seed,)) for seed in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    for _ in range(submitters * per_submitter):
        assert done.acquire(timeout=DEADLINE)
    idle = threading.Event()
    pool.when_idle(idle.set)
    assert idle.wait(DEADLINE)
    assert pool.in_flight == 0
    pool.stop_threads()
