"""The Train tab: start, watch and steer a live training run, and scrub its snapshots.

    view = TrainingView()                         # a fresh Playback state and its own views
    view = TrainingView(state=explorer.state)     # every explorer view shows the chosen snapshot
    view.start(); view.pull(); view.pause(); view.resume(); view.stop(); view.save_checkpoint()
    view.last_state()                             # the run as it stands, as a page that needs no kernel

It is made of parts, each a Viewer of its own module with its state in `param` parameters:

    view.form       train_form.TrainForm          the settings (form.settings: as last read)
    view.buttons    run_buttons.RunButtons        Start, Pause, Resume, Stop, Save, Download
    view.curves     train_curves.TrainingCurves   loss and bit errors by training step, a line per seed
    view.seed_table seed_table.SeedTable          a row per seed (for more than one)
    view.scrubber   train_snapshots.SnapshotScrubber  the "Training step" slider, Play, "Show seed",
                                                  and the views of the snapshot on show

and this view's own parameters say what is on show: `status` (the run's), `shown_step`, `shown_seed`.

The run (ntmviz.app.live.LiveRun) trains in a daemon thread and never touches Panel. This view
pulls what the run published from its own event loop every `period` ms
(`pn.state.add_periodic_callback`): new metrics go to the curves (one hv.streams.Buffer send for
every seed; thinned past `max_points`) and to the seeds' progress, and new snapshots to the
slider. Newest wins: a pull takes whatever is there now, so a slow browser skips updates instead
of queueing them. All of one pull goes out in one message (`pn.io.hold`).

The buttons follow the run's status alone (running, pausing, paused, stopping, ...), read at
every pull, so they never show what was merely asked for. Nothing a button does waits on the
event loop, which every session of the server shares: Stop only asks (the status shows
"stopping" until the thread has ended), and Save and Download write the checkpoint on the app's
background pool (background.py) while the buttons show busy. Once a run has ended and its last
state is shown, the pull stops; Start or Play training starts it again.

Each browser session builds its own view and run. When the page's connection drops (a closed
tab, a reload, a lost network) the run pauses at once (Bokeh's `connection_lost` event); if
the browser reconnects to the same session it resumes, and when the server ends the session
(`pn.state.on_session_destroyed`, the backstop) the run stops. While a run is alive or holds
steps not saved, the page asks before a reload or close (LeaveGuard). In Jupyter the view
trains without blocking the notebook; call `stop()` when done, and `last_state()` for an output
that still shows the run once the notebook is saved and opened without a kernel.

Before the first Start nothing on the tab but the form is about a model: no curves, no slider and
no views (the explorer's state holds the Explore tab's episode, another model), and a note says
what the views will show. After it, the views are on the page only while the state holds one of
this run's snapshots (train_snapshots.py).

Seeds. "Seeds" takes one seed (0), a range (0-7) or a list (0,3,5), at most 16 (MAX_SEEDS): the run
trains one model per seed in one Trainer (one batched computation, as `ntmviz train --seeds`).
With more than one, each curve has a line per seed and a legend, and a table lists every seed.
A seed that diverges has NaN from then on, so its line stops at its last good step, marked with
an x there, and its legend entry and row say so. Every snapshot holds every seed's episode
(live.py records them in one batched run), so "Show seed" switches the views between seeds at
once, on the same training step; by default it follows the seed that is best now (on the
validation stream when every seed has a score, else on its smoothed training loss). Save and
Download write the seed on show.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from pathlib import Path

import panel as pn
import param
from panel.viewable import Viewer

from ..errors import NtmvizError
from . import background
from .leave_guard import LeaveGuard
from .live import ENDED, LiveRun, ModelStatus, RunConfig, Snapshot, new_run
from .messages import clear, show_error, show_success
from .run_buttons import ALIVE, DOWNLOADING, SAVING, RunButtons
from .seed_table import Last, SeedProgress, SeedTable, best_member
from .state import Playback
from .textline import TextLine
from .train_curves import TrainingCurves
from .train_form import TrainForm
from .train_snapshots import SnapshotScrubber

log = logging.getLogger(__name__)

NO_KERNEL = ("This was a live training view: it needs its running kernel. TrainingView.last_state() gives "
             "an output that shows the run without one (its status, curves, seeds and views).")


async def _off_loop(fn, *args):
    """fn(*args) on the app's background pool, awaited: the event loop serves every session meanwhile."""
    return await asyncio.wrap_future(background.submit(fn, *args))


