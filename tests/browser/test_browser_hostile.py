"""Hostile text in real Chromium: a checkpoint folder and episode files shared by someone else
whose names and metadata are markup. The served app, its Train tab and the HTML export show
them as text; no script runs (window.__pwned stays unset) and no element comes from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import ntmviz
from ntmviz.app import export_html

ROOT = Path(__file__).resolve().parent.parent.parent
CHECKPOINT = ROOT / "checkpoints" / "copy-ntm.safetensors"
TIMEOUT_MS = 60_000

GOOD = '<img src=x onerror="window.__pwned=1">.safetensors'
BROKEN = "!<svg onload=window.__pwned=2>.safetensors"  # listed first; fails to load
META = '<img src=y onerror="window.__pwned=3">'
UPLOAD = '<img src=z onerror="window.__pwned=4">.safetensors'
INJECTED = 'img[src="x"], img[src="y"], img[src="z"], svg[onload]'


def hostile_episode(path: Path) -> Path:
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=9, output_size=8, memory_slots=12, memory_width=6,
                                        controller_size=16))
    meta = {k: META for k in ("task", "checkpoint", "source", "length", "seed")}
    meta["input_labels"] = [META] * 9
    ep = ntmviz.record(model, (torch.rand(6, 9) > 0.5).float(), torch.zeros(6, 8), meta=meta)
    return ep.save(path)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, browser_helpers):
    folder = tmp_path_factory.mktemp("shared-checkpoints")
    shutil.copy(CHECKPOINT, folder / GOOD)
    (folder / BROKEN).write_bytes(b"not a checkpoint at all")
    served = browser_helpers.serve_app(env={"NTMVIZ_CHECKPOINTS": str(folder)})
    try:
        yield served
    finally:
        browser_helpers.stop_app(served)


def assert_nothing_ran(page) -> None:
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator(INJECTED).count() == 0  # CSS locators pierce Panel's shadow roots


def test_served_app_shows_hostile_names_and_metadata_as_text(browser, browser_helpers, hostile_server, tmp_path):
    context, app = browser_helpers.open_explorer(browser, hostile_server, viewport=(1280, 900))
    page = app.page
    try:
        page.wait_for_timeout(500)
        assert_nothing_ran(page)
        # on load: the title names the checkpoint, the alert the one that failed, the list both
        assert page.get_by_text(f"from {GOOD}").count() == 1
        alert = page.get_by_role("alert")
        assert BROKEN in alert.inner_text()
        labels = page.locator("select option").all_inner_texts()
        assert GOOD in labels and BROKEN in labels, labels

        # an episode file whose name and metadata are markup
        episode = hostile_episode(tmp_path / "ep.safetensors")
        app.show_files()
        page.get_by_label("Open episode", exact=True).set_input_files(files=[{
            "name": UPLOAD, "mimeType": "application/octet-stream", "buffer": episode.read_bytes()}])
        app.wait_painted(steps=6, timeout=90)
        page.get_by_text(f"task {META}, length {META}, seed {META}").wait_for()  # every field as text
        assert f"from {META}" in page.get_by_text(f"task {META}").inner_text()
        assert_nothing_ran(page)

        # an unreadable file under a markup name: the message shows the name as text
        page.get_by_label("Open episode", exact=True).set_input_files(files=[{
            "name": UPLOAD, "mimeType": "application/octet-stream", "buffer": b"\x08" + bytes(40)}])
        page.get_by_role("alert").filter(has_text=UPLOAD).wait_for()
        assert_nothing_ran(page)

        # the Train tab lists the checkpoints ("Start from") as text too
        page.get_by_text("Train", exact=True).first.click()
        app.button("Start").wait_for()
        page.wait_for_timeout(500)
        assert GOOD in page.locator("select option").all_inner_texts()
        assert_nothing_ran(page)
        app.assert_no_errors()
    finally:
        context.close()


def test_export_shows_hostile_metadata_as_text(browser, tmp_path):
    episode = ntmviz.Episode.load(hostile_episode(tmp_path / "ep.safetensors"))
    out = export_html(episode, tmp_path / "page.html")
    context = browser.new_context()
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri(), timeout=TIMEOUT_MS)
        page.locator(".ntmviz-view[data-view=memory][data-frames]").wait_for()
        # the title names the model, then the task: the metadata as text
        assert page.title().startswith(f"ntmviz: {episode.title}, task {META}")
        assert page.locator("h1").inner_text().startswith(f"ntmviz: {episode.title}, task {META}")
        assert_nothing_ran(page)
        assert not errors, errors
    finally:
        context.close()


def test_notebook_output_shows_hostile_metadata_as_text(browser, tmp_path):
    """What a notebook displays: the Explorer's Bokeh models as Panel embeds them (pn.panel(...).save
    with inline resources). Panel's own stylesheets, which a notebook takes from Panel's CDN, are
    answered from the installed panel package so nothing leaves the machine."""
    import panel as pn
    from bokeh.resources import INLINE

    from ntmviz.app import Explorer

    dist = Path(pn.__file__).parent / "dist"
    cdn = f"https://cdn.holoviz.org/panel/{pn.__version__}/dist/"
    episode = ntmviz.Episode.load(hostile_episode(tmp_path / "ep.safetensors"))
    out = tmp_path / "notebook.html"
    pn.panel(Explorer(episode, folder=tmp_path / "none")).save(out, resources=INLINE)
    offsite = []

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:", "blob:")):
            return r.continue_()
        local = dist / url[len(cdn):].split("?")[0] if url.startswith(cdn) else None
        if local is not None and local.is_file():
            return r.fulfill(path=str(local))
        offsite.append(url)
        return r.abort()

    context = browser.new_context()
    context.route("**/*", route)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri(), timeout=TIMEOUT_MS)
        page.locator(".ntmviz-view[data-view=memory][data-frames]").wait_for()
        assert page.get_by_text(f"task {META}, length {META}").count() == 1
        assert_nothing_ran(page)
        assert not errors and not offsite, (errors, offsite)
    finally:
        context.close()
