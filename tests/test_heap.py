"""The training process's heap keeps a step's freed tape (ntmviz/heap.py): measured by page faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

# A training step's pattern: some 40 blocks of 1.3 MB (a step's outputs at 128 rows) alive together,
# then all freed; the page faults of the last five rounds, after two to warm up.
ROUNDS = """if True:
    import resource, sys, torch
    from ntmviz import heap
    if sys.argv[1] == "keep":
        assert heap.keep_freed_memory()
    def rounds(n):
        for _ in range(n):
            tape = [torch.ones(128 * 128 * 20) for _ in range(40)]
            del tape
    rounds(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds(5)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_a_training_process_reuses_the_pages_a_step_freed():
    pages = 5 * 40 * 128 * 128 * 20 * 4 // 4096  # what five rounds touch: 32,000 pages
    assert faults("default") > pages // 2  # glibc hands them back and faults them in again
    assert faults("keep") < pages // 100


def test_the_train_command_sets_it(monkeypatch, tmp_path):
    from ntmviz import heap
    from ntmviz.cli import main
    calls = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: calls.append("kept") or True)
    assert main(["train", "--task", "copy", "--memory-slots", "24", "--memory-width", "4", "--controller-size", "8", "--quiet",
                 "--steps", "2", "--batch-size", "2", "--out", str(tmp_path / "copy.safetensors")]) == 0
    assert calls == ["kept"]
