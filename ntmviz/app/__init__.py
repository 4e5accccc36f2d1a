"""ntmviz.app: the explorer. Memory, head locations, focus and sequence views of a recorded
Episode, animated in the browser, in `panel serve apps/explorer.py` and in Jupyter.

Use
---
    import panel as pn, ntmviz.app
    ntmviz.app.extension()                             # pn.extension(), with nothing from off the machine
    ntmviz.app.Explorer(episode)                       # everything, on one shared step t
    ntmviz.app.Explorer.from_checkpoint(path, length=20, seed=0)
    ntmviz.app.MemoryView(episode)                     # any view alone (its own state) ...
    state = ntmviz.app.Playback(episode)               # ... or several on one state
    pn.Column(ntmviz.app.Player(state=state), ntmviz.app.FocusView(state=state))
    state.t = 7                                        # moves every view of that state
    ntmviz.app.export_html(episode, "page.html")       # one file that plays offline
    ntmviz.app.MemoryView(episode).save("memory.svg")  # a view at its step t, for a paper (or .png)
    ntmviz.app.figure(episode, "heads", step=30).save("heads.png", scale=4)

Modules
-------
    state.py     Playback: the episode and step t (plus playing, loop, speed) every view shares
    views.py     Player, MemoryView, HeadLocationsView, FocusView, SlotsView, SequenceView (Viewers);
                 `view.frame()` gives, in Python, the numbers the view shows at step t
    canvas.py    EpisodeCanvas: the one pn.custom.JSComponent that runs the renderer, and
                 the bundle of its modules (one ES module, inlined into the HTML export too)
    static/      the renderer, small ES modules: palette.js (value -> colour), data.js (payload
                 -> episode, chunks, bit errors), layout.js (where things are drawn) - pure,
                 tested directly - group.js (shared step, animation, keys), draw.js (canvases,
                 axes), views.js (the five views), ntmviz.js (mount, mountPage); ntmviz.css
    payload.py   Episode -> sizes + base64 arrays (float32; large heatmaps as uint8 palette
                 indices; slots and time pooled to the pixels on screen; per-step arrays in
                 chunks the browser asks for as playback reaches them)
    messages.py  text(), bold(), show_error(): text from files and users reaches panes as text
    sources.py   checkpoints, recording episodes (length/seed or typed input), episode files;
                 Sources, the panel that drives them (recording and opening off the event loop)
    upload.py    EpisodeUpload: the file picker; checks the size in the browser, sends in pieces
    explorer.py  Explorer: the whole app (Explorer.default() is what apps/explorer.py serves);
                 tabs Explore, Train (training_view.py), Compare (compare.py), Sweep (sweep_view.py)
    training_view.py  TrainingView: the Train tab, made of train_form.py (the settings, from the
                 config's fields through run_settings.py), run_buttons.py (Start/Pause/Resume/Stop
                 follow the run's status), train_curves.py (loss and bit errors streaming through
                 hv.streams.Buffer), seed_table.py, train_snapshots.py (the "Training step"
                 slider and the views of a snapshot), run_record.py (the last state, static, for a
                 notebook without a kernel) and needs_kernel.py; live.py runs the training thread
    sweep_view.py  SweepView: a sweep folder's runs (table, learning curves coloured by their
                 settings, solved by line style), read from its rows and checkpoint headers;
                 opens a run in Explore, two in Compare
    sweep_chart.py  the Sweep tab's learning-curves chart (run_lines -> an hv.Overlay)
    charts.py    the chart helpers the Train and Sweep curves share (HoloViews options, compact
                 axis labels, smoothing, colours from settings)
    export.py    export_html(episode, path) -> Path: the standalone page (atomic write)
    figures.py   figure(episode, view, step) -> Figure (.svg(), .png(scale), .save(path)): a view
                 at one step for a paper, in the screen's palette; palette.py (the palettes in
                 Python), drawing.py (a small vector scene, its SVG and PNG writers)
    notebook.py  notebook outputs carry a self-contained rendering that shows when no kernel
                 answers (a notebook converted to HTML plays offline)
    local_resources.py  extension(): the explicit offline setup (Panel's stylesheets and scripts
                 from the serving machine or inline, never from a CDN, on every code path; the
                 renderer served once per page; the notebook outputs above), then pn.extension()
    background.py  the one pool of threads for background work (recordings, uploads, figures,
                 sweep folders), one torch thread each
    cache.py     LRU: the bounded cache every module-level cache is made of

Importing ntmviz.app changes nothing outside it (no patched class, no Panel setting, no display
formatter, no file written, no thread started): `extension()` does what must be done, when called.

How it moves
------------
Each view is an EpisodeCanvas in the browser. Canvases of one Playback share a group there
(window.__ntmviz.groups[state.group]): the player, slider, keys and clicks move t in the
browser and every view repaints in the same animation frame, with no server round trip.
The browser reports t back to Python at most once a second while playing (each report costs
the server a few milliseconds, and many pages may play at once), 80 ms after the last move
when scrubbing, and at once on pause; Python moves (state.t = ...) are sent to
the browser. An episode's arrays go to the browser once, when it is shown.

DOM hooks (stable; for browser tests and benchmarks)
----------------------------------------------------
Panel renders each view inside a shadow root; Playwright's CSS and role selectors pierce
it (document.querySelector does not, so use the globals below from page.evaluate).

Controls (accessible names; the play button's name switches between "Play" and "Pause"):
    button "First step", "Step back", "Play" / "Pause", "Step forward", "Last step"
    button "Loop"                 aria-pressed="true" | "false"
    slider "Step"                 <input type=range> over 0 .. T-1
    slider "Speed"                <input type=range> 1 .. 120 steps per second
    checkbox "Show change"        memory view: memory[t+1] - memory[t]
    checkbox "Zoom to busy slots" head locations: only the slots some head weights >= 0.05
    buttons "Save figure as SVG", "Save figure as PNG"   in the memory, heads, focus and
                                  sequence views' titles (served app and live notebooks): Python
                                  draws the view at the current step (figures.py) and the
                                  browser downloads it
    keys (anywhere outside text fields): ArrowLeft / ArrowRight step, Space plays or
    pauses, Home / End jump; they go to the group last clicked or focused.
    Sources panel (Panel widgets): select "Checkpoint", inputs "Length" and "Seed",
    textbox "Or type an input" (where the task takes one), button "Run" (named "Recording…" and
    disabled while a recording runs in the background), the file input under "Open episode"
    (upload.py: size-checked, sent in pieces), buttons "Save episode" and "Export HTML".
    Errors show as an element with role="alert" (class ntmviz-error) holding the message.
    Sweep tab (sweep_view.py): textbox "Sweep folder", select "Sweeps found", buttons "Open
    sweep", "Refresh", "Open in Explore", "Compare two runs", "Log scale"; slider "Smoothing";
    the runs' table is a Bokeh DataTable (.slick-row / .slick-cell; a checkbox per row selects
    it); the learning curves are in .ntmviz-sweep-chart.

Elements:
    .ntmviz-view[data-view=player|memory|heads|focus|sequence]   one per view, with
        data-step      the step it last painted
        data-frames    how many times it has painted
        data-steps     T of its episode
        data-group     its playback group id
        data-playing   (player only) "true" | "false"
        class ntmviz-loading  while the chunk of the current step is on its way
    .ntmviz-stage[data-stage=memory|sequence|vectors|heads-read-1|heads-write-1|
                  focus-read-1|focus-write-1|...]
        each holds canvas[data-layer=back] (static, role=img, aria-label) under
        canvas[data-layer=front] (redrawn per frame; takes hover, and in heads-* and
        sequence, click / drag to jump to a step) and a div.ntmviz-tip[role=tooltip]
    the standalone export: main#ntmviz-root, data in script#ntmviz-data (JSON)

Globals (window.__ntmviz):
    frames   animation frames in which at least one view repainted (the fps counter)
    paints   view repaints (one frame of a full explorer adds 5)
    step     the step of the last painted frame
    groups   {group id: {t, T, playing, loop, speed, frames, views (each with .geom: where it
             draws, see static/layout.js), ...}}; active: the id keys go to
"""

from .canvas import EpisodeCanvas
from .explorer import Explorer
from .export import export_html, export_html_string
from .figures import Figure, figure, save_figure
from .local_resources import extension
from .payload import describe, episode_payload
from .sources import ModelSource, Sources, load_source, record_episode
from .state import Playback
from .views import EpisodeView, FocusView, HeadLocationsView, MemoryView, Player, SequenceView, SlotsView

__all__ = [
    "extension", "Explorer", "Playback", "Player", "MemoryView", "HeadLocationsView", "FocusView", "SlotsView",
    "SequenceView",
    "EpisodeView", "EpisodeCanvas", "Sources", "ModelSource", "load_source", "record_episode",
    "export_html", "export_html_string", "episode_payload", "describe", "Figure", "figure", "save_figure",
]

# Views built by the training and comparison work, loaded when first asked for.
_LAZY = {"TrainingView": ".training_view", "Compare": ".compare", "SweepView": ".sweep_view"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
