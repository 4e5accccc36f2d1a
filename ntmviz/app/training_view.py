"""The Train tab: start, watch and steer a live training run, and scrub its snapshots.

    view = TrainingView()                         # a fresh Playback state and its own views
    view = TrainingView(state=explorer.state)     # every explorer view shows the chosen snapshot
    view.start(); view.pull(); view.pause(); view.resume(); view.stop(); view.save_checkpoint()

The run (ntmviz.app.live.LiveRun) trains in a daemon thread and never touches Panel. This view
pulls what the run published from its own event loop every `period` ms
(`pn.state.add_periodic_callback`): the new metrics are streamed into the curves'
ColumnDataSource (never redrawn; when the curve reaches `max_points` it keeps every other
point and streams at half the rate from then on, so the whole run stays on screen), and new
snapshots extend the "Training step" slider. Newest wins: a pull takes whatever is there now,
so a slow browser skips updates instead of queueing them. All of one pull goes out in one
message (`pn.io.hold`).

Each browser session builds its own view and run; when the session ends
(`pn.state.on_session_destroyed`) the run is stopped and its thread joined. In Jupyter the
view trains without blocking the notebook; call `stop()` when done.
"""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from panel.viewable import Viewer

from ..errors import NtmvizError
from .live import LiveRun, RunConfig, Snapshot, new_run
from .messages import clear, show_error, show_success
from .sources import find_checkpoints
from .state import Playback

NEW_MODEL = "a new model"
_COLUMNS = ("step", "sequences", "loss", "bit_errors")


def _task_names() -> list[str]:
    from ..tasks import TASKS

    return list(TASKS)


def _size_field(task_name: str) -> tuple[str | None, int]:
    """(the field that sets a task's largest size, its default)."""
    from ..tasks import get_task

    task = get_task(task_name)
    return task.size_field, task.largest_size


def _checkpoints(folder: str | Path) -> dict[str, str]:
    return {p.name: str(p) for p in find_checkpoints(folder)}


def _empty() -> dict[str, list]:
    return {c: [] for c in _COLUMNS}


