"""Building and loading the compiled kernels (native.py) so that a careful user can trust them:
the library's SHA-256 recorded at build time and checked before every load (a changed,
truncated or vanished library is never loaded: one log line, then torch ops), a cache folder of
the user's own (mode 0700, owner checked, outside the package), one build at a time across
processes, other CPUs' builds kept; and every checkpoint saying which path trained it.

The kernels are compiled once for this module (by two processes at once, which is the lock's
test); every other test works on copies of that build."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ntmviz
from ntmviz import checkpoint, fused, native
from ntmviz.cli import main
from ntmviz.heads import head_sizes
from ntmviz.shipped import checkpoint_path
from ntmviz.tasks import get_task
from ntmviz.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

COMPILER = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
if COMPILER is None:
    pytest.skip("no C++ compiler here", allow_module_level=True)

# A compiler that writes each call to a log (pid and arguments) and takes 2 s longer to compile,
# so that two processes started together are both inside the build at once.
WRAPPER = """#!/bin/sh
echo "$$ $*" >> "{log}"
case " $* " in *" -c "*) sleep 2 ;; esac
exec "{compiler}" "$@"
"""

# Each process: import, say it is ready, wait for the word, then load (and build) the kernels.
BUILDER = """
import logging, sys, time, pathlib
logging.basicConfig(level=logging.WARNING)
from ntmviz import native
ready, go = map(pathlib.Path, sys.argv[1:3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
start = time.monotonic()
lib = native.library()
print(lib is not None, time.monotonic() - start, native.loaded_from())
"""


def plant(folder: Path, name: str, key: str, age: float) -> None:
    """A fake build (library, record, log) of another source, `age` seconds old."""
    so, record, log_file = (folder / f"kernels-{name}{suffix}" for suffix in (".so", ".json", ".log"))
    so.write_bytes(b"\x7fELF not really")
    log_file.write_text("old compiler output")
    record.write_text(json.dumps({"library": so.name, "sha256": hashlib.sha256(so.read_bytes()).hexdigest(),
                                  "key": key, "source_sha256": name}))
    then = time.time() - age
    for path in (so, record, log_file):
        os.utime(path, (then, then))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The kernels built into a fresh cache by two processes started at once, with fake builds of
    other sources and CPUs planted before: (folder, compiler command, the compiler's log, the
    two processes' outputs, the planted builds)."""
    root = tmp_path_factory.mktemp("kernels")
    folder, log_file, wrapper = root / "cache", root / "compiler.log", root / "cxx"
    wrapper.write_text(WRAPPER.format(log=log_file, compiler=COMPILER))
    wrapper.chmod(0o755)
    native.own_folder(folder)
    ours = native._build_names([str(wrapper)])
    for i in range(5):  # this CPU and setting, older sources: the two oldest go (KEEP = 4 with ours)
        plant(folder, f"old{i}", ours.key, age=1000 - 100 * i)
    plant(folder, "othercpu", "another-cpus-key", age=5000)  # older than all, but another CPU's: stays
    (folder / "kernels-unreadable.json").write_text("{not json")  # not a record we can read: stays
    for leftover, age in ((".kernels-killed.so.x1.tmp.o", 7200), (".load-killed.so", 7200), (".load-live.so", 0)):
        (folder / leftover).write_bytes(b"left by a build or load killed midway, or one under way")
        os.utime(folder / leftover, (time.time() - age, time.time() - age))
    env = {**os.environ, native.CACHE_ENV: str(folder), "CXX": str(wrapper), "OMP_NUM_THREADS": "1"}
    go = root / "go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, root / f"ready{i}", go], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((root / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a builder did not start"
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    yield {"folder": folder, "cxx": str(wrapper), "log": log_file, "outs": [out.split() for out, _ in outs],
           "ours": ours}


@pytest.fixture
def use(monkeypatch, built):
    """use(folder): this process loads the kernels from `folder` with the module's compiler;
    afterwards the library is looked up afresh (the next module's own)."""
    monkeypatch.setenv("CXX", built["cxx"])
    monkeypatch.delenv("NTMVIZ_NATIVE", raising=False)

    def use(folder: Path) -> None:
        monkeypatch.setenv(native.CACHE_ENV, str(folder))
        native.library.cache_clear()

    yield use
    native.library.cache_clear()


def copy_of_build(built, where: Path) -> Path:
    """A cache folder (mode 0700) holding a copy of the module's build: library and record."""
    folder = native.own_folder(where)
    for name in (built["ours"].library, built["ours"].record):
        shutil.copy2(built["folder"] / name, folder / name)
    return folder


def compiles(built) -> list[str]:
    return [line for line in built["log"].read_text().splitlines() if " -c " in f" {line} "]


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ntmviz.native" and r.levelno >= logging.WARNING]


def step_inputs():
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(3, sum(head_sizes(2, 1, 4, 3)), generator=g)
    memory = torch.randn(3, 16, 4, generator=g)
    previous = torch.softmax(torch.randn(3, 2, 16, generator=g), -1)
    return raw, memory, previous


def kernel_calls_of_an_ntm() -> int:
    """How many kernel calls a small NTM's forward and backward over 5 steps makes."""
    model = ntmviz.NTM(ntmviz.NTMConfig(3, 2, memory_slots=6, memory_width=4, controller_size=8))
    before = native.calls()
    model(torch.rand(2, 5, 3)).sum().backward()
    return native.calls() - before


def runs_as_torch_ops() -> bool:
    """An NTM's steps go the torch ops' way: the kernels not usable, and never called."""
    return not native.usable(torch.zeros(1)) and kernel_calls_of_an_ntm() == 0


class NoLoad:
    """Stands in for ctypes.CDLL: records that a load was asked for, and refuses it."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        raise OSError("the test's CDLL: nothing may be loaded here")


# ---- one build at a time, its record, what stays in the folder -----------------------------------

def test_two_processes_building_at_once_compile_once(built):
    """Both were inside library() together (each waited out the 2 s compile), one compiled, both
    loaded the same library."""
    assert len(compiles(built)) == 1, built["log"].read_text()
    (ok1, seconds1, path1), (ok2, seconds2, path2) = built["outs"]
    assert ok1 == ok2 == "True" and path1 == path2 == str(built["folder"] / built["ours"].library)
    assert float(seconds1) > 1.9 and float(seconds2) > 1.9  # the second waited for the first's build


def test_the_record_holds_the_librarys_sha256_compiler_and_flags(built):
    folder, ours = built["folder"], built["ours"]
    record = json.loads((folder / ours.record).read_text())
    data = (folder / ours.library).read_bytes()
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
    assert record["source_sha256"] == hashlib.sha256(native.SOURCE.read_bytes()).hexdigest()
    version = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=True).stdout
    assert record["compiler_version"] == version.splitlines()[0].strip()
    assert record["compiler"] == [built["cxx"]] and record["flags"] == native.FLAGS
    assert record["flags"] == ["-O3", "-march=native", "-ffast-math", "-fopenmp", "-std=c++17", "-fPIC"]


def test_builds_for_other_cpus_stay_and_only_this_cpus_oldest_builds_go(built):
    names = {p.name for p in built["folder"].iterdir()}
    for i in (0, 1):  # the two oldest of this CPU's other sources: library, record and log gone
        assert not {f"kernels-old{i}.so", f"kernels-old{i}.json", f"kernels-old{i}.log"} & names
    for i in (2, 3, 4):
        assert {f"kernels-old{i}.so", f"kernels-old{i}.json", f"kernels-old{i}.log"} <= names
    assert {"kernels-othercpu.so", "kernels-othercpu.json", "kernels-unreadable.json"} <= names
    assert {built["ours"].library, built["ours"].record} <= names
    # an hour-old temporary file is a killed build's or load's; a new one may be a live one's
    assert ".load-live.so" in names and not {".kernels-killed.so.x1.tmp.o", ".load-killed.so"} & names


# ---- the cache folder -----------------------------------------------------------------------------

def test_the_cache_is_the_users_own_outside_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv(native.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native.cache_folder() == tmp_path / "xdg" / "ntmviz" / "kernels"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert native.cache_folder() == tmp_path / "home" / ".cache" / "ntmviz" / "kernels"
    assert Path(ntmviz.__file__).parent not in native.cache_folder().parents
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path / "mine"))
    assert native.cache_folder() == tmp_path / "mine"
    made = native.own_folder(tmp_path / "a" / "b")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_the_kernels_load_from_the_cache_never_the_package(use, built, tmp_path):
    use(copy_of_build(built, tmp_path / "cache"))
    package = Path(native.__file__).parent
    assert native.library() is not None
    assert Path(native.loaded_from()) == tmp_path / "cache" / built["ours"].library
    assert package not in Path(native.loaded_from()).parents


@pytest.mark.parametrize("problem", ["another user's", "group-writable", "others-writable", "a file"])
def test_a_cache_folder_not_the_users_own_is_refused_in_one_line(use, built, tmp_path, monkeypatch, caplog, problem):
    folder = copy_of_build(built, tmp_path / "cache")
    if problem == "another user's":  # the folder's owner is not who we are
        monkeypatch.setattr(native.os, "geteuid", lambda: folder.stat().st_uid + 1)
    elif problem == "group-writable":
        folder.chmod(0o770)
    elif problem == "others-writable":
        folder.chmod(0o707)
    else:
        folder = tmp_path / "plain-file"
        folder.write_text("")
    use(folder)
    loader = NoLoad()
    monkeypatch.setattr(native.ctypes, "CDLL", loader)
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    expected = {"another user's": "belongs to another user", "group-writable": "can be written by group or others",
                "others-writable": "can be written by group or others", "a file": "cannot be made"}[problem]
    assert expected in line and str(folder) in line and "torch ops" in line and "\n" not in line
    assert loader.calls == [] and runs_as_torch_ops()


# ---- what is loaded is what was built ---------------------------------------------------------------

@pytest.mark.parametrize("damage", ["one byte changed", "truncated", "emptied", "replaced"])
def test_a_changed_or_truncated_library_is_refused_and_never_loaded(use, built, tmp_path, monkeypatch, caplog, damage):
    folder = copy_of_build(built, tmp_path / "cache")
    library = folder / built["ours"].library
    data = library.read_bytes()
    changed = {"one byte changed": data[:5000] + bytes([data[5000] ^ 1]) + data[5001:],
               "truncated": data[: len(data) // 2], "emptied": b"",
               "replaced": (built["folder"] / "kernels-old4.so").read_bytes()}[damage]
    library.write_bytes(changed)
    use(folder)
    loader = NoLoad()
    monkeypatch.setattr(native.ctypes, "CDLL", loader)
    before = len(compiles(built))
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    assert f"{library} ({len(changed)} bytes) does not match the SHA-256 recorded" in line
    assert "not loaded" in line and "torch ops" in line and "\n" not in line
    assert loader.calls == []  # never handed to the loader
    assert len(compiles(built)) == before and library.read_bytes() == changed  # not rebuilt over, either
    assert runs_as_torch_ops()


def test_an_unreadable_record_is_refused_and_the_library_never_loaded(use, built, tmp_path, monkeypatch, caplog):
    folder = copy_of_build(built, tmp_path / "cache")
    (folder / built["ours"].record).write_text('{"sha256": ')
    use(folder)
    loader = NoLoad()
    monkeypatch.setattr(native.ctypes, "CDLL", loader)
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    assert "is unreadable" in line and "torch ops" in line and loader.calls == [] and runs_as_torch_ops()


def test_the_bytes_loaded_are_the_bytes_checked(use, built, tmp_path, monkeypatch):
    """A library swapped on disk right after the check: the process loads what it checked, and
    the kernels work (against the torch ops)."""
    folder = copy_of_build(built, tmp_path / "cache")
    library = folder / built["ours"].library
    good = library.read_bytes()
    real_check, real_cdll, loaded = native._read_checked, native.ctypes.CDLL, []

    def check_then_swap(*args):
        result = real_check(*args)
        library.write_bytes(b"garbage that the loader would reject")
        return result

    def cdll(path, *args, **kwargs):
        loaded.append(Path(path).read_bytes())
        return real_cdll(path, *args, **kwargs)

    monkeypatch.setattr(native, "_read_checked", check_then_swap)
    monkeypatch.setattr(native.ctypes, "CDLL", cdll)
    use(folder)
    lib = native.library()
    assert lib is not None and loaded == [good] and kernel_calls_of_an_ntm() > 0
    raw, memory, previous = step_inputs()
    out, _ = native.forward(raw, memory, previous, 3, 1)
    ref, _ = fused.torch_memory_forward(raw, memory, previous, 3, 1)
    torch.testing.assert_close(out.weights, ref.weights, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.memory, ref.memory, rtol=1e-4, atol=1e-5)


def test_a_library_the_loader_rejects_is_one_line_and_torch_ops(use, tmp_path, built, caplog):
    """The record and the file agree, but the file is no library: the loader's refusal is one line."""
    folder = native.own_folder(tmp_path / "cache")
    ours = built["ours"]
    junk = b"\x7fELF\x02\x01\x01 but no library at all"
    (folder / ours.library).write_bytes(junk)
    (folder / ours.record).write_text(json.dumps({"sha256": hashlib.sha256(junk).hexdigest()}))
    use(folder)
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    assert line.startswith(f"ntmviz: the loader refused {folder / ours.library} ({ours.library}: ")
    assert "torch ops" in line
    assert "\n" not in line and runs_as_torch_ops()
    assert sorted(p.name for p in folder.iterdir()) == sorted([ours.library, ours.record])  # no private copy left


def test_a_library_gone_after_its_build_is_one_line_and_torch_ops(use, tmp_path, monkeypatch, caplog):
    """The build ran (here: pretended to) but its library is not there to read: one line, not a
    retry loop or a half-loaded state."""
    monkeypatch.setattr(native, "_compile", lambda compiler, folder, build: None)
    use(tmp_path / "empty-cache")
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    assert "the kernels just built are gone" in line and "torch ops" in line and runs_as_torch_ops()


def test_a_failing_compiler_is_one_line_with_its_first_error(use, tmp_path, monkeypatch, caplog):
    failing = tmp_path / "bad-cxx"
    failing.write_text("#!/bin/sh\necho 'In file included from x.h:1,' >&2\n"
                       "echo 'kernels.cpp:3:1: error: boom happened here' >&2\necho '    3 | nope' >&2\nexit 1\n")
    failing.chmod(0o755)
    folder = tmp_path / "cache"
    use(folder)
    monkeypatch.setenv("CXX", str(failing))
    with caplog.at_level(logging.INFO, logger="ntmviz.native"):
        assert native.library() is None
    [line] = warnings_of(caplog)
    assert "building the kernels failed: kernels.cpp:3:1: error: boom happened here" in line
    assert "torch ops" in line and "\n" not in line and runs_as_torch_ops()
    [saved] = folder.glob("kernels-*.log")
    assert f"(the compiler's output: {saved})" in line
    assert "In file included from x.h:1," in saved.read_text() and "3 | nope" in saved.read_text()
    assert not list(folder.glob("kernels-*.so")) and not list(folder.glob("*.tmp*"))


# ---- which path trained a checkpoint --------------------------------------------------------------

def tiny(kind: str, task):
    torch.manual_seed(0)
    if kind == "ntm":
        return ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=6, memory_width=5,
                                           controller_size=12))
    return ntmviz.LSTMBaseline(ntmviz.LSTMConfig(task.input_size, task.output_size, hidden_size=12, layers=1))


