"""The Sweep tab: the runs of a sweep folder (`ntmviz sweep --out FOLDER`), their scores and
learning curves, and each run one click away from Explore and Compare.

    view = SweepView(folder="sweeps/copy")          # read it and show it
    view.selection = [0, 3]                         # rows of the table (indices into view.runs)
    view.open_in_explore(); view.open_in_compare()  # with an explorer's Sources and Compare

What is read: the folder's sweep.json and each run's row (runs/cC/seedS.json), through
ntmviz.sweep.read_folder, and each finished run's checkpoint header for its curves (the
training curve `history` and the validation checks `validation` in its metadata): JSON and
checked safetensors only, nothing unpickled, nothing written. A folder that is not a sweep is
one message; a sweep still running shows its finished runs and how many are still to run;
Refresh reads the folder again.

The table has a row per finished run: the settings the grid varies, the seed, the held-out
score (mean bit errors per sequence on the validation stream, with its 95% interval), exact
sequences, solved or not, the status (done or diverged, and why), steps and training time.
The chart (sweep_chart.py: HoloViews, an overlay of runs) draws the curves of the selected
runs (of every run while none is selected): colour says a run's settings (those the sweep varies:
one numeric setting such as lr on an ordered scale, smallest darkest; several, a colour per
combination) and stays with the run whichever runs are shown; the line style and end marker say
whether it solved the task (solid and dot solved, dashed and cross not, dotted and square where
the task has no bar). The legend names the settings' colours and the outcomes' styles; hovering
along x shows every run's value there (run, settings, outcome, sequences, bit errors). Its number
of HoloViews elements does not grow with the runs (a sweep has hundreds), see learning_chart.
Under it: a log-scale toggle and the training curves' smoothing (an exponential moving average;
validation checks and end scores are never smoothed). Nothing streams here: Open and Refresh
read the folder and draw the chart again. In the page: button "Log scale" (a toggle), slider
"Smoothing", the chart inside .ntmviz-sweep-chart (its lines: Bokeh MultiLines whose sources
hold each line's 'run' and 'colour').

Sweep folders offered: the folder typed in (a path on the server), and every sweep found in
the search folders (each folder that is a sweep, and each of its subfolders that is): where the
Train tab saves (runs/), sweeps/, `ntmviz serve --sweep DIR` and $NTMVIZ_SWEEPS
(os.pathsep-joined). In a served session reading a folder and recording for Compare run off
the event loop (the app's one pool of threads, background.py); the buttons say so meanwhile.
"""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import panel as pn
import param
from bokeh.models import ColumnDataSource, DataTable, NumberFormatter, StringFormatter, TableColumn
from panel.viewable import Viewer

from ..errors import NtmvizError
from ..files import MAX_CHECKPOINT_BYTES, read_file, read_safetensors
from ..shipped import split_folders
from ..sweep import SweepFolder, label, read_folder, run_paths
from ..thinning import thin_keys
from . import background
from .cache import LRU
from .messages import clear, show_error, text
from .sweep_chart import OUTCOME_STYLE, RunLines, learning_chart, log_floor_for, run_lines

log = logging.getLogger(__name__)

ENV = "NTMVIZ_SWEEPS"  # more folders to look for sweeps in, os.pathsep-joined
CURVE_POINTS = 400  # per curve sent to the browser (thinned as every history is: thinning.py)
CHOOSE, NONE_FOUND = "(choose one)", "(none found)"


def sweep_folders(extra=(), env: bool = True) -> list[Path]:
    """The folders searched for sweeps: `extra` (e.g. runs/, `ntmviz serve --sweep DIR`), then
    those in $NTMVIZ_SWEEPS; each once."""
    out: list[Path] = []
    for folder in split_folders(list(extra)) + (split_folders(os.environ.get(ENV, "")) if env else []):
        if folder not in out:
            out.append(folder)
    return out


def find_sweeps(folders) -> list[Path]:
    """Every sweep folder among `folders` and their subfolders (one level down), in order."""
    found: list[Path] = []
    for folder in split_folders(folders):
        try:
            candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:  # not there (yet), or not readable: nothing to offer
            continue
        for candidate in candidates:
            if (candidate / "sweep.json").is_file() and candidate not in found:
                found.append(candidate)
    return found


