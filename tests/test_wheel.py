"""The package as a new user meets it: the sdist and wheel built with `python -m build`, the wheel
installed into a fresh virtual environment outside the repo, and used from another directory:
the CLI (record from a shipped checkpoint, figure), `Explorer.from_checkpoint` on a shipped
checkpoint (a PNG figure and the HTML export from Python), and `ntmviz serve` opened in Chromium
with every off-machine request blocked (and a figure saved with the app's button).

The shipped checkpoints live in the checkout's top-level checkpoints/ (the design card's layout);
the build maps them into the package (setup.py), so the wheel carries them as ntmviz/checkpoints/
and the sdist carries the top-level folder it maps from: both hold every checkpoint and card, byte
for byte the checkout's, and the installed package (and an editable install) serves them from any
directory.

The fresh environment holds the wheel and, beside it, exactly its declared dependencies and
theirs (linked from this test environment's site-packages, so the test needs no network and
takes seconds, not the minutes a download-and-unpack of torch takes): a module the package
imports without declaring it fails here. `pip check` confirms the declared versions are met.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "browser"))

from _serve import chromium, free_port, wait_until_up  # noqa: E402

CHECKPOINTS = ROOT / "checkpoints"  # the shipped checkpoints and their cards, in the checkout
SHIPPED = ("copy-ntm", "copy-lstm", "repeat_copy-ntm", "associative_recall-ntm", "associative_recall-lstm",
           "ngrams-ntm", "ngrams-lstm", "priority_sort-ntm", "babi_single-memn2n", "babi_two-memn2n",
           "babi_yes_no-memn2n")
SHIPPED_FILES = sorted(p.name for p in CHECKPOINTS.iterdir() if p.suffix in (".safetensors", ".md"))
RENDERER = ("palette.js", "data.js", "layout.js", "group.js", "draw.js", "views.js", "ntmviz.js", "ntmviz.css")


def run(cmd, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def closure(reqs: list[str]) -> dict[str, md.Distribution]:
    """The installed distributions that `reqs` (without extras) need, transitively."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, md.Distribution] = {}
    todo = [(r, frozenset()) for r in reqs]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        envs = [{"extra": e} for e in (extras or {""})]
        if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
            continue
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in done:
            continue
        done.add(key)
        dist = found.get(name) or md.distribution(req.name)
        found[name] = dist
        todo += [(r, frozenset(req.extras)) for r in dist.requires or []]
    return found


