"""The example notebooks run headless, top to bottom: examples/explorer.ipynb's views produce
Panel output, and examples/training.ipynb trains in the background while the kernel runs cells.
Executed, their outputs put on a page as a notebook shows them draw in Chromium with nothing
fetched from off the machine (scripts and stylesheets inline: ntmviz/app/local_resources.py);
converted to HTML with nbconvert and opened from file:// with no kernel, every output that holds
views shows them (the recorded rendering notebook.py adds), painted, and they play and scrub."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "explorer.ipynb"
TRAINING = EXAMPLES / "training.ipynb"
OWN_MODEL = EXAMPLES / "own_model.ipynb"
DNC = EXAMPLES / "dnc.ipynb"
PANEL_MIME = "application/vnd.holoviews_exec.v0+json"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel spec named for this interpreter, so the notebook runs in the test's environment."""
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tmp_path_factory.mktemp("kernels") / "ntmviz-test"
    folder.mkdir()
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ntmviz test", "language": "python"}))
    manager = KernelSpecManager()
    manager.kernel_dirs = [str(folder.parent)] + manager.kernel_dirs
    return manager


def execute(path: Path, kernel):
    """Execute the notebook in a fresh kernel; the executed notebook, after no cell failed."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="ntmviz-test",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.km = client.create_kernel_manager()
    client.km.kernel_spec_manager = kernel
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    return nb


@pytest.fixture(scope="module")
def executed(kernel):
    """path -> the executed notebook (each example runs once per test module)."""
    done = {}

    def get(path: Path):
        if path not in done:
            done[path] = execute(path, kernel)
        return done[path]
    return get


def outputs_of(nb) -> list[tuple[str, dict]]:
    """(cell source, output) pairs."""
    return [(cell.source, out) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def printed(outputs) -> str:
    return "".join(out.get("text", "") for _, out in outputs if out.output_type == "stream")


def test_explorer_notebook_runs(executed):
    outputs = outputs_of(executed(NOTEBOOK))
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    # the explorer, the lone memory view, the shared-state column, head locations, sequence
    assert len(panel_cells) >= 5, panel_cells
    assert any("Explorer.default" in src for src in panel_cells)
    text = printed(outputs)
    assert "write head's gate" in text and "episode.html" in text
    assert "focus.svg memory.png" in text
    svg = [out["data"]["image/svg+xml"] for _, out in outputs if "image/svg+xml" in out.get("data", {})]
    assert len(svg) == 1 and 'data-heatmap="heads-write-1"' in svg[0]  # the inline figure


def test_own_model_notebook_trains_records_and_shows_its_episode(executed):
    outputs = outputs_of(executed(OWN_MODEL))
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any(src.strip() == "Explorer(episode)" for src in panel_cells), panel_cells
    assert any("FocusView(state=state)" in src for src in panel_cells), panel_cells
    text = printed(outputs)
    accuracy = re.search(r"held-out accuracy ([0-9.]+) on 1000 lookups", text)
    assert accuracy and float(accuracy.group(1)) > 0.8, text  # the lookup learned (chance is 1/8)
    assert "Episode(custom, T=6, N=8, M=14, static memory, task='lookup')" in text, text
    assert "stages ['before sharpening'] params ['beta', 'query']" in text, text
    assert "EpisodeArrayError: read_weights[" in text and "to sum to 1" in text, text


def test_dnc_notebook_shows_another_librarys_dnc_with_usage_and_links(executed):
    pytest.importorskip("dnc")  # the examples extra (and the test extra) install it
    outputs = outputs_of(executed(DNC))
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any(src.strip() == "Explorer(episode)" for src in panel_cells), panel_cells
    text = printed(outputs)
    # it learned the copy, measured on 1000 sequences of the test stream
    held_out = re.search(r"held-out, lengths 1-5: +([0-9.]+) \[[0-9.]+, [0-9.]+\] bit errors/seq, ([0-9.]+)% exact "
                         r"\(n=1000\)", text)
    assert held_out and float(held_out.group(1)) < 0.05 and float(held_out.group(2)) > 95, text
    assert re.search(r"held-out, lengths 6-10: +[0-9.]+ \[", text), text
    # what went into the episode is what the package computed (the notebook asserts each check)
    assert text.count("largest difference") == 8, text
    episode = re.search(r"Episode\(custom, T=(\d+), N=16, M=8, task='copy'\) - DNC \(the dnc package\)", text)
    assert episode, text
    T = int(episode.group(1))
    shapes = f"slot state {{'usage': ({T}, 16), 'precedence': ({T}, 16)}} slot matrices {{'links': ({T}, 16, 16)}}"
    assert text.count(shapes) == 2, text  # recorded, and loaded back from its file
    # a weighting that does not sum to 1: why from_arrays takes normalised=False, and refuses it without
    smallest = re.search(r"smallest read weighting sum: read head \d at step \d+: ([0-9.]+)", text)
    assert smallest and float(smallest.group(1)) < 0.999, text
    assert "EpisodeArrayError: read_weights[" in text and "normalised=False" in text, text
    # the links chain the slots in the order they were written
    chain = re.search(r"the (\d) vectors went to slots (\[[0-9, ]+\]); following the last step's links from the "
                      r"first: (\[[0-9, ]+\])", text)
    assert chain and 2 * int(chain.group(1)) + 1 == T and chain.group(2) == chain.group(3), text
    assert "checksum verified" in text and "normalised {'read': False, 'write': False}" in text, text
    assert "the loaded episode's arrays equal the recorded ones" in text, text


ATTENTION = EXAMPLES / "attention.ipynb"


def test_attention_notebook_trains_an_encoder_decoder_whose_heads_align_the_reversal(executed):
    outputs = outputs_of(executed(ATTENTION))
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any(src.strip() == "Explorer(episode)" for src in panel_cells), panel_cells
    assert any("FocusView(state=state)" in src for src in panel_cells), panel_cells
    text = printed(outputs)
    trained = re.search(r"trained 400 steps in ([0-9.]+) s", text)
    assert trained and float(trained.group(1)) < 60, text  # in the notebook, in under a minute
    held_out = re.search(r"held-out, 1000 words: letters right ([0-9.]+); attention peak on the mirrored letter on "
                         r"([0-9.]+) of (\d+) output steps", text)
    assert held_out and float(held_out.group(1)) > 0.9 and float(held_out.group(2)) >= 0.9, text
    assert 3 * 1000 <= int(held_out.group(3)) <= 8 * 1000, text  # every letter of words of 3-8 letters
    # the recorded word: its letters name the slots, each of the two heads is a head over them
    word, answer = re.search(r"^(\w+) -> (\w+)$", text, re.M).groups()
    L = len(word)
    episode = re.search(r"Episode\(custom, T=(\d+), N=(\d+), M=32, static memory, task='reversal'\) "
                        r"heads \((\d+), 2, (\d+)\) slot labels (\[.*\])", text)
    assert episode and [int(episode.group(k)) for k in (1, 2, 3, 4)] == [L] * 4, text
    assert episode.group(5) == repr(list(word)), text
    # where the heads together looked at each output step, against the mirrored position
    peaks = {int(t): (out, int(n), letter) for t, out, n, letter in
             re.findall(r"output (\d+) '(\w)': attention peak on input (\d+) '(\w)'", text)}
    assert sorted(peaks) == list(range(L)), text
    assert all(out == answer[t] and letter == word[n] for t, (out, n, letter) in peaks.items()), text
    mirrored = sum(n == L - 1 - t for t, (_, n, _) in peaks.items())
    assert mirrored >= 0.9 * L, text
    assert sum(a == b for a, b in zip(answer, word[::-1])) >= 0.9 * L, text

def test_training_notebook_trains_in_the_background(executed):
    outputs = outputs_of(executed(TRAINING))
    panel_cells = [src for src, out in outputs if PANEL_MIME in out.get("data", {})]
    assert any("TrainingView" in src for src in panel_cells), panel_cells
    text = printed(outputs)
    # start() handed the kernel back at once, later cells ran while the thread trained
    started = re.search(r"start\(\) returned after [0-9.]+ s: run (\w+), at step (\d+)", text)
    assert started and started.group(1) in ("starting", "running"), text  # not finished: it runs on
    trained = re.search(r"trained to step (\d+) in the background; (\d+) snapshot", text)
    assert trained and int(trained.group(1)) > int(started.group(2)) and int(trained.group(2)) >= 1, text
    assert re.search(r"run (stopped|finished|done)", text), text


# ---- converted to HTML, opened with no kernel and no network -----------------------------------------
# nbconvert's template loads require.js and MathJax from cdnjs by default; pointed at empty
# scripts here, so any request off the machine is ntmviz's or Panel's, and fails the test.
EMPTY_SCRIPT = "data:text/javascript,"

OUTPUTS_JS = """() => Array.from(document.querySelectorAll('[data-ntmviz-output]'), (box) => ({
  offline: box.dataset.offline || null,
  views: Array.from(box.querySelectorAll('.ntmviz-offline .ntmviz-view'),
                    (v) => ({view: v.dataset.view, step: Number(v.dataset.step), frames: Number(v.dataset.frames)})),
}))"""

# coloured pixels of the first output's head locations (the weightings over time): drawn from the data
DRAWN_JS = """() => {
  const box = document.querySelector('[data-ntmviz-output]');
  const c = box.querySelector('.ntmviz-offline [data-stage^="heads-"] canvas[data-layer="back"]');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) {
    const white = px[i] > 240 && px[i + 1] > 240 && px[i + 2] > 240;
    if (px[i + 3] && !white) n++;
  }
  return n;
}"""


@pytest.mark.parametrize("path, boxes", [(NOTEBOOK, 5), (TRAINING, 1), (OWN_MODEL, 2)],
                         ids=["explorer", "training", "own_model"])
def test_converted_notebook_plays_offline(executed, tmp_path, path, boxes):
    from nbconvert import HTMLExporter

    from _serve import chromium

    body, _ = HTMLExporter(mathjax_url=EMPTY_SCRIPT, require_js_url=EMPTY_SCRIPT).from_notebook_node(executed(path))
    page_path = tmp_path / (path.stem + ".html")
    page_path.write_text(body, encoding="utf-8")
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        offsite: list[str] = []

        def route(r):
            url = r.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                return r.continue_()
            offsite.append(url)
            return r.abort()
        context.route("**/*", route)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri(), timeout=120_000)
            page.wait_for_function(f"""() => {{ const o = ({OUTPUTS_JS})();
                return o.length === {boxes} && o.every((b) => b.offline === 'shown' && b.views.length > 1
                                                       && b.views.every((v) => v.frames >= 1)); }}""",
                                   timeout=60_000)
            outputs = page.evaluate(OUTPUTS_JS)
            # each output opens on its episode's opening step, every view of it on the same one
            opened = [{v["step"] for v in box["views"]} for box in outputs]
            assert all(len(steps) == 1 for steps in opened), opened
            assert page.evaluate(DRAWN_JS) > 200, "the head locations drew nothing"
            first = page.locator("[data-ntmviz-output]").first
            first.get_by_role("button", name="Play").click()
            page.wait_for_function(f"() => ({OUTPUTS_JS})()[0].views.every((v) => v.step >= 3)", timeout=30_000)
            first.get_by_role("button", name="Pause").click()
            first.get_by_role("slider", name="Step").evaluate(
                "(el) => { el.value = '2'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
            page.wait_for_function(f"() => ({OUTPUTS_JS})()[0].views.every((v) => v.step === 2)", timeout=30_000)
            # the other outputs did not move: each has its own player
            if boxes > 1:
                assert {v["step"] for v in page.evaluate(OUTPUTS_JS)[1]["views"]} == opened[1]
            assert not errors, errors
            assert not offsite, offsite
        finally:
            context.close()


def output_page(outputs) -> str:
    """The outputs in order, as a classic notebook puts them in its page: HTML as HTML, and
    application/javascript run as a script."""
    def text(value) -> str:
        return "".join(value) if isinstance(value, list) else value

    parts = []
    for _, out in outputs:
        data = out.get("data", {})
        if "application/javascript" in data:
            parts.append("<script>" + text(data["application/javascript"]).replace("</script", "<\\/script")
                         + "</script>")
        elif "text/html" in data:
            parts.append(text(data["text/html"]))
    return "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "\n".join(parts) + "</body></html>"


PAINTED_VIEWS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-view') && Number(el.dataset.frames) >= 1) out.push(el.dataset.view);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


# Every <link rel=stylesheet> in the page and its shadow roots: [href, parsed?].
STYLESHEETS_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'LINK' && el.rel === 'stylesheet') out.push([el.href, el.sheet !== null]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


@pytest.mark.parametrize("notebook, views", [
    (NOTEBOOK, 5 + 1 + 3 + 1 + 1),  # the explorer's five, MemoryView, the shared-state column, heads, sequence
    (TRAINING, 3),                  # the training view's player, head locations and memory (or more)
    (OWN_MODEL, 5 + 3),             # the explorer's five; a player, memory and focus on one state
])
def test_notebook_outputs_draw_with_nothing_from_off_the_machine(executed, tmp_path, notebook, views):
    from _serve import chromium

    page_file = tmp_path / "outputs.html"
    page_file.write_text(output_page(outputs_of(executed(notebook))), encoding="utf-8")
    errors = []
    with chromium() as browser:  # fails on leaving if anything asked for another machine
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())
        page.wait_for_function(PAINTED_VIEWS_JS.replace("return out;", f"return out.length >= {views};"),
                               timeout=120_000)
        # Panel's stylesheets are there, inline, and the browser parsed them
        links = page.evaluate(STYLESHEETS_JS)
        assert len(links) >= 3 and all(href.startswith("data:text/css") and loaded for href, loaded in links), \
            [(href[:80], loaded) for href, loaded in links]
        assert not browser.off_machine, browser.off_machine
    assert not errors, errors
