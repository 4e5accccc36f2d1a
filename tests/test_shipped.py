"""The shipped checkpoints live in the checkout's top-level checkpoints/ (a wheel carries them as
package data, ntmviz/checkpoints/: tests/test_wheel.py) and are found from any directory; the app
lists the user's folders (--checkpoints, $NTMVIZ_CHECKPOINTS) before them; every CLI option has help."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from ntmviz import shipped
from ntmviz.cli import build_parser

EXPECTED = {"copy-ntm", "copy-lstm", "repeat_copy-ntm", "associative_recall-ntm", "associative_recall-lstm",
            "ngrams-ntm", "ngrams-lstm", "priority_sort-ntm", "babi_single-memn2n", "babi_two-memn2n",
            "babi_yes_no-memn2n", "allocation-dnc", "copy-dnc", "reversal-stack", "reversal-queue", "reversal-deque",
            "copy-queue", "anbn-stack_rnn", "babi_single-dmn", "sort_numbers-pointer", "symbol_reversal-attention",
            "symbol_reversal-no_attention", "dates-attention", "convex_hull-pointer", "repeat_copy-dnc",
            "sort_numbers-seq2seq", "tsp-pointer", "babi_two-dmn", "babi_yes_no-dmn"}


ROOT = Path(__file__).resolve().parent.parent


def test_in_a_checkout_the_shipped_checkpoints_are_its_top_level_folder():
    folder = shipped.shipped_folder()
    assert folder == ROOT / "checkpoints"  # the design card's layout, beside the package, not in it
    assert not (ROOT / "ntmviz" / "checkpoints").exists()
    assert EXPECTED <= set(shipped.shipped_names())
    for name in EXPECTED:  # each with its card
        assert (folder / f"{name}.md").is_file()


def fake_tree(root: Path, project: str | None, top_level: bool, package_data: bool) -> Path:
    """A folder holding an ntmviz/ package: with a pyproject.toml naming `project` (None: none,
    as in site-packages), a top-level checkpoints/, and/or the package's checkpoints/."""
    package = root / "ntmviz"
    package.mkdir(parents=True)
    if project is not None:
        (root / "pyproject.toml").write_text(f'[project]\nname = "{project}"\nversion = "1"\n')
    if top_level:
        (root / "checkpoints").mkdir()
        (root / "checkpoints" / "top.safetensors").write_bytes(b"x")
    if package_data:
        (package / "checkpoints").mkdir()
        (package / "checkpoints" / "inside.safetensors").write_bytes(b"x")
    return package


@pytest.mark.parametrize("project, top_level, package_data, expected", [
    ("ntmviz", True, False, "checkpoints"),            # a checkout (editable install, or the source tree)
    (None, False, True, "ntmviz/checkpoints"),         # an installed wheel: site-packages/ntmviz/checkpoints
    (None, True, True, "ntmviz/checkpoints"),          # a stray checkpoints/ in site-packages is not ours
    ("someone-else", True, True, "ntmviz/checkpoints"),  # nor is another project's
    ("ntmviz", True, True, "checkpoints"),             # a checkout's folder wins over a stale copy in the package
    (None, False, False, "ntmviz/checkpoints"),        # neither: the package's folder, listing none
])
def test_shipped_folder_in_a_checkout_and_in_an_installed_wheel(tmp_path, monkeypatch, project, top_level,
                                                                package_data, expected):
    package = fake_tree(tmp_path, project, top_level, package_data)
    monkeypatch.setattr(shipped.resources, "files", lambda name: package if name == "ntmviz" else None)
    assert shipped.shipped_folder() == tmp_path / expected
    names = {"checkpoints": ["top"], "ntmviz/checkpoints": ["inside"] if package_data else []}[expected]
    assert shipped.shipped_names() == names