def link_dependencies(dists, target: Path) -> None:
    """Symlink every top-level file and folder of each distribution into `target`."""
    target.mkdir()
    for dist in dists:
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists() and not top.endswith(".pth"):
                (target / top).symlink_to(src)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(venv python, the folder to work in, the wheel, the sdist, env) after build and install."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT], cwd=tmp)
    [wheel] = dist.glob("ntmviz-*.whl")
    [sdist] = dist.glob("ntmviz-*.tar.gz")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip())
    link_dependencies(closure(requirements(wheel)).values(), tmp / "deps")
    (site / "ntmviz-test-deps.pth").write_text(str(tmp / "deps") + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    run([*pip, "install", "--no-deps", "--no-index", wheel], cwd=tmp)
    run([*pip, "check"], cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NTMVIZ_CHECKPOINTS", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return python, work, wheel, sdist, env


def wheel_files(wheel: Path, folder: str) -> dict[str, bytes]:
    """{file name: bytes} of the files in `folder` (a path in the archive, ending in /) of a wheel."""
    with zipfile.ZipFile(wheel) as z:
        return {n[len(folder):]: z.read(n) for n in z.namelist() if n.startswith(folder) and not n.endswith("/")}


def sdist_files(sdist: Path, folder: str) -> dict[str, bytes]:
    """{file name: bytes} of the files in `folder` (below the sdist's top folder, ending in /)."""
    with tarfile.open(sdist) as t:
        out = {}
        for member in t.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and name.startswith(folder):
                out[name[len(folder):]] = t.extractfile(member).read()
        return out


def test_the_shipped_checkpoints_sit_in_the_checkouts_top_level_folder():
    assert not (ROOT / "ntmviz" / "checkpoints").exists()  # the design card's layout: top level, mapped at build
    for name in SHIPPED:
        assert f"{name}.safetensors" in SHIPPED_FILES and f"{name}.md" in SHIPPED_FILES
    assert len(SHIPPED_FILES) == 2 * len([n for n in SHIPPED_FILES if n.endswith(".safetensors")])  # each its card
    # the wheel carries whatever the folder holds: only the files the repository tracks belong there
    # (a checkpoint saved into it by hand would ship); untracked ones fail here, before a release
    tracked = subprocess.run(["git", "ls-files", "--", "checkpoints"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert sorted(Path(n).name for n in tracked.stdout.split()) == sorted(p.name for p in CHECKPOINTS.iterdir())


def test_wheel_and_sdist_carry_the_renderer_and_the_checkpoints(fresh):
    _, _, wheel, sdist, _ = fresh
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    with tarfile.open(sdist) as t:
        snames = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for files in (names, snames):
        for js in RENDERER:
            assert f"ntmviz/app/static/{js}" in files
        assert "ntmviz/kernels.cpp" in files and not any(n.endswith(".so") for n in files)  # source, never a build
    # every shipped checkpoint and card: in the wheel inside the package, in the sdist where the
    # checkout keeps them (with setup.py, which maps them when a wheel is built from the sdist)
    assert sorted(n for n in names if n.startswith("ntmviz/checkpoints/")) == [
        f"ntmviz/checkpoints/{f}" for f in SHIPPED_FILES]
    assert sorted(n for n in snames if n.startswith("checkpoints/")) == [f"checkpoints/{f}" for f in SHIPPED_FILES]
    assert "setup.py" in snames and not any(n.startswith("ntmviz/checkpoints/") for n in snames)
    assert not any(n.startswith(("tests/", "benchmarks/", "checkpoints/")) for n in names)
    # nothing big rides along beside the checkpoints: the code, the renderer and the cards (compressed)
    # stay under 2 MB over the checkpoints' own bytes, whatever families are shipped
    shipped_bytes = sum((CHECKPOINTS / f).stat().st_size for f in SHIPPED_FILES)
    assert wheel.stat().st_size < shipped_bytes + 2_000_000


def test_wheel_and_sdist_carry_the_checkouts_checkpoints_byte_for_byte(fresh):
    python, work, wheel, sdist, env = fresh
    checkout = {f: (CHECKPOINTS / f).read_bytes() for f in SHIPPED_FILES}
    assert wheel_files(wheel, "ntmviz/checkpoints/") == checkout
    assert sdist_files(sdist, "checkpoints/") == checkout
    # and the installed package holds the same bytes
    folder = Path(run([python, "-c", "from ntmviz.shipped import shipped_folder; print(shipped_folder())"],
                      cwd=work, env=env).stdout.strip())
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == checkout


def test_installed_package_serves_the_shipped_checkpoints_from_any_directory(fresh):
    python, work, _, _, env = fresh
    code = ("import json, ntmviz\n"
            "from ntmviz.shipped import shipped_folder, shipped_names, checkpoint_path\n"
            "from ntmviz.app import Explorer\n"
            "e = Explorer.default()\n"
            "print(json.dumps({'package': ntmviz.__file__, 'folder': str(shipped_folder()), 'names': shipped_names(),\n"
            "                  'copy': str(checkpoint_path('copy-ntm')), 'opened': e.state.episode.meta['checkpoint'],\n"
            "                  'listed': sorted(e.sources.checkpoint.options)}))\n")
    out = json.loads(run([python, "-c", code], cwd=work, env=env).stdout.strip().splitlines()[-1])
    package = Path(out["package"]).parent
    assert "/venv/" in str(package) and Path(out["folder"]) == package / "checkpoints"  # package data
    assert out["names"] == sorted(f[: -len(".safetensors")] for f in SHIPPED_FILES if f.endswith(".safetensors"))
    assert out["copy"] == str(package / "checkpoints" / "copy-ntm.safetensors")
    assert out["opened"] == "copy-ntm.safetensors"
    assert out["listed"] == sorted(f for f in SHIPPED_FILES if f.endswith(".safetensors"))
    cli = work.parent / "venv" / "bin" / "ntmviz"
    report = json.loads(run([cli, "eval", "--checkpoint", "copy-ntm", "--lengths", "3", "--samples", "4", "--json"],
                            cwd=work, env=env).stdout)
    assert report["checkpoint"] == out["copy"] and report["task"] == "copy"


def test_an_editable_install_serves_the_checkouts_checkpoints(fresh, tmp_path):
    """`pip install -e .`: ntmviz imported from the checkout finds the top-level checkpoints/."""
    _, work, _, _, env = fresh
    dist = tmp_path / "dist"
    # the backend's own editable build (PEP 660), offline as the wheel's build is
    run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; b.build_editable(sys.argv[1])",
         dist], cwd=ROOT)
    [editable] = dist.glob("ntmviz-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=tmp_path).stdout.strip())
    (site / "ntmviz-test-deps.pth").write_text(str(work.parent / "deps") + "\n")  # the wheel's venv's dependencies
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python, "install", "--no-deps",
         "--no-index", editable], cwd=tmp_path)
    code = ("import ntmviz\n"
            "from ntmviz.shipped import shipped_folder, checkpoint_path\n"
            "print(ntmviz.__file__); print(shipped_folder()); print(checkpoint_path('copy-ntm'))\n")
    package, folder, copy = run([python, "-c", code], cwd=work, env=env).stdout.split()
    assert Path(package) == ROOT / "ntmviz" / "__init__.py"
    assert Path(folder) == CHECKPOINTS and Path(copy) == CHECKPOINTS / "copy-ntm.safetensors"


def test_installed_package_runs_from_another_directory(fresh):
    python, work, _, _, env = fresh
    where = run([python, "-c", "import ntmviz, ntmviz.app.canvas as c; print(ntmviz.__file__); print(len(c.RENDERER_JS))"],
                cwd=work, env=env).stdout.split()
    assert "/venv/" in where[0] and not where[0].startswith(str(ROOT)), where
    assert int(where[1]) > 20_000
    cache = work.parent / "kernel-cache"  # the user's cache ($NTMVIZ_KERNEL_CACHE here), never the venv
    built = run([python, "-c", "from ntmviz import native; assert native.library(); print(native.loaded_from())"],
                cwd=work, env={**env, "NTMVIZ_KERNEL_CACHE": str(cache)}).stdout.strip()
    assert Path(built).parent == cache and Path(built).name.startswith("kernels-"), built
    assert not list(Path(where[0]).parent.glob("kernels-*")), "a library was written into the installed package"
    cli = [work.parent / "venv" / "bin" / "ntmviz"]
    helps = run([*cli, "figure", "--help"], cwd=work, env=env).stdout
    assert "--view" in helps and "--step" in helps and "--scale" in helps
    run([*cli, "record", "--checkpoint", "copy-ntm", "--length", "6", "--seed", "2", "--out", "ep.safetensors"],
        cwd=work, env=env)
    run([*cli, "figure", "ep.safetensors", "--view", "heads", "--step", "8", "--out", "heads.svg"], cwd=work, env=env)
    svg = (work / "heads.svg").read_text()
    assert svg.startswith("<?xml") and 'data-heatmap="heads-write-1"' in svg and ">step</text>" in svg
    bad = subprocess.run([*map(str, cli), "figure", "ep.safetensors", "--view", "memory", "--step", "500", "--out",
                          "x.png"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "out of range" in bad.stderr


def test_explorer_from_a_shipped_checkpoint(fresh):
    python, work, _, _, env = fresh
    code = ("from ntmviz.app import Explorer\n"
            "from ntmviz.shipped import checkpoint_path\n"
            "e = Explorer.from_checkpoint(checkpoint_path('copy-ntm'), length=5, seed=1)\n"
            "print(e.state.episode.meta['checkpoint'], e.state.episode.steps)\n"
            "e2 = Explorer.from_checkpoint('ngrams-ntm', length=20)\n"
            "print(e2.state.episode.meta['task'], sorted(e2.sources.checkpoint.options)[:2])\n"
            "e.memory.save('mem.png', scale=2)\n"
            "from ntmviz.app import export_html\n"
            "export_html(e.state.episode, 'page.html')\n")
    out = run([python, "-c", code], cwd=work, env=env).stdout.split("\n")
    assert out[0] == "copy-ntm.safetensors 11"
    assert out[1].startswith("ngrams [")
    assert (work / "mem.png").read_bytes()[:4] == b"\x89PNG"
    assert 'id="ntmviz-data"' in (work / "page.html").read_text()


def test_served_page_in_chromium(fresh, tmp_path):
    python, work, _, _, env = fresh
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(work.parent / "venv" / "bin" / "ntmviz"), "serve", "--port", str(port)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                wait_until_up(url, timeout=5)
                break
            except RuntimeError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
                ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else (offsite.append(r.request.url), r.abort()))
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, timeout=120_000)
            page.locator(".ntmviz-view[data-view=memory][data-frames]").wait_for(timeout=120_000)
            page.wait_for_function("""() => { const walk = (r) => { for (const el of r.querySelectorAll('*')) {
                if (el.classList && el.classList.contains('ntmviz-view') && el.dataset.view === 'heads'
                    && Number(el.dataset.frames) > 0) return true;
                if (el.shadowRoot && walk(el.shadowRoot)) return true; } return false; }; return walk(document); }""",
                                   timeout=120_000)
            assert page.get_by_text(re.compile(r"from copy-ntm\.safetensors")).count() >= 1
            # the checkpoint picker lists every shipped checkpoint, from the installed package
            listed = {t.strip() for t in page.locator("select option").all_text_contents()}
            assert {f for f in SHIPPED_FILES if f.endswith(".safetensors")} <= listed, listed
            # a figure from the app: the head locations at the step on screen, as SVG
            with page.expect_download(timeout=120_000) as info:
                page.locator(".ntmviz-view[data-view=heads]").get_by_role("button", name="Save figure as SVG").click()
            assert info.value.suggested_filename == "copy-len20-seed0-heads-step31.svg"  # the opening step
            info.value.save_as(tmp_path / "heads.svg")
            svg = (tmp_path / "heads.svg").read_text()
            assert 'data-heatmap="heads-read-1"' in svg and "Head locations over time (step 31 marked)" in svg
            assert not offsite, offsite
            assert not errors, errors
            context.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()
