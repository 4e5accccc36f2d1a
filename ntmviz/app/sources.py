"""Where episodes come from: checkpoints run on a sampled or typed input, and episode files.

The functions here are plain Python (no Panel) so the CLI and tests can use them:

    source = load_source("checkpoints/copy-ntm.safetensors")
    episode = record_episode(source, length=12, seed=3)             # a sampled input
    episode = record_episode(source, pattern="0101 1100\\n1111 0000") # a typed input (Task.typed)

`Sources` is the Panel panel that drives them: pick a checkpoint (from the checkpoints folder,
the folder the Train tab saves to, or a file the user opens), choose a length and seed or type
a pattern, run; open an episode file; save the current episode. Every failure shows as a
message in `alert` and leaves the loaded episode as it was; an unexpected one also goes to the
log with its traceback.

In a served session, Run and opening an episode file work off the event loop (the app's one
pool of threads, background.py), so a long recording (n-grams at 4999 steps) blocks neither this
session nor any other; meanwhile Run and the file picker are disabled and say what is going on.
Files travel from the browser in pieces, size-checked first (upload.py).
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import param
import torch
from panel.viewable import Viewer

from ..checkpoint import family_of
from ..checkpoint import load as load_checkpoint
from ..config import from_dict as config_from_dict
from ..contract import Family
from ..episode import Episode, record
from ..errors import ConfigError, FileFormatError, NtmvizError
from ..files import MAX_EPISODE_BYTES, MB
from ..shipped import checkpoint_path, split_folders
from ..train import build_model
from . import background
from .cache import LRU
from .fields import SEED_MAX, number_field, read_int, read_seed, set_number, smallest_valid
from .messages import clear, show_error, text
from .state import Playback
from .upload import EpisodeUpload

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "copy-ntm.safetensors"
UNTRAINED = "untrained NTM (copy task)"
MAX_STEPS = 5000  # longer episodes are refused: the views would have nothing left to show per step
# A checkpoint opened from the browser travels in memory: the shipped ones are under 1 MB and a
# 4-head NTM with its optimiser state a few MB, so this only refuses a wrong pick early.
MAX_OPENED_CHECKPOINT_BYTES = 64 * MB
OPENED = "opened:"  # the Select value of a checkpoint the user opened (it has no path on the server)


@dataclass
class ModelSource:
    """A model that can record episodes, with the task it was trained on."""

    name: str  # what the app lists: a file name, or UNTRAINED
    model: torch.nn.Module
    task: Any  # an ntmviz.tasks Task, or None
    path: Path | None = None
    note: str = ""  # shown beside the episode (e.g. "untrained")
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> Family:
        """The declaration of the model's family."""
        return family_of(self.model.config)

    @property
    def memory_slots(self) -> int | None:
        """The slots a task must fit into (a model that writes its memory), else None."""
        config = getattr(self.model, "config", None)
        return getattr(config, "memory_slots", None)


def find_checkpoints(folder: str | Path | list) -> list[Path]:
    """The *.safetensors files in `folder`, the copy checkpoint first. `folder` may name several
    folders (a list, or one string joined with os.pathsep, as `default_folder()` gives): each
    folder's files in turn (its copy checkpoint first), a name found in an earlier folder
    hiding the same name in a later one. So the user's folders come before the shipped one."""
    found: dict[str, Path] = {}
    for one in split_folders(folder):
        if one.is_dir():
            files = sorted((p for p in one.glob("*.safetensors") if p.is_file()),
                           key=lambda p: (p.name != DEFAULT_CHECKPOINT, p.name))
            for p in files:
                found.setdefault(p.name, p)
    return list(found.values())