def test_checkpoint_path_takes_shipped_names_and_paths(tmp_path, monkeypatch):
    folder = shipped.shipped_folder()
    monkeypatch.chdir(tmp_path)
    assert shipped.checkpoint_path("copy-ntm") == folder / "copy-ntm.safetensors"
    assert shipped.checkpoint_path("copy-ntm.safetensors") == folder / "copy-ntm.safetensors"
    mine = tmp_path / "copy-ntm.safetensors"
    mine.write_bytes(b"x")
    assert shipped.checkpoint_path("copy-ntm.safetensors") == Path("copy-ntm.safetensors")  # a file here wins
    assert shipped.checkpoint_path("missing") == Path("missing")  # the loader reports it in the user's words
    assert shipped.checkpoint_path("sub/copy-ntm") == Path("sub/copy-ntm")


def test_folders_are_the_users_then_the_environments_then_shipped(tmp_path, monkeypatch):
    a, b, c = (tmp_path / n for n in "abc")
    for f in (a, b, c):
        f.mkdir()
    monkeypatch.setenv(shipped.ENV, os.pathsep.join([str(b), str(c), str(a)]))
    folders = shipped.checkpoint_folders([a])
    assert folders == [a, b, c, shipped.shipped_folder()]
    monkeypatch.delenv(shipped.ENV)
    assert shipped.checkpoint_folders() == [shipped.shipped_folder()]


def test_find_checkpoints_lists_the_users_folders_first(tmp_path):
    from ntmviz.app.sources import find_checkpoints

    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("zeta.safetensors", "alpha.safetensors", "ngrams-ntm.safetensors"):
        (mine / name).write_bytes(b"x")
    spec = os.pathsep.join(str(f) for f in shipped.checkpoint_folders([mine], env=False))
    found = find_checkpoints(spec)
    names = [p.name for p in found]
    # mine first (sorted), then the shipped ones with copy-ntm first; a name of mine hides the shipped one
    assert names[:3] == ["alpha.safetensors", "ngrams-ntm.safetensors", "zeta.safetensors"]
    assert found[1].parent == mine
    assert names[3] == "copy-ntm.safetensors" and found[3].parent == shipped.shipped_folder()
    assert len(names) == len(set(names)) == 3 + len(EXPECTED) - 1
    assert find_checkpoints(tmp_path / "nowhere") == []


def test_explorer_default_opens_on_the_shipped_copy_checkpoint_from_any_directory(tmp_path, monkeypatch):
    from ntmviz.app import Explorer

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(shipped.ENV, raising=False)
    explorer = Explorer.default()
    assert explorer.state.episode.meta["checkpoint"] == "copy-ntm.safetensors"
    assert explorer.sources.source.path.parent == shipped.shipped_folder()
    listed = explorer.sources.checkpoint.options
    assert "copy-ntm.safetensors" in listed and "ngrams-lstm.safetensors" in listed


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    missing = []
    for sub in parser._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help and action.help.strip()):
                missing.append(f"{sub.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing
    for command in ("train", "eval", "record", "export", "figure", "serve"):
        text = parser._subparsers._group_actions[0].choices[command].format_help()
        assert "--" in text or command == "export"


@pytest.mark.parametrize("args, message", [
    (["serve", "--checkpoints", "/nonexistent/dir"], "--checkpoints /nonexistent/dir: no such folder"),
    (["serve", "--checkpoint", "no-such-checkpoint"], "no such file or shipped checkpoint"),
])
def test_serve_bad_folders_are_one_line_and_exit_2(args, message, capsys):
    from ntmviz.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_serve_checkpoints_dir_lists_the_users_own_first(tmp_path, monkeypatch):
    """What `ntmviz serve --checkpoints DIR` builds: DIR's checkpoints, then the shipped ones."""
    import shutil

    from ntmviz.app import Explorer
    from ntmviz.app.explorer import default_folder

    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(shipped.shipped_folder() / "repeat_copy-ntm.safetensors", mine / "my-model.safetensors")
    monkeypatch.delenv(shipped.ENV, raising=False)
    explorer = Explorer.default(default_folder([mine]))
    assert explorer.state.episode.meta["checkpoint"] == "my-model.safetensors"
    options = explorer.sources.checkpoint.options
    assert list(options)[0] == "my-model.safetensors" and "copy-ntm.safetensors" in options
