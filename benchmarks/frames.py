"""How fast does the served explorer paint? Frames per second while playing, input-to-repaint
latency, time to fully drawn, and whether a stalled page drops frames or queues them.

    python benchmarks/frames.py                 # 128x20 (shipped copy checkpoint) and 1024x64 (untrained)
    python benchmarks/frames.py --seconds 3 --sizes 128x20

For each size it records a T=100 episode, serves an Explorer on it with `panel serve` (a
subprocess), opens it in headless Chromium (Debian's, software rendering) and measures in the
page (window.__ntmviz, performance.now()):

    fps         frames painted per second over --seconds of playback at the maximum speed
                (120 steps/s, looping), with paints/frame showing every view repainted
    slider ms   median over 20 moves of the "Step" slider: from the `input` event to the end
                of the animation frame that painted the new step (arrow key likewise)
    drawn s     from navigation start to every view of the explorer painted once (median of 3
                fresh pages)
    stall       playing at 10 steps/s, the page's main thread is blocked for 2 s: the first
                frame after it jumps ~20 steps at once (frames dropped) instead of replaying
                20 frames one step apart (queued)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "checkpoints" / "copy-ntm.safetensors"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
T = 100

APP = """
import os
import ntmviz.app
from ntmviz.episode import Episode
from ntmviz.app import Explorer