def train_and_load(kind: str, path: Path):
    task = get_task("copy", bits=3, max_length=3)
    trainer = Trainer(tiny(kind, task), task, batch_size=2)
    trainer.run(2)
    trainer.save(path)
    return checkpoint.load(path, device="cpu")


def test_a_checkpoint_trained_on_the_kernels_records_compiler_and_flags(use, built, tmp_path):
    use(copy_of_build(built, tmp_path / "cache"))
    ckpt = train_and_load("ntm", tmp_path / "ntm.safetensors")
    version = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=True).stdout
    version = version.splitlines()[0].strip()
    record = ckpt.meta["compute"]
    assert record["path"] == "kernels" and record["compiler"] == version
    assert record["flags"] == "-O3 -march=native -ffast-math -fopenmp -std=c++17 -fPIC"
    assert record["sha256"] == hashlib.sha256((built["folder"] / built["ours"].library).read_bytes()).hexdigest()
    assert ckpt.compute == f"compiled CPU kernels ({version}; -O3 -march=native -ffast-math -fopenmp -std=c++17 -fPIC)"


def test_a_checkpoint_trained_without_the_kernels_says_torch_ops(use, built, tmp_path, monkeypatch):
    use(copy_of_build(built, tmp_path / "cache"))
    monkeypatch.setenv("NTMVIZ_NATIVE", "0")
    native.library.cache_clear()
    assert train_and_load("ntm", tmp_path / "ntm.safetensors").meta["compute"] == {"path": "torch ops",
                                                                                    "device": "cpu"}
    monkeypatch.delenv("NTMVIZ_NATIVE")
    native.library.cache_clear()
    assert native.library() is not None
    # the LSTM baseline never calls the kernels, though they are there
    lstm = train_and_load("lstm", tmp_path / "lstm.safetensors")
    assert lstm.meta["compute"] == {"path": "torch ops", "device": "cpu"} and lstm.compute == "torch ops on cpu"


