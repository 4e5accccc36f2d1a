"""The seeds of a run: what each one has reached, which is best now, and the table that lists them.

    progress = SeedProgress(3)
    progress.update(metrics)                  # newest finite values and smoothed loss per seed
    k = best_member(run.models(), progress.smoothed, task.validation_key)
    table = SeedTable()
    table.show(seeds, run.models(), progress.last, member=k, status="running")

The table has a row per seed: its newest loss and bit errors, curriculum stage, whether it trains
or why it diverged, and its validation score when the run validates; every value is text
(messages.text), never markup. Every redraw makes the page lay itself out again (measured here in
Chromium with four seeds: redrawn at every pull, the page answered in 0.2-1.2 s; redrawn at most
every 2 s, in 0.03-0.45 s, as with one seed), so while the run trains a change of numbers alone
waits `period` seconds; any other change, and every change once the run pauses or ends, shows at once.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple, Sequence

import panel as pn
import param
from panel.viewable import Viewer

from .messages import text
from .train_curves import model_values, seed_colours

SMOOTHING = 0.9  # the moving average of the training loss that picks the best seed without validation
# What a seed still training is doing, from the run's status.
ALIVE_STATE = {"running": "training", "pausing": "training", "stopping": "training", "paused": "paused",
               "done": "done", "stopped": "stopped"}
HEADINGS = ("Seed", "Loss", "Bit errors", "Stage", "State", "Validation bit errors")
DASH = "\u2014"


class Last(NamedTuple):
    """A seed's newest finite values."""

    step: int
    sequences: int
    loss: float
    bit_errors: float


class SeedProgress:
    """Per seed of a run: its newest finite values (`last`) and the moving average of its training
    loss over every step (`smoothed`, weight SMOOTHING), from the metrics as they arrive."""

    def __init__(self, count: int):
        self.last: list[Last | None] = [None] * count
        self.smoothed: list[float | None] = [None] * count

    def update(self, metrics: Sequence) -> None:
        for m in metrics:
            for k in range(len(self.last)):
                loss, errors = model_values(m, k)
                if math.isfinite(loss):
                    self.last[k] = Last(m.step, m.sequences, loss, errors)
                    e = self.smoothed[k]
                    self.smoothed[k] = loss if e is None else SMOOTHING * e + (1 - SMOOTHING) * loss


def best_member(models: Sequence, smoothed: Sequence[float | None], validation_key: Callable | None,
                count: int) -> int:
    """The index of the seed best now among those training (live.ModelStatus each): on the
    validation stream when every one has a newest score (validation_key(bit_errors, loss) orders
    them), else on the smoothed training loss; the first seed when nothing is known yet."""
    alive = [k for k, m in enumerate(models) if m.alive] or list(range(count))
    if models and validation_key is not None and all(models[k].validation is not None for k in alive):
        return min(alive, key=lambda k: (*validation_key(models[k].validation.bit_errors,
                                                         models[k].validation.loss), k))
    scored = [k for k in alive if k < len(smoothed) and smoothed[k] is not None]
    if scored:
        return min(scored, key=lambda k: (smoothed[k], k))
    return alive[0]


def table_cells(seeds: Sequence[int], models: Sequence, last: Sequence[Last | None], member: int,
                status: str) -> list[list[str]]:
    """Each seed's row as text: seed (and whether it is on show), loss, bit errors, stage, state,
    validation bit errors (with the best so far)."""
    rows = []
    for k, seed in enumerate(seeds):
        m = models[k] if k < len(models) else None
        newest = last[k] if k < len(last) else None
        state = ALIVE_STATE.get(status, "ready") if m is None or m.alive else f"diverged: {m.diverged}"
        valid = DASH
        if m is not None and m.validation is not None:
            best = m.best_validation
            valid = f"{m.validation.bit_errors:.2f} (best {best.bit_errors:.2f} at step {best.step:,})"
        rows.append([f"seed {seed}" + (" (shown)" if k == member else ""),
                     DASH if newest is None else f"{newest.loss:.3f}",
                     DASH if newest is None else f"{newest.bit_errors:.2f}",
                     DASH if m is None or not m.stage else str(m.stage), state, valid])
    return rows


def table_html(seeds: Sequence[int], rows: list[list[str]], member: int) -> str:
    """The table's markup: every cell's value as text, a colour swatch per seed."""
    colours = seed_colours(len(seeds))
    head = "".join(f'<th scope="col" style="text-align:left;padding:2px 8px">{text(h)}</th>' for h in HEADINGS)
    body = []
    for k, (seed, cells) in enumerate(zip(seeds, rows)):
        swatch = f'<span aria-hidden="true" style="color:{colours[k]}">\u25a0</span> '
        tds = "".join(f'<td style="padding:2px 8px;text-align:left">{swatch if i == 0 else ""}{text(c)}</td>'
                      for i, c in enumerate(cells))
        weight = "font-weight:600;" if k == member else ""
        body.append(f'<tr data-seed="{int(seed)}" style="{weight}">{tds}</tr>')
    return ('<table class="ntmviz-seeds" aria-label="Progress of each seed" style="border-collapse:collapse;'
            f'font-size:12px"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


class SeedTable(Viewer):
    """The table of a run's seeds, shown when the run has more than one (see the module docstring)."""

    rows = param.List(default=[], doc="""
        The cells on show, a list of text per seed (table_cells).""")

    period = param.Number(default=2.0, bounds=(0, None), doc="""
        While a run trains, the numbers change at most every this many seconds.""")

    def __init__(self, **params):
        super().__init__(**params)
        self.pane = pn.pane.HTML("", visible=False, sizing_mode="stretch_width")
        self._key: tuple = ()  # what the table last showed besides its numbers
        self._time = 0.0  # when it was last redrawn (time.monotonic)

    @property
    def visible(self) -> bool:
        return self.pane.visible

    @property
    def html(self) -> str:
        """The table's markup as the page has it."""
        return self.pane.object

    def reset(self, seeds: Sequence[int], models: Sequence) -> None:
        """A new run: its table (shown only for more than one seed), before any step."""
        self._key, self._time = (), 0.0
        self.pane.visible = len(seeds) > 1
        self.rows = []
        if len(seeds) > 1:
            self.show(seeds, models, [None] * len(seeds), 0, "ready", force=True)

    def show(self, seeds: Sequence[int], models: Sequence, last: Sequence[Last | None], member: int, status: str,
             force: bool = False) -> None:
        """Redraw the table if it changed, the numbers alone at most every `period` while training."""
        rows = table_cells(seeds, models, last, member, status)
        if rows == self.rows:
            return
        now = time.monotonic()
        key = (status, member, tuple(models))  # everything the table shows but its numbers
        if force or key != self._key or status not in ("running", "pausing") or now - self._time >= self.period:
            self.pane.object = table_html(seeds, rows, member)
            self.rows = rows
            self._key, self._time = key, now

    def __panel__(self):
        return self.pane
