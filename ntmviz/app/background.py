"""The one pool of threads the app's background work runs on.

In a served app, work that would block a session's event loop for long (recording an episode,
reading an uploaded file, drawing a figure, reading a sweep folder, recording a pair for
Compare) is submitted here; its result goes back to the session through
`doc.add_next_tick_callback`, the one thread-safe way into a Bokeh document. Every session of the
process shares the pool, so however many pages are open the work runs on `WORKERS` threads and
the rest waits its turn rather than slowing the others.

    from . import background
    background.submit(work)          # -> concurrent.futures.Future

Each thread runs torch with one intra-op thread (`torch.set_num_threads` counts per calling
thread, so the server's own threads keep theirs). Measured on a 2-core machine: recording
n-grams at 4999 steps took 5.7 s of CPU with one thread and 7.8 s with two, and with two threads
under load the wall time balloons (OpenMP threads spin against the server's and the training
threads).

The pool is made on first use: importing ntmviz.app starts no thread. An exception a job lets
escape is logged with its traceback (the jobs here catch their own and report them to the page;
this is the net under them).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger(__name__)

# CPU-bound jobs of one torch thread each: as many as there are cores, but at least 2 (so one long
# recording never holds up a figure or a sweep read) and at most 4 (so the event loops of many
# sessions, and a live training run, keep cores of their own).
WORKERS = max(2, min(4, os.cpu_count() or 2))
THREAD_PREFIX = "ntmviz-background"

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def executor() -> ThreadPoolExecutor:
    """The process's one pool (made on first call)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=THREAD_PREFIX,
                                           initializer=_one_torch_thread)
        return _executor


def _log_failure(future: Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        log.error("ntmviz: a background job failed", exc_info=(type(exc), exc, exc.__traceback__))


def submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Run `fn(*args, **kwargs)` on the pool."""
    future = executor().submit(fn, *args, **kwargs)
    future.add_done_callback(_log_failure)
    return future