def test_a_resumed_run_that_changed_path_keeps_both(use, built, tmp_path, monkeypatch):
    use(copy_of_build(built, tmp_path / "cache"))
    monkeypatch.setenv("NTMVIZ_NATIVE", "0")
    native.library.cache_clear()
    first = train_and_load("ntm", tmp_path / "a.safetensors")
    monkeypatch.delenv("NTMVIZ_NATIVE")
    native.library.cache_clear()
    trainer = Trainer.resume_from(first)
    trainer.run(3)
    trainer.save(tmp_path / "b.safetensors")
    record = checkpoint.load(tmp_path / "b.safetensors").meta["compute"]
    assert record["path"] == "kernels" and record["earlier"] == {"path": "torch ops", "device": "cpu"}
    assert record["from_step"] == 2  # the first run's two steps ran as torch ops
    assert checkpoint.load(tmp_path / "b.safetensors").compute.endswith("; before step 2: torch ops on cpu")
    resumed_again = Trainer.resume_from(checkpoint.load(tmp_path / "b.safetensors"))
    resumed_again.run(4)  # the same path again: the record is not nested deeper
    assert resumed_again.compute == record


def test_a_run_resumed_from_a_checkpoint_without_a_record_says_so(use, built, tmp_path):
    use(copy_of_build(built, tmp_path / "cache"))
    old = checkpoint.load(checkpoint_path("copy-ntm"), device="cpu")
    assert "compute" not in old.meta and old.compute == "not recorded"
    trainer = Trainer.resume_from(old, batch_size=1)
    trainer.run(old.step + 1)
    assert trainer.compute["path"] == "kernels" and trainer.compute["earlier"] == {}
    assert trainer.compute["from_step"] == old.step
    assert native.describe_compute(trainer.compute).endswith(f"; before step {old.step}: not recorded")


