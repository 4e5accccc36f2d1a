"""The standalone HTML export in real Chromium, opened from file:// with http(s) blocked: it
plays and scrubs with no server, and asks the network for nothing. Both the CLI's export
(`ntmviz export EPISODE --out page.html`) and the app's "Export HTML" button."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VIEW_NAMES = ("player", "memory", "heads", "focus", "sequence")
TIMEOUT_MS = 60_000
LOCAL = ("file:", "data:", "blob:", "about:")


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("ntmviz")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from ntmviz.cli import main; sys.exit(main())"]


def _check_offline_page(browser, AppPage, html: Path, steps: int, opening: int | None) -> None:
    """Open `html` from file:// with every other request aborted: it opens on the episode's
    opening step (`opening`; None: a step every view agrees on); play, pause, scrub."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(LOCAL) else route.abort())
    try:
        page = context.new_page()
        app = AppPage(page)
        page.goto(html.resolve().as_uri(), timeout=TIMEOUT_MS)
        page.locator("main#ntmviz-root").wait_for()
        app.wait_painted(step=opening, steps=steps)
        # the views live in the page itself here (no shadow roots): check the globals agree
        first = app.step()
        assert page.evaluate("() => window.__ntmviz.step") == first and (opening is None or first == opening)

        app.page.keyboard.press("Home")
        app.wait_painted(step=0)
        app.click("Play")
        app.wait(lambda v: all(v[n]["step"] >= 3 for n in VIEW_NAMES), "offline playback")
        frames = page.evaluate("() => window.__ntmviz.frames")
        app.wait(lambda v: page.evaluate("() => window.__ntmviz.frames") > frames + 2, "frames to keep coming")
        app.click("Pause")
        app.wait(lambda v: v["player"]["playing"] is False, "paused")

        target = min(5, steps - 2)
        app.set_slider(target)
        app.wait_painted(step=target)
        app.page.keyboard.press("ArrowRight")
        app.wait_painted(step=target + 1)
        pixels = page.evaluate("""() => {
            const c = document.querySelector('.ntmviz-stage[data-stage="memory"] canvas[data-layer="front"]');
            return c ? c.toDataURL().length : 0; }""")
        assert pixels > 1000
        app.assert_no_errors()
        offsite = [u for u in requests if not u.startswith(LOCAL)]
        assert not offsite, f"the exported page asked the network for {offsite}"
        assert requests and requests[0].startswith("file:")
    finally:
        context.close()


def test_cli_export_plays_offline(browser, browser_helpers, copy_episode, tmp_path):
    episode, steps = copy_episode
    out = tmp_path / "page.html"
    done = subprocess.run([*_cli(), "export", str(episode), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert 'id="ntmviz-data"' in text
    # nothing in the page points at the network (no CDN scripts, styles or fonts)
    for marker in ('src="http', "src='http", 'href="http', "@import", "cdn."):
        assert marker not in text, marker
    from ntmviz.episode import Episode

    _check_offline_page(browser, browser_helpers.AppPage, out, steps, Episode.load(episode).opening_step())


def test_app_export_button_plays_offline(browser, browser_helpers, explorer_server, tmp_path):
    context, app = browser_helpers.open_explorer(browser, explorer_server)
    try:
        steps = app.steps()
        app.show_files()
        with app.page.expect_download(timeout=TIMEOUT_MS * 2) as info:
            app.page.get_by_role("button", name="Export HTML").click()
        download = info.value
        out = tmp_path / (download.suggested_filename or "episode.html")
        download.save_as(out)
        assert out.suffix == ".html", out
        app.assert_no_errors()
    finally:
        context.close()
    _check_offline_page(browser, browser_helpers.AppPage, out, steps, None)
