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

The buttons follow the run's status alone (running, pausing, paused, stopping, ...), read at
every pull, so they never show what was merely asked for. Nothing a button does waits on the
event loop, which every session of the server shares: Stop only asks (the status shows
"stopping" until the thread has ended), and Save and Download write the checkpoint in a worker
thread while the buttons show busy. Once a run has ended and its last state is shown, the pull
stops; Start or Play training starts it again.

Each browser session builds its own view and run. When the page's connection drops (a closed
tab, a reload, a lost network) the run pauses at once (Bokeh's `connection_lost` event); if
the browser reconnects to the same session it resumes, and when the server ends the session
(`pn.state.on_session_destroyed`, the backstop) the run stops. While a run is alive or holds
steps not saved, the page asks before a reload or close (LeaveGuard). In Jupyter the view
trains without blocking the notebook; call `stop()` when done.

The settings are text fields read with messages in the user's terms (fields.py): nothing typed
is silently rewritten.

Seeds. "Seeds" takes one seed (0), a range (0-7) or a list (0,3,5), at most MAX_SEEDS: the run
trains one model per seed in one Trainer (one batched computation, as `ntmviz train --seeds`).
With more than one, each curve has a line per seed and a legend: one ColumnDataSource holds
every seed's column (`column("loss", k)`), streamed once per pull from the per-model metrics, so
seed k's finite points are the Trainer's histories[k] (one stream per pull, not one per seed:
measured here in Chromium on the loaded 2-core machine, four sources streamed at every pull
made the page lay the plots out four times per update and fall behind: it answered in 2-20 s,
against about 1 s with one source). The seed table is redrawn sparingly for the same reason
(`table_period`).
A seed that diverges has NaN from then on, so its line stops at its last good step, marked with
an x there, and its legend entry says so. A table lists every seed: its newest loss and bit errors, curriculum stage, whether it
trains or why it diverged, and its validation score when the run validates. Every snapshot
holds every seed's episode (live.py records them in one batched run), so "Show seed" switches
the views between seeds at once, on the same training step; by default it follows the seed
that is best now (on the validation stream when every seed has a score, else on its smoothed
training loss), re-chosen only when a new snapshot arrives and the view follows the newest, so
nothing changes under a user who is scrubbing. Save and Download write the seed on show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import math
import tempfile
import time
from pathlib import Path

import panel as pn
import param
from bokeh.core.properties import value
from bokeh.models import ColumnDataSource, Legend, LegendItem
from bokeh.palettes import Category20
from bokeh.plotting import figure
from panel.viewable import Viewer

from ..config import setting_of
from ..errors import ConfigError, NtmvizError
from .fields import number_field, read_float, read_int, read_seeds, seeds_text, set_number, smallest_valid
from .leave_guard import LeaveGuard
from .live import ENDED, LiveRun, ModelStatus, RunConfig, Snapshot, new_run
from .messages import clear, show_error, show_success, text
from .sources import MAX_STEPS, checkpoint_options, runs_sequences
from .state import Playback
from .textline import TextLine

log = logging.getLogger(__name__)

NEW_MODEL = "a new model"
_X_COLUMNS = ("step", "sequences")
_Y_COLUMNS = ("loss", "bit_errors")
ALIVE = ("running", "pausing", "paused", "stopping")
MAX_SEEDS = 16  # seeds one run of the Train tab trains together (`ntmviz train --seeds` takes more)
BEST = "best"  # the "Show seed" choice that follows the seed best now
# One colour per seed, the same in both curves, the table and the markers: Category20's dark
# tones first, then its light ones. A single run keeps its blue loss and red bit errors.
_SEED_COLOURS = Category20[20][0::2] + Category20[20][1::2]
_SINGLE_COLOURS = {"loss": "#1f77b4", "bit_errors": "#d62728"}
# What an alive seed is doing, from the run's status.
_ALIVE_STATE = {"running": "training", "pausing": "training", "stopping": "training", "paused": "paused",
                "done": "done", "stopped": "stopped"}


def seed_colour(k: int) -> str:
    """The colour of the k-th seed of a run (its lines, markers and table swatch)."""
    return _SEED_COLOURS[k % len(_SEED_COLOURS)]


def form_range(name: str) -> tuple:
    """(low, high) a field of the form accepts: its setting's soft bounds (config.py), else its bounds."""
    s = setting_of(RunConfig, name)
    return s.softbounds or s.bounds


def _read_setting(widget, name: str) -> int:
    low, high = form_range(name)
    return read_int(widget, minimum=low, maximum=high)


def _task_names() -> list[str]:
    from ..tasks import TASKS

    return list(TASKS)


def _size_field(task_name: str) -> tuple[str | None, int]:
    """(the field that sets a task's largest size, its default)."""
    from ..tasks import get_task

    task = get_task(task_name)
    return task.size_field, task.largest_size


def _task_difficulty(task_name: str) -> str:
    """The task's own word for its size ("sequence length", "number of items", ...)."""
    from ..tasks import get_task

    return get_task(task_name).difficulty_name


def _smallest_size(task_name: str, field_name: str) -> int:
    """The smallest largest-size a task accepts (2 items for associative recall, ...)."""
    from ..tasks import get_task

    return smallest_valid(lambda n: get_task(task_name, **{field_name: n})) or 1


async def _off_loop(fn, *args):
    """fn(*args) in a worker thread, awaited: the event loop serves every session meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def column(name: str, k: int) -> str:
    """The curves' column of seed k's `name` ("loss" or "bit_errors"): "loss", "loss_1", ..."""
    return name if k == 0 else f"{name}_{k}"


def _columns(K: int) -> list[str]:
    return [*_X_COLUMNS, *(column(name, k) for k in range(K) for name in _Y_COLUMNS)]


def _empty(K: int = 1) -> dict[str, list]:
    return {c: [] for c in _columns(K)}


def _model_values(m, k: int) -> tuple[float, float]:
    """(loss, bit errors) of model k at one step's metrics; NaN once it has diverged."""
    if m.model_loss:
        return m.model_loss[k], m.model_bit_errors[k]
    return m.loss, m.bit_errors


class TrainingView(Viewer):
    """Train a model, or one per seed, live: hyperparameters, Start / Pause / Resume / Stop,
    streamed loss and bit-error curves (a line per seed), a table of the seeds, speed and
    progress, snapshots of the models on a fixed probe input every K steps (scrub them with the
    "Training step" slider or play them; "Show seed" picks whose), save and download."""

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

    snapshot_steps = param.List(default=[], doc="""
        The training steps of the snapshots as of the last pull (what Compare lists).""")

    saved = param.String(default="", doc="""
        The last checkpoint file written by Save (lists of checkpoints refresh on it).""")

    table_period = param.Number(default=2.0, bounds=(0, None), doc="""
        While a run trains, the seed table's numbers change at most every this many seconds
        (any other change, and every change once it pauses or ends, shows at once).""")

    def __init__(self, config: RunConfig | None = None, *, state: Playback | None = None,
                 show_views: bool = True, guard_in_panel: bool = True, **params):
        super().__init__(state=state or Playback(), **params)
        self.config = config or RunConfig.quick()  # the defaults (config.py) with the Train tab's small model
        c = self.config
        self._cursor = 0  # the newest step already streamed
        self._stride = 1  # stream every stride-th step (doubles when the curve is full)
        self._version = -1  # the snapshot version on show
        self._all_snaps: list[Snapshot] = []  # as the run published them: every seed's episodes
        self._snaps: list[Snapshot] = []  # the same steps, the seed on show alone (Snapshot.member)
        self._member = 0  # the index of the seed on show
        self._models: tuple[ModelStatus, ...] = ()  # every seed's status as of the last pull
        self._last: list[tuple[int, int, float, float] | None] = []  # per seed: newest finite (step, seqs, loss, errors)
        self._smoothed: list[float | None] = []  # per seed: moving average of the training loss
        self._marked: set[int] = set()  # seeds whose divergence is marked on the curves
        self._choosing = False  # the view itself is setting "Show seed"
        self._table_key: tuple = ()  # what the table last showed besides its numbers
        self._table_time = 0.0  # when it was last redrawn (time.monotonic)
        self._shown_step: int | None = None
        self._status = ""
        self._callback = None
        self._busy = ""  # the action in flight ("saving", ...), '' when none
        self._status_text = "Not started."
        self._saved_step: int | None = None  # the step last saved or downloaded
        self._paused_on_disconnect = False
        # Explorer puts the guard outside its tabs (a hidden tab's components are removed).
        self.guard = LeaveGuard()
        self._guard_in_panel = guard_in_panel
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
            doc.on_event("connection_lost", self._connection_lost)
            doc.on_event("client_reconnected", self._reconnected)

    # ---- widgets -------------------------------------------------------------------------------
    def _build_widgets(self, c: RunConfig) -> None:
        wide = {"sizing_mode": "stretch_width"}
        self.start_from = pn.widgets.Select(label="Start from", options=self._start_options(),
                                            value="", description="A new model, or a checkpoint to train further "
                                                                  "(from the checkpoints folder or saved here)", **wide)
        self.task = pn.widgets.Select(label="Task", options=_task_names(), value=c.task, **wide)
        field_name, default = _size_field(c.task)
        self.size = number_field("Longest input", int(c.task_options.get(field_name, default)) if field_name else 1,
                                 **wide)
        self.model = pn.widgets.Select(label="Model", options={"NTM": "ntm", "LSTM baseline": "lstm"},
                                       value=c.model, **wide)
        self.memory_slots = number_field("Memory slots (N)", c.memory_slots, **wide)
        self.memory_width = number_field("Word width (M)", c.memory_width, **wide)
        self.read_heads = number_field("Read heads", c.read_heads, **wide)
        self.write_heads = number_field("Write heads", c.write_heads, **wide)
        self.controller_size = number_field("Controller size", c.controller_size, **wide)
        self.lr = number_field("Learning rate", c.learning_rate, **wide)
        self.batch_size = number_field("Batch size", c.batch_size, **wide)
        self.steps = number_field("Steps", c.steps, **wide)
        self.snapshot_every = number_field("Snapshot every (steps)", c.snapshot_every, **wide)
        self.seeds = pn.widgets.TextInput(label="Seeds", value=seeds_text(c.seeds),
                                          description="One model per seed, trained together: one seed (0), a "
                                                      f"range (0-7) or a list (0,3,5), at most {MAX_SEEDS}", **wide)
        self.validate_every = number_field("Validate every (steps)", c.validation_period,
                                           description="Score every seed on the validation stream every this "
                                                       "many steps (0: never)", **wide)
        self.start_button = pn.widgets.Button(label="Start", color="primary")
        self.pause_button = pn.widgets.Button(label="Pause")
        self.resume_button = pn.widgets.Button(label="Resume")
        self.stop_button = pn.widgets.Button(label="Stop", color="danger")
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.resume_button.on_click(lambda _: self.resume())
        self.stop_button.on_click(lambda _: self.stop(wait=False))
        self.save_button = pn.widgets.Button(label="Save checkpoint", **wide)
        self.save_button.on_click(self._save_clicked)
        self.download = pn.widgets.FileDownload(callback=self._download_file, filename="live.safetensors",
                                                label="Download checkpoint", **wide)
        self.progress = pn.indicators.Progress(label="Training progress", value=0, max=max(1, c.steps),
                                               bar_color="primary", **wide)
        self.status = TextLine("Not started.", **wide)  # changes at every pull: see textline.py
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, **wide)
        self.note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, **wide)
        self.snapshot_slider = pn.widgets.IntSlider(label="Training step", start=0, end=1, value=0, disabled=True,
                                                    **wide)
        self.snapshot_label = TextLine("No snapshots yet.", **wide)
        self.show_seed = pn.widgets.Select(label="Show seed", options={"seed 0": 0}, value=0, visible=False,
                                           width=190, description="Whose snapshots the views show (and Save "
                                                                  "writes); best: the seed best now")
        self.show_seed.param.watch(self._seed_picked, "value")
        self.seed_table = pn.pane.HTML("", visible=False, **wide)
        self.play = pn.widgets.Toggle(label="Play training", value=False)
        self.snapshot_slider.param.watch(self._scrubbed, "value")
        self.play.param.watch(self._play_toggled, "value")
        self.task.param.watch(self._task_changed, "value")
        self.model.param.watch(lambda _: self._sync_fields(), "value")
        self.start_from.param.watch(lambda _: self._sync_fields(), "value")
        self.snapshot_every.param.watch(self._k_changed, "value")
        self.validate_every.param.watch(self._validate_every_changed, "value")
        self._sync_fields()

    def _build_plots(self) -> None:
        self._loss_pane = pn.pane.Bokeh(sizing_mode="stretch_width")
        self._errors_pane = pn.pane.Bokeh(sizing_mode="stretch_width")
        self._plots = pn.Row(self._loss_pane, self._errors_pane, sizing_mode="stretch_width")
        self._make_curves(list(self.config.seeds))

    def _make_curves(self, seeds: list[int]) -> None:
        """New loss and bit-error figures with a line per seed (a new run may have other seeds)."""
        K = len(seeds)
        self.source = ColumnDataSource(data=_empty(K))  # every seed's curve, column(name, k)
        # where each diverged seed's line stops: x = sequences, y = its last loss / bit errors
        self.marks = ColumnDataSource(data={"sequences": [], "loss": [], "bit_errors": [], "color": []})
        self._legend_items: list[list[LegendItem]] = []
        common = dict(height=220, sizing_mode="stretch_width", x_axis_label="sequences seen",
                      tools="pan,wheel_zoom,box_zoom,reset", toolbar_location="right")
        figures = []
        for title, name in (("Loss (nats per sequence)", "loss"), ("Bit errors per sequence", "bit_errors")):
            fig = figure(title=title, **common)
            items = []
            for k, seed in enumerate(seeds):
                colour = _SINGLE_COLOURS[name] if K == 1 else seed_colour(k)
                line = fig.line("sequences", column(name, k), source=self.source, line_width=1.5, color=colour)
                items.append(LegendItem(label=value(f"seed {seed}"), renderers=[line]))
            fig.scatter("sequences", name, source=self.marks, marker="x", size=13, line_width=2.5, color="color")
            if K > 1:
                fig.add_layout(Legend(items=items, click_policy="hide", ncols=(K + 7) // 8, spacing=0, padding=4,
                                      label_text_font_size="10px", label_height=12, glyph_height=12,
                                      glyph_width=16, margin=4), "right")
            self._legend_items.append(items)
            figures.append(fig)
        self.loss_figure, self.errors_figure = figures
        self._loss_pane.object = self.loss_figure
        self._errors_pane.object = self.errors_figure

    def curve(self, k: int) -> dict[str, list]:
        """Seed k's points as the curves hold them: {"step", "sequences", "loss", "bit_errors"},
        its NaN (after it diverged) left out."""
        data = self.source.data
        loss, errors = data[column("loss", k)], data[column("bit_errors", k)]
        keep = [i for i, v in enumerate(loss) if math.isfinite(v)]
        return {"step": [data["step"][i] for i in keep], "sequences": [data["sequences"][i] for i in keep],
                "loss": [loss[i] for i in keep], "bit_errors": [errors[i] for i in keep]}

    def _sync_fields(self) -> None:
        from_checkpoint = bool(self.start_from.value)
        ntm = self.model.value == "ntm"
        for w in (self.task, self.size, self.model, self.memory_slots, self.memory_width, self.read_heads,
                  self.write_heads, self.controller_size, self.seeds):
            w.disabled = from_checkpoint
        for w in (self.memory_slots, self.memory_width, self.read_heads, self.write_heads):
            w.disabled = from_checkpoint or not ntm
        self.controller_size.label = "Controller size" if ntm else "LSTM size"
        self.note.object = ("Continues the checkpoint's training (its seed); learning rate, batch size "
                            "and validation apply." if from_checkpoint else "")

    def _task_changed(self, event) -> None:
        name, default = _size_field(event.new)
        set_number(self.size, default if name else 1)
        self.size.disabled = name is None or bool(self.start_from.value)

    def _k_changed(self, event) -> None:
        try:
            every = _read_setting(self.snapshot_every, "snapshot_every")
        except ConfigError as exc:
            self._fail(str(exc))
            return
        if self.run is not None:
            self.run.snapshot_every = every

    def _validate_every_changed(self, event) -> None:
        try:
            every = _read_setting(self.validate_every, "validate_every")
        except ConfigError as exc:
            self._fail(str(exc))
            return
        if self.run is not None:
            self.run.validate_every = every

    def _start_options(self) -> dict[str, str]:
        options = checkpoint_options(self.folder, self.save_folder)  # a memory network trains from the CLI
        return {NEW_MODEL: "", **{k: v for k, v in options.items() if runs_sequences(v)}}

    def refresh_checkpoints(self) -> None:
        """List the checkpoints of `folder` and `save_folder` again in "Start from"; the choice stays."""
        old = self.start_from.value
        options = self._start_options()
        self.start_from.options = options
        self.start_from.value = old if old in options.values() else ""

    def run_config(self) -> RunConfig:
        """The RunConfig the widgets describe; ConfigError, in the user's terms, for a bad field."""
        field_name, _ = _size_field(self.task.value)
        c = self.config
        from_checkpoint = bool(self.start_from.value)
        task_options = {}
        if field_name and not from_checkpoint:
            task = self.task.value.replace("_", " ")
            what = _task_difficulty(self.task.value)
            task_options[field_name] = read_int(
                self.size, minimum=_smallest_size(self.task.value, field_name), maximum=MAX_STEPS,
                why=f" for {task} (the {what})")
        ints = {}
        for name in ("memory_slots", "memory_width", "read_heads", "write_heads", "controller_size", "batch_size",
                     "steps", "snapshot_every", "validate_every"):
            if not from_checkpoint or name in ("batch_size", "steps", "snapshot_every", "validate_every"):
                ints[name] = _read_setting(getattr(self, name), name)  # else the checkpoint's own: disabled
        if self.model.value == "lstm" and "controller_size" in ints:  # one field: the LSTM's size
            ints["hidden_size"] = ints.pop("controller_size")
        seeds = list(c.seeds) if from_checkpoint else read_seeds(self.seeds, limit=MAX_SEEDS)
        low, high = form_range("lr")
        lr = read_float(self.lr, above=low, maximum=high)
        # everything else (the optimiser, the snapshots' bounds, ...) stays this view's config's
        return dataclasses.replace(c, task=self.task.value, task_options=task_options, model=self.model.value,
                                   lr=lr, seeds=seeds, **ints)

    # ---- actions -------------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self.message = text
        show_error(self.alert, text)

    def _ok(self) -> None:
        self.message = ""
        clear(self.alert)

    def start(self) -> LiveRun | None:
        """Start a new run from the widgets (asking the current one to stop); None if refused.

        Never waits: a run still alive is only asked to stop, and ends after its current step."""
        try:
            config = self.run_config()
            run = new_run(config, checkpoint=self.start_from.value or None,
                          **({"lr": config.lr, "batch_size": config.batch_size} if self.start_from.value else {}))
        except NtmvizError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # the app keeps serving whatever the settings do; the log keeps the traceback
            log.exception("could not start a training run")
            self._fail(f"could not start: {type(exc).__name__}: {exc}")
            return None
        old = self.run
        if old is not None and old.alive:
            old.stop()
        # One message; and the curves' ColumnDataSource is a raw Bokeh model, which may only
        # change under the document's lock or a hold (a click can run unlocked).
        with pn.io.hold():
            self._ok()
            self._reset(run)
            run.start()  # before it is shown: whoever sees view.run sees it running
            self.run = run
            self._name_download()
            self._ensure_callback()
            self._sync_controls(run.status)
        return run

    def pause(self) -> None:
        """Ask the run to hold after its current step (the buttons show "pausing" until it does)."""
        if self.run is not None:
            self._paused_on_disconnect = False
            self.run.pause()
            self._sync_controls(self.run.status)

    def resume(self) -> None:
        if self.run is not None:
            self._paused_on_disconnect = False
            self.run.resume()
            self._sync_controls(self.run.status)

    def stop(self, wait: bool = True) -> None:
        """Ask the run to stop; its snapshots stay. With `wait` (Python, notebooks) also wait for
        its thread and show the end; the Stop button does not wait: the pull shows the end."""
        run = self.run
        if run is None:
            return
        if run.alive:
            run.stop()
        if wait:
            run.join(30)
        self._ensure_callback()  # a pull shows "stopping", then the end
        self.pull()

    # ---- saving: the checkpoint is written in a worker thread, the UI busy meanwhile ------------
    def _target(self, path: str | Path | None, member: int) -> Path:
        return Path(path) if path is not None else Path(self.save_folder) / self.run.default_filename(member)

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write the model of the seed on show as a checkpoint (to save_folder by default, its
        seed in the name), waiting for it (Python, notebooks); None if it cannot. The Save button
        does the same off the event loop."""
        if self.run is None:
            self._fail("Start a run first: there is no model to save yet.")
            return None
        member = self._member
        target = self._target(path, member)
        try:
            written = self.run.save(target, member)
        except Exception as exc:
            return self._save_failed(exc)
        return self._saved(written, member)

    async def save_checkpoint_async(self, path: str | Path | None = None) -> Path | None:
        """save_checkpoint, with the writing in a worker thread and the buttons busy meanwhile."""
        if self.run is None:
            self._fail("Start a run first: there is no model to save yet.")
            return None
        run, member = self.run, self._member
        target = self._target(path, member)
        self._set_busy("saving")
        try:
            written = await _off_loop(run.save, target, member)
        except Exception as exc:
            return self._save_failed(exc)
        finally:
            self._set_busy("")
        return self._saved(written, member)

    async def _save_clicked(self, _event=None) -> None:
        await self.save_checkpoint_async()

    def _saved(self, written: Path, member: int) -> Path:
        self._saved_step = self.run.step if self.run is not None else None
        self._ok()
        seeds = self.run.seeds if self.run is not None else []
        which = f" (seed {seeds[member]})" if len(seeds) > 1 else ""
        show_success(self.alert, f"Saved {written}{which}")
        self.saved = str(written)
        self.refresh_checkpoints()
        self._sync_controls(self.run.status if self.run is not None else "ready")
        return written

    def _save_failed(self, exc: Exception) -> None:
        if not isinstance(exc, NtmvizError):  # e.g. a full disk, a bug: the log keeps the traceback
            log.error("saving a checkpoint failed", exc_info=exc)
        self._fail(f"could not save: {exc}")
        return None

    def _checkpoint_bytes(self, run: LiveRun, member: int) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return run.save(Path(tmp) / "live.safetensors", member).read_bytes()

    def _checkpoint_file(self) -> io.BytesIO:
        """The checkpoint's bytes for Download (the seed on show), waiting for them (Python, tests)."""
        if self.run is None:
            return io.BytesIO(b"")
        return io.BytesIO(self._checkpoint_bytes(self.run, self._member))

    def _name_download(self) -> None:
        """Download's file name: task, model kind and the seed on show."""
        run = self.run
        if run is None:
            return
        kind = getattr(run.trainer.model.config, "kind", "model")
        self.download.filename = f"{run.task.name}-{kind}-seed{run.seeds[self._member]}-live.safetensors"

    async def _download_file(self) -> io.BytesIO:
        """What Download sends: written in a worker thread, the buttons busy meanwhile."""
        run = self.run
        if run is None:
            return io.BytesIO(b"")
        self._set_busy("preparing the download")
        try:
            data = await _off_loop(self._checkpoint_bytes, run, self._member)
        except Exception as exc:
            self._save_failed(exc)
            return io.BytesIO(b"")
        finally:
            self._set_busy("")
        self._saved_step = run.step
        self._sync_controls(run.status)
        return io.BytesIO(data)

    def _set_busy(self, what: str) -> None:
        # Busy shows as text (no spinner: Panel's loading style is fetched from its CDN).
        self._busy = what
        self.save_button.label = "Saving…" if what == "saving" else "Save checkpoint"
        self.download.label = "Preparing the download…" if what == "preparing the download" else "Download checkpoint"
        self._render_status()
        self._sync_controls(self.run.status if self.run is not None else "ready")

    def _reset(self, run: LiveRun) -> None:
        self._cursor, self._stride, self._version = run.trainer.step, 1, -1
        self._saved_step = run.trainer.step  # a checkpoint's own steps are saved already
        self._paused_on_disconnect = False
        self._snaps, self._all_snaps, self._shown_step = [], [], None
        self.follow = True
        self.play.value = False
        seeds = run.seeds
        K = len(seeds)
        self._make_curves(seeds)
        self._member, self._models, self._marked = 0, run.models(), set()
        self._last, self._smoothed = [None] * K, [None] * K
        # a checkpoint's past curve, thinned (a run from a checkpoint has one seed)
        hist = run.histories()[0] if K == 1 else {"sequences": []}
        data = _empty(K)
        if hist["sequences"]:
            batch = max(1, run.trainer.batch_size)
            data.update(sequences=hist["sequences"], loss=hist["loss"], bit_errors=hist["bit_errors"],
                        step=[s // batch for s in hist["sequences"]])
            self._last[0] = (data["step"][-1], hist["sequences"][-1], hist["loss"][-1], hist["bit_errors"][-1])
        self.source.data = data
        self._choosing = True
        try:
            self.show_seed.param.update(options=self._seed_options(seeds), value=BEST if K > 1 else 0,
                                        visible=K > 1)
        finally:
            self._choosing = False
        self._table_key, self._table_time = (), 0.0
        self.seed_table.param.update(object=self._table_html("ready") if K > 1 else "", visible=K > 1)
        self.progress.max = max(1, run.steps)
        self.progress.value = min(run.trainer.step, run.steps)
        self.snapshot_slider.param.update(start=0, end=1, value=0, disabled=True)
        self.snapshot_label.object = "No snapshots yet."

    def _ensure_callback(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.pull, period=self.period)
        elif not self._callback.running:
            self._callback.start()

    def _stop_callback(self) -> None:
        if self._callback is not None and self._callback.running:
            self._callback.stop()

    # ---- the page's connection -------------------------------------------------------------------
    def _connection_lost(self, event) -> None:
        """The page's websocket closed (tab closed, reload, network): pause the run at once. The
        session may come back (Bokeh reconnects); if not, _session_destroyed stops the run."""
        run = self.run
        if run is not None and run.alive and not run.paused:
            log.info("%s: the page's connection was lost; pausing the run", run.name)
            self._paused_on_disconnect = True
            run.pause()

    def _reconnected(self, event) -> None:
        run = self.run
        if self._paused_on_disconnect and run is not None and run.alive:
            log.info("%s: the page reconnected; resuming the run", run.name)
            run.resume()
        self._paused_on_disconnect = False

    def _session_destroyed(self, session_context) -> None:
        """The server ended this page's session (the backstop): stop the run; never wait here,
        on the event loop every session shares (the thread ends after its current step)."""
        self._stop_callback()
        run = self.run
        if run is not None and run.alive:
            run.stop()

    # ---- pulling the run's newest state (on this session's event loop) ------------------------
    def pull(self) -> None:
        """Apply whatever the run published since the last pull; newest wins. Once the run has
        ended and its last state is shown, the periodic pull stops (unless Play training runs)."""
        run = self.run
        if run is None:
            return
        ended = run.ended  # read first: once ended, everything read below is final
        metrics = run.metrics_since(self._cursor)
        latest, status, error = run.latest, run.status, run.error
        version = run.snapshot_version
        snaps = run.snapshots()[1] if version != self._version else None
        models = run.models()  # after the snapshots: at least as new as the newest one
        with pn.io.hold():
            self._models = models  # what the seed on show is chosen from (_new_snapshots)
            if metrics:
                self._stream(metrics)
                self._cursor = metrics[-1].step
            if snaps is not None:
                self._version = version
                self._new_snapshots(snaps)
            self._show_models(models, status)
            self._show_status(run, latest, status, error)
            if self.play.value:
                self._advance()
        if ended and not self.play.value:
            self._stop_callback()
        if not (pn.state.curdoc and pn.state.curdoc.session_context):
            pn.io.push_notebook(*self._plots)  # a notebook: raw Bokeh changes need a push (else a no-op)

    def _stream(self, metrics) -> None:
        """Stream every seed's new points into its curve; a seed's NaN (it has diverged) is no point."""
        K = len(self._last)
        for m in metrics:  # every step counts for the newest values and the smoothed loss
            for k in range(K):
                loss, errors = _model_values(m, k)
                if math.isfinite(loss):
                    self._last[k] = (m.step, m.sequences, loss, errors)
                    e = self._smoothed[k]
                    self._smoothed[k] = loss if e is None else 0.9 * e + 0.1 * loss
        # Thinned by a stride that doubles (step 1 and every stride-th step), not by thinning.thin_keys:
        # the curve is streamed, append-only, so the points already sent must stay as they are
        # until a re-thin, and a stride keeps the same ones at every re-thin (first kept, evenly spaced).
        rows = [m for m in metrics if m.step % self._stride == 0 or m.step == 1]
        count = len(self.source.data["step"])
        while count + len(rows) > self.max_points:
            self._stride *= 2
            keep = [i for i, s in enumerate(self.source.data["step"]) if s % self._stride == 0 or s == 1]
            self.source.data = {c: [values[i] for i in keep] for c, values in self.source.data.items()}
            rows = [m for m in rows if m.step % self._stride == 0 or m.step == 1]
            count = len(keep)
        if rows:  # one stream for every seed: NaN where a seed has diverged breaks its line there
            new = {"step": [m.step for m in rows], "sequences": [m.sequences for m in rows]}
            for k in range(K):
                values = [_model_values(m, k) for m in rows]
                new[column("loss", k)] = [loss for loss, _ in values]
                new[column("bit_errors", k)] = [errors for _, errors in values]
            self.source.stream(new, rollover=self.max_points)

    # ---- the seeds ----------------------------------------------------------------------------
    @property
    def seed_list(self) -> list[int]:
        """The seeds of the run (of the settings before the first Start)."""
        return list(self.run.seeds) if self.run is not None else list(self.config.seeds)

    @property
    def shown_seed(self) -> int:
        """The seed whose snapshots the views show (and Save writes)."""
        return self.seed_list[self._member]

    def _show_models(self, models: tuple[ModelStatus, ...], status: str) -> None:
        """Mark newly diverged seeds on the curves and legends; the table and "Show seed"."""
        self._models = models
        for k, m in enumerate(models):
            if m.alive or k in self._marked:
                continue
            self._marked.add(k)
            last = self._last[k]
            if last is not None:  # an x where its line stops
                colour = "#000000" if len(models) == 1 else seed_colour(k)
                self.marks.stream({"sequences": [last[1]], "loss": [last[2]], "bit_errors": [last[3]],
                                   "color": [colour]})
            for items in self._legend_items:
                items[k].label = value(f"seed {m.seed} (diverged)")
        if len(models) > 1:
            self._update_seed_options()
            self._render_table(status)

    def _render_table(self, status: str) -> None:
        """Redraw the seed table. Its numbers change at every step, and every redraw makes the
        page lay itself out again (measured here in Chromium with four seeds: redrawn at every
        pull, the page answered in 0.2-1.2 s; redrawn at most every 2 s, in 0.03-0.45 s, as with
        one seed), so while the run trains a change of numbers alone waits `table_period` seconds."""
        html = self._table_html(status)
        if html == self.seed_table.object:
            return
        now = time.monotonic()
        key = (status, self._member, self._models)  # everything the table shows but its numbers
        if key != self._table_key or status not in ("running", "pausing") or now - self._table_time >= self.table_period:
            self.seed_table.object = html
            self._table_key, self._table_time = key, now

    def best_member(self) -> int:
        """The index of the seed best now among those training: on the validation stream when
        every one has a newest score (the task's validation_key), else on the smoothed
        training loss; the first seed when nothing is known yet."""
        models = self._models
        K = len(self.seed_list)
        alive = [k for k, m in enumerate(models) if m.alive] or list(range(K))
        if models and all(models[k].validation is not None for k in alive) and self.run is not None:
            key = self.run.task.validation_key
            return min(alive, key=lambda k: (*key(models[k].validation.bit_errors, models[k].validation.loss), k))
        scored = [k for k in alive if k < len(self._smoothed) and self._smoothed[k] is not None]
        if scored:
            return min(scored, key=lambda k: (self._smoothed[k], k))
        return alive[0]

    def _seed_options(self, seeds: list[int]) -> dict[str, object]:
        shown = self._member if self.show_seed.value == BEST else self.best_member()
        options: dict[str, object] = {f"best now (seed {seeds[shown]})": BEST}
        for k, seed in enumerate(seeds):
            diverged = k < len(self._models) and not self._models[k].alive
            options[f"seed {seed}" + (" (diverged)" if diverged else "")] = k
        return options

    def _update_seed_options(self) -> None:
        options = self._seed_options(self.seed_list)
        if options != self.show_seed.options:
            self._choosing = True
            try:
                self.show_seed.options = options
            finally:
                self._choosing = False

    def _seed_picked(self, event) -> None:
        if self._choosing:
            return
        member = self.best_member() if event.new == BEST else int(event.new)
        self._switch_member(member)

    def _switch_member(self, member: int) -> None:
        """Show seed `member`'s snapshots, at the same training step."""
        self._member = member
        self._name_download()
        if self._all_snaps:
            self._snaps = [s.member(member) for s in self._all_snaps]
            self._show(self.snapshot_slider.value)
        if len(self.seed_list) > 1:
            self._update_seed_options()
            self._render_table(self._status)

    def _table_html(self, status: str) -> str:
        """One row per seed: its newest loss and bit errors, curriculum stage, state (training,
        or why it diverged) and validation score; every value as text (messages.text)."""
        seeds, models = self.seed_list, self._models
        head = "".join(f'<th scope="col" style="text-align:left;padding:2px 8px">{text(h)}</th>'
                       for h in ("Seed", "Loss", "Bit errors", "Stage", "State", "Validation bit errors"))
        rows = []
        for k, seed in enumerate(seeds):
            m = models[k] if k < len(models) else None
            last = self._last[k] if k < len(self._last) else None
            if m is None or m.alive:
                state = _ALIVE_STATE.get(status, "ready")
            else:
                state = f"diverged: {m.diverged}"
            if m is not None and m.validation is not None:
                best = m.best_validation
                valid = f"{m.validation.bit_errors:.2f} (best {best.bit_errors:.2f} at step {best.step:,})"
            else:
                valid = "\u2014"
            cells = [f"seed {seed}" + (" (shown)" if k == self._member else ""),
                     "\u2014" if last is None else f"{last[2]:.3f}",
                     "\u2014" if last is None else f"{last[3]:.2f}",
                     "\u2014" if m is None or not m.stage else str(m.stage), state, valid]
            swatch = f'<span aria-hidden="true" style="color:{seed_colour(k)}">\u25a0</span> '
            tds = "".join(f'<td style="padding:2px 8px">{swatch if i == 0 else ""}{text(c)}</td>'
                          for i, c in enumerate(cells))
            weight = "font-weight:600;" if k == self._member else ""
            rows.append(f'<tr data-seed="{int(seed)}" style="{weight}">{tds}</tr>')
        return ('<table class="ntmviz-seeds" aria-label="Progress of each seed" style="border-collapse:collapse;font-size:12px">'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def _show_status(self, run: LiveRun, latest, status: str, error: str) -> None:
        K = len(run.seeds)
        if latest is not None and K == 1:
            self.progress.value = min(latest.step, self.progress.max)
            line = (f"**{status.capitalize()}** · step {latest.step:,} of {run.steps:,} · "
                    f"{latest.sequences:,} sequences · {latest.rate:,.0f} sequences/s · "
                    f"loss {latest.loss:.3f} · {latest.bit_errors:.2f} bit errors per sequence")
        elif latest is not None:
            self.progress.value = min(latest.step, self.progress.max)
            training = sum(m.alive for m in self._models)
            line = (f"**{status.capitalize()}** · step {latest.step:,} of {run.steps:,} · "
                    f"{latest.sequences:,} sequences per seed · {latest.rate:,.0f} sequences/s · "
                    f"{training} of {K} seeds training · mean loss {latest.loss:.3f} · "
                    f"{latest.bit_errors:.2f} bit errors per sequence")
        else:
            line = f"**{status.capitalize()}** · step {run.trainer.step:,}"
        self._status_text = line
        self._render_status()
        if status != self._status and status in ("diverged", "failed"):
            self._fail(error + " The snapshots and the last good weights stay: you can still scrub and save.")
        self._sync_controls(status)

    def _render_status(self) -> None:
        text = self._status_text
        self.status.object = f"{text} · {self._busy}…" if self._busy else text

    def _sync_controls(self, status: str) -> None:
        """Every button from the run's status (and an action in flight), never from a click."""
        self._status = status
        busy = bool(self._busy)
        alive = status in ALIVE
        self.start_button.disabled = alive or busy
        self.pause_button.disabled = status != "running" or busy
        self.resume_button.disabled = status not in ("pausing", "paused") or busy
        self.stop_button.disabled = status not in ("running", "pausing", "paused")
        cannot_save = self.run is None or busy or status == "stopping"
        self.save_button.disabled = cannot_save
        self.download.disabled = cannot_save
        run = self.run
        # Leaving would lose a run that is alive, or trained steps not saved or downloaded.
        self.guard.active = run is not None and (alive or (status in ENDED and run.step != self._saved_step
                                                           and run.step > 0))

    def _new_snapshots(self, snaps: list[Snapshot]) -> None:
        self._all_snaps = snaps
        if self.show_seed.value == BEST and (self.follow or self._shown_step is None):
            member = self.best_member()  # re-chosen only here: nothing changes under a user scrubbing
            if member != self._member:
                self._member = member
                self._name_download()
        self._snaps = [s.member(self._member) for s in snaps]
        self.snapshot_steps = [s.step for s in snaps]
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
        seed = f" · seed {snap.seeds[0]}" if len(self.seed_list) > 1 else ""
        self.snapshot_label.object = (f"Snapshot {index + 1} of {len(self._snaps)}: step {snap.step:,}, "
                                      f"{snap.sequences:,} sequences{loss}{seed}")
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

    def snapshot_at(self, step: int) -> Snapshot | None:
        """The snapshot of training step `step` as of the last pull (None if not kept)."""
        return next((s for s in self._snaps if s.step == step), None)

    def controls(self) -> pn.Column:
        """The settings and buttons (a sidebar)."""
        return pn.Column(
            pn.pane.Markdown("#### Train a model", margin=(0, 5)),
            self.start_from, self.note, self.task, self.size, self.model,
            pn.Row(self.memory_slots, self.memory_width), pn.Row(self.read_heads, self.write_heads),
            self.controller_size, pn.Row(self.lr, self.batch_size), pn.Row(self.steps, self.snapshot_every),
            pn.Row(self.seeds, self.validate_every),
            pn.Row(self.start_button, self.pause_button, self.resume_button, self.stop_button),
            self.save_button, self.download,
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        main = [self.alert, self.status, self.progress, self._plots, self.seed_table,
                pn.Row(self.play, self.snapshot_slider, self.show_seed, sizing_mode="stretch_width"),
                self.snapshot_label]
        if self._guard_in_panel:
            main.append(self.guard)
        if self._views is not None:
            main.append(self._views)
        return pn.Row(pn.Column(self.controls(), width=320), pn.Column(*main, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
