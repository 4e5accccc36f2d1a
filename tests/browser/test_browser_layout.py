"""Nothing needs horizontal scrolling: the explorer at 900 and 1280 px wide (with "show change"
on), a checkpoint with four heads, the Train and Compare tabs and the exported page. Views wrap
(the focus under the memory, a head's panels under each other) or sit side by side when there
is room. Every request off the machine is aborted and fails the test."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ntmviz  # noqa: E402
from ntmviz.app import export_html  # noqa: E402

ROOT = HERE.parent.parent
CHECKPOINT = ROOT / "checkpoints" / "copy-ntm.safetensors"

# Elements (through shadow roots) whose right edge is past the window's width, and the page's
# scroll width: a wide element names the view that overflows.
OVERFLOW_JS = """() => {
  const limit = document.documentElement.clientWidth, out = [], boxes = {};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (el.classList && el.classList.contains('ntmviz-stage')) boxes[el.dataset.stage] = [r.left, r.top, r.width, r.height];
      if (r.width && r.right > limit + 0.5) out.push(`${el.tagName}.${el.className} ${Math.round(r.left)}+${Math.round(r.width)}`);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return {scroll: document.documentElement.scrollWidth, client: limit, over: out.slice(0, 8), stages: boxes};
}"""


def assert_fits(page, what: str, settle_s: float = 10.0) -> dict:
    """The page's settled layout fits the window. Panel lays a page out in several passes (its
    views reflow as their canvases size themselves), and on a loaded machine a pass can still be
    running when we look: a wider layout seen then is checked again until it settles."""
    deadline = time.monotonic() + settle_s
    while True:
        got = page.evaluate(OVERFLOW_JS)
        if got["scroll"] <= got["client"] and not got["over"]:
            return got["stages"]
        assert time.monotonic() < deadline, f"{what}: {got}"
        page.wait_for_timeout(250)


@pytest.mark.parametrize("width", [900, 1280])
def test_explorer_fits_the_window(browser, browser_helpers, explorer_server, width):
    context, app = browser_helpers.open_explorer(browser, explorer_server, viewport=(width, 900))
    try:
        stages = assert_fits(app.page, f"explorer at {width} px")
        assert {"memory", "focus-read-1", "focus-write-1", "heads-read-1", "heads-write-1", "sequence"} <= set(stages)
        if width == 1280:  # room for the focus beside the memory
            assert stages["focus-read-1"][0] > stages["memory"][0] + stages["memory"][2] - 1
        app.page.get_by_role("checkbox", name="Show change").check()
        app.page.wait_for_timeout(300)
        assert_fits(app.page, f"explorer at {width} px, show change on")
        app.page.get_by_text("Train", exact=True).first.click()
        app.button("Start").wait_for()
        app.page.wait_for_timeout(800)
        assert_fits(app.page, f"Train tab at {width} px")
        app.assert_no_errors()
    finally:
        context.close()


def serve_heads(tmp_path_factory, browser_helpers, heads: int):
    """The explorer on a folder holding one untrained copy NTM with `heads` read and `heads` write
    heads; yields the served app."""
    from ntmviz.checkpoint import save
    from ntmviz.tasks import get_task

    folder = tmp_path_factory.mktemp(f"{2 * heads}-heads")
    task = get_task("copy")
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=task.input_size, output_size=task.output_size,
                                        read_heads=heads, write_heads=heads, controller_size=32))
    save(folder / f"copy-{2 * heads}-heads.safetensors", model, task=task)
    served_app = browser_helpers.serve_app(env={"NTMVIZ_CHECKPOINTS": str(folder)})
    try:
        yield served_app
    finally:
        browser_helpers.stop_app(served_app)


@pytest.fixture(scope="module")
def four_head_server(tmp_path_factory, browser_helpers):
    """The explorer on one NTM with 2 read and 2 write heads (untrained)."""
    yield from serve_heads(tmp_path_factory, browser_helpers, 2)


@pytest.mark.parametrize("width", [900, 1280])
def test_four_heads_fit_the_window(browser, browser_helpers, four_head_server, width):
    context, app = browser_helpers.open_explorer(browser, four_head_server, viewport=(width, 900))
    try:
        stages = assert_fits(app.page, f"four heads at {width} px")
        heads = [f"{k}-{h}" for k in ("read", "write") for h in (1, 2)]
        assert {f"focus-{x}" for x in heads} <= set(stages) and {f"heads-{x}" for x in heads} <= set(stages)
        app.page.get_by_role("checkbox", name="Show change").check()
        app.page.wait_for_timeout(300)
        assert_fits(app.page, f"four heads at {width} px, show change on")
        app.assert_no_errors()
    finally:
        context.close()


@pytest.fixture(scope="module")
def ten_head_server(tmp_path_factory, browser_helpers):
    """The explorer on one NTM with 5 read and 5 write heads (untrained), as the shipped priority
    sort has."""
    yield from serve_heads(tmp_path_factory, browser_helpers, 5)


def test_ten_heads_wrap_into_rows_not_a_column(browser, browser_helpers, ten_head_server):
    """Beside the memory the focus was one column of ten panels, 420 px of slots each (a page
    of 8,400 px); now it takes a line of its own where its panels wrap, and each head's panels
    draw a shorter slot axis (200 px) than the memory's."""
    context, app = browser_helpers.open_explorer(browser, ten_head_server, viewport=(1280, 900))
    try:
        stages = assert_fits(app.page, "ten heads at 1280 px")
        heads = [f"{k}-{h}" for k in ("read", "write") for h in range(1, 6)]
        focus = [stages[f"focus-{x}"] for x in heads]
        tracks = [stages[f"heads-{x}"] for x in heads]
        memory = stages["memory"]
        assert min(top for _, top, _, _ in focus) >= memory[1] + memory[3] - 1  # below the memory
        assert len({round(left) for left, _, _, _ in focus}) >= 3  # three panels or more to a row
        assert len({round(top) for _, top, _, _ in focus}) <= 4
        assert all(height < memory[3] for *_, height in focus + tracks)  # the shorter slot axis
        app.assert_no_errors()
    finally:
        context.close()


def test_compare_side_by_side_fits_at_1280(browser, browser_helpers):
    from ntmviz.app.compare import Compare
    from ntmviz.app.sources import load_source, record_episode

    source = load_source(CHECKPOINT)
    left, right = record_episode(source, length=12, seed=1), record_episode(source, length=12, seed=1)
    with browser_helpers.page_on(browser, lambda: Compare(left, right, titles=("left", "right"))) as app:
        app.wait(lambda v: v.get("memory", {}).get("frames", 0) >= 1 and v.get("sequence", {}).get("frames", 0) >= 1,
                 "both sides painted")
        app.page.wait_for_timeout(500)
        assert_fits(app.page, "compare at 1280 px")
        app.assert_no_errors()


@pytest.mark.parametrize("width", [900, 1280])
def test_exported_page_fits_the_window(browser, tmp_path, width):
    from ntmviz.app.sources import load_source, record_episode

    out = export_html(record_episode(load_source(CHECKPOINT), length=20, seed=0), tmp_path / "page.html")
    context = browser.new_context(viewport={"width": width, "height": 900})
    offsite: list[str] = []
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                  else (offsite.append(r.request.url), r.abort()))
    try:
        page = context.new_page()
        page.goto(out.as_uri())
        page.locator('.ntmviz-view[data-view="sequence"][data-frames="1"]').wait_for()
        assert_fits(page, f"export at {width} px")
        assert not offsite, offsite
    finally:
        context.close()
