"""A run's last state as an output that needs no kernel (run_record.py), and the note a live Train
tab leaves where no kernel answers (needs_kernel.py)."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from pyviz_comms import Comm

from ntmviz.app.live import RunConfig
from ntmviz.app.needs_kernel import NeedsKernel
from ntmviz.app.run_record import HEIGHT, LEFT, TOP, BOTTOM, WIDTH, LEGEND, Line, chart_svg
from ntmviz.app.training_view import NO_KERNEL, TrainingView

PARTS = re.compile(r'<script type="application/json" class="ntmviz-offline-data">(.*?)</script>', re.S)
POLYLINE = re.compile(r'<polyline points="([^"]*)" fill="none" stroke="([^"]*)" stroke-width="1.5" '
                      r'data-label="([^"]*)"/>')


def polylines(svg: str) -> list[tuple[str, str, np.ndarray]]:
    """(label, colour, points [n, 2] in pixels) of every polyline drawn."""
    return [(label, colour, np.array([[float(v) for v in p.split(",")] for p in pts.split()]))
            for pts, colour, label in POLYLINE.findall(svg)]


def test_a_chart_draws_each_run_of_finite_values_where_the_data_puts_it():
    steps = np.array([0.0, 10, 20, 30, 40])
    a = Line("seed 0", "#0077bb", steps, np.array([4.0, 3.0, np.nan, 2.0, 1.0]))  # a gap at step 20
    b = Line("seed 1", "#ee7733", steps, np.array([2.0, 2.5, 3.0, np.nan, np.nan]))  # diverged after 20
    svg = chart_svg("Loss", "loss", [a, b], [(20.0, 3.0, "#ee7733")], legend=True)
    drawn = polylines(svg)
    assert [(label, colour, len(p)) for label, colour, p in drawn] == [
        ("seed 0", "#0077bb", 2), ("seed 0", "#0077bb", 2), ("seed 1", "#ee7733", 3)]
    # back from pixels to data: x from 0..40 over the plot's width, y from 1..4 up its height
    pw, ph = WIDTH - LEFT - LEGEND, HEIGHT - TOP - BOTTOM
    to_data = lambda p: np.c_[(p[:, 0] - LEFT) / pw * 40, 1 + (TOP + ph - p[:, 1]) / ph * 3]  # noqa: E731
    np.testing.assert_allclose(to_data(drawn[0][2]), [[0, 4], [10, 3]], atol=0.1)
    np.testing.assert_allclose(to_data(drawn[1][2]), [[30, 2], [40, 1]], atol=0.1)
    np.testing.assert_allclose(to_data(drawn[2][2]), [[0, 2], [10, 2.5], [20, 3]], atol=0.1)
    [mark] = re.findall(r'<path d="M([\d.]+),([\d.]+)L[^"]*" stroke="#ee7733"[^>]*class="ntmviz-diverged"', svg)
    np.testing.assert_allclose(to_data(np.array([[float(mark[0]) + 5, float(mark[1]) + 5]])), [[20, 3]], atol=0.1)
    assert ">seed 0</text>" in svg and ">seed 1</text>" in svg  # the legend
    assert "<text" in svg and ">40</text>" in svg and ">training step</text>" in svg


def test_a_log_chart_and_text_that_stays_text():
    hostile = '<img src=x onerror="alert(1)">'
    line = Line(hostile, "#0077bb", np.array([1.0, 2.0, 3.0]), np.array([100.0, 10.0, 1.0]))
    svg = chart_svg(hostile, hostile, [line], [], log=True, legend=True)
    assert "<img" not in svg and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in svg
    [(_, _, points)] = polylines(svg)
    ys = points[:, 1]
    assert ys[1] - ys[0] == pytest.approx(ys[2] - ys[1], abs=0.11)  # equal steps in log10
    assert chart_svg("Loss", "loss", [Line("a", "#000", np.zeros(0), np.zeros(0))], []).count("no steps yet") == 1


def small(**overrides) -> RunConfig:
    options = dict(task="copy", task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                   controller_size=16, lr=1e-3, optimizer="adam", batch_size=4, snapshot_every=2, steps=8)
    options.update(overrides)
    return RunConfig(**options)


def test_the_record_of_a_run_holds_its_status_curves_seeds_and_views(tmp_path):
    view = TrainingView(small(seeds=[0, 1]), save_folder=str(tmp_path), folder=str(tmp_path))
    pn.panel(view).get_root(Document(), Comm())
    assert "No snapshot yet." in view.last_state().html()  # before Start: nothing to show, and said
    run = view.start()
    deadline = time.monotonic() + 90
    while not run.ended and time.monotonic() < deadline:
        view.pull()
        time.sleep(0.05)
    view.pull()
    html = view.last_state()._repr_html_()
    assert html.startswith('<div class="ntmviz-record"')
    assert "<strong>Done</strong> · step 8 of 8 · 32 sequences per seed" in html
    charts = re.findall(r'<svg [^>]*class="ntmviz-record-chart">.*?</svg>', html, re.S)
    assert len(charts) == 2 and 'aria-label="Loss (nats per sequence)"' in charts[0]
    drawn = polylines(charts[0])
    assert [label for label, _, _ in drawn] == ["seed 0", "seed 1"] and all(len(p) == 8 for _, _, p in drawn)
    losses = [view.curve(k)["loss"] for k in range(2)]
    low, high = min(map(min, losses)), max(map(max, losses))
    ph = HEIGHT - TOP - BOTTOM
    for (_, _, points), loss in zip(drawn, losses):  # each line's heights are its seed's losses
        np.testing.assert_allclose(low + (TOP + ph - points[:, 1]) / ph * (high - low), loss, atol=(high - low) / 100)
    assert view.seed_table.html in html  # the table as the page shows it
    assert f"Snapshot {len(view.snapshot_list)} of {len(view.snapshot_list)}: step 8" in html
    [data] = PARTS.findall(html)
    [part] = json.loads(data)
    assert part["views"] == ["memory", "heads", "sequence"]
    meta = part["payload"]["meta"]
    assert meta["training_step"] == 8 == view.shown_step and meta["training_seed"] == view.shown_seed
    assert "offlineFallback(" in html and "https://" not in html


def test_a_live_view_answers_hello_and_only_notebooks_carry_the_note(tmp_path, monkeypatch):
    note = NeedsKernel(text="needs its kernel")
    sent = []
    note._send_msg = sent.append
    note._handle_msg({"hello": 1})
    assert sent == [{"alive": True}]
    assert "textContent = model.text" in note._esm and "innerHTML" not in note._esm  # text, never markup

    def kernel_notes(view):
        return [o for o in pn.panel(view).select(NeedsKernel)]

    view = TrainingView(small(), save_folder=str(tmp_path), folder=str(tmp_path), show_views=False)
    [found] = kernel_notes(view)  # no server session: a notebook, which may be saved and opened without one
    assert found.text == NO_KERNEL
    class Served:  # a document of a served session, as the app sees it
        session_context = SimpleNamespace(id="s", request=SimpleNamespace(arguments={}, cookies={}, headers={}))

    monkeypatch.setattr(pn.state, "curdoc", Served())
    monkeypatch.setattr(pn.state, "on_session_destroyed", lambda cb: None)
    assert kernel_notes(view) == []  # a served page always has its server
