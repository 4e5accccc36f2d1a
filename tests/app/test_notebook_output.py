"""Notebook outputs of the views carry a hidden, self-contained rendering of their episode (every
step inline, nothing from the network) beside Panel's live output; a live view's hello is
answered so the browser can tell a kernel is there (see ntmviz/app/notebook.py)."""

from __future__ import annotations

import json
import re

import panel as pn
from IPython.core.interactiveshell import InteractiveShell

from ntmviz.app import Explorer, FocusView, MemoryView, Playback, Player, extension
from ntmviz.app.notebook import install, mimebundle, offline_html
from ntmviz.app.payload import decode_array

PARTS = re.compile(r'<script type="application/json" class="ntmviz-offline-data">(.*?)</script>', re.S)


def parts_of(html: str) -> list[dict]:
    [data] = PARTS.findall(html)
    return json.loads(data)


def test_a_layout_of_views_gets_one_part_per_playback_state(episode, other_episode):
    extension()
    state = Playback(episode)
    layout = pn.Column(Player(state=state), pn.Row(MemoryView(state=state, diff=True), FocusView(state=state)),
                       MemoryView(other_episode))
    data, metadata = mimebundle(layout)
    html = data["text/html"]
    assert html.startswith('<div class="ntmviz-output" data-ntmviz-output="')
    assert '<div class="ntmviz-live">' in html and "application/vnd.holoviews_exec.v0+json" in data
    first, second = parts_of(html)
    assert first["views"] == ["memory", "focus"] and first["diff"] is True
    assert second["views"] == ["memory"] and second["payload"]["T"] == other_episode.steps
    # every step travels inline: the memory of the last step decodes to the episode's
    steps = first["payload"]["steps"]
    assert len(steps["chunks"]) == steps["count"]
    last = decode_array(steps["chunks"][str(steps["count"] - 1)]["memory"])[-1]
    assert abs(last - episode.memory[-1]).max() < 1e-6
    assert "offlineFallback(" in html and "https://" not in html.split('<div class="ntmviz-offline"')[1]


def test_the_explorer_part_has_every_view_and_a_title(episode):
    html = offline_html(Explorer(episode, folder="/nonexistent"))
    [part] = parts_of(html)
    assert part["views"] == ["memory", "focus", "heads", "sequence"] and "task synthetic" in part["title"]


def test_without_the_panel_extension_the_fallback_alone_shows(episode):
    """Panel renders nothing before pn.extension() has run in the notebook; the views still show."""
    from unittest import mock

    view = MemoryView(episode)
    with mock.patch.object(type(view.canvas), "_repr_mimebundle_", return_value=None):
        data, _ = mimebundle(view)
    assert '<div class="ntmviz-live"></div>' in data["text/html"] and parts_of(data["text/html"])


def test_objects_without_views_are_left_alone():
    column = pn.Column(pn.pane.Markdown("hello"))
    assert offline_html(column) is None
    data, _ = mimebundle(column)
    assert "ntmviz-output" not in data.get("text/html", "")


def test_hostile_metadata_cannot_end_the_script(episode):
    episode.meta["task"] = "</script><img src=x onerror=alert(1)>"
    html = offline_html(MemoryView(episode))
    data = PARTS.findall(html)[0]
    assert "</script" not in data and "<img" not in data
    assert parts_of(html)[0]["payload"]["meta"]["task"] == episode.meta["task"]


def test_install_registers_for_panel_objects_once():
    shell = InteractiveShell.instance()
    assert install(shell) and install(shell)
    formatter = shell.display_formatter.mimebundle_formatter
    from panel.viewable import Viewable, Viewer

    assert formatter.lookup_by_type(Viewable) is mimebundle and formatter.lookup_by_type(Viewer) is mimebundle


def test_a_live_canvas_answers_hello_and_draws_figures(episode):
    view = MemoryView(episode)
    sent = []
    view.canvas._send_msg = sent.append
    view.canvas._handle_msg({"hello": 1})
    assert sent == [{"alive": True}]
    view.canvas._handle_msg({"figure": "svg", "t": 2, "diff": True, "zoom": None})
    reply = sent[-1]
    assert reply["filename"].endswith("-memory-step2.svg") and reply["mime"] == "image/svg+xml"
    import base64

    assert "Change made by step 2" in base64.b64decode(reply["b64"]).decode()
    view.canvas._handle_msg({"figure": "svg", "t": 99})
    assert "out of range" in sent[-1]["error"]


def test_a_figure_that_fails_unexpectedly_says_so_and_logs_the_traceback(episode, caplog):
    """A bug while drawing a figure (here: a drawing function that raises) answers the browser
    with the error in one line, and the log holds the traceback; the canvas keeps answering."""
    import ntmviz.app.canvas as module

    view = MemoryView(episode)
    sent = []
    view.canvas._send_msg = sent.append

    def broken(*args):
        raise RuntimeError("a bug in a figure")

    view.canvas.figures = broken
    with caplog.at_level("ERROR", logger=module.log.name):
        view.canvas._handle_msg({"figure": "png", "t": 1})
    assert sent == [{"figure": "png", "error": "RuntimeError: a bug in a figure"}]
    [record] = [r for r in caplog.records if r.name == module.log.name]
    assert record.exc_info is not None and "a bug in a figure" in str(record.exc_info[1])
    view.canvas._handle_msg({"hello": 1})
    assert sent[-1] == {"alive": True}


def test_a_fallback_that_fails_leaves_the_live_output_and_logs_the_traceback(episode, caplog):
    """A bug while building the hidden fallback must not take the notebook output with it: Panel's
    own output is returned unchanged, and the log holds the traceback."""
    from unittest import mock

    import ntmviz.app.notebook as module

    view = MemoryView(episode)
    live = ({"text/html": "<div>the live view</div>", "application/vnd.holoviews_exec.v0+json": ""}, {"id": 1})
    with mock.patch.object(type(view._create_view()), "_repr_mimebundle_", return_value=live):
        data, metadata = mimebundle(view)
        assert "ntmviz-offline" in data["text/html"]  # with a working fallback, it is added
        with mock.patch.object(module, "episode_payload", side_effect=RuntimeError("a bug in the fallback")):
            with caplog.at_level("ERROR", logger=module.log.name):
                data, metadata = mimebundle(view)
    assert (data, metadata) == live  # Panel's own output, unchanged
    [record] = [r for r in caplog.records if r.name == module.log.name]
    assert record.exc_info is not None and "a bug in the fallback" in str(record.exc_info[1])


def test_the_slots_view_is_in_the_recorded_part_where_the_model_declares_slots(dnc_episode, episode):
    """A DNC's slot state and links show without a kernel too; an NTM's page has no slots view."""
    from ntmviz.app.views import SlotsView  # (ntmviz.app does not export it yet)

    [alone] = parts_of(offline_html(SlotsView(dnc_episode)))
    assert alone["views"] == ["slots"]
    assert set(alone["payload"]["steps"]["names"]) == {"slot.usage", "matrix.links"}
    assert set(alone["payload"]["arrays"]) == {"slot.usage.time"}
    [part] = parts_of(offline_html(Explorer(dnc_episode, folder="/nonexistent")))
    assert part["views"] == ["memory", "focus", "heads", "slots", "sequence"]
    assert {"slot.usage", "matrix.links"} <= set(part["payload"]["steps"]["names"])
    [ntm] = parts_of(offline_html(Explorer(episode, folder="/nonexistent")))
    assert "slots" not in ntm["views"]
