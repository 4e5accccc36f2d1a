"""Nothing leaves the machine, in every flow a person drives through the served explorer.

Chromium here resolves no host name but localhost and every request to anywhere else is aborted
and recorded (tests/browser/_serve.py); each flow below then checks that nothing tried, and that
the page logged no error (a stylesheet that failed to load is a console error). Before
ntmviz/app/local_resources.py, Train -> Start alone asked Panel's CDN for loading.css and
markdown.css 45 times in 20 s, and reopening tabs asked for theme stylesheets.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ntmviz import Episode

# How many views have painted an episode (T >= 1), through Panel's shadow roots.
COUNT_VIEWS_JS = """() => {
  let n = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view') && Number(el.dataset.frames) >= 1
          && Number(el.dataset.steps) >= 1) n++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return n;
}"""


def test_a_request_off_the_machine_fails_the_browser_tests():
    from _serve import chromium

    with pytest.raises(AssertionError, match=r"tried to leave the machine:\nhttps://cdn.holoviz.org/x.css"):
        with chromium() as browser:
            page = browser.new_page()
            page.set_content('<link rel="stylesheet" href="https://cdn.holoviz.org/x.css"><p>hi</p>')
            page.wait_for_timeout(500)
            assert browser.off_machine == ["https://cdn.holoviz.org/x.css"]


class Flows:
    """The explorer page, with a check after each flow that names the flow that failed."""

    def __init__(self, app, folder: Path):
        self.app, self.page, self.folder = app, app.page, folder

    def check(self, flow: str, settle_ms: int = 1500) -> None:
        self.page.wait_for_timeout(settle_ms)  # late stylesheet requests of the flow land here
        assert not self.app.errors, f"after {flow}:\n" + "\n".join(self.app.errors) + "\n" + self.app.server_log()

    def tab(self, name: str) -> None:
        self.page.locator(".bk-tab", has_text=re.compile(rf"^{name}$")).first.click()

    def painted_views(self) -> int:
        return self.page.evaluate(COUNT_VIEWS_JS)

    def fill(self, label: str, value, key: str = "Enter") -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press(key)

    def download(self, button: str) -> Path:
        with self.page.expect_download(timeout=120_000) as info:
            self.app.click(button)
        path = self.folder / info.value.suggested_filename  # the name the page gave it, e.g. *.html
        info.value.save_as(path)
        return path


def scrub_to_first_snapshot(page, patience_s: float = 240) -> None:
    """Press Home on the Train tab's step slider until the first snapshot shows.

    Pressed again, as a person would, because under load (CI shares 2 cores with the training
    thread) a new snapshot can re-render the slider as the key lands and the press is lost.
    """
    import time

    first = page.get_by_text(re.compile(r"Snapshot 1 of \d+")).first
    deadline = time.monotonic() + patience_s
    while True:
        handle = page.locator(".noUi-handle >> visible=true").first  # the Train tab's (other tabs have sliders too)
        handle.focus()
        page.keyboard.press("Home")
        try:
            first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise


def test_every_flow_stays_on_the_machine(browser, explorer_server, browser_helpers, copy_episode, tmp_path):
    context, app = browser_helpers.open_explorer(browser, explorer_server)
    try:
        flows, page = Flows(app, tmp_path), app.page
        flows.check("page load")

        # Explore: run the model at another length
        steps = app.steps()
        flows.fill("Length", 5, key="Tab")  # (Enter would run at once; here Run does)
        app.wait(lambda _: page.get_by_label("Length", exact=True).input_value() == "5", "the length")
        app.click("Run")
        app.wait_painted(steps=11, timeout=120)
        assert steps != 11
        flows.check("Run")

        # open an episode file, save the episode, export it as a page and open that page
        path, file_steps = copy_episode
        app.show_files()  # the files are one click away in the toolbar
        flows.check("opening the files section")
        page.get_by_label("Open episode", exact=True).set_input_files(str(path))
        app.wait_painted(steps=file_steps, timeout=120)
        flows.check("Open episode")
        saved = Episode.load(flows.download("Save episode"))
        assert saved.steps == file_steps
        flows.check("Save episode")
        exported = flows.download("Export HTML")
        assert exported.suffix == ".html"
        flows.check("Export HTML")
        standalone = context.new_page()
        standalone.on("console", lambda m: app.errors.append(f"export console: {m.text}") if m.type == "error" else None)
        standalone.goto(exported.as_uri())
        standalone.wait_for_function(COUNT_VIEWS_JS.replace("return n;", "return n >= 2;"))
        standalone.close()
        flows.check("opening the exported page")

        # Train: start, wait for snapshots, scrub them, stop
        flows.tab("Train")
        app.button("Start").wait_for()
        flows.check("opening Train")
        flows.fill("Snapshot every (steps)", 3)
        app.click("Start")
        page.get_by_text(re.compile(r"Snapshot \d+ of (?:[3-9]|\d{2,}):")).first.wait_for(timeout=180_000)
        flows.check("Train -> Start, with snapshots streaming", settle_ms=5000)
        scrub_to_first_snapshot(page)
        flows.check("scrubbing the training snapshots")
        app.click("Stop")
        page.get_by_text(re.compile("stopped", re.I)).first.wait_for(timeout=180_000)
        flows.check("Stop")

        # Compare two checkpoints of one task (the NTM and the LSTM baseline on copy)
        flows.tab("Compare")
        app.button("Compare").wait_for()
        assert flows.painted_views() == 0  # nothing compared yet; the Explore views are hidden
        page.get_by_label("Right", exact=True).select_option(label="copy-lstm.safetensors")
        app.click("Compare")
        page.wait_for_function(COUNT_VIEWS_JS.replace("return n;", "return n >= 2;"), timeout=120_000)
        assert page.get_by_role("alert").count() == 0
        flows.check("Compare")

        # reopen every tab, twice
        for name in ("Explore", "Train", "Compare", "Explore", "Compare", "Train", "Explore"):
            flows.tab(name)
            flows.check(f"reopening {name}", settle_ms=800)
        app.wait_painted()
        flows.check("back on Explore")
    except BaseException:
        shot = tmp_path / "failure.png"
        app.page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the page at the failure: {shot}")
        raise
    finally:
        context.close()


def test_ntmviz_serve_stays_on_the_machine(browser, browser_helpers):
    """`ntmviz serve` builds the explorer in its own way (pn.serve of a function): the same rule holds."""
    import subprocess
    import sys
    import time

    from _serve import free_port, wait_until_up

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ntmviz.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    try:
        url = f"http://localhost:{port}/"
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-3000:]
            try:
                wait_until_up(url, timeout=5)
                break
            except RuntimeError:
                assert time.monotonic() < deadline, "ntmviz serve did not answer"
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            app = browser_helpers.AppPage(page)
            page.goto(url, timeout=browser_helpers.TIMEOUT_MS)
            app.wait_painted(timeout=120)
            flows = Flows(app, Path("."))
            flows.check("page load")
            flows.tab("Train")
            flows.fill("Snapshot every (steps)", 2)
            app.click("Start")
            page.get_by_text(re.compile(r"Snapshot \d+ of (?:[2-9]|\d{2,}):")).first.wait_for(timeout=180_000)
            app.click("Stop")
            flows.check("Train -> Start -> Stop", settle_ms=3000)
            for name in ("Compare", "Explore", "Train", "Explore"):
                flows.tab(name)
                flows.check(f"reopening {name}", settle_ms=800)
        finally:
            context.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        proc.stderr.close()