def checkpoint_options(*folders: str | Path | None) -> dict[str, str]:
    """{label: path} of the checkpoints in `folders`, in order: the first folder's labelled by
    file name, the others' as "folder/name" (e.g. runs/copy-ntm-step300.safetensors, what the
    Train tab saves). A file reached through two folders is listed once."""
    out: dict[str, str] = {}
    seen: set[Path] = set()
    for i, folder in enumerate(f for f in folders if f):
        for path in find_checkpoints(folder):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            out[path.name if i == 0 else f"{Path(folder).name}/{path.name}"] = str(path)
    return out


_HEADER_LIMIT = 64 << 20  # a checkpoint header larger than this is not read for its task
# One per checkpoint file version the pickers list (the shipped ones, the Train tab's runs/, every
# run of a sweep: a few hundred), each a small tuple: at most a few MB.
_HEADERS: LRU[tuple, tuple[str, int, Family] | None] = LRU(1024)


def checkpoint_header(path: str | Path) -> tuple[str, int, Family] | None:
    """(task name, input width, the model's declaration) of a checkpoint from its JSON header
    alone (no weights read), once per file version (path, modification time, size); None if the
    file cannot tell."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    return _HEADERS.get_or_make(key, partial(_read_header, path))


def _read_header(path: str | Path) -> tuple[str, int, Family] | None:
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= _HEADER_LIMIT:
                return None
            meta = json.loads(f.read(size)).get("__metadata__") or {}
        task = json.loads(meta.get("task") or "null")
        config = json.loads(meta.get("config") or "null")
        return (str(task["name"]), int(config["input_size"]), family_of(config_from_dict(config)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def runs_sequences(path: str | Path) -> bool:
    """Whether a checkpoint's model takes a step per input step (its declaration's steps), so
    the Train tab can go on training it live on sequences; a memory network answers a story in
    passes (Explore and Compare show it). True when the header cannot tell, so an unreadable
    file is still listed and then says what is wrong."""
    header = checkpoint_header(path)
    return header is None or header[2].steps == "inputs"


def smallest_length(task: Any) -> int:
    """The smallest size `task.at()` accepts (e.g. 2 items for associative recall)."""
    return smallest_valid(task.at) or 1


def check_length(task: Any, length: Any) -> int:
    """`length` as a size of `task`, or ConfigError in the user's terms (the task's own word
    for its size, never an internal field name)."""
    what = getattr(task, "difficulty_name", "size")
    low = smallest_length(task)
    return read_int(str(length), minimum=low, maximum=MAX_STEPS, label="Length",
                    why=f" for {task.name.replace('_', ' ')} (the {what})")


def check_seed(seed: Any) -> int:
    return read_seed(str(seed), label="Seed")


def open_checkpoint_bytes(data: bytes, name: str) -> ModelSource:
    """A checkpoint file's bytes (e.g. uploaded) as a ModelSource with no path on the server.
    FileFormatError if it is not a readable checkpoint."""
    with tempfile.TemporaryDirectory(prefix="ntmviz-open-") as tmp:
        path = Path(tmp) / "opened.safetensors"
        path.write_bytes(data)
        try:
            ckpt = load_checkpoint(path, device="cpu")
        except FileFormatError as exc:
            raise FileFormatError(str(exc).replace(str(path), name)) from None
    note = "" if ckpt.task is not None else "This checkpoint names no task, so it cannot record new episodes here."
    return ModelSource(name=name, model=ckpt.model, task=ckpt.task, path=None, note=note,
                       meta={"step": ckpt.step, "sequences": ckpt.sequences})


# Loaded checkpoints, shared by every session (a session keeps its own reference to the one it
# shows): the shipped ones (11, under 1 MB each) and a few the users open or pick from a sweep.
_SOURCES: LRU[tuple, ModelSource] = LRU(16)
# The episode each new session opens on, per checkpoint file, length and seed: small at the
# tasks' own sizes (tens of KB), but `Explorer.from_checkpoint(path, length=5000)` makes ~97 MB.
_EPISODES: LRU[tuple, Episode] = LRU(8, weigh=lambda episode: episode.nbytes, max_weight=256 * MB)


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def load_source(path: str | Path, cache: bool = True) -> ModelSource:
    """A checkpoint as a ModelSource; FileFormatError if it cannot be read.

    Loaded once per process while the file is unchanged and among the last few loaded
    (sessions of the served app share it; recording never changes a model)."""
    path = checkpoint_path(path)  # a shipped checkpoint's name ("copy-ntm") works too
    if cache and path.is_file():
        return _SOURCES.get_or_make(_file_key(path), partial(load_source, path, cache=False))
    ckpt = load_checkpoint(path, device="cpu")
    note = ""
    if ckpt.task is None:
        note = "This checkpoint names no task, so it cannot record new episodes here."
    return ModelSource(name=Path(path).name, model=ckpt.model, task=ckpt.task, path=Path(path),
                       note=note, meta={"step": ckpt.step, "sequences": ckpt.sequences})


# By seed: the app asks for seed 0 only (the fallback of every session); Python callers for others.
_UNTRAINED: LRU[int, ModelSource] = LRU(4)


def untrained_source(seed: int = 0) -> ModelSource:
    """An untrained NTM for the copy task (the fallback when no checkpoint is shipped), its
    weights drawn with `seed`; made once per process and seed (while it is among the last few)."""
    return _UNTRAINED.get_or_make(seed, partial(_make_untrained, seed))


def _make_untrained(seed: int) -> ModelSource:
    from ..config import NTMConfig
    from ..tasks import get_task

    task = get_task("copy")
    model = build_model(NTMConfig(input_size=task.input_size, output_size=task.output_size), seeds=[seed]).eval()
    return ModelSource(name=UNTRAINED, model=model, task=task,
                       note="No trained checkpoint was found in checkpoints/: this is an untrained NTM "
                            "for the copy task, so its memory use is random.")


def default_length(task: Any) -> int | None:
    """A sensible size to record at: the task's largest training size (None for a task with no
    size knob: its items are sampled as they are)."""
    return task.largest_size if task.size_field else None


def cached_episode(source: ModelSource, length: int | None = None, seed: int = 0) -> Episode:
    """`record_episode(source, length, seed)`, recorded once per process for a checkpoint
    file (the default episode every new session of the served app opens on). Treat the
    result as read-only: it is shared."""
    if source.path is not None and source.path.is_file():
        key = (_file_key(source.path), length, seed)
    elif source is _UNTRAINED.get(0):
        key = (UNTRAINED, length, seed)
    else:
        return record_episode(source, length, seed)
    return _EPISODES.get_or_make(key, partial(record_episode, source, length, seed))


def record_episode(source: ModelSource, length: int | None = None, seed: int = 0,
                   pattern: str | None = None) -> Episode:
    """Run `source`'s model on one input and return the recorded Episode.

    With `pattern` (a task with typed_input), what was typed is the input; else the task is fixed
    at `length` (its largest training size by default) and sampled with `seed`. Raises an
    NtmvizError (ConfigError) with a one-line message for anything that cannot work.
    """
    task = source.task
    if task is None:
        raise ConfigError(f"{source.name} names no task, so there is nothing to sample")
    seed = check_seed(seed)
    slots = source.memory_slots
    meta: dict[str, Any] = {"seed": int(seed), "source": source.name}
    if source.path is not None:
        meta["checkpoint"] = source.path.name
    if pattern is not None and pattern.strip():
        if not task.typed_input:
            raise ConfigError(f"the {task.name} task takes no typed input")
        fixed, batch = task.typed(pattern, seed)
        if slots is not None:
            fixed.check_fits(slots)
        meta.update(length=fixed.largest_size, pattern=pattern.strip())
    elif not task.size_field:  # no size to choose: an item as the task samples it
        if slots is not None:
            task.check_fits(slots)
        batch = task.sample(1, seed=int(seed))
    else:
        length = default_length(task) if length is None else length
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
            raise ConfigError(f"the length must be a whole number >= 1, got {length!r}")
        length = check_length(task, int(length))
        fixed = task.at(length)
        if slots is not None:
            fixed.check_fits(slots)
        batch = fixed.sample(1, seed=int(seed))
        meta["length"] = int(length)
    steps = int(batch.lengths[0])
    if steps > MAX_STEPS:
        raise ConfigError(f"that input takes {steps} steps; the explorer shows at most {MAX_STEPS}")
    # a model that steps through its input grows its episode with the input; one that makes
    # passes over it (a memory network's hops) does not
    size = episode_size(source.model, batch) if source.family.steps == "inputs" else 0
    if size > MAX_EPISODE_BYTES:
        raise ConfigError(f"that input makes a {size / MB:.0f} MB episode; the explorer opens files of at most "
                          f"{MAX_EPISODE_BYTES / MB:.0f} MB, so it records no larger ones (try a shorter input)")
    return record(source.model, batch, meta=meta, task=task)[0]


def episode_size(model: torch.nn.Module, batch) -> int:
    """The bytes the episode of `model` on a task batch's first item will take, from two tiny
    recordings: an episode's size is affine in T (a fixed part such as the initial memory,
    plus each step)."""
    T = int(batch.lengths[0])

    def nbytes(k: int) -> int:
        cut = (lambda a: None if a is None else a[:1, :k])
        return record(model, cut(batch.inputs), cut(batch.targets), mask=cut(batch.mask))[0].nbytes
    one = nbytes(1)
    return one if T < 2 else one + (nbytes(2) - one) * (T - 1)


def episode_bytes(episode: Episode) -> bytes:
    """The bytes of `episode`'s file, as Episode.save writes it."""
    return episode.to_bytes()