def test_describe_compute_reads_every_path():
    assert native.describe_compute(None) == "not recorded" and native.describe_compute({}) == "not recorded"
    assert native.describe_compute({"path": "torch ops", "device": "cuda:0"}) == "torch ops on cuda:0"
    # the place a GPU kernel's record goes: its name and what it records, read without knowing it
    assert (native.describe_compute({"path": "gpu kernel", "name": "triton", "version": "3.1.0"})
            == "gpu kernel (name triton, version 3.1.0)")
    assert (native.describe_compute({"path": "torch ops", "device": "cpu", "earlier": {}, "from_step": 40})
            == "torch ops on cpu; before step 40: not recorded")


def test_eval_prints_the_path_in_one_line(use, built, tmp_path, capsys):
    use(copy_of_build(built, tmp_path / "cache"))
    train_and_load("ntm", tmp_path / "ntm.safetensors")
    assert main(["eval", "--checkpoint", str(tmp_path / "ntm.safetensors"), "--samples", "4", "--lengths", "2",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err.splitlines()
    [line] = [line for line in err if line.startswith("trained on:")]
    assert line.startswith("trained on: compiled CPU kernels (") and "-march=native" in line
    # a shipped checkpoint, written before the path was recorded
    assert main(["eval", "--checkpoint", "copy-ntm", "--samples", "4", "--lengths", "2", "--device", "cpu"]) == 0
    assert "trained on: not recorded" in capsys.readouterr().err.splitlines()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("command", [["train", "--task", "copy", "--steps", "1"], ["eval", "--checkpoint", "copy-ntm"],
                                     ["record", "--checkpoint", "copy-ntm"]])
def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path, capsys, command):
    out = ["--out", str(tmp_path / "x.safetensors")] if command[0] != "eval" else []
    assert main([*command, *out, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ntmviz: error: --device cuda: this machine has no CUDA GPU")
    assert not (tmp_path / "x.safetensors").exists()
