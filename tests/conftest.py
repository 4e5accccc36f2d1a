"""Markers, applied by where a test lives, so nobody has to remember to write them.

    browser   drives Chromium through Playwright: everything under tests/browser/, and any
              test elsewhere whose own body launches one (`chromium(`), e.g. the notebook and
              wheel tests that open a page
    slow      takes long without a browser (a wheel built and installed, notebooks run in a
              kernel, a Dask cluster started, real training): the files and tests in SLOW below

    python -m pytest                                 # everything (CI: .ci/run)
    python -m pytest -m "not browser"                # no Chromium
    python -m pytest -m "not browser and not slow"   # the quick subset, about a minute

Markers only select; they never skip. The markers are registered in pyproject.toml
([tool.pytest.ini_options], with --strict-markers), and docs/contributing.md says how to use them.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
BROWSER_DIR = HERE / "browser"

# What is slow without a browser, from `pytest -m "not browser" --durations=0` on the project's
# 2-core machine (docs/contributing.md has the numbers). A whole file (tests-relative path) when
# most of its time goes to subprocesses, kernels, clusters, builds or training threads; else one
# test ("path::name", every parametrisation of it) that took 1.5 s or more. Add yours on the
# same terms: the quick subset (-m "not browser and not slow") should stay near a minute.
SLOW: set[str] = {
    # whole files
    "test_cli.py",                  # every test runs `python -m ntmviz.cli` in a subprocess
    "test_kill_during_save.py",     # kills training and the app mid-save, in subprocesses
    "test_notebook.py",             # runs the example notebooks in a Jupyter kernel
    "test_sweep.py",                # starts Dask clusters, kills a worker
    "test_wheel.py",                # builds the sdist and wheel, installs them into a fresh venv
    "app/test_training_view.py",    # the Train tab: trains models in background threads
    "app/test_sweep_view.py",       # the Sweep tab: trains and reads small sweeps
    # single tests in otherwise quick files
    "app/test_background.py::test_the_sweep_tab_reads_in_the_background",
    "app/test_cache.py::test_checkpoint_headers",
    "app/test_cache.py::test_sweep_curves",
    "app/test_compare.py::test_a_snapshot_option_shows_the_step_it_names_after_thinning",
    "app/test_compare.py::test_a_step_the_browser_reports_on_one_side_is_not_sent_back_to_either",
    "app/test_compare.py::test_checkpoints_saved_by_the_train_tab_are_listed_at_once",
    "app/test_compare.py::test_snapshots_are_listed_without_refresh",
    "app/test_explorer.py::test_episode_without_memory_shows_sequence_only",
    "app/test_explorer.py::test_few_heads_put_the_focus_beside_the_memory_and_many_give_it_a_line",
    "app/test_explorer.py::test_the_cards_shown_follow_the_declaration",
    "app/test_explorer.py::test_the_heading_names_the_model",
    "app/test_extension.py::test_extension_sets_up_the_offline_rules_once_and_writes_only_the_renderer",
    "app/test_extension.py::test_importing_the_app_changes_nothing_outside_it",
    "app/test_extension.py::test_where_the_cache_folder_cannot_be_written_the_renderer_goes_inline",
    "app/test_figures.py::test_cli_figure_of_an_lstm_memory_is_refused",
    "app/test_figures.py::test_head_locations_cells_are_each_weight_in_the_heads_colour",
    "app/test_figures.py::test_png_is_the_svg_at_three_times_the_pixels",
    "app/test_figures.py::test_ten_heads_get_ten_colours",
    "app/test_live.py::test_snapshots_every_k_steps",
    "app/test_messages.py::test_a_hostile_model_title_is_text_in_the_heading",
    "app/test_messages.py::test_explorer_shows_hostile_metadata_as_text",
    "app/test_notebook_comm_order.py::test_run_all_of_the_training_notebook_leaves_the_browser_where_python_is",
    "app/test_notebook_output.py::test_the_slots_view_is_in_the_recorded_part_where_the_model_declares_slots",
    "app/test_payload.py::test_long_episode_payload_stays_small_and_chunks_rebuild_every_step",
    "app/test_payload.py::test_long_episode_time_overview_is_pooled_to_the_pixels_drawn",
    "app/test_train_curves.py::test_reset_draws_a_checkpoints_past_curve_first",
    "app/test_train_curves.py::test_thinning_keeps_the_rows_thin_keys_keeps_then_takes_rows_that_far_apart",
    "app/test_train_record.py::test_the_record_of_a_run_holds_its_status_curves_seeds_and_views",
    "test_dmn.py::test_a_short_training_run_learns_single_fact",
    "test_dmn.py::test_the_explorer_draws_a_dmn_story_from_its_declaration",
    "test_dmn.py::test_cli_train_eval_and_record",
    "test_memn2n.py::test_tiny_training_run_learns_single_fact",
    "test_model.py::test_short_training_run_lowers_the_loss",
    "test_native.py::test_a_read_only_install_builds_its_kernels_in_the_users_cache",
    "test_native.py::test_loading_the_kernels_leaves_denormals_alone",
}


def _launches_chromium(item: pytest.Item) -> bool:
    """True when the test function's own source starts Chromium (the `chromium()` helper of
    tests/browser/_serve.py, or Playwright directly)."""
    function = getattr(item, "function", None)
    if function is None:
        return False
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return "chromium(" in source or "sync_playwright" in source


_matched: set[str] = set()  # the SLOW entries this session's items matched


def _is_slow(item: pytest.Item, path: Path) -> bool:
    if HERE not in path.parents:
        return False
    where = path.relative_to(HERE).as_posix()
    name = getattr(item, "originalname", None) or item.name.split("[")[0]
    for entry in (where, f"{where}::{name}"):
        if entry in SLOW:
            _matched.add(entry)
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        if BROWSER_DIR in path.parents or _launches_chromium(item):
            item.add_marker(pytest.mark.browser)
        elif _is_slow(item, path):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """On a whole-suite run (no paths given), name the SLOW entries that matched no test: a test
    renamed or removed, whose entry should follow it."""
    if (config.args_source != pytest.Config.ArgsSource.TESTPATHS or config.option.collectonly
            or exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
            or terminalreporter.stats.get("error")):  # a file that did not import matched nothing
        return
    stale = sorted(SLOW - _matched)
    if stale:
        terminalreporter.write_line(f"tests/conftest.py: SLOW entries that matched no test: {', '.join(stale)}",
                                    yellow=True)


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test: these tiny ops only wait on a second thread, most of
    all on a busy 2-core machine. A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["compiled", "torch ops"])
def fast_path(request, monkeypatch):
    """Each test twice: with the compiled kernels (native.py; they must build here) and with the
    torch ops (the kernels switched off). A module opts in with
    `pytestmark = pytest.mark.usefixtures("fast_path")`; the value says which path runs."""
    from ntmviz import native

    if request.param == "torch ops":
        monkeypatch.setattr(native, "usable", lambda tensor: False)
    else:
        assert native.library() is not None, "the compiled kernels did not build (is there a C++ compiler?)"
    return request.param
