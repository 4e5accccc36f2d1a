"""Background work goes through one pool (ntmviz/app/background.py): recordings and uploads of the
Sources panel, figures the browser asks for, and the Sweep tab's reads run on its threads (one torch
thread each), and their results come back through the session's next-tick callback."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import panel as pn
import pytest
import torch

from ntmviz.app import background

APP = Path(background.__file__).resolve().parent


def test_one_pool_for_the_process():
    pool = background.executor()
    assert pool is background.executor() and pool._max_workers == background.WORKERS
    names = set()

    def job():
        names.add(threading.current_thread().name)
        time.sleep(0.05)  # long enough that the jobs overlap and every thread takes some
        return torch.get_num_threads()

    results = [f.result(timeout=60) for f in [background.submit(job) for _ in range(3 * background.WORKERS)]]
    assert results == [1] * len(results)  # one torch thread each
    assert 1 < len(names) <= background.WORKERS and all(n.startswith(background.THREAD_PREFIX) for n in names)
    assert torch.get_num_threads() >= 1  # the caller's own count is its own


def test_a_job_that_raises_is_logged(caplog):
    def broken():
        raise RuntimeError("a bug in a job")

    with caplog.at_level(logging.ERROR, logger=background.log.name):
        future = background.submit(broken)
        with pytest.raises(RuntimeError):
            future.result(timeout=30)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:  # the callback runs just after
            time.sleep(0.01)
    [record] = caplog.records
    assert "a bug in a job" in str(record.exc_info[1])


def test_no_other_pool_in_the_app():
    for path in sorted(APP.glob("*.py")):
        if path.name == "background.py":
            continue
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"ThreadPoolExecutor\(|ProcessPoolExecutor\(|run_in_executor\(", source), path.name


class Session:
    """A served session as the app sees it (a document with a session context): the callbacks it
    is handed, and the thread each was handed from."""

    session_context = SimpleNamespace(id="a-session", request=SimpleNamespace(arguments={}, cookies={}, headers={}))

    def __init__(self):
        self.callbacks: list[tuple[str, object]] = []

    def add_next_tick_callback(self, callback):
        self.callbacks.append((threading.current_thread().name, callback))

    def run(self, count: int = 1, timeout: float = 60.0) -> list[str]:
        """Wait for `count` callbacks, run them here (the session's loop) and return the threads."""
        deadline = time.monotonic() + timeout
        while len(self.callbacks) < count:
            assert time.monotonic() < deadline, "no callback came back from the background"
            time.sleep(0.02)
        done, self.callbacks = self.callbacks, []
        for _, callback in done:
            callback()
        return [name for name, _ in done]


@pytest.fixture
def session():
    fake = Session()
    pn.state.curdoc = fake
    try:
        yield fake
    finally:
        pn.state.curdoc = None


def test_sources_record_in_the_background(session, checkpoint_dir, episode):
    from ntmviz.app import Playback
    from ntmviz.app.sources import Sources

    state = Playback(episode)
    sources = Sources(state, folder=checkpoint_dir)
    sources.length.value = "3"
    sources.start_run()
    assert sources.busy and state.episode is episode  # the recording is on its way, off this thread
    [thread] = session.run()
    assert thread.startswith(background.THREAD_PREFIX)
    assert not sources.busy and not sources.message and state.episode is not episode
    assert state.episode.meta["checkpoint"] == "copy-ntm.safetensors"


def test_figures_are_drawn_in_the_background(session, episode):
    from ntmviz.app import MemoryView

    view = MemoryView(episode)
    sent = []
    view.canvas._send_msg = sent.append
    view.canvas._handle_msg({"figure": "svg", "t": 1})
    [thread] = session.run()
    assert thread.startswith(background.THREAD_PREFIX)
    assert sent and sent[-1]["mime"] == "image/svg+xml"


def test_the_sweep_tab_reads_in_the_background(session, tmp_path):
    from ntmviz.app.sweep_view import SweepView

    view = SweepView()
    assert view.open(tmp_path)  # started
    [thread] = session.run()
    assert thread.startswith(background.THREAD_PREFIX)
    assert view.message  # not a sweep folder: it says so, as in the foreground
