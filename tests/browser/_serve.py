"""Shared helpers for the browser tests: serve a Panel app on a free port, launch Chromium.

    with served(lambda: MyViewer(), session_lifetime_ms=500) as url:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(url)

The server runs in a thread of the test process, so a test can inspect server-side state
(e.g. ntmviz.app.live.live_runs()) directly. Missing Playwright or Chromium is an error, never
a skip: the browser tests exist to run.

Nothing leaves the machine: every context and page made through `chromium()` has every request
to anywhere but this machine (loopback, data:, blob:, file:) aborted and recorded, Chromium
resolves no host name but localhost, and leaving the `with chromium()` block fails the test if
anything tried (`off_machine` lists the attempts as they happen).
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # no host name resolves but localhost: a request off the machine cannot even start
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "file", "about", "chrome-error"}


def is_local(url: str) -> bool:
    """True for an address on this machine (loopback, or data:, blob:, file:, about:)."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK_HOSTS


class GuardedBrowser:
    """A Playwright Browser whose contexts and pages abort and record every request that would
    leave the machine (`off_machine`); anything else is the Browser's own."""

    def __init__(self, browser):
        self._browser = browser
        self.off_machine: list[str] = []

    def _guard(self, context) -> None:
        def route(r) -> None:
            if is_local(r.request.url):
                r.continue_()
            else:
                self.off_machine.append(r.request.url)
                r.abort("blockedbyclient")

        def watch_sockets(page) -> None:
            page.on("websocket", lambda ws: None if is_local(ws.url) else self.off_machine.append(ws.url))
        context.route("**/*", route)
        context.on("page", watch_sockets)

    def new_context(self, **options: Any):
        context = self._browser.new_context(**options)
        self._guard(context)
        return context

    def new_page(self, **options: Any):
        return self.new_context(**options).new_page()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s ({last})")


@contextlib.contextmanager
def served(factory: Callable[[], object], *, path: str = "app", session_lifetime_ms: int | None = None,
           timeout: float = 60.0) -> Iterator[str]:
    """Serve `factory()` (called once per browser session) at http://127.0.0.1:<port>/<path>.

    `session_lifetime_ms` shortens how long the server keeps a closed page's session (and how
    often it checks), so session-destroyed callbacks run within about a second.
    Sets up ntmviz's offline rules first (ntmviz.app.extension()), as `ntmviz serve` does."""
    import panel as pn

    import ntmviz.app

    ntmviz.app.extension()
    port = free_port()
    extra = {}
    if session_lifetime_ms is not None:
        extra = {"check_unused_sessions_milliseconds": session_lifetime_ms,
                 "unused_session_lifetime_milliseconds": session_lifetime_ms}
    server = pn.serve({path: factory}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"], **extra)
    url = f"http://127.0.0.1:{port}/{path}"
    try:
        wait_until_up(url, timeout)
        yield url
    finally:
        server.stop()
        server.join(timeout=10)


@contextlib.contextmanager
def chromium() -> Iterator[GuardedBrowser]:
    """Debian's Chromium through Playwright, headless, nothing leaving the machine (see the
    module docstring). Fails loudly if either is missing."""
    from playwright.sync_api import sync_playwright  # ImportError is a failure, not a skip

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"the browser tests need Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        browser = GuardedBrowser(p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()
        assert not browser.off_machine, "requests that tried to leave the machine:\n" + "\n".join(browser.off_machine)