class TrainingView(Viewer):
    """Train a model live: hyperparameters, Start / Pause / Resume / Stop, streamed loss and
    bit-error curves, speed and progress, snapshots of the model on a fixed probe input every
    K steps (scrub them with the "Training step" slider or play them), save and download."""

    state = param.ClassSelector(class_=Playback, doc="""
        The playback state the chosen snapshot goes to (the explorer's, to drive every view).""")

    run = param.ClassSelector(class_=LiveRun, allow_None=True, default=None, doc="""
        The current run (None before the first Start).""")

    folder = param.String(default="checkpoints", doc="""
        The folder whose checkpoints can be trained further ("Start from").""")

    save_folder = param.String(default="checkpoints", doc="""
        Where "Save checkpoint" writes.""")

    period = param.Integer(default=400, bounds=(50, 5000), doc="""
        Milliseconds between two pulls of the run's newest state.""")

    max_points = param.Integer(default=2000, bounds=(10, None), doc="""
        The most points a curve holds; past it the curve is thinned, never grown.""")

    follow = param.Boolean(default=True, doc="""
        Show each new snapshot as it arrives (off once you scrub back; on again at the end).""")

    message = param.String(default="", doc="""
        The last error shown ('' when the last action worked).""")

    def __init__(self, config: RunConfig | None = None, *, state: Playback | None = None,
                 show_views: bool = True, **params):
        super().__init__(state=state or Playback(), **params)
        self.config = config or RunConfig(task_options={"max_length": 5}, memory_slots=16, memory_width=8,
                                          controller_size=64, lr=3e-3, optimizer="adam", snapshot_every=50)
        c = self.config
        self._cursor = 0  # the newest step already streamed
        self._stride = 1  # stream every stride-th step (doubles when the curve is full)
        self._version = -1  # the snapshot version on show
        self._snaps: list[Snapshot] = []
        self._shown_step: int | None = None
        self._status = ""
        self._callback = None
        self._build_widgets(c)
        self._build_plots()
        self._views = None
        if show_views:
            from .views import HeadLocationsView, MemoryView, Player, SequenceView

            # Head locations first: watching them turn from a smear into a diagonal is the point.
            self._views = pn.Column(Player(state=self.state),
                                    pn.Row(HeadLocationsView(state=self.state), MemoryView(state=self.state)),
                                    SequenceView(state=self.state), sizing_mode="stretch_width")
        self._sync_controls("ready")
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            pn.state.on_session_destroyed(self._session_destroyed)

    # ---- widgets -------------------------------------------------------------------------------
    def _build_widgets(self, c: RunConfig) -> None:
        wide = {"sizing_mode": "stretch_width"}
        self.start_from = pn.widgets.Select(label="Start from", options={NEW_MODEL: "", **_checkpoints(self.folder)},
                                            value="", description="A new model, or a checkpoint to train further", **wide)
        self.task = pn.widgets.Select(label="Task", options=_task_names(), value=c.task, **wide)
        field_name, default = _size_field(c.task)
        self.size = pn.widgets.IntInput(label="Longest input", start=1,
                                        value=int(c.task_options.get(field_name, default)) if field_name else 1, **wide)
        self.model = pn.widgets.Select(label="Model", options={"NTM": "ntm", "LSTM baseline": "lstm"},
                                       value=c.model, **wide)
        self.memory_slots = pn.widgets.IntInput(label="Memory slots (N)", value=c.memory_slots, start=1, **wide)
        self.memory_width = pn.widgets.IntInput(label="Word width (M)", value=c.memory_width, start=1, **wide)
        self.read_heads = pn.widgets.IntInput(label="Read heads", value=c.read_heads, start=1, **wide)
        self.write_heads = pn.widgets.IntInput(label="Write heads", value=c.write_heads, start=1, **wide)
        self.controller_size = pn.widgets.IntInput(label="Controller size", value=c.controller_size, start=1, **wide)
        self.lr = pn.widgets.FloatInput(label="Learning rate", value=c.lr, start=1e-8, step=1e-4, format="0.[000000]",
                                        **wide)
        self.batch_size = pn.widgets.IntInput(label="Batch size", value=c.batch_size, start=1, **wide)
        self.steps = pn.widgets.IntInput(label="Steps", value=c.steps, start=1, **wide)
        self.snapshot_every = pn.widgets.IntInput(label="Snapshot every (steps)", value=c.snapshot_every, start=1,
                                                  **wide)
        self.start_button = pn.widgets.Button(label="Start", color="primary")
        self.pause_button = pn.widgets.Button(label="Pause")
        self.resume_button = pn.widgets.Button(label="Resume")
        self.stop_button = pn.widgets.Button(label="Stop", color="danger")
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.resume_button.on_click(lambda _: self.resume())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button = pn.widgets.Button(label="Save checkpoint", **wide)
        self.save_button.on_click(lambda _: self.save_checkpoint())
        self.download = pn.widgets.FileDownload(callback=self._checkpoint_file, filename="live.safetensors",
                                                label="Download checkpoint", **wide)
        self.progress = pn.indicators.Progress(label="Training progress", value=0, max=max(1, c.steps),
                                               bar_color="primary", **wide)
        self.status = pn.pane.Markdown("Not started.", **wide)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, **wide)
        self.note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, **wide)
        self.snapshot_slider = pn.widgets.IntSlider(label="Training step", start=0, end=1, value=0, disabled=True,
                                                    **wide)
        self.snapshot_label = pn.pane.Markdown("No snapshots yet.", **wide)
        self.play = pn.widgets.Toggle(label="Play training", value=False)
        self.snapshot_slider.param.watch(self._scrubbed, "value")
        self.play.param.watch(self._play_toggled, "value")
        self.task.param.watch(self._task_changed, "value")
        self.model.param.watch(lambda _: self._sync_fields(), "value")
        self.start_from.param.watch(lambda _: self._sync_fields(), "value")
        self.snapshot_every.param.watch(self._k_changed, "value")
        self._sync_fields()

    def _build_plots(self) -> None:
        self.source = ColumnDataSource(data=_empty())
        common = dict(height=220, sizing_mode="stretch_width", x_axis_label="sequences seen",
                      tools="pan,wheel_zoom,box_zoom,reset", toolbar_location="right")
        self.loss_figure = figure(title="Loss (nats per sequence)", **common)
        self.loss_figure.line("sequences", "loss", source=self.source, line_width=1.5, color="#1f77b4")
        self.errors_figure = figure(title="Bit errors per sequence", **common)
        self.errors_figure.line("sequences", "bit_errors", source=self.source, line_width=1.5, color="#d62728")
        self._plots = pn.Row(pn.pane.Bokeh(self.loss_figure, sizing_mode="stretch_width"),
                             pn.pane.Bokeh(self.errors_figure, sizing_mode="stretch_width"),
                             sizing_mode="stretch_width")

    def _sync_fields(self) -> None:
        from_checkpoint = bool(self.start_from.value)
        ntm = self.model.value == "ntm"
        for w in (self.task, self.size, self.model, self.memory_slots, self.memory_width, self.read_heads,
                  self.write_heads, self.controller_size):
            w.disabled = from_checkpoint
        for w in (self.memory_slots, self.memory_width, self.read_heads, self.write_heads):
            w.disabled = from_checkpoint or not ntm
        self.controller_size.label = "Controller size" if ntm else "LSTM size"
        self.note.object = ("Continues the checkpoint's training; learning rate and batch size apply."
                            if from_checkpoint else "")

    def _task_changed(self, event) -> None:
        name, default = _size_field(event.new)
        self.size.value = default if name else 1
        self.size.disabled = name is None or bool(self.start_from.value)

    def _k_changed(self, event) -> None:
        if self.run is not None and event.new and event.new >= 1:
            self.run.snapshot_every = int(event.new)

    def run_config(self) -> RunConfig:
        """The RunConfig the widgets describe."""
        field_name, _ = _size_field(self.task.value)
        c = self.config
        return RunConfig(
            task=self.task.value, task_options={field_name: int(self.size.value)} if field_name else {},
            model=self.model.value, memory_slots=int(self.memory_slots.value), memory_width=int(self.memory_width.value),
            read_heads=int(self.read_heads.value), write_heads=int(self.write_heads.value),
            controller_size=int(self.controller_size.value), lstm_layers=c.lstm_layers, lr=float(self.lr.value),
            batch_size=int(self.batch_size.value), optimizer=c.optimizer, seed=c.seed, steps=int(self.steps.value),
            snapshot_every=int(self.snapshot_every.value), probe_seed=c.probe_seed, max_snapshots=c.max_snapshots,
            metrics_limit=c.metrics_limit, history_limit=c.history_limit, device=c.device, threads=c.threads)

    # ---- actions -------------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self.message = text
        show_error(self.alert, text)

    def _ok(self) -> None:
        self.message = ""
        clear(self.alert)

    def start(self) -> LiveRun | None:
        """Start a new run from the widgets (stopping the current one); None if refused."""
        self._stop_run()
        try:
            config = self.run_config()
            run = new_run(config, checkpoint=self.start_from.value or None,
                          **({"lr": config.lr, "batch_size": config.batch_size} if self.start_from.value else {}))
        except NtmvizError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # the app keeps serving whatever the settings do
            self._fail(f"could not start: {type(exc).__name__}: {exc}")
            return None
        self._ok()
        self._reset(run)
        self.run = run
        run.start()
        self.download.filename = f"{run.task.name}-{getattr(run.trainer.model.config, 'kind', 'model')}-live.safetensors"
        self._ensure_callback()
        self._sync_controls("running")
        return run

    def pause(self) -> None:
        if self.run is not None:
            self.run.pause()
            self._sync_controls("paused")

    def resume(self) -> None:
        if self.run is not None:
            self.run.resume()
            self._sync_controls("running")

    def stop(self) -> None:
        """Stop the run and wait for its thread; its snapshots stay."""
        self._stop_run()
        self.pull()

    def _stop_run(self) -> None:
        run = self.run
        if run is not None and run.alive:
            run.stop()
            run.join(30)

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write the current model as a checkpoint (to save_folder by default); None if it cannot."""
        if self.run is None:
            self._fail("Start a run first: there is no model to save yet.")
            return None
        path = Path(path) if path is not None else Path(self.save_folder) / self.run.default_filename()
        try:
            written = self.run.save(path)
        except Exception as exc:
            self._fail(f"could not save: {exc}")
            return None
        self._ok()
        show_success(self.alert, f"Saved {written}")
        return written

    def _checkpoint_file(self) -> io.BytesIO:
        if self.run is None:
            return io.BytesIO(b"")
        with tempfile.TemporaryDirectory() as tmp:
            path = self.run.save(Path(tmp) / "live.safetensors")
            return io.BytesIO(path.read_bytes())

    def _reset(self, run: LiveRun) -> None:
        self._cursor, self._stride, self._version = run.trainer.step, 1, -1
        self._snaps, self._shown_step = [], None
        self.follow = True
        self.play.value = False
        hist = run.history  # a checkpoint's past curve, thinned
        data = _empty()
        if hist["sequences"]:
            data.update(sequences=hist["sequences"], loss=hist["loss"], bit_errors=hist["bit_errors"],
                        step=[s // max(1, run.trainer.batch_size) for s in hist["sequences"]])
        self.source.data = data
        self.progress.max = max(1, run.steps)
        self.progress.value = min(run.trainer.step, run.steps)
        self.snapshot_slider.param.update(start=0, end=1, value=0, disabled=True)
        self.snapshot_label.object = "No snapshots yet."

    def _ensure_callback(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.pull, period=self.period)
        elif not self._callback.running:
            self._callback.start()

    def _session_destroyed(self, session_context) -> None:
        if self._callback is not None:
            try:
                self._callback.stop()
            except Exception:
                pass
        run = self.run
        if run is not None:
            run.stop()
            run.join(30)

    # ---- pulling the run's newest state (on this session's event loop) ------------------------
    def pull(self) -> None:
        """Apply whatever the run published since the last pull; newest wins."""
        run = self.run
        if run is None:
            return
        metrics = run.metrics_since(self._cursor)
        latest, status, error = run.latest, run.status, run.error
        version = run.snapshot_version
        snaps = run.snapshots()[1] if version != self._version else None
        with pn.io.hold():
            if metrics:
                self._stream(metrics)
                self._cursor = metrics[-1].step
            self._show_status(run, latest, status, error)
            if snaps is not None:
                self._version = version
                self._new_snapshots(snaps)
            if self.play.value:
                self._advance()
        if not (pn.state.curdoc and pn.state.curdoc.session_context):
            try:  # a notebook: raw Bokeh changes need a push
                pn.io.push_notebook(*self._plots)
            except Exception:
                pass

    def _stream(self, metrics) -> None:
        rows = [m for m in metrics if m.step % self._stride == 0 or m.step == 1]
        count = len(self.source.data["step"])
        while count + len(rows) > self.max_points:
            self._stride *= 2
            keep = [i for i, s in enumerate(self.source.data["step"]) if s % self._stride == 0 or s == 1]
            self.source.data = {c: [self.source.data[c][i] for i in keep] for c in _COLUMNS}
            rows = [m for m in rows if m.step % self._stride == 0 or m.step == 1]
            count = len(keep)
        if rows:
            self.source.stream({"step": [m.step for m in rows], "sequences": [m.sequences for m in rows],
                                "loss": [m.loss for m in rows], "bit_errors": [m.bit_errors for m in rows]},
                               rollover=self.max_points)

    def _show_status(self, run: LiveRun, latest, status: str, error: str) -> None:
        if latest is not None:
            self.progress.value = min(latest.step, self.progress.max)
            text = (f"**{status.capitalize()}** · step {latest.step:,} of {run.steps:,} · "
                    f"{latest.sequences:,} sequences · {latest.rate:,.0f} sequences/s · "
                    f"loss {latest.loss:.3f} · {latest.bit_errors:.2f} bit errors per sequence")
        else:
            text = f"**{status.capitalize()}** · step {run.trainer.step:,}"
        self.status.object = text
        if status != self._status:
            self._sync_controls(status)
            if status in ("diverged", "failed"):
                self._fail(error + " The snapshots and the last good weights stay: you can still scrub and save.")

    def _sync_controls(self, status: str) -> None:
        self._status = status
        alive = status in ("running", "paused")
        self.start_button.disabled = alive
        self.pause_button.disabled = status != "running"
        self.resume_button.disabled = status != "paused"
        self.stop_button.disabled = not alive
        self.save_button.disabled = self.run is None
        self.download.disabled = self.run is None

    def _new_snapshots(self, snaps: list[Snapshot]) -> None:
        self._snaps = snaps
        if not snaps:
            return
        last = len(snaps) - 1
        if self.follow or self._shown_step is None:
            index = last
        else:  # the list may have been thinned: stay on the same step, or the nearest kept before it
            index = max((i for i, s in enumerate(snaps) if s.step <= self._shown_step), default=0)
        self.snapshot_slider.param.update(end=max(1, last), disabled=last < 1)
        if self.snapshot_slider.value != index:
            self.snapshot_slider.value = index  # shows it through _scrubbed
        else:
            self._show(index)

    def _scrubbed(self, event) -> None:
        index = int(event.new)
        if self._snaps:
            self.follow = index >= len(self._snaps) - 1
        self._show(index)

    def _show(self, index: int) -> None:
        if not self._snaps:
            return
        index = min(max(0, index), len(self._snaps) - 1)
        snap = self._snaps[index]
        loss = "" if math.isnan(snap.loss) else f" · training loss {snap.loss:.3f}"
        self.snapshot_label.object = (f"Snapshot {index + 1} of {len(self._snaps)}: step {snap.step:,}, "
                                      f"{snap.sequences:,} sequences{loss}")
        if self._shown_step != snap.step or self.state.episode is not snap.episode:
            self._shown_step = snap.step
            self.state.episode = snap.episode

    def _play_toggled(self, event) -> None:
        if event.new:
            self.follow = False
            if self.snapshot_slider.value >= len(self._snaps) - 1:
                self.snapshot_slider.value = 0
            self._ensure_callback()

    def _advance(self) -> None:
        if self.snapshot_slider.value >= len(self._snaps) - 1:
            self.play.value = False
            self.follow = True
            return
        self.snapshot_slider.value += 1

    # ---- readouts ------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot on show."""
        if not self._snaps:
            return None
        return self._snaps[min(self.snapshot_slider.value, len(self._snaps) - 1)]

    @property
    def snapshot_list(self) -> list[Snapshot]:
        """The snapshots as of the last pull."""
        return list(self._snaps)

    def controls(self) -> pn.Column:
        """The settings and buttons (a sidebar)."""
        return pn.Column(
            pn.pane.Markdown("#### Train a model", margin=(0, 5)),
            self.start_from, self.note, self.task, self.size, self.model,
            pn.Row(self.memory_slots, self.memory_width), pn.Row(self.read_heads, self.write_heads),
            self.controller_size, pn.Row(self.lr, self.batch_size), pn.Row(self.steps, self.snapshot_every),
            pn.Row(self.start_button, self.pause_button, self.resume_button, self.stop_button),
            self.save_button, self.download,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        main = [self.alert, self.status, self.progress, self._plots,
                pn.Row(self.play, self.snapshot_slider, sizing_mode="stretch_width"), self.snapshot_label]
        if self._views is not None:
            main.append(self._views)
        return pn.Row(pn.Column(self.controls(), width=320), pn.Column(*main, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