ntmviz.app.extension()
Explorer(Episode.load(os.environ["NTMVIZ_BENCH_EPISODE"]), folder=os.environ.get("NTMVIZ_CHECKPOINTS", "checkpoints")).servable(title="ntmviz explorer")
"""

# Installed before any page script: notes when every view of the explorer has painted once.
DRAWN_INIT = """
(() => {
  const check = () => {
    const reg = window.__ntmviz;
    if (reg) {
      for (const g of Object.values(reg.groups)) {
        const views = [...g.views];
        if (views.length >= 5 && views.every((v) => v.frames >= 1)) {
          window.__ntmvizDrawnAt = performance.now();
          return;
        }
      }
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""

FIND = """
const findIn = (root, sel) => {
  const hit = root.querySelector(sel);
  if (hit) return hit;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { const f = findIn(el.shadowRoot, sel); if (f) return f; }
  }
  return null;
};
const group = () => Object.values(window.__ntmviz.groups)[0];
const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
"""

FPS_JS = FIND + """
async (seconds) => {
  const g = group();
  g.setOption("loop", true, "bench");
  g.setOption("speed", 120, "bench");
  g.setPlaying(true, "bench");
  await nextFrame(); await nextFrame();
  const reg = window.__ntmviz;
  const f0 = reg.frames, p0 = reg.paints, t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const f1 = reg.frames, p1 = reg.paints, t1 = performance.now();
  g.setPlaying(false, "bench");
  g.setOption("loop", false, "bench");
  g.setOption("speed", 10, "bench");
  return {fps: (f1 - f0) / ((t1 - t0) / 1000), paintsPerFrame: (p1 - p0) / Math.max(1, f1 - f0), T: g.T, views: g.views.size};
}
"""

# Median latency from an input to the end of the animation frame that painted it.
LATENCY_JS = FIND + """
async ([how, n]) => {
  const g = group();
  const reg = window.__ntmviz;
  const slider = findIn(document, 'input[aria-label="Step"]');
  const times = [];
  for (let i = 0; i < n; i++) {
    await nextFrame(); await nextFrame();
    const target = how === "key" ? (g.t + 1 < g.T ? g.t + 1 : 0) : (g.t + 37) % g.T;
    if (how === "key" && target === 0) { g.seek(0, "bench"); await nextFrame(); await nextFrame(); continue; }
    const start = performance.now();
    if (how === "key") {
      document.dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true, composed: true}));
    } else {
      slider.value = String(target);
      slider.dispatchEvent(new Event("input", {bubbles: true}));
    }
    // registered after the group's own frame request: runs after the views painted
    let end = await nextFrame();
    while (reg.step !== target) end = await nextFrame();
    times.push(end - start);
  }
  times.sort((a, b) => a - b);
  return {median: times[Math.floor(times.length / 2)], max: times[times.length - 1], n: times.length};
}
"""

STALL_JS = FIND + """
async (blockMs) => {
  const g = group();
  const reg = window.__ntmviz;
  g.seek(0, "bench");
  g.setOption("loop", true, "bench");
  g.setOption("speed", 10, "bench");
  g.setPlaying(true, "bench");
  for (let i = 0; i < 30; i++) await nextFrame();
  const before = reg.step, framesBefore = reg.frames;
  const until = performance.now() + blockMs;
  while (performance.now() < until) {}  // the main thread is stuck: no frames can run
  const steps = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    await nextFrame();
    if (steps[steps.length - 1] !== reg.step) steps.push(reg.step);
  }
  g.setPlaying(false, "bench");
  g.setOption("loop", false, "bench");
  const jump = ((steps[0] - before) % g.T + g.T) % g.T;
  return {before, after: steps.slice(0, 6), jump, expected: blockMs / 1000 * g.speed,
          paintedAfter: reg.frames - framesBefore};
}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`panel serve <app>` in a subprocess on a free port; a context manager."""

    def __init__(self, app: Path, env: dict[str, str] | None = None, timeout: float = 180.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{app.stem}"
        self.log = Path(tempfile.mkstemp(prefix="ntmviz-bench-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "panel", "serve", str(app), "--port", str(self.port),
                 "--address", "127.0.0.1", f"--allow-websocket-origin=127.0.0.1:{self.port}", "--warm"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"panel serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    if r.status == 200:
                        break
            except Exception:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"{self.url} never answered:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.3)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def record_episode(slots: int, width: int, out: Path) -> Path:
    """A T~100 episode: the shipped copy NTM at 128x20 (length 50: T=101), else an untrained NTM of
    that size on random bits."""
    import torch

    import ntmviz
    from ntmviz.app.sources import load_source, record_episode as record_from
    from ntmviz.episode import record

    if (slots, width) == (128, 20) and CHECKPOINT.exists():
        episode = record_from(load_source(CHECKPOINT), length=T // 2, seed=0)  # copy: 2 L + 1 steps
    else:
        torch.manual_seed(0)
        model = ntmviz.NTM(ntmviz.NTMConfig(input_size=9, output_size=8, memory_slots=slots,
                                            memory_width=width, controller_size=100))
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(T, 9, generator=g) > 0.5).float()
        y = (torch.rand(T, 8, generator=g) > 0.5).float()
        episode = record(model, x, y, mask=torch.ones(T), meta={"task": "random", "seed": 0})
    assert abs(episode.steps - T) <= 1, episode.steps
    episode.save(out)
    return out


def measure(browser, url: str, seconds: float) -> dict:
    loads = []
    result: dict = {}
    for i in range(3):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(DRAWN_INIT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and "favicon" not in m.text and errors.append(m.text))
        page.goto(url, timeout=180_000)
        page.wait_for_function("() => window.__ntmvizDrawnAt !== undefined", timeout=180_000, polling=100)
        loads.append(page.evaluate("() => window.__ntmvizDrawnAt") / 1000)
        if i < 2:
            context.close()
            continue
        page.wait_for_timeout(500)
        result.update(page.evaluate(FPS_JS, seconds))
        result["slider"] = page.evaluate(LATENCY_JS, ["slider", 20])
        result["key"] = page.evaluate(LATENCY_JS, ["key", 20])
        result["stall"] = page.evaluate(STALL_JS, 2000)
        result["errors"] = errors
        context.close()
    result["drawn"] = statistics.median(loads)
    result["loads"] = loads
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="128x20,1024x64", help="comma-separated NxM memory sizes")
    ap.add_argument("--seconds", type=float, default=5.0, help="playback time per fps measurement")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    targets = {(128, 20): 50.0, (1024, 64): 30.0}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        app = Path(tmp) / "explorer_bench.py"
        app.write_text(APP)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for n, m in sizes:
                episode = record_episode(n, m, Path(tmp) / f"episode-{n}x{m}.safetensors")
                print(f"measuring {n}x{m}, T={T} ...", file=sys.stderr, flush=True)
                with Server(app, env={"NTMVIZ_BENCH_EPISODE": str(episode),
                                      "NTMVIZ_CHECKPOINTS": str(ROOT / "checkpoints")}) as server:
                    r = measure(browser, server.url, args.seconds)
                rows.append(((n, m), r))
        finally:
            browser.close()

    load = os.getloadavg()
    print(f"\nntmviz explorer, headless Chromium (software rendering), {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} / {load[1]:.1f}; T={T}, all 5 views\n")
    header = f"{'memory':>9} | {'fps (target)':>14} | {'paints/frame':>12} | {'slider ms (<50)':>15} | " \
             f"{'key ms (<50)':>12} | {'drawn s (<3)':>12} | stall 2 s at 10 steps/s"
    print(header)
    print("-" * len(header))
    for (n, m), r in rows:
        target = targets.get((n, m), 30.0)
        stall = r["stall"]
        dropped = stall["jump"] >= stall["expected"] * 0.5
        mark = lambda ok: "ok" if ok else "MISS"  # noqa: E731
        print(f"{f'{n}x{m}':>9} | {r['fps']:6.1f} (>={target:.0f}) {mark(r['fps'] >= target):>4} | "
              f"{r['paintsPerFrame']:12.2f} | {r['slider']['median']:8.1f} {mark(r['slider']['median'] < 50):>6} | "
              f"{r['key']['median']:6.1f} {mark(r['key']['median'] < 50):>5} | "
              f"{r['drawn']:6.2f} {mark(r['drawn'] < 3):>5} | "
              f"jumped {stall['jump']} steps in one frame (expected ~{stall['expected']:.0f}): "
              f"{'dropped, not queued' if dropped else 'QUEUED?'}")
    print()
    for (n, m), r in rows:
        print(f"{n}x{m}: T={r['T']} in the page, {r['views']} views; loads {', '.join(f'{x:.2f}' for x in r['loads'])} s; slider max {r['slider']['max']:.1f} ms, "
              f"key max {r['key']['max']:.1f} ms; steps after the stall {r['stall']['after']}; "
              f"page errors: {r['errors'] or 'none'}")


if __name__ == "__main__":
    main()
