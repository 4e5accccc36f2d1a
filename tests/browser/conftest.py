"""Shared fixtures for the browser tests: the explorer served by `panel serve`, and Chromium.

    def test_something(explorer_page):          # a fresh page on the served explorer, drawn
        app = explorer_page
        app.click("Play"); app.wait(lambda s: s["player"]["step"] > 3)
        app.assert_no_errors()

Fixtures
--------
    explorer_server   session: `python -m panel serve apps/explorer.py --warm` on a free port, as a
                      subprocess; yields a Served(url, log) (log: the server's stderr so far, for
                      failure messages); terminated at the end
    browser           module: Debian's Chromium through Playwright (tests/browser/_serve.py's
                      launch arguments); missing Playwright or Chromium is a failure, never a skip;
                      every request off the machine is aborted and fails the test (_serve.py)
    explorer_page     function: a new browser context and page on the served explorer, loaded and
                      painted, wrapped in an AppPage (console errors and page errors collected)
    copy_episode      session: an episode file recorded by `ntmviz record` from the shipped
                      checkpoint (length 7, seed 3) and its number of steps

Test modules here are named test_browser_*.py: pytest's default import mode needs basenames
that differ from tests/app's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHECKPOINT = ROOT / "checkpoints" / "copy-ntm.safetensors"
sys.path.insert(0, str(HERE))  # for `from _serve import ...` whatever the import mode

from _renderer import Renderer, block_offsite, static_site  # noqa: E402
from _serve import CHROMIUM, chromium, free_port, is_local, wait_until_up  # noqa: E402

TIMEOUT_MS = 60_000  # generous: these machines are loaded


# ---- the served explorer ---------------------------------------------------------------------------
@dataclass
class Served:
    url: str
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def log(self, tail: int = 4000) -> str:
        """The server's stderr and stdout so far (the last `tail` characters)."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""


