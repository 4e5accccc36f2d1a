"""Screenshots of the explorer for the README: serves apps/explorer.py (the shipped copy
checkpoint) and writes PNGs into apps/screenshots/.

    python benchmarks/screenshots.py            # explorer.png, focus.png, heads.png, sources-error.png

Headless Chromium (Debian's), 1280 x 800 viewport; the episode is moved mid-way into the
read-back phase so the heads and the memory have something to show. Each PNG stays under 200 KB.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frames import CHROMIUM, CHROMIUM_ARGS, FIND, ROOT, Server  # noqa: E402

OUT = ROOT / "apps" / "screenshots"
LIMIT = 200_000

SEEK_JS = FIND + """
async (t) => {
  const g = group();
  g.setPlaying(false, "shot");
  g.seek(t, "shot");
  await nextFrame(); await nextFrame();
  return {t: window.__ntmviz.step, T: g.T};
}
"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with Server(ROOT / "apps" / "explorer.py") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url, timeout=180_000)
            page.wait_for_function("""() => { const r = window.__ntmviz; if (!r) return false;
                return Object.values(r.groups).some((g) => g.views.size >= 5 && [...g.views].every((v) => v.frames > 0)); }""",
                                   timeout=180_000, polling=100)
            T = page.evaluate(SEEK_JS, 0)["T"]
            # the copy task reads back in the second half: mid-way there every view is busy
            at = page.evaluate(SEEK_JS, int(T * 0.7))
            page.mouse.move(1, 1)
            page.wait_for_timeout(300)  # let fonts and the tooltip layer settle for the picture

            shots = {
                "explorer.png": lambda path: page.screenshot(path=path),
                "focus.png": lambda path: page.locator('.ntmviz-view[data-view="focus"]').screenshot(path=path),
                "heads.png": lambda path: page.locator('.ntmviz-view[data-view="heads"]').screenshot(path=path),
            }
            for name, shoot in shots.items():
                shoot(str(OUT / name))
                written.append(OUT / name)

            # the sources panel with an error showing (a corrupt episode file)
            page.locator('input[type="file"]').set_input_files(files=[{
                "name": "broken.safetensors", "mimeType": "application/octet-stream",
                "buffer": b"this is not an episode file"}])
            alert = page.get_by_role("alert")
            alert.wait_for(state="visible", timeout=120_000)
            box = alert.bounding_box()
            page.screenshot(path=str(OUT / "sources-error.png"),
                            clip={"x": 0, "y": 0, "width": 330, "height": min(800, box["y"] + box["height"] + 20)})
            written.append(OUT / "sources-error.png")
        finally:
            browser.close()
    for path in written:
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT)}  {size / 1000:.0f} KB{'  TOO BIG' if size > LIMIT else ''}")
    print(f"(episode at step {at['t']} of {at['T']})")


if __name__ == "__main__":
    main()