def episode_filename(episode: Episode | None, suffix: str = ".safetensors") -> str:
    """A file name that says what the episode is: e.g. copy-len20-seed0.safetensors."""
    if episode is None:
        return "episode" + suffix
    meta = episode.meta
    parts = [str(meta.get("task") or "episode")]
    if meta.get("length") is not None:
        parts.append(f"len{meta['length']}")
    if meta.get("pattern"):
        parts.append("typed")
    elif meta.get("seed") is not None:
        parts.append(f"seed{meta['seed']}")
    name = "-".join(parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) + suffix


class Sources(Viewer):
    """Pick a checkpoint and run it (a length and seed, or a typed pattern); open a checkpoint
    or an episode file; save the current episode; download it as a standalone HTML page."""

    state = param.ClassSelector(class_=Playback, doc="The playback state new episodes go to.")

    folder = param.String(default="checkpoints", doc="The folder listed for checkpoints.")

    extra_folders = param.List(default=[], item_type=str, doc="""
        More folders whose checkpoints are listed after the folder's (e.g. where the Train tab
        saves), labelled "folder/name".""")

    source = param.Parameter(default=None, doc="""
        The ModelSource the last run used (None when the episode came from a file).""")

    message = param.String(default="", doc="""
        The last error shown to the user ('' when the last action worked).""")

    layout = param.Selector(default="column", objects=["column", "toolbar"], doc="""
        "column": every control in a column (a sidebar); "toolbar": the checkpoint, length, seed
        and Run in one row, typing an input and the files in a section that opens below it.""")

    def __init__(self, state: Playback, folder: str | Path = "checkpoints",
                 source: ModelSource | None = None, **params):
        super().__init__(state=state, folder=str(folder), source=source, **params)
        self._sources: dict[str, ModelSource] = {}
        self._opened: dict[str, str] = {}  # label -> Select value of checkpoints the user opened
        self._busy = False
        if source is not None:
            self._sources[source.name] = source
            if source.path is None:
                self._opened[source.name] = source.name
        options = self._options()
        value = next((v for v in options.values() if source is not None and Path(v).name == source.name), None)
        self.checkpoint = pn.widgets.Select(label="Checkpoint", options=options,
                                            value=value or next(iter(options.values())),
                                            description="A model from the checkpoints folder, one the Train tab "
                                                        "saved, or one you opened", sizing_mode="stretch_width")
        task = source.task if source is not None else None
        self.length = number_field("Length", (default_length(task) or 10) if task else 10, sizing_mode="stretch_width")
        self.seed = number_field("Seed", 0, description=f"A whole number from 0 to {SEED_MAX:,}",
                                 sizing_mode="stretch_width")
        self.pattern = pn.widgets.TextAreaInput(
            label="Or type an input", placeholder="",
            rows=4, sizing_mode="stretch_width")
        self.run = pn.widgets.Button(label="Run", color="primary", description="Record a new episode",
                                     sizing_mode="stretch_width")
        self.run.on_click(lambda _: self.start_run())
        for field in (self.length, self.seed):  # Enter in a number field runs, as Run does
            field.param.watch(lambda _: self.start_run(), "enter_pressed")
        # the note names a task or a file: escaped with text(), as Str puts its object in <pre> as it is
        self.busy_note = pn.pane.Str("", visible=False, sizing_mode="stretch_width", stylesheets=[
            "pre { font: inherit; font-size: 12px; color: #555; margin: 0; white-space: pre-wrap; }"])
        self.upload = EpisodeUpload(on_file=self.start_open, on_problem=lambda name, text: self._fail(f"{name}: {text}"),
                                    sizing_mode="stretch_width", margin=(5, 10))
        self.open_checkpoint = EpisodeUpload(
            label="Open checkpoint", limit=MAX_OPENED_CHECKPOINT_BYTES, on_file=self.open_checkpoint_file,
            on_problem=lambda name, text: self._fail(f"{name}: {text}"), sizing_mode="stretch_width", margin=(5, 10))
        self.save = pn.widgets.FileDownload(callback=self._episode_file, filename="episode.safetensors",
                                            label="Save episode", sizing_mode="stretch_width")
        self.export = pn.widgets.FileDownload(callback=self._html_file, filename="episode.html",
                                              label="Export HTML", sizing_mode="stretch_width")
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.hint = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#555"})
        self.checkpoint.param.watch(lambda _: self._checkpoint_changed(), "value")
        self.state.param.watch(lambda _: self._names(), "episode")
        self._describe_task()
        self._names()

    # ---- actions -----------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.message = message
        show_error(self.alert, message)

    def _ok(self) -> None:
        self.message = ""
        clear(self.alert)

    def _options(self) -> dict[str, str]:
        options = checkpoint_options(self.folder, *self.extra_folders)
        options.update(self._opened)
        if not options:
            options[UNTRAINED] = UNTRAINED
        return options

    def refresh_checkpoints(self) -> None:
        """List the folders' checkpoints again (e.g. after the Train tab saved one); the choice stays."""
        options = self._options()
        old = self.checkpoint.value
        self.checkpoint.options = options
        if old in options.values():
            self.checkpoint.value = old

    def get_source(self, key: str | None = None) -> ModelSource:
        """The ModelSource for a Select value (a checkpoint path or UNTRAINED), loaded once."""
        key = key or self.checkpoint.value
        if key not in self._sources:
            self._sources[key] = untrained_source() if key == UNTRAINED else load_source(key)
        return self._sources[key]

    @property
    def busy(self) -> bool:
        """True while a recording or a file opens in the background."""
        return self._busy

    def run_model(self) -> Episode | None:
        """Record an episode from the chosen checkpoint and show it, here and now (the Python
        API; the Run button uses start_run). On error show why and return None."""
        return self._apply(self._guard(self._record_job(), "could not run the model"))

    def start_run(self) -> None:
        """Run's handler: record off the event loop in a served session (see the module docstring)."""
        self._in_background(f"Recording {self._describe_request()}…", self._record_job(), "could not run the model")

    def open_bytes(self, data: bytes | None, name: str | None = None) -> Episode | None:
        """Load an episode file's bytes and show it, here and now; on error show why and keep
        the old one. The same bytes opened again load again."""
        return self._apply(self._guard(self._open_job(data, name), "not a readable episode", name))

    def start_open(self, data: bytes, name: str) -> None:
        """The file picker's handler: parse off the event loop in a served session."""
        self._in_background(f"Opening {name}…", self._open_job(data, name), "not a readable episode", name)

    # ---- jobs: plain functions that return (source, episode) or raise ------------------------
    def _typed(self) -> str:
        """The typed input, when its box is shown (a task that takes one; else it is not used)."""
        return self.pattern.value if self.pattern.visible else ""

    def _record_job(self):
        key, length, seed, pattern = self.checkpoint.value, self.length.value, self.seed.value, self._typed()

        def job():
            source = self.get_source(key)
            typed = bool(pattern and pattern.strip())
            sized = not typed and source.task is not None and source.task.size_field
            size = check_length(source.task, length) if sized else None
            return source, record_episode(source, length=size, seed=check_seed(seed), pattern=pattern or None)
        return job

    def _open_job(self, data: bytes | None, name: str | None):
        name = name or "uploaded file"

        def job():
            episode = Episode.from_bytes(bytes(data or b""), name)  # "empty file" for none at all
            episode.meta.setdefault("source", name)
            return None, episode
        return job

    def _guard(self, job, what: str, name: str | None = None):
        """Run `job`: its result, or the message to show (str) if it failed."""
        try:
            return job()
        except NtmvizError as exc:
            return str(exc)
        except Exception as exc:  # the app keeps working whatever a model or a file does
            log.exception("%s", what)
            if name:
                return f"{name}: {what} ({type(exc).__name__}: {exc})"
            return f"{what}: {type(exc).__name__}: {exc}"

    def _apply(self, result) -> Episode | None:
        if isinstance(result, str):
            self._fail(result)
            return None
        source, episode = result
        self.source = source
        self.state.show_episode(episode)  # a new episode opens on a step worth seeing
        self._ok()
        return episode

    def _in_background(self, note: str, job, what: str, name: str | None = None) -> None:
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:  # no server loop to keep free (Jupyter, tests)
            self._apply(self._guard(job, what, name))
            return
        if self._busy:
            return
        self._set_busy(note)

        def work():
            result = self._guard(job, what, name)
            # Back to this session's event loop: the one thread-safe way into a Bokeh document.
            doc.add_next_tick_callback(partial(self._finish, result))
        background.submit(work)

    def _finish(self, result) -> None:
        try:
            self._apply(result)
        finally:
            self._set_busy(None)

    def _set_busy(self, note: str | None) -> None:
        self._busy = note is not None
        self.run.disabled = self._busy
        self.run.label = "Recording…" if note and note.startswith("Recording") else "Run"
        self.upload.busy = self._busy
        self.busy_note.object = text(note or "")
        self.busy_note.visible = self._busy

    def _describe_request(self) -> str:
        source = self._sources.get(self.checkpoint.value)
        task = getattr(getattr(source, "task", None), "name", None)
        if self._typed().strip():
            return f"{task or 'the'} typed input"
        return f"{task + ' ' if task else ''}at length {self.length.value}"

    def open_checkpoint_file(self, data: bytes | None, name: str | None = None) -> Episode | None:
        """Add an opened (uploaded) checkpoint to the list, choose it and record an episode from
        it; on error show why and keep everything as it was."""
        if not data:
            return None
        name = Path(name or "opened checkpoint").name
        try:
            source = open_checkpoint_bytes(bytes(data), name)
        except FileFormatError as exc:
            self._fail(str(exc))
            return None
        except Exception as exc:  # a malformed file taking an unexpected path through the loader
            log.exception("opening the checkpoint file %r failed", name)
            self._fail(f"{name}: not a readable checkpoint ({type(exc).__name__}: {exc})")
            return None
        key = f"{OPENED}{name}"
        label = f"{name} (opened)"
        self._sources[key] = source
        self._opened[label] = key
        self.refresh_checkpoints()
        self.checkpoint.value = key  # describes the task and sets its length
        if source.task is None:
            self.source = source
            self._fail(source.note)
            return None
        return self.run_model()

    def add_checkpoint(self, path: str | Path, label: str) -> str:
        """List a checkpoint file on the server that no listed folder holds (e.g. a run of a
        sweep) under `label`, and choose it (its task is described and its length set). Returns
        its value in the list. Record from it with start_run() or run_model()."""
        key = str(Path(path))
        self._opened[label] = key
        self.refresh_checkpoints()
        self.checkpoint.value = key
        return key

    def _episode_file(self) -> io.BytesIO:
        episode = self.state.episode
        return io.BytesIO(episode_bytes(episode) if episode is not None else b"")

    def _html_file(self) -> io.StringIO:
        from .export import export_html_string

        episode = self.state.episode
        return io.StringIO(export_html_string(episode) if episode is not None else "")

    def _names(self) -> None:
        self.save.filename = episode_filename(self.state.episode)
        self.export.filename = episode_filename(self.state.episode, ".html")

    def _checkpoint_changed(self) -> None:
        self._describe_task()
        source = self._sources.get(self.checkpoint.value)
        if source is not None and source.task is not None and source.task.size_field:
            set_number(self.length, default_length(source.task))

    def _describe_task(self) -> None:
        try:
            source = self.get_source()
        except NtmvizError as exc:
            self._fail(str(exc))
            self.hint.object = ""
            return
        task = source.task
        if task is None:
            self.hint.object = text("This checkpoint names no task.")
            return
        described = task.describe()
        end = "" if described.endswith(("?", ".", "!")) else "."
        self.length.visible = bool(task.size_field)  # a task with no size knob: Seed alone picks the input
        hint = f"{described}{end}" + (f" Length sets the {getattr(task, 'difficulty_name', 'size')}."
                                     if task.size_field else "")
        if source.memory_slots:
            hint += f" Memory: {source.memory_slots} slots."
        self.pattern.visible = task.typed_input  # only where an input can be typed
        if task.typed_input:
            hint += f" {task.typed_hint}"
            self.pattern.placeholder = task.typed_hint
        self.hint.object = text(hint)

    def __panel__(self):
        if self.layout == "toolbar":
            # the main action in one row (the views get the page's width); the rest one click away
            for widget, width in ((self.checkpoint, 280), (self.length, 90), (self.seed, 110), (self.run, 90)):
                widget.param.update(sizing_mode=None, width=width)  # not "fixed": Bokeh warns without a height (W-1005)
            self.run.align = "end"
            more = pn.Column(self.pattern, pn.Row(self.upload, self.open_checkpoint, sizing_mode="stretch_width"),
                             pn.Row(self.save, self.export, sizing_mode="stretch_width"), visible=False,
                             sizing_mode="stretch_width", styles={"border": "1px solid #ddd", "border-radius": "4px"})
            # typing an input, opening an episode or a checkpoint, saving, exporting
            toggle = pn.widgets.Toggle(label="Type an input · files", width=170, align="end")
            toggle.link(more, value="visible")
            return pn.Column(
                pn.Row(self.checkpoint, self.length, self.seed, self.run, toggle,
                       pn.Column(self.busy_note, self.hint, sizing_mode="stretch_width", margin=(12, 5, 0, 5)),
                       sizing_mode="stretch_width"),
                more, self.alert, sizing_mode="stretch_width")
        return pn.Column(
            pn.pane.Markdown("#### Run a model", margin=(0, 5)),
            self.checkpoint, self.hint, pn.Row(self.length, self.seed), self.pattern, self.run, self.busy_note,
            pn.pane.Markdown("#### Files", margin=(10, 5, 0, 5)),
            self.upload, self.open_checkpoint, self.save, self.export, self.alert,
            sizing_mode="stretch_width",
        )