class TrainingView(Viewer):
    """Train a model, or one per seed, live: the settings, Start / Pause / Resume / Stop,
    streamed loss and bit-error curves (a line per seed), a table of the seeds, speed and
    progress, snapshots of the models on a fixed probe input every K steps (scrub them by
    training step or play them; "Show seed" picks whose), save and download."""

    state = param.ClassSelector(class_=Playback, doc="""
        The playback state the chosen snapshot goes to (the explorer's, to drive every view).""")

    run = param.ClassSelector(class_=LiveRun, allow_None=True, default=None, doc="""
        The current run (None before the first Start).""")

    status = param.String(default="ready", doc="""
        The run's status as of the last pull (live.STATUSES; "ready" before the first Start).""")

    shown_step = param.Integer(default=None, allow_None=True, doc="""
        The training step of the snapshot on show (None before the first).""")

    shown_seed = param.Integer(default=0, doc="""
        The seed whose snapshot is on show (and whose model Save and Download write).""")

    folder = param.String(default="checkpoints", doc="""
        The folder whose checkpoints can be trained further ("Start from").""")

    save_folder = param.String(default="runs", doc="""
        Where "Save checkpoint" writes (not the shipped checkpoints' folder: a run saved into it
        would sit among them as if shipped).""")

    period = param.Integer(default=400, bounds=(50, 5000), doc="""
        Milliseconds between two pulls of the run's newest state.""")

    max_points = param.Integer(default=2000, bounds=(10, None), doc="""
        The most points a curve holds; past it the curve is thinned, never grown.""")

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
        self._cursor = 0  # the newest step already taken from the run
        self._version = -1  # the snapshot version on show
        self._models: tuple[ModelStatus, ...] = ()  # every seed's status as of the last pull
        self._progress = SeedProgress(len(self.config.seeds))
        self._callback = None
        self._saved_step: int | None = None  # the step last saved or downloaded
        self._paused_on_disconnect = False
        self._status_text = "Not started."
        # Explorer puts the guard outside its tabs (a hidden tab's components are removed).
        self.guard = LeaveGuard()
        self._guard_in_panel = guard_in_panel
        self.form = TrainForm(self.config, folder=self.folder, save_folder=self.save_folder)
        # the form's fields other code names on the view (tests/app/test_story_sources.py, test_explorer.py)
        self.start_from, self.steps = self.form.start_from, self.form.steps
        self.buttons = RunButtons(on_start=self.start, on_pause=self.pause, on_resume=self.resume,
                                  on_stop=lambda: self.stop(wait=False), on_save=self._save_clicked,
                                  download=self._download_file)
        self.curves = TrainingCurves(seeds=list(self.config.seeds), max_points=self.max_points)
        self.seed_table = SeedTable(period=self.table_period)
        self.scrubber = SnapshotScrubber(state=self.state, best=self.best_member, show_views=show_views,
                                         seeds=list(self.config.seeds), every=self.config.snapshot_every)
        wide = {"sizing_mode": "stretch_width"}
        self.progress = pn.indicators.Progress(label="Training progress", value=0, max=max(1, self.config.steps),
                                               bar_color="primary", **wide)
        self.status_line = TextLine(self._status_text, **wide)  # changes at every pull: see textline.py
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, **wide)
        # progress and curves: on the page once there is a run (before it, only the form is about a model)
        self.run_area = pn.Column(self.progress, self.curves, visible=False, **wide)
        self.param.watch(lambda e: setattr(self.form, e.name, e.new), ["folder", "save_folder"])
        self.param.watch(lambda e: setattr(self.curves, "max_points", e.new), "max_points")
        self.param.watch(lambda e: setattr(self.seed_table, "period", e.new), "table_period")
        self.scrubber.param.watch(self._shown_changed, ["step", "member"])
        self.scrubber.play.param.watch(lambda e: e.new and self._ensure_callback(), "value")
        self.form.param.watch(lambda e: e.new and self._fail(e.new), "message")
        self.form.settings.param.watch(self._live_setting, ["snapshot_every", "validate_every"])
        self._sync_controls("ready")
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            pn.state.on_session_destroyed(self._session_destroyed)
            doc.on_event("connection_lost", self._connection_lost)
            doc.on_event("client_reconnected", self._reconnected)

    # ---- readouts ------------------------------------------------------------------------------
    @property
    def seed_list(self) -> list[int]:
        """The seeds of the run (of the settings before the first Start)."""
        return list(self.run.seeds) if self.run is not None else list(self.form.settings.seeds)

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot on show."""
        return self.scrubber.snapshot

    @property
    def snapshot_list(self) -> list[Snapshot]:
        """The snapshots as of the last pull (the seed on show)."""
        return self.scrubber.snapshot_list

    def snapshot_at(self, step: int) -> Snapshot | None:
        """The snapshot of training step `step` as of the last pull (None if not kept)."""
        return self.scrubber.snapshot_at(step)

    def curve(self, k: int) -> dict[str, list]:
        """Seed k's points as the curves hold them (TrainingCurves.points)."""
        return self.curves.points(k)

    def run_config(self) -> RunConfig:
        """The RunConfig the form describes; ConfigError, in the user's terms, for a bad field."""
        return self.form.config()

    def best_member(self) -> int:
        """The index of the seed best now (seed_table.best_member)."""
        key = self.run.task.validation_key if self.run is not None else None
        return best_member(self._models, self._progress.smoothed, key, len(self._models) or len(self.seed_list))

    def refresh_checkpoints(self) -> None:
        """List the checkpoints of `folder` and `save_folder` again in "Start from"; the choice stays."""
        self.form.refresh_checkpoints()

    # ---- actions -------------------------------------------------------------------------------
    def _fail(self, text: str) -> None:
        self.message = text
        show_error(self.alert, text)

    def _ok(self) -> None:
        self.message = ""
        clear(self.alert)

    def start(self) -> LiveRun | None:
        """Start a new run from the form (asking the current one to stop); None if refused.

        Never waits: a run still alive is only asked to stop, and ends after its current step."""
        checkpoint = self.form.checkpoint or None
        try:
            config = self.run_config()
            run = new_run(config, checkpoint=checkpoint,
                          **({"lr": config.lr, "batch_size": config.batch_size} if checkpoint else {}))
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
        with pn.io.hold():  # one message (a click may run unlocked: the parts change Bokeh models)
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

    def _reset(self, run: LiveRun) -> None:
        self._cursor, self._version = run.trainer.step, -1
        self._saved_step = run.trainer.step  # a checkpoint's own steps are saved already
        self._paused_on_disconnect = False
        seeds = list(run.seeds)
        self._models = run.models()
        self._progress = SeedProgress(len(seeds))
        # a checkpoint's past curve, thinned (a run from a checkpoint has one seed)
        history = run.histories()[0] if len(seeds) == 1 else None
        self.curves.reset(seeds, history, batch_size=run.trainer.batch_size)
        if history and history["sequences"]:
            step = history["sequences"][-1] // max(1, run.trainer.batch_size)
            self._progress.last[0] = Last(step, history["sequences"][-1], history["loss"][-1],
                                          history["bit_errors"][-1])
        self.scrubber.reset(seeds)
        self.seed_table.reset(seeds, self._models)
        self.run_area.visible = True
        self.progress.max = max(1, run.steps)
        self.progress.value = min(run.trainer.step, run.steps)

    def _live_setting(self, event) -> None:
        """Snapshot and validation periods apply to the run while it trains."""
        if event.name == "snapshot_every" and event.new is not None:
            self.scrubber.every = event.new
        if self.run is not None and event.new is not None:
            setattr(self.run, event.name, event.new)

    # ---- saving: the checkpoint is written off the event loop, the UI busy meanwhile -------------
    def _target(self, path: str | Path | None, member: int) -> Path:
        return Path(path) if path is not None else Path(self.save_folder) / self.run.default_filename(member)

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write the model of the seed on show as a checkpoint (to save_folder by default, its
        seed in the name), waiting for it (Python, notebooks); None if it cannot. The Save button
        does the same off the event loop."""
        if self.run is None:
            self._fail("Start a run first: there is no model to save yet.")
            return None
        member = self.scrubber.member
        try:
            written = self.run.save(self._target(path, member), member)
        except Exception as exc:
            return self._save_failed(exc)
        return self._saved(written, member)

    async def save_checkpoint_async(self, path: str | Path | None = None) -> Path | None:
        """save_checkpoint, with the writing on the background pool and the buttons busy meanwhile."""
        if self.run is None:
            self._fail("Start a run first: there is no model to save yet.")
            return None
        run, member = self.run, self.scrubber.member
        target = self._target(path, member)
        self._set_busy(SAVING)
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

    @staticmethod
    def _checkpoint_bytes(run: LiveRun, member: int) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            return run.save(Path(tmp) / "live.safetensors", member).read_bytes()

    def checkpoint_file(self) -> io.BytesIO:
        """The checkpoint Download sends (the seed on show), waiting for it (Python, tests)."""
        if self.run is None:
            return io.BytesIO(b"")
        return io.BytesIO(self._checkpoint_bytes(self.run, self.scrubber.member))

    _checkpoint_file = checkpoint_file  # (the name older tests use)

    def _name_download(self) -> None:
        """Download's file name: task, model kind and the seed on show."""
        run = self.run
        if run is None:
            return
        kind = getattr(run.trainer.model.config, "kind", "model")
        seed = run.seeds[self.scrubber.member]
        self.buttons.download.filename = f"{run.task.name}-{kind}-seed{seed}-live.safetensors"

    async def _download_file(self) -> io.BytesIO:
        """What Download sends: written on the background pool, the buttons busy meanwhile."""
        run = self.run
        if run is None:
            return io.BytesIO(b"")
        self._set_busy(DOWNLOADING)
        try:
            data = await _off_loop(self._checkpoint_bytes, run, self.scrubber.member)
        except Exception as exc:
            self._save_failed(exc)
            return io.BytesIO(b"")
        finally:
            self._set_busy("")
        self._saved_step = run.step
        self._sync_controls(run.status)
        return io.BytesIO(data)

    def _set_busy(self, what: str) -> None:
        self.buttons.busy = what
        self._render_status()
        self._sync_controls(self.run.status if self.run is not None else "ready")

    # ---- what is on show -------------------------------------------------------------------------
    def _shown_changed(self, *events) -> None:
        s = self.scrubber
        self.param.update(shown_step=s.step, shown_seed=s.shown_seed)
        if any(e.name == "member" for e in events):
            self._name_download()
            self._show_table()

    def _show_table(self, force: bool = False) -> None:
        if len(self.seed_list) > 1:
            self.seed_table.show(self.seed_list, self._models, self._progress.last, self.scrubber.member,
                                 self.status, force=force)

    def _show_models(self, models: tuple[ModelStatus, ...]) -> None:
        """Mark newly diverged seeds on the curves; "Show seed" and the table."""
        self._models = models
        diverged = [k for k, m in enumerate(models) if not m.alive]
        for k in diverged:
            self.curves.mark_diverged(k)
        self.scrubber.refresh_options(diverged)
        self._show_table()

    def _show_status(self, run: LiveRun, latest, status: str, error: str) -> None:
        K = len(run.seeds)
        if latest is not None:
            self.progress.value = min(latest.step, self.progress.max)
            if K == 1:
                line = (f"**{status.capitalize()}** · step {latest.step:,} of {run.steps:,} · "
                        f"{latest.sequences:,} sequences · {latest.rate:,.0f} sequences/s · "
                        f"loss {latest.loss:.3f} · {latest.bit_errors:.2f} bit errors per sequence")
            else:
                training = sum(m.alive for m in self._models)
                line = (f"**{status.capitalize()}** · step {latest.step:,} of {run.steps:,} · "
                        f"{latest.sequences:,} sequences per seed · {latest.rate:,.0f} sequences/s · "
                        f"{training} of {K} seeds training · mean loss {latest.loss:.3f} · "
                        f"{latest.bit_errors:.2f} bit errors per sequence")
        else:
            line = f"**{status.capitalize()}** · step {run.trainer.step:,}"
        self._status_text = line
        self._render_status()
        if status != self.status and status in ("diverged", "failed"):
            self._fail(error + " The snapshots and the last good weights stay: you can still scrub and save.")
        self._sync_controls(status)

    def _render_status(self) -> None:
        busy = self.buttons.busy
        self.status_line.object = f"{self._status_text} · {busy}…" if busy else self._status_text

    @property
    def status_text(self) -> str:
        """The status line as the page shows it ("**Running** · step 1,200 of 5,000 · ...")."""
        return self.status_line.object

    def _sync_controls(self, status: str) -> None:
        """Every button from the run's status (and an action in flight), never from a click."""
        self.status = status
        self.buttons.param.update(status=status, has_run=self.run is not None)
        run = self.run
        # Leaving would lose a run that is alive, or trained steps not saved or downloaded.
        self.guard.active = run is not None and (status in ALIVE or (status in ENDED and run.step != self._saved_step
                                                                     and run.step > 0))

    # ---- the pull ---------------------------------------------------------------------------------
    def _ensure_callback(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.pull, period=self.period)
        elif not self._callback.running:
            self._callback.start()

    def _stop_callback(self) -> None:
        if self._callback is not None and self._callback.running:
            self._callback.stop()

    @property
    def pulling(self) -> bool:
        """Whether the periodic pull runs."""
        return self._callback is not None and self._callback.running

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
            self._models = models  # what the seed on show is chosen from (scrubber.update)
            if metrics:
                self._progress.update(metrics)
                self.curves.extend(metrics)
                self._cursor = metrics[-1].step
            if ended or status == "paused":
                self.curves.flush()  # all of it once the run holds
            if snaps is not None:
                self._version = version
                self.scrubber.update(snaps)
                self.snapshot_steps = [s.step for s in snaps]
            self._show_status(run, latest, status, error)
            self._show_models(models)
            if self.scrubber.play.value:
                self.scrubber.advance()
        if ended and not self.scrubber.play.value:
            self._stop_callback()

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

    # ---- the page ---------------------------------------------------------------------------------
    def last_state(self):
        """The run as it stands (status, curves, seed table, the views at the snapshot on show) as
        one self-contained output: it shows in a notebook saved and opened without a kernel."""
        from .run_record import RunRecord

        return RunRecord.of(self)

    def controls(self) -> pn.Column:
        """The settings and buttons (a sidebar)."""
        return pn.Column(pn.pane.Markdown("#### Train a model", margin=(0, 5)), self.form, self.buttons,
                         sizing_mode="stretch_width")

    def __panel__(self):
        main = [self.alert, self.status_line, self.run_area, self.seed_table, self.scrubber]
        if self._guard_in_panel:
            main.append(self.guard)
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:  # a notebook: saved, it may be opened with no kernel
            from .needs_kernel import NeedsKernel

            main.append(NeedsKernel(text=NO_KERNEL))
        return pn.Row(pn.Column(self.controls(), width=320), pn.Column(*main, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")
