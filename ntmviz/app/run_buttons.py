"""The Train tab's buttons: Start, Pause, Resume, Stop, Save checkpoint, Download checkpoint.

    buttons = RunButtons(on_start=..., on_pause=..., on_resume=..., on_stop=..., on_save=...,
                         download=async_callback_returning_bytesio)
    buttons.param.update(status="running", has_run=True)   # Pause and Stop enabled, Start not
    buttons.busy = "saving"                                  # Save and Download disabled, labelled so

Which buttons are enabled follows `status` (the run's, read at every pull), `has_run` and `busy`
alone, never a click: a button shows what the run is doing, not what was merely asked of it.
Busy shows as text on the buttons (no spinner: Panel's loading style is fetched from its CDN).
"""

from __future__ import annotations

from typing import Any, Callable

import panel as pn
import param
from panel.viewable import Viewer

ALIVE = ("running", "pausing", "paused", "stopping")  # a run whose thread lives
SAVING, DOWNLOADING = "saving", "preparing the download"


class RunButtons(Viewer):
    """The buttons that start, steer and save a run (see the module docstring)."""

    status = param.String(default="ready", doc="""
        The run's status (live.STATUSES; "ready" before the first run).""")

    has_run = param.Boolean(default=False, doc="""
        Whether there is a run (something to save).""")

    busy = param.String(default="", doc="""
        The action in flight: "saving", "preparing the download", or '' when none.""")

    def __init__(self, *, on_start: Callable[[], Any], on_pause: Callable[[], Any], on_resume: Callable[[], Any],
                 on_stop: Callable[[], Any], on_save: Callable[[Any], Any], download: Callable[[], Any],
                 **params):
        super().__init__(**params)
        wide = {"sizing_mode": "stretch_width"}
        self.start = pn.widgets.Button(label="Start", color="primary")
        self.pause = pn.widgets.Button(label="Pause")
        self.resume = pn.widgets.Button(label="Resume")
        self.stop = pn.widgets.Button(label="Stop", color="danger")
        self.save = pn.widgets.Button(label="Save checkpoint", **wide)
        self.download = pn.widgets.FileDownload(callback=download, filename="live.safetensors",
                                                label="Download checkpoint", **wide)
        self.start.on_click(lambda _: on_start())
        self.pause.on_click(lambda _: on_pause())
        self.resume.on_click(lambda _: on_resume())
        self.stop.on_click(lambda _: on_stop())
        self.save.on_click(on_save)  # a coroutine function: Panel schedules it, the click returns
        self._sync()

    @param.depends("status", "has_run", "busy", watch=True)
    def _sync(self) -> None:
        status, busy = self.status, bool(self.busy)
        self.start.disabled = status in ALIVE or busy
        self.pause.disabled = status != "running" or busy
        self.resume.disabled = status not in ("pausing", "paused") or busy
        self.stop.disabled = status not in ("running", "pausing", "paused")
        cannot_save = not self.has_run or busy or status == "stopping"
        self.save.disabled = cannot_save
        self.download.disabled = cannot_save
        self.save.label = "Saving…" if self.busy == SAVING else "Save checkpoint"
        self.download.label = "Preparing the download…" if self.busy == DOWNLOADING else "Download checkpoint"

    def __panel__(self):
        return pn.Column(pn.Row(self.start, self.pause, self.resume, self.stop), self.save, self.download,
                         sizing_mode="stretch_width", margin=0)
