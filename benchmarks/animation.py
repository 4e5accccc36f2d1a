"""The README's moving picture: the explorer playing a copy episode, as an animated WebP.

    .venv/bin/python benchmarks/animation.py        # writes apps/screenshots/explorer-playing.webp
    .venv/bin/python benchmarks/animation.py --gif  # the same as a GIF (bigger)

Serves apps/explorer.py with `panel serve` (a subprocess on a free loopback port), which opens on
the shipped copy-ntm checkpoint with an episode recorded; opens it in Debian's headless Chromium
with every request that would leave this machine aborted (the run fails if there was one); steps
the episode from its first step to its last, as the Player's step button does, and screenshots
the player, the memory and the head locations at every step; writes the frames as one looping
animation with Pillow, checked against a size budget.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frames import CHROMIUM, CHROMIUM_ARGS, FIND, ROOT, Server  # noqa: E402

OUT = ROOT / "apps" / "screenshots" / "explorer-playing.webp"
LIMIT = 400_000          # bytes: the README loads it on every visit
WIDTH = 760              # pixels of the written animation
VIEWPORT = {"width": 1280, "height": 1000}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# no host name resolves but localhost: a request off the machine cannot even start
ARGS = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]

SEEK_JS = FIND + """
async (t) => {
  const g = group();
  g.setPlaying(false, "capture");
  g.seek(t, "capture");
  await nextFrame(); await nextFrame();
  return {t: window.__ntmviz.step, T: g.T};
}
"""

# The page boxes of the explorer's views (shadow roots pierced), keyed by data-view.
BOXES_JS = """() => {
  const out = {};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view')) {
        const r = el.getBoundingClientRect();
        out[el.dataset.view] = {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height};
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""

READY_JS = """() => { const r = window.__ntmviz; if (!r) return false;
  return Object.values(r.groups).some((g) => g.views.size >= 5 && [...g.views].every((v) => v.frames > 0)); }"""


def is_local(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in {"data", "blob", "about"} or (parts.hostname or "") in LOOPBACK


def union(boxes: list[dict], pad: int = 6) -> dict:
    x0 = min(b["x"] for b in boxes) - pad
    y0 = min(b["y"] for b in boxes) - pad
    x1 = max(b["x"] + b["width"] for b in boxes) + pad
    y1 = max(b["y"] + b["height"] for b in boxes) + pad
    return {"x": max(0, x0), "y": max(0, y0), "width": x1 - max(0, x0), "height": y1 - max(0, y0)}


def capture(views: tuple[str, ...], every: int) -> tuple[list, list[str], dict]:
    """Frames (PIL images) of the union of `views` at every `every`-th step, the requests that
    were blocked, and where the episode was."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def route(r) -> None:
        if is_local(r.request.url):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort("blockedbyclient")

    frames = []
    with Server(ROOT / "apps" / "explorer.py") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.route("**/*", route)
            page = context.new_page()
            page.on("websocket", lambda ws: None if is_local(ws.url) else blocked.append(ws.url))
            page.goto(server.url, timeout=180_000)
            page.wait_for_function(READY_JS, timeout=180_000, polling=100)
            T = page.evaluate(SEEK_JS, 0)["T"]
            page.mouse.move(1, 1)  # no hover marks in the picture
            page.wait_for_timeout(300)  # fonts settle
            boxes = page.evaluate(BOXES_JS)
            missing = [v for v in views if v not in boxes]
            if missing:
                raise RuntimeError(f"no view {missing} on the page (found {sorted(boxes)})")
            clip = union([boxes[v] for v in views])
            page.set_viewport_size({"width": VIEWPORT["width"],
                                    "height": max(VIEWPORT["height"], int(clip["y"] + clip["height"]) + 10)})
            page.wait_for_timeout(200)
            for t in sorted({*range(0, T, every), T - 1}):
                at = page.evaluate(SEEK_JS, t)
                assert at["t"] == t, at
                png = page.screenshot(clip=clip)
                frames.append(Image.open(io.BytesIO(png)).convert("RGB"))
        finally:
            browser.close()
    return frames, blocked, {"T": T, "clip": clip}


def write(frames: list, out: Path, ms: int, hold_ms: int, gif: bool) -> int:
    from PIL import Image

    scale = WIDTH / frames[0].width
    size = (WIDTH, round(frames[0].height * scale))
    frames = [f.resize(size, Image.LANCZOS) for f in frames]
    durations = [hold_ms if i in (0, len(frames) - 1) else ms for i in range(len(frames))]
    out.parent.mkdir(parents=True, exist_ok=True)
    if gif:
        # one palette for every frame: colours stay put as the animation plays
        palette = frames[len(frames) // 2].quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    else:
        frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                       quality=80, method=6, minimize_size=True)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help=f"default {OUT.relative_to(ROOT)} (.gif with --gif)")
    parser.add_argument("--gif", action="store_true", help="write a GIF instead of an animated WebP")
    parser.add_argument("--views", default="player,memory,heads",
                        help="the views whose boxes the frames cover (data-view names)")
    parser.add_argument("--every", type=int, default=1, help="take every Nth step (the last always)")
    parser.add_argument("--ms", type=int, default=260, help="milliseconds per frame")
    parser.add_argument("--hold-ms", type=int, default=1500, help="on the first and last frame")
    args = parser.parse_args()
    out = args.out or (OUT.with_suffix(".gif") if args.gif else OUT)

    frames, blocked, where = capture(tuple(args.views.split(",")), args.every)
    if blocked:
        raise SystemExit(f"requests off the machine were blocked (the page must need none): {blocked}")
    size = write(frames, out, args.ms, args.hold_ms, args.gif)
    print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  {len(frames)} frames of {where['T']} steps, "
          f"{frames[0].width}x{frames[0].height} captured -> {WIDTH} wide, {size / 1000:.0f} KB"
          f"{'  TOO BIG' if size > LIMIT else ''}")
    if size > LIMIT:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
