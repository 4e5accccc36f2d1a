"""A long episode the app records itself opens and scrubs: n-grams recorded at length 1000 from
the shipped checkpoint in the served explorer. The first message stays small (per-step arrays
travel in chunks the page asks for), and after a jump to a late step the memory view paints
that step's true memory."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _renderer import signed_colour  # noqa: E402
from _serve import served  # noqa: E402

ROOT = HERE.parent.parent
NGRAMS = ROOT / "checkpoints" / "ngrams-ntm.safetensors"
LENGTH = 1000

MEMORY_JS = """(points) => {
  for (const g of Object.values(window.__ntmviz.groups)) for (const v of g.views) {
    if (v.kind !== 'memory' || !v.geom) continue;
    const c = v.stage.fg.canvas, ctx = c.getContext('2d');
    const dpr = c.width / parseFloat(c.style.width);
    const px = points.map(([x, y]) => Array.from(ctx.getImageData(Math.floor(x * dpr), Math.floor(y * dpr), 1, 1).data.slice(0, 3)));
    return {t: v.paintedT, geom: v.geom, scale: v.ep.memScale, K: v.ep.K, chunks: [...v.ep.chunks.keys()], px};
  }
  return null;
}"""


def test_long_ngrams_episode_opens_and_scrubs(browser, browser_helpers, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    shutil.copy(NGRAMS, folder)
    explorers = []

    def factory():
        from ntmviz.app import Explorer

        explorers.append(Explorer.default(folder))
        return explorers[-1]

    with served(factory, path="explorer") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        offsite: list[str] = []
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
                      else (offsite.append(r.request.url), r.abort()))
        frames: list[int] = []
        try:
            page = context.new_page()
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f) if isinstance(f, (str, bytes)) else 0)))
            app = browser_helpers.AppPage(page)
            page.goto(url, timeout=browser_helpers.TIMEOUT_MS)
            app.wait_painted(timeout=120)
            length = page.get_by_role("textbox", name="Length")
            length.fill(str(LENGTH))
            length.press("Enter")  # Enter in Length runs, as Run does
            explorer = explorers[-1]  # this page's session (the server's readiness check made another)
            app.wait(lambda v: v["player"]["steps"] >= LENGTH - 1, "the long episode", timeout=300)
            episode = explorer.state.episode
            T = episode.steps
            assert T >= LENGTH - 1 and episode.meta["length"] == LENGTH
            # a new episode opens on its step worth seeing (mid-way through the scored steps)
            app.wait_painted(step=episode.opening_step(), steps=T, timeout=120)
            frames.clear()
            target = T - 37  # far from the first chunk: the page must ask for it
            app.set_slider(target)
            app.wait_painted(step=target, steps=T, timeout=120)
            got = page.evaluate(MEMORY_JS, [])
            g = got["geom"]
            assert got["t"] == target and got["K"] < T and target // got["K"] in got["chunks"]
            N, M = episode.slots, episode.width
            points = [[g["x0"] + (m + 0.5) * g["mw"] / M, g["y0"] + (n + 0.5) * g["mh"] / N]
                      for n in range(0, N, 9) for m in range(0, M, 3)]
            drawn = [tuple(p) for p in page.evaluate(MEMORY_JS, points)["px"]]
            expected = [signed_colour(float(episode.memory[target + 1, n, m]), got["scale"])
                        for n in range(0, N, 9) for m in range(0, M, 3)]
            assert drawn == expected
            # what the jump cost: a chunk per view that needs one, each well under a megabyte
            assert frames and max(frames) < 1_000_000, sorted(frames)[-5:]
            app.assert_no_errors()
            assert not offsite, offsite
        finally:
            context.close()