# ---- one run: its row and its curves ----------------------------------------------------------------
@dataclass
class Curves:
    """One run's learning curves from its checkpoint's metadata.

    train: (sequences seen, bit errors per sequence of its training batches), thinned to
    CURVE_POINTS; validation: (sequences seen, bit errors) of the checks made while training
    (none in a run the sweep trained: it is scored once, at the end); sequences: seen in all."""

    train: tuple[list[float], list[float]] = ([], [])
    validation: tuple[list[float], list[float]] = ([], [])
    sequences: int = 0


# One per run of the sweeps on show (a sweep has a few hundred), each at most CURVE_POINTS points
# and the validation checks: about 20 KB, so at most ~20 MB. Refresh reads only runs that changed.
_CURVES: LRU[tuple, Curves] = LRU(1024)


def read_curves(path: str | Path) -> Curves:
    """The curves in the checkpoint at `path` (its checksums verified, its weights not used);
    FileFormatError if it cannot be read. Read once per version of the file."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return _CURVES.get_or_make(key, partial(_read_curves, path))


def _read_curves(path: Path) -> Curves:
    from ..checkpoint import FORMAT, VERSION

    header = read_safetensors(read_file(path, "checkpoint", MAX_CHECKPOINT_BYTES), str(path), FORMAT,
                              VERSION).metadata
    try:
        meta = json.loads(header.get("meta") or "{}")
        history, valid = meta.get("history") or {}, meta.get("validation") or {}
        xs, ys = [float(v) for v in history.get("sequences", [])], [float(v) for v in history.get("bit_errors", [])]
        batch = int(meta.get("batch_size") or 1)
        vx = [float(s) * batch for s in valid.get("step", [])]
        vy = [float(v) for v in valid.get("bit_errors", [])]
        sequences = int(header.get("sequences", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        from ..errors import FileFormatError

        raise FileFormatError(f"{path}: no readable learning curve in its metadata ({exc})") from None
    n = min(len(xs), len(ys))
    keep = thin_keys(xs[:n], CURVE_POINTS) if n >= 2 else list(range(n))
    return Curves(([xs[i] for i in keep], [ys[i] for i in keep]), (vx[:len(vy)], vy[:len(vx)]), sequences)


@dataclass
class Run:
    """A finished run of the sweep on show: its row (as sweep.py wrote it) and where it is."""

    row: dict[str, Any]
    settings: dict[str, Any]  # the values of the settings the grid varies
    checkpoint: Path
    curves: Curves | None = None  # None if its checkpoint could not be read

    @property
    def name(self) -> str:
        return f"c{self.row['combination']}/seed{self.row['seed']}"

    @property
    def title(self) -> str:
        """e.g. 'lr=0.001 seed 2' (what tells it from the sweep's other runs)."""
        return f"{label(self.settings)} seed {self.row['seed']}"

    @property
    def outcome(self) -> str:
        solved = self.row.get("solved")
        return "no bar to solve" if solved is None else "solved" if solved else "not solved"


@dataclass
class SweepData:
    """A sweep folder read for the view: what read_folder gives, the runs with their curves."""

    folder: SweepFolder
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rows and checkpoints that could not be read


def load_sweep(folder: str | Path) -> SweepData:
    """Read a sweep folder for the view; ConfigError (one line) if it is not one."""
    data = read_folder(folder)
    grid = list(data.sweep.grid)
    out = SweepData(data, problems=list(data.problems))
    for row in data.rows:
        c, s = row["combination"], row["seed"]
        settings = {k: row.get(k, data.sweep.combinations()[c].get(k)) for k in grid}
        run = Run(row, settings, run_paths(data.folder, c, s)["checkpoint"])
        try:
            run.curves = read_curves(run.checkpoint)
        except NtmvizError as exc:
            out.problems.append(str(exc))
        except OSError as exc:
            out.problems.append(f"{run.checkpoint}: cannot be read ({type(exc).__name__})")
        out.runs.append(run)
    return out


def _cell(value: Any) -> str:
    """A setting's value as the table shows it."""
    return value if isinstance(value, str) else json.dumps(value)


def table_data(runs: list[Run], grid: list[str]) -> dict[str, list]:
    """The table's columns, a row per run: run, g0.. (the grid's settings, in grid order), seed,
    bit_errors, interval, exact (%), solved, status, diverged, steps, train_seconds."""
    data: dict[str, list] = {"run": [r.name for r in runs]}
    for i, key in enumerate(grid):
        data[f"g{i}"] = [_cell(r.settings.get(key)) for r in runs]
    solved = {True: "yes", False: "no", None: "-"}
    data.update(
        seed=[int(r.row["seed"]) for r in runs],
        bit_errors=[float(r.row["bit_errors"]) for r in runs],
        interval=[f"[{r.row['interval'][0]:.3f}, {r.row['interval'][1]:.3f}]" for r in runs],
        exact=[100.0 * float(r.row["exact"]) for r in runs],
        solved=[solved.get(r.row.get("solved"), str(r.row.get("solved"))) for r in runs],
        status=[str(r.row.get("status", "")) for r in runs],
        diverged=[str(r.row.get("diverged") or "") for r in runs],
        steps=[int(r.row["steps"]) for r in runs],
        train_seconds=[float(r.row["train_seconds"]) for r in runs],
    )
    return data


# ---- the view -------------------------------------------------------------------------------------------
class SweepView(Viewer):
    """A sweep folder's runs: a table, their learning curves, and buttons that open a run in
    Explore or two runs in Compare (see the module docstring)."""

    folder = param.String(default="", doc="""
        The sweep folder on show ('' for none yet): a path on the server.""")

    search = param.List(default=[], item_type=str, doc="""
        Folders searched for sweeps (each one that is a sweep folder, and each subfolder that is).""")

    selection = param.List(default=[], doc="""
        The selected runs: indices into `runs` (the table's rows). The curves show these (every
        run when none is selected); Open in Explore takes one, Compare two.""")

    message = param.String(default="", doc="The last error shown ('' when the last action worked).")

    log_scale = param.Boolean(default=False, label="Log scale", doc="""
        Bit errors on a log axis (zeros drawn at the bottom, at a power of ten the note names).""")

    smoothing = param.Number(default=0.6, bounds=(0.0, 0.99), step=0.01, label="Smoothing", doc="""
        The training curves' exponential-moving-average weight (0: as logged; validation checks
        and end scores are never smoothed).""")

    def __init__(self, folder: str | Path = "", *, sources: Any = None, compare: Any = None,
                 on_open: Callable[[str], None] | None = None, **params):
        super().__init__(**params)
        self.sources, self.compare = sources, compare  # an explorer's Sources and Compare (or None)
        self.on_open = on_open  # on_open("explore" | "compare"): show that tab
        self.data: SweepData | None = None
        self._busy = False
        self._setting_found = False  # find() sets the list's value: not the user's pick
        self.path = pn.widgets.TextInput(label="Sweep folder", placeholder="a folder made by ntmviz sweep --out",
                                         description="A sweep's folder on the server", sizing_mode="stretch_width")
        self.found = pn.widgets.Select(label="Sweeps found", options={}, sizing_mode="stretch_width",
                                       description="Sweep folders under runs/, sweeps/, --sweep DIR and $NTMVIZ_SWEEPS")
        self.open_button = pn.widgets.Button(label="Open sweep", color="primary", width=130, align="end")
        self.refresh_button = pn.widgets.Button(label="Refresh", width=100, align="end",
                                                description="Read the folder again (and look for sweeps again)")
        self.summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.problems = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.explore_button = pn.widgets.Button(label="Open in Explore", disabled=True, width=160,
                                                description="Record an episode from the selected run")
        self.compare_button = pn.widgets.Button(label="Compare two runs", disabled=True, width=160,
                                                description="The two selected runs side by side on one input")
        self.hint = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"}, margin=(8, 10))
        self._build_table()
        self._build_plot()
        self.open_button.on_click(lambda _: self.open(self.path.value))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.found.param.watch(self._found_picked, "value")
        self.explore_button.on_click(lambda _: self.open_in_explore())
        self.compare_button.on_click(lambda _: self.open_in_compare())
        self.param.watch(lambda _: self._selection_changed(), "selection")
        self.param.watch(lambda _: self._draw(), ["log_scale", "smoothing"])
        self.find()
        self._show(None)
        if folder:
            self.open(folder)

    # ---- the widgets that show a sweep -------------------------------------------------------
    def _build_table(self) -> None:
        self.source = ColumnDataSource(data=table_data([], []))
        self.table = DataTable(source=self.source, columns=[], index_position=None, selectable="checkbox",
                               sortable=True, height=120, sizing_mode="stretch_width")
        self.source.selected.on_change("indices", self._table_selected)

    def _fill_table(self, data: dict[str, list], grid: list[str]) -> None:
        # The data first, then new columns: Bokeh's DataTable (3.9) keeps the rows it drew when
        # only the data changes and the row count does not, and a new list of columns makes it
        # draw the whole table again, from the data already there.
        self.source.data = data
        self.table.columns = self._columns(grid)

    def _columns(self, grid: list[str]) -> list[TableColumn]:
        right = dict(text_align="right")
        # SlickGrid puts a column's title in the page as HTML: a grid key from a file is escaped here.
        return [TableColumn(field="run", title="run", formatter=StringFormatter(), width=90),
                *[TableColumn(field=f"g{i}", title=html.escape(key), formatter=StringFormatter())
                  for i, key in enumerate(grid)],
                TableColumn(field="seed", title="seed", formatter=NumberFormatter(format="0", **right), width=50),
                TableColumn(field="bit_errors", title="bit errors / seq",
                            formatter=NumberFormatter(format="0.000", nan_format="NaN", **right)),
                TableColumn(field="interval", title="95% interval", formatter=StringFormatter()),
                TableColumn(field="exact", title="exact %", formatter=NumberFormatter(format="0.0", **right),
                            width=60),
                TableColumn(field="solved", title="solved", formatter=StringFormatter(), width=55),
                TableColumn(field="status", title="status", formatter=StringFormatter(), width=70),
                TableColumn(field="diverged", title="diverged", formatter=StringFormatter()),
                TableColumn(field="steps", title="steps", formatter=NumberFormatter(format="0", **right), width=60),
                TableColumn(field="train_seconds", title="train s",
                            formatter=NumberFormatter(format="0.0", **right), width=60)]

    def _build_plot(self) -> None:
        # a toggle button, not a Checkbox: Panel's Checkbox (1.9) has no accessible name, a button has its text
        self.log_toggle = pn.widgets.Toggle.from_param(self.param.log_scale, align="end", width=110)
        # redrawn when the slider is let go: a redraw is a new HoloViews plot (0.5 to 1 s here)
        self.smoothing_slider = pn.widgets.FloatSlider.from_param(self.param.smoothing, throttled=True, width=220)
        self.lines: list[RunLines] = []  # what the chart shows (run_lines)
        self.chart = learning_chart([])
        self.plot = pn.pane.HoloViews(self.chart, backend="bokeh", sizing_mode="stretch_width", min_height=340,
                                      css_classes=["ntmviz-sweep-chart"])  # for tests and scripts
        self.curves_note = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"},
                                            sizing_mode="stretch_width")

    # ---- finding and reading sweeps ----------------------------------------------------------
    def find(self) -> list[Path]:
        """Look for sweeps in the search folders again; the list keeps the current choice."""
        found = find_sweeps(self.search)
        options = {NONE_FOUND if not found else CHOOSE: "", **{str(p): str(p) for p in found}}
        if self.folder and self.folder not in options.values():
            options[self.folder] = self.folder
        self._setting_found = True
        try:
            self.found.options = options
            self.found.value = self.folder if self.folder in options.values() else ""
        finally:
            self._setting_found = False
        return found

    def _found_picked(self, event) -> None:
        if not self._setting_found and event.new:
            self.open(event.new)

    def open(self, folder: str | Path | None) -> bool:
        """Show the sweep in `folder` (in a served session: read off the event loop, shown when
        read). False, with a message, if there is no folder to read."""
        folder = str(folder or "").strip()
        if not folder:
            return self._fail("Type a sweep folder's path, or pick one of the sweeps found.")
        self.folder = folder
        self.path.value = folder
        return self._in_background(f"Reading {folder}…", partial(load_sweep, folder), self._loaded)

    def refresh(self) -> bool:
        """Read the folder on show again (a sweep still running has finished more runs), and
        look for sweeps again. The selected runs stay selected."""
        self.find()
        if not self.folder:
            return True
        return self._in_background(f"Reading {self.folder}…", partial(load_sweep, self.folder), self._loaded)

    def _loaded(self, data: SweepData) -> None:
        same = self.data is not None and self.data.folder.folder == data.folder.folder
        keep = {r.name for r in self.selected_runs()} if same else set()
        self.data = data
        with param.discard_events(self):
            self.selection = [i for i, r in enumerate(data.runs) if r.name in keep]
        self._show(data)
        self.find()

    @property
    def runs(self) -> list[Run]:
        """The finished runs on show, in the table's order (combination, then seed)."""
        return self.data.runs if self.data is not None else []

    # ---- showing --------------------------------------------------------------------------------
    def _show(self, data: SweepData | None) -> None:
        if data is None:
            self.summary.object = text("Choose a sweep folder: one that `ntmviz sweep --out FOLDER` wrote.")
            self._fill_table(table_data([], []), [])
            self.problems.visible = False
            self._draw()
            return
        sweep, folder = data.folder.sweep, data.folder
        grid = list(sweep.grid)
        total = len(sweep.combinations()) * len(sweep.seeds)
        solved = sum(1 for r in data.runs if r.row.get("solved"))
        varied = "; ".join(f"{k} = {', '.join(_cell(v) for v in values)}" for k, values in sweep.grid.items())
        lines = [f"{folder.folder}: {sweep.task} ({sweep.model}), {len(sweep.combinations())} combination(s) x "
                 f"{len(sweep.seeds)} seed(s), {sweep.steps} steps" + (f"; grid {varied}" if varied else "") + ".",
                 f"{len(data.runs)} of {total} runs finished, {solved} solved."]
        todo = len(folder.missing)
        if todo:
            partial_note = f" ({len(folder.partial)} with a partial checkpoint: training, or stopped)" \
                if folder.partial else ""
            lines.append(f"{todo} still to run{partial_note}: Refresh shows runs as they finish.")
        lines.append(f"Held-out score: mean bit errors per sequence on {sweep.validation_samples} validation-stream "
                     f"sequences, with its 95% interval.")
        self.summary.object = "<br>".join(text(line) for line in lines)
        self._fill_table(table_data(data.runs, grid), grid)
        self.source.selected.indices = list(self.selection)
        self.table.height = min(420, 32 + 26 * max(1, len(data.runs)))
        if data.problems:
            self.problems.object = text("Could not read: " + "; ".join(data.problems))
        self.problems.visible = bool(data.problems)
        self._draw()

    def selected_runs(self) -> list[Run]:
        return [self.runs[i] for i in self.selection if 0 <= i < len(self.runs)]

    def _draw(self) -> None:
        """The curves of the selected runs (every run while none is selected)."""
        runs = self.selected_runs() or self.runs
        smoothing = float(self.smoothing)
        floor = log_floor_for(runs) if self.log_scale else None
        self.lines = run_lines(runs, self.runs, smoothing=smoothing, floor=floor)
        self.chart = learning_chart(self.lines, logy=self.log_scale, smoothed=smoothing > 0)
        self.plot.object = self.chart
        if not self.runs:
            self.curves_note.object = ""
        else:
            which = "the selected runs" if self.selection else "every run (tick runs in the table to show only them)"
            counts = ", ".join(f"{sum(1 for r in runs if r.outcome == name)} {name}" for name in OUTCOME_STYLE
                               if any(r.outcome == name for r in runs))
            smooth = f", smoothed (weight {smoothing:g})" if smoothing else ""
            zeros = f" On the log scale, zeros are drawn at {floor:g}." if floor is not None else ""
            self.curves_note.object = text(
                f"Curves of {which}: {counts}. Colour: the run's settings (the legend names them). Thin lines: "
                f"bit errors of each training batch{smooth}; thick with dots: checks on the validation stream "
                f"during training (if the run made any); marker and bar: the held-out score at the end with its "
                f"95% interval. Solid line and dot: solved; dashed and cross: not solved; dotted and square: the "
                f"task has no bar to solve.{zeros}")
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        n = len(self.selected_runs())
        self.explore_button.disabled = self._busy or n != 1 or self.sources is None
        self.compare_button.disabled = self._busy or n != 2 or self.compare is None
        self.hint.object = text("Tick one run to open it in Explore, two to compare them." if self.runs else "")

    def _table_selected(self, attr, old, new) -> None:
        chosen = sorted(int(i) for i in new)
        if chosen != sorted(self.selection):
            self.selection = chosen

    def _selection_changed(self) -> None:
        if sorted(int(i) for i in self.source.selected.indices) != sorted(self.selection):
            self.source.selected.indices = list(self.selection)
        self._draw()

    # ---- opening runs elsewhere ------------------------------------------------------------------
    def open_in_explore(self) -> bool:
        """List the selected run's checkpoint in Sources, choose it, record an episode from it
        (at its task's largest training size, Sources' seed) and show the Explore tab."""
        runs = self.selected_runs()
        if len(runs) != 1 or self.sources is None:
            return self._fail("Tick one run in the table to open it in Explore.")
        run = runs[0]
        from .sources import load_source

        try:
            source = load_source(run.checkpoint)
            if source.task is None:
                return self._fail(f"{run.checkpoint}: names no task, so it cannot record an episode")
        except NtmvizError as exc:
            return self._fail(str(exc))
        name = f"{Path(self.folder).name}: {run.title}"
        self.sources.add_checkpoint(run.checkpoint, name)
        self.sources.start_run()  # off the event loop in a served session, as Run does
        self._ok()
        if self.on_open is not None:
            self.on_open("explore")
        return True

    def open_in_compare(self) -> bool:
        """The two selected runs in Compare, recorded on one input (the first run's task at its
        largest training size), and show the Compare tab."""
        runs = self.selected_runs()
        if len(runs) != 2 or self.compare is None:
            return self._fail("Tick two runs in the table to compare them.")
        a, b = runs
        from .compare import checkpoint_pair

        def show(pair) -> None:
            self.compare.show(*pair, titles=(a.title, b.title))
            if self.on_open is not None:
                self.on_open("compare")
        return self._in_background("Recording the two runs…", partial(checkpoint_pair, a.checkpoint, b.checkpoint),
                                   show)

    # ---- plumbing ------------------------------------------------------------------------------------
    def _fail(self, message: str) -> bool:
        self.message = message
        show_error(self.alert, message)
        return False

    def _ok(self) -> None:
        self.message = ""
        clear(self.alert)

    def _guard(self, job):
        """(True, result) or (False, the message to show)."""
        try:
            return True, job()
        except NtmvizError as exc:
            return False, str(exc)
        except Exception as exc:  # the app keeps serving whatever a file holds; the log keeps the traceback
            log.exception("the sweep view failed")
            return False, f"{type(exc).__name__}: {exc}"

    def _in_background(self, note: str, job, apply) -> bool:
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:  # no server loop to keep free (Jupyter, tests)
            return self._finish(apply, self._guard(job))
        if self._busy:
            return False
        self._set_busy(note)

        def work():
            result = self._guard(job)
            doc.add_next_tick_callback(partial(self._finish, apply, result, True))
        background.submit(work)
        return True

    def _finish(self, apply, result, from_background: bool = False) -> bool:
        try:
            ok, value = result
            if not ok:
                return self._fail(value)
            apply(value)
            self._ok()
            return True
        finally:
            if from_background:
                self._set_busy(None)

    def _set_busy(self, note: str | None) -> None:
        self._busy = note is not None
        for button in (self.open_button, self.refresh_button):
            button.disabled = self._busy
        self.open_button.label = "Reading…" if note and note.startswith("Reading") else "Open sweep"
        self.compare_button.label = "Recording…" if note and note.startswith("Recording") else "Compare two runs"
        self._sync_buttons()

    def __panel__(self):
        chooser = pn.Row(self.path, self.found, self.open_button, self.refresh_button, sizing_mode="stretch_width")
        buttons = pn.Row(self.explore_button, self.compare_button, self.hint, sizing_mode="stretch_width")
        return pn.Column(chooser, self.alert, self.summary, self.problems,
                         pn.pane.Bokeh(self.table, sizing_mode="stretch_width"), buttons,
                         pn.Row(self.log_toggle, self.smoothing_slider, sizing_mode="stretch_width"),
                         self.plot, self.curves_note,
                         sizing_mode="stretch_width")
