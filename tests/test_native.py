"""The compiled kernels (native.py, kernels.cpp) against the torch ops they stand in for,
at the sizes training uses, and what loading and building them must not do."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ntmviz import fused, native
from ntmviz.heads import head_sizes


def step_inputs(P, H, R, N, M, S, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(P, sum(head_sizes(H, H - R, M, S)), generator=g, dtype=dtype) * 2
    memory = torch.randn(P, N, M, generator=g, dtype=dtype) * 0.5
    previous = torch.softmax(torch.randn(P, H, N, generator=g, dtype=dtype) * 3, -1)
    grads = (torch.randn(P, H, N, generator=g, dtype=dtype), torch.randn(P, R, M, generator=g, dtype=dtype),
             torch.randn(P, N, M, generator=g, dtype=dtype))
    return (raw, memory, previous), grads


def test_the_kernels_build_here():
    assert native.library() is not None, "the compiled kernels did not build (is there a C++ compiler?)"
    assert native.usable(torch.zeros(1)) and native.usable(torch.zeros(1, dtype=torch.float64))
    assert not native.usable(torch.zeros(1, dtype=torch.float16))


@pytest.mark.parametrize("P, H, R, S", [(1, 2, 1, 3), (40, 2, 1, 3), (33, 8, 4, 3), (5, 7, 2, 5)])
def test_the_memory_step_equals_the_torch_ops_at_training_sizes(P, H, R, S):
    """float32, N=128, M=20: every output and every gradient, with and without each incoming gradient."""
    inputs, grads = step_inputs(P, H, R, 128, 20, S)
    out, saved = native.forward(*inputs, S, R)
    ref, ref_saved = fused.torch_memory_forward(*inputs, S, R)
    for name, a, b in zip(fused.MemoryStep._fields, out, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    for present in [(1, 1, 1), (0, 1, 1), (1, 0, 0), (0, 0, 1)]:
        given = [g if keep else None for g, keep in zip(grads, present)]
        for name, a, b in zip(("raw", "memory", "previous"), native.backward(saved, R, *given),
                              fused.torch_memory_backward(ref_saved, R, *given)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=f"{name} {present}")


@pytest.mark.parametrize("P, H, R", [(8, 2, 1), (33, 3, 1), (40, 5, 2)])
def test_rows_split_over_two_threads_give_the_same_numbers_as_one(P, H, R):
    """Each thread computes whole rows with scratch of its own: the split changes no bit of any
    output or gradient (at 1 thread and at P below the split's minimum nothing is split at all)."""
    inputs, grads = step_inputs(P, H, R, 128, 20, 3, seed=P)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            out, saved = native.forward(*inputs, 3, R)
            results.append([t.clone() for t in out] + list(native.backward(saved, R, *grads)))
    finally:
        torch.set_num_threads(threads)
    names = [*fused.MemoryStep._fields, "g_raw", "g_memory", "g_previous"]
    for name, one, two in zip(names, *results):
        assert torch.equal(one, two), name


@pytest.mark.parametrize("P", [8, 33])
def test_the_lstm_cells_rows_split_over_two_threads_give_the_same_numbers_as_one(P):
    g = torch.Generator().manual_seed(P)
    gates, cell = torch.randn(P, 4 * 100, generator=g) * 3, torch.randn(P, 100, generator=g)
    g_hidden, g_cell = torch.randn(P, 100, generator=g), torch.randn(P, 100, generator=g)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            h, c, saved = native.lstm_forward(gates, cell)
            results.append([h.clone(), c.clone(), *native.lstm_backward(saved, g_hidden, g_cell)])
    finally:
        torch.set_num_threads(threads)
    for name, one, two in zip(["hidden", "cell", "g_gates", "g_cell"], *results):
        assert torch.equal(one, two), name


def test_the_kernels_share_torchs_openmp_runtime():
    """The kernels' threads are torch's: loading them maps no second OpenMP runtime into the process
    (two pools of threads spinning on the same 2 cores made a step slower, benchmarks/README.md)."""
    if not Path("/proc/self/maps").is_file():
        pytest.skip("reads /proc/self/maps (Linux)")
    code = ("import json, torch; from ntmviz import native; assert native.library() is not None; "
            "print(json.dumps(sorted({line.split()[-1] for line in open('/proc/self/maps') if 'libgomp' in line})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    runtimes = json.loads(result.stdout)
    assert len(runtimes) == 1, runtimes
    bundled = sorted((Path(torch.__file__).parent / "lib").glob("libgomp*"))  # a wheel's own copy, if any
    if bundled:
        assert Path(runtimes[0]).resolve() in {b.resolve() for b in bundled}, (runtimes, bundled)


def test_a_forked_child_runs_the_kernels_on_one_thread():
    """libgomp's threads do not survive a fork: a child that split rows over them would wait for
    them forever. The parent splits its rows before the fork; the child still steps."""
    code = """if True:
        import os, sys, torch
        sys.path.insert(0, sys.argv[1])
        from test_native import step_inputs
        from ntmviz import native
        torch.set_num_threads(2)
        inputs, grads = step_inputs(32, 2, 1, 128, 20, 3)
        out, saved = native.forward(*inputs, 3, 1)
        pid = os.fork()
        if pid == 0:
            again, saved = native.forward(*inputs, 3, 1)
            native.backward(saved, 1, *grads)
            same = (again.memory.numpy() == out.memory.numpy()).all()  # numpy: torch's own ops would split too
            os._exit(0 if same else 3)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """
    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "0", result.stderr


def test_the_lstm_cell_equals_the_torch_ops():
    g = torch.Generator().manual_seed(0)
    gates, cell = torch.randn(9, 4 * 100, generator=g) * 3, torch.randn(9, 100, generator=g)
    g_hidden, g_cell = torch.randn(9, 100, generator=g), torch.randn(9, 100, generator=g)
    h, c, saved = native.lstm_forward(gates, cell)
    rh, rc, ref_saved = fused.torch_lstm_forward(gates, cell)
    torch.testing.assert_close((h, c), (rh, rc))
    for given in [(g_hidden, g_cell), (None, g_cell), (g_hidden, None)]:
        torch.testing.assert_close(native.lstm_backward(saved, *given), fused.torch_lstm_backward(ref_saved, *given))


def test_a_nan_in_the_controller_output_reaches_what_it_reaches_in_the_torch_ops():
    """Training notices a diverged model by its non-finite loss, so the kernels must not hide a NaN
    (they are compiled with fast math)."""
    inputs, grads = step_inputs(2, 2, 1, 16, 4, 3)
    inputs[0][1, 0] = float("nan")  # row 1's read head's key
    out, saved = native.forward(*inputs, 3, 1)
    out = fused.MemoryStep(*out)
    ref, ref_saved = fused.torch_memory_forward(*inputs, 3, 1)
    assert torch.isnan(out.weights[1, 0]).all() and torch.isnan(out.reads[1]).all()
    for name, a, b in zip(fused.MemoryStep._fields, out, ref):
        assert torch.equal(torch.isnan(a), torch.isnan(b)), name
    back = native.backward(saved, 1, *grads)
    assert torch.isnan(back[0][1]).any() and torch.isfinite(back[0][0]).all()
    for name, a, b in zip(("raw", "memory", "previous"), back, fused.torch_memory_backward(ref_saved, 1, *grads)):
        assert torch.equal(torch.isnan(a), torch.isnan(b)), name


@pytest.mark.parametrize("scale", [1e3, 1e10, 1e20])
def test_huge_controller_outputs_give_what_the_torch_ops_give(scale):
    """A diverging model's step (keys, strengths, gates of 1e20) stays finite where the torch ops
    do: under fast math an exp that overflows, or a fused multiply-add inside a softmax, turns
    into NaN, and a validation check would then fail where torch's would not."""
    inputs, _ = step_inputs(6, 2, 1, 16, 4, 3, seed=5)
    inputs[0].mul_(scale)
    out, _ = native.forward(*inputs, 3, 1)
    ref, _ = fused.torch_memory_forward(*inputs, 3, 1)
    for name, a, b in zip(fused.MemoryStep._fields, out, ref):
        assert torch.isfinite(a).all() and torch.isfinite(b).all(), name
    # keys of 1e20 square past float's range: torch's cosines become 0, the kernels' (summed in double) stay right
    for name in ("weights", "reads", "memory", "shift", "erase", "add", "gate") if scale < 1e19 else ():
        torch.testing.assert_close(getattr(fused.MemoryStep(*out), name), getattr(ref, name), rtol=1e-4, atol=1e-4,
                                   msg=name)
    gates = torch.randn(5, 40, generator=torch.Generator().manual_seed(1)) * scale
    hidden, cell, _ = native.lstm_forward(gates, torch.zeros(5, 10))
    torch.testing.assert_close((hidden, cell), fused.torch_lstm_forward(gates, torch.zeros(5, 10))[:2])


def test_loading_the_kernels_leaves_denormals_alone():
    """Linking with -ffast-math would make the process flush denormals to zero, torch's floats included."""
    code = ("import torch; from ntmviz import native; x = torch.tensor([1e-40]); "
            "assert native.library() is not None; print((x / 2).item() > 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_without_the_kernels_the_step_runs_as_torch_ops_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("NTMVIZ_NATIVE", "0")
    native.library.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="ntmviz.native"):
            assert native.library() is None and not native.usable(torch.zeros(1))
        assert "NTMVIZ_NATIVE=0" in caplog.text
        inputs, _ = step_inputs(3, 2, 1, 16, 4, 3)
        out, saved = fused.memory_forward(*inputs, 3, 1)
        assert not isinstance(saved, native.Saved)
    finally:
        native.library.cache_clear()


def test_a_build_that_fails_is_logged_with_the_compilers_words(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    cache = tmp_path / "kernels"  # its failure's log goes here, not into the user's own cache
    cache.mkdir(mode=0o700)
    monkeypatch.setenv(native.CACHE_ENV, str(cache))
    native.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ntmviz.native"):
            assert native.library() is None
        assert "building the kernels failed" in caplog.text and "torch ops" in caplog.text
        assert [p.suffix for p in cache.glob("kernels-*")] == [".log"]  # the compiler's words, kept
    finally:
        monkeypatch.undo()
        native.library.cache_clear()
    assert native.library() is not None


def test_without_a_compiler_the_step_runs_as_torch_ops_and_says_so(monkeypatch, caplog):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    native.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ntmviz.native"):
            assert native.library() is None
        assert "no C++ compiler found (set CXX)" in caplog.text
    finally:
        monkeypatch.undo()
        native.library.cache_clear()
    assert native.library() is not None


def test_a_read_only_install_builds_its_kernels_in_the_users_cache(monkeypatch, tmp_path):
    """The library goes to the user's cache ($XDG_CACHE_HOME/ntmviz/kernels here), never beside the
    package (which may be read-only, or left behind by `pip uninstall`), and the next process finds
    it there instead of building again."""
    package = Path(native.__file__).parent
    before = sorted(p.name for p in package.iterdir())
    monkeypatch.delenv(native.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    native.library.cache_clear()
    try:
        assert native.library() is not None
        [built] = (tmp_path / "xdg" / "ntmviz" / "kernels").glob("kernels-*.so")
        assert native.loaded_from() == str(built)
        stamp = built.stat().st_mtime_ns
        native.library.cache_clear()
        assert native.library() is not None and built.stat().st_mtime_ns == stamp  # found, not rebuilt
    finally:
        monkeypatch.undo()
        native.library.cache_clear()
    assert sorted(p.name for p in package.iterdir()) == before


def test_an_install_where_nothing_can_be_written_says_where_it_tried(monkeypatch, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path / "a-file" / "kernels"))
    native.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="ntmviz.native"):
            assert native.library() is None
        assert f"the kernel cache {tmp_path / 'a-file' / 'kernels'} cannot be made" in caplog.text
        assert "torch ops" in caplog.text
    finally:
        monkeypatch.undo()
        native.library.cache_clear()