def serve_app(app: str | Path = ROOT / "apps" / "explorer.py", *, timeout: float = 120.0,
              env: dict[str, str] | None = None, extra: list[str] = ()) -> Served:
    """Start `panel serve app` on a free port in a subprocess and wait until it answers.
    Stop it with stop_app(served). Raises RuntimeError with the server's log if it never answers."""
    port = free_port()
    name = Path(app).stem
    log = Path(tempfile.mkstemp(prefix="ntmviz-serve-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port), "--address", "127.0.0.1",
           f"--allow-websocket-origin=127.0.0.1:{port}", "--warm", *extra]
    handle = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    handle.close()
    served = Served(f"http://127.0.0.1:{port}/{name}", log, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"panel serve exited with {proc.returncode}:\n{served.log()}")
            try:
                wait_until_up(served.url, timeout=min(5.0, max(0.1, deadline - time.monotonic())))
                return served
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{served.url} did not answer within {timeout} s:\n{served.log()}")
    except BaseException:
        stop_app(served)
        raise


def stop_app(served: Served) -> None:
    proc = served.process
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def explorer_server():
    served = serve_app()
    try:
        yield served
    finally:
        stop_app(served)
        served.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def browser():
    # module scope: a sync Playwright must be closed before another module (test_training.py)
    # starts its own in the same thread
    assert Path(CHROMIUM).is_file(), f"the browser tests need Chromium at {CHROMIUM}"
    with chromium() as b:
        yield b


# ---- the static renderer (_renderer.py): views drawn from crafted payloads, no server ------------------
@pytest.fixture(scope="module")
def site():
    with static_site() as url:
        yield url


@pytest.fixture
def renderer(browser, site, request):
    """A Renderer on the static site, in a page of the module's RENDERER_VIEWPORT (default 1400 x
    1000) with every off-site request blocked; the test fails on a page error, a console error or
    an off-site request."""
    width, height = getattr(request.module, "RENDERER_VIEWPORT", (1400, 1000))
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    offsite: list[str] = []
    block_offsite(context, site.rstrip("/"), offsite)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(site)
    yield Renderer(page)
    context.close()
    assert not errors, errors
    assert not offsite, offsite


# ---- a page on the explorer --------------------------------------------------------------------------
# Every .ntmviz-view, found through the shadow roots Panel renders into.
VIEWS_JS = """() => {
  const out = {};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view')) {
        const d = el.dataset;
        out[d.view] = {step: Number(d.step), frames: Number(d.frames), steps: Number(d.steps),
                       group: d.group, playing: d.playing === undefined ? null : d.playing === 'true'};
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""

# A digest of the pixels of both layers of one stage's canvases (shadow roots pierced).
STAGE_PIXELS_JS = """(stage) => {
  const find = (root) => {
    const hit = root.querySelector(`.ntmviz-stage[data-stage="${stage}"]`);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
    }
    return null;
  };
  const st = find(document);
  if (!st) return null;
  let hash = 2166136261 >>> 0, nonblank = 0, size = 0;
  for (const c of st.querySelectorAll('canvas')) {
    if (!c.width || !c.height) continue;
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    size += px.length;
    for (let i = 0; i < px.length; i += 4) {
      hash = Math.imul(hash ^ (px[i] | (px[i + 1] << 8) | (px[i + 2] << 16) | (px[i + 3] << 24)), 16777619) >>> 0;
      if (px[i + 3] && (px[i] & px[i + 1] & px[i + 2]) !== 255) nonblank++;
    }
  }
  return {hash, nonblank, size};
}"""


def _is_ignored(message: str, url: str) -> bool:
    # The browser asks for /favicon.ico on its own; a 404 there is not the app's error.
    return "favicon" in url or "favicon" in message


class AppPage:
    """A Playwright page on the explorer, with its console errors and page errors collected."""

    def __init__(self, page, served: Served | None = None):
        self.page = page
        self.served = served
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", self._request)

    def _request(self, request) -> None:
        # The app must work offline: everything comes from the server it was opened from.
        if not is_local(request.url):
            self.errors.append(f"request off the machine: {request.url}")

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if not _is_ignored(msg.text, url):
            self.errors.append(f"console: {msg.text} ({url})")

    # ---- reading ----------------------------------------------------------------------
    def views(self) -> dict[str, dict[str, Any]]:
        return self.page.evaluate(VIEWS_JS)

    def step(self) -> int:
        return self.views()["player"]["step"]

    def steps(self) -> int:
        return self.views()["player"]["steps"]

    def registry(self) -> dict[str, Any]:
        return self.page.evaluate("() => { const r = window.__ntmviz || {}; "
                                  "return {frames: r.frames, paints: r.paints, step: r.step}; }")

    def stage_pixels(self, stage: str) -> dict[str, int] | None:
        return self.page.evaluate(STAGE_PIXELS_JS, stage)

    # ---- waiting ----------------------------------------------------------------------
    def wait(self, predicate: Callable[[dict[str, dict[str, Any]]], Any], what: str = "condition",
             timeout: float = 60.0):
        """Poll `predicate(self.views())` until it is truthy; fail with the views and the log."""
        deadline = time.monotonic() + timeout
        views: dict = {}
        while time.monotonic() < deadline:
            views = self.views()
            try:
                value = predicate(views)
            except (KeyError, TypeError):
                value = None
            if value:
                return value
            self.page.wait_for_timeout(50)
        raise AssertionError(f"timed out ({timeout} s) waiting for {what}; views: {views}; "
                             f"errors: {self.errors}\n{self.server_log()}")

    def wait_painted(self, step: int | None = None, steps: int | None = None, timeout: float = 60.0) -> None:
        """Every view of the explorer painted (at `step`, with `steps` steps, when given)."""
        names = ("player", "memory", "heads", "focus", "sequence")

        def done(v):
            return all(n in v and v[n]["frames"] >= 1
                       and (step is None or v[n]["step"] == step)
                       and (steps is None or v[n]["steps"] == steps) for n in names)
        self.wait(done, f"all views painted (step={step}, steps={steps})", timeout)

    def server_log(self) -> str:
        return f"server log:\n{self.served.log()}" if self.served else ""

    # ---- acting -----------------------------------------------------------------------
    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def click(self, name: str) -> None:
        self.button(name).click(timeout=TIMEOUT_MS)

    def show_files(self) -> None:
        """Open the sources' section with typing an input and the files (opening, saving,
        exporting): in the explorer's toolbar it is one click away."""
        toggle = self.page.get_by_role("button", name="Type an input · files", exact=True)
        if toggle.count() and not self.button("Open episode").is_visible():
            toggle.click(timeout=TIMEOUT_MS)
            self.button("Open episode").wait_for(state="visible", timeout=TIMEOUT_MS)

    def slider(self, name: str = "Step"):
        return self.page.get_by_role("slider", name=name, exact=True)

    def set_slider(self, value: int, name: str = "Step") -> None:
        """Move a range input as a user's drag does: set its value, fire `input`."""
        self.slider(name).evaluate(
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }", value)

    def assert_no_errors(self) -> None:
        assert not self.errors, "browser errors:\n" + "\n".join(self.errors) + "\n" + self.server_log()


