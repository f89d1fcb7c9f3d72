"""The worker pool: its threads can be started before the first burst, and it still runs jobs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bot.flows.worker import Worker, start_threads


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_start_threads_starts_every_thread_of_the_pool():
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="prestart-pool")
    try:
        start_threads(pool, 6)
        assert len(_threads("prestart-pool")) == 6
    finally:
        pool.shutdown()


def test_a_warmed_worker_runs_jobs():
    worker = Worker(max_workers=3, name="prestart-worker")
    try:
        worker.start_threads()
        assert len(_threads("prestart-worker")) == 3
        assert worker.submit(lambda x: x * 2, 21).result(timeout=10) == 42
        assert worker.wait_idle(timeout=10)
    finally:
        worker.shutdown()
