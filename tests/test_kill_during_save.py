"""SIGKILL in the middle of a save leaves the previous file intact and readable.

Each test runs a real save in a child process: `ntmviz train` writing its periodic checkpoint,
Episode.save, and the app's checkpoint save (LiveRun.save, what the Train tab's "Save checkpoint"
calls). The child stops inside its second save, at a point chosen by the test: halfway through
writing the bytes, or with every byte written but before the rename. It says so on stdout;
the test then kills it with SIGKILL (no handler, no cleanup can run) and opens the file.

The pause is injected into the child (os.open / os.fdopen / os.fsync wrapped there), not into
ntmviz: the code that runs up to the kill is the real atomic_write.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ntmviz import Episode, checkpoint
from ntmviz.episode import VERSION as EPISODE_VERSION
from ntmviz.files import VERIFIED

TINY = ["--task", "copy", "--task-option", "max_length=3", "--task-option", "bits=3", "--memory-slots", "8",
        "--memory-width", "5", "--controller-size", "12", "--batch-size", "4", "--quiet"]

# Prepended to each child's program: pause inside the SAVE-th call of atomic_write, at WHERE.
PAUSE = textwrap.dedent("""
    import os, sys, time
    WHERE, SAVE = sys.argv[1], int(sys.argv[2])
    saves, save_fd = [0], [None]
    real_open, real_fdopen, real_fsync = os.open, os.fdopen, os.fsync

    def paused(what):
        print("PAUSED " + what, flush=True)
        time.sleep(600)  # the test kills us here
        raise SystemExit("not killed")

    class HalfWritten:
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.f.__exit__(*exc)
        def write(self, data):
            half = len(data) // 2
            self.f.write(data[:half])
            self.f.flush()
            os.fsync(self.f.fileno())
            paused("mid-write")
        def __getattr__(self, name):
            return getattr(self.f, name)

    def os_open(path, flags, *args, **kwargs):  # atomic_write's temp file: one per save of sys.argv[3]
        fd = real_open(path, flags, *args, **kwargs)  # (train also writes NAME.best.safetensors: not counted)
        name = os.path.basename(os.fspath(path))
        if flags & os.O_EXCL and name.startswith("." + os.path.basename(sys.argv[3]) + ".") and name.endswith(".tmp"):
            saves[0] += 1
            save_fd[0] = fd if saves[0] == SAVE else None
        return fd

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return HalfWritten(f) if fd == save_fd[0] and WHERE == "mid-write" else f

    def fsync(fd):
        real_fsync(fd)
        if fd == save_fd[0] and WHERE == "before-rename":
            paused("before-rename")

    os.open, os.fdopen, os.fsync = os_open, fdopen, fsync
""")

TRAIN = """
from ntmviz.cli import main
sys.exit(main(["train", *sys.argv[4:], "--steps", "1000000", "--checkpoint-every", "20", "--out", sys.argv[3]]))
"""

EPISODE = """
import torch, ntmviz
from ntmviz.tasks import get_task
task = get_task("copy", max_length=20)
torch.manual_seed(0)
model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=64, memory_width=12))
first, second = ntmviz.record(model, task.sample(2, seed=1))
first.save(sys.argv[3])
print("SAVED first", flush=True)
second.save(sys.argv[3])
"""

APP = """
import time
from ntmviz.app.live import LiveRun, RunConfig
run = LiveRun.create(RunConfig(task_options={"max_length": 3}, memory_slots=8, memory_width=5,
                               controller_size=12, batch_size=4, snapshot_every=1000))
run.start()
while run.step < 5:
    time.sleep(0.05)
run.pause()
run.save(sys.argv[3])
print("SAVED first", run.step, flush=True)
run.resume()
while run.step < 10:
    time.sleep(0.05)
run.save(sys.argv[3])
"""


def run_until_paused(program: str, where: str, out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start the child; return it once it says it is paused inside its second save."""
    proc = subprocess.Popen([sys.executable, "-c", PAUSE + textwrap.dedent(program), where, "2", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent)
    lines = []
    for line in proc.stdout:  # blocks until the child prints; the child sleeps once paused
        lines.append(line)
        if line.startswith("PAUSED"):
            return proc, "".join(lines)
    proc.wait(timeout=30)
    raise AssertionError(f"the child never paused in a save (exit {proc.returncode}):\n"
                         f"{''.join(lines)}\n{proc.stderr.read()}")


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_kill_during_train_checkpoint_keeps_the_previous_one(tmp_path, where):
    out = tmp_path / "run.safetensors"
    proc, said = run_until_paused(TRAIN, where, out, *TINY)
    before = digest(out)  # the first checkpoint (step 20) is complete on disk
    assert temp_files(tmp_path), "the second save should be under way in a temp file"
    kill9(proc)
    assert digest(out) == before
    ckpt = checkpoint.load(out, device="cpu")
    assert ckpt.step == 20 and ckpt.checksum == VERIFIED
    # the leftover temp file is hidden from checkpoint listings, and the next save replaces the file
    from ntmviz.app.sources import find_checkpoints

    assert find_checkpoints(tmp_path) == [tmp_path / "run.best.safetensors", out]  # no temp file among them
    checkpoint.save(out, ckpt.model, task=ckpt.task, step=21)
    assert checkpoint.load(out).step == 21


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_kill_during_episode_save_keeps_the_previous_one(tmp_path, where):
    out = tmp_path / "episode.safetensors"
    proc, said = run_until_paused(EPISODE, where, out)
    assert "SAVED first" in said
    before = digest(out)
    [tmp] = temp_files(tmp_path)
    assert tmp.stat().st_size > 0
    kill9(proc)
    assert digest(out) == before
    episode = Episode.load(out)
    assert episode.checksum == VERIFIED and episode.meta["format_version"] == EPISODE_VERSION and episode.steps > 2


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_kill_during_the_apps_checkpoint_save_keeps_the_previous_one(tmp_path, where):
    out = tmp_path / "live.safetensors"
    proc, said = run_until_paused(APP, where, out)
    first_step = int(said.split("SAVED first")[1].split()[0])
    before = digest(out)
    assert temp_files(tmp_path)
    kill9(proc)
    assert digest(out) == before
    ckpt = checkpoint.load(out, device="cpu")
    assert ckpt.step == first_step and ckpt.checksum == VERIFIED and ckpt.meta["live_run"]