def open_explorer(browser, served: Served, viewport=(1400, 1000)) -> tuple[Any, AppPage]:
    """A new context and page on the served explorer, waited until every view has painted."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    app = AppPage(page, served)
    page.goto(served.url, timeout=TIMEOUT_MS)
    app.wait_painted(timeout=90)
    return context, app


@contextlib.contextmanager
def page_on(browser, factory: Callable[[], object], viewport=(1280, 900), path: str = "app"):
    """`factory()` served in this process (one per session) and a new page on it: yields the
    AppPage, loaded but not waited for; its context is closed at the end."""
    from _serve import served

    with served(factory, path=path) as url:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1)
        try:
            page = context.new_page()
            app = AppPage(page)
            page.goto(url, timeout=TIMEOUT_MS)
            yield app
        finally:
            context.close()


@contextlib.contextmanager
def explorer_on(browser, checkpoints: tuple[str, ...], folder: Path, viewport=(1400, 1000)):
    """The explorer served in this process on a folder holding copies of the shipped
    `checkpoints` (names without .safetensors): yields (app page, the page's Explorer), the page
    drawn. A console error or a request off the machine (the guarded browser aborts it) fails
    the test at the end."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for name in checkpoints:
        shutil.copy(ROOT / "checkpoints" / f"{name}.safetensors", folder)
    explorers = []

    def factory():
        from ntmviz.app import Explorer

        explorers.append(Explorer.default(folder))
        return explorers[-1]

    with page_on(browser, factory, viewport, path="explorer") as app:
        app.wait_painted(timeout=120)
        yield app, explorers[-1]  # this page's session (the readiness check made another)
        app.assert_no_errors()  # console errors and requests off the machine


@pytest.fixture
def explorer_page(browser, explorer_server):
    context, app = open_explorer(browser, explorer_server)
    try:
        yield app
    finally:
        context.close()


@pytest.fixture(scope="session")
def copy_episode(tmp_path_factory) -> tuple[Path, int]:
    """(path, steps) of an episode recorded by the CLI from the shipped copy checkpoint."""
    from ntmviz.episode import Episode

    out = tmp_path_factory.mktemp("episodes") / "copy-7-seed3.safetensors"
    cli = Path(sys.executable).with_name("ntmviz")
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-c", "import sys; from ntmviz.cli import main; sys.exit(main())"]
    done = subprocess.run([*cmd, "record", "--checkpoint", str(CHECKPOINT), "--length", "7", "--seed", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out, Episode.load(out).steps


@pytest.fixture(scope="session")
def browser_helpers():
    """The helpers of this conftest for test modules (importing `conftest` by name is ambiguous
    when tests/app's conftest is loaded too): .AppPage, .open_explorer, .explorer_on, .page_on, .serve_app,
    .stop_app, .TIMEOUT_MS."""
    import types

    return types.SimpleNamespace(AppPage=AppPage, open_explorer=open_explorer, explorer_on=explorer_on,
                                 page_on=page_on,
                                 serve_app=serve_app, stop_app=stop_app, TIMEOUT_MS=TIMEOUT_MS)
