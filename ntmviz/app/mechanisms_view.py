"""MechanismsView: "What the heads did" in the episode on show, beside the explorer's views.

Each mechanism of the episode's task (ntmviz/tasks/*.py, measured by
ntmviz.mechanisms.readings) gets one line: a mark (met / missed / does not apply), its title,
and what the heads did in this episode in words, e.g. "playback started at slot 0, where
writing began". An episode without memory (an LSTM baseline) or without a known task gets one
sentence saying so. The lines follow the episode, not the step: they describe the whole
episode.

One episode has no model to ask, so for tasks that play back what they stored, the playback
lag is the one this episode fits best (`ntmviz eval` and benchmarks/mechanisms.py fix one lag
per model over many episodes; tasks/mechanism.py says why that matters).
"""

from __future__ import annotations

import logging
from typing import Any

import panel as pn
import param
from panel.viewable import Viewer

from ..episode import Episode
from ..errors import NtmvizError
from ..mechanisms import readings
from .messages import bold, text
from .state import Playback

log = logging.getLogger(__name__)

TITLE = "What the heads did"
MARKS = {True: ("\u2713", "met"), False: ("\u2717", "missed"), None: ("\u2013", "does not apply")}
STYLE = """
.ntmviz-mechanisms { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; color: #333; margin-top: 4px; }
.ntmviz-mechanisms h4 { font-size: 13px; margin: 0 0 2px 0; }
.ntmviz-mechanisms p { margin: 0 0 4px 0; color: #555; }
.ntmviz-mechanism { margin: 0 0 3px 0; padding-left: 20px; text-indent: -20px; line-height: 1.3; }
.ntmviz-mechanism .mark { display: inline-block; width: 20px; text-indent: 0; }
.ntmviz-mechanism[data-met="true"] .mark { color: #1a7f37; }
.ntmviz-mechanism[data-met="false"] .mark { color: #c62828; }
.ntmviz-mechanism[data-met="none"] .mark { color: #888; }
"""


def mechanism_rows(episode: Episode | None) -> tuple[list[dict[str, Any]], str]:
    """(one dict per mechanism of the episode's task, or [] with the sentence that says why):
    name, title, kind, value, met (True / False / None: does not apply), note, target."""
    if episode is None:
        return [], "No episode on show."
    rows = []
    try:
        for mechanism, reading in readings(episode):
            value = reading.value
            met = None if value != value else mechanism.passes(value)  # NaN: does not apply
            rows.append({"name": mechanism.name, "title": mechanism.title, "kind": mechanism.kind,
                         "value": value, "met": met, "note": reading.note, "target": mechanism.target})
    except NtmvizError as exc:  # no memory, no known task, inputs that do not fit it
        return [], str(exc).capitalize().rstrip(".") + "."
    except Exception:  # a UI handler: log the traceback and say so, keep the page working
        log.exception("measuring the mechanisms of %r failed", episode)
        return [], "Could not measure this episode's mechanisms (see the server log)."
    return rows, ""


class MechanismsView(Viewer):
    """The mechanism metrics of the episode on show, one line each, updated when it changes.

        MechanismsView(episode)                  # alone
        MechanismsView(state=explorer.state)     # beside the explorer's views
        view.rows()                              # what it shows, as data
    """

    state = param.ClassSelector(class_=Playback, doc="""
        The playback state whose episode this view describes.""")

    def __init__(self, episode: Episode | None = None, *, state: Playback | None = None, **params):
        if state is None:
            state = Playback(episode)
        elif episode is not None:
            state.episode = episode
        super().__init__(state=state, **params)
        self._pane = pn.pane.HTML("", stylesheets=[STYLE], sizing_mode="stretch_width", margin=(0, 5))
        self._rows: list[dict[str, Any]] = []
        self._message = ""
        self.state.param.watch(lambda _: self._update(), "episode")
        self._update()

    # ---- what it shows -------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One dict per mechanism: name, title, kind ("rate": the episode passes or fails;
        "mean": a measured value), value, met (True / False / None: does not apply), note (this
        episode in words), target (the threshold over many episodes, in words)."""
        return [dict(r) for r in self._rows]

    @property
    def message(self) -> str:
        """The sentence shown instead of rows ("" when there are rows)."""
        return self._message

    @property
    def html(self) -> str:
        """The pane's markup (every piece of text in it escaped by messages.text)."""
        return self._pane.object

    def _update(self) -> None:
        episode = self.state.episode
        self._rows, self._message = mechanism_rows(episode)
        self._pane.object = self._markup(episode)

    def _markup(self, episode: Episode | None) -> str:
        # Only the tags the app's own panes use (div, h4, p, strong: tests/app/test_messages.py
        # checks every pane against that list); lists and marks are given their roles instead.
        parts = [f'<div class="ntmviz-mechanisms" role="region" aria-label="{TITLE}"><h4>{text(TITLE)}</h4>']
        if self._message:
            parts.append(f'<p class="ntmviz-mechanisms-message">{text(self._message)}</p>')
        else:
            met = sum(1 for r in self._rows if r["met"])
            counted = sum(1 for r in self._rows if r["met"] is not None)
            task = (episode.meta or {}).get("task", "")
            summary = (f"{met} of {counted} parts of the paper's {task} algorithm show in this episode" if counted else
                       f"none of the {task} task's mechanisms apply to this episode's model")
            parts.append(f'<p>{text(summary)}</p><div role="list">')
            for r in self._rows:
                mark, words = MARKS[r["met"]]
                # a per-episode pass / fail needs no target; a measured value does
                target = " " + text("(target " + r["target"] + ")") if r["met"] is False and r["kind"] == "mean" else ""
                parts.append(f'<div class="ntmviz-mechanism" role="listitem" data-mechanism="{text(r["name"])}" '
                             f'data-met="{str(r["met"]).lower()}">'
                             f'<strong class="mark" role="img" aria-label="{words}">{mark}</strong>'
                             f'{bold(r["title"])}: {text(r["note"])}{target}</div>')
            parts.append("</div>")
        parts.append("</div>")
        return "".join(parts)

    def __panel__(self):
        return self._pane
