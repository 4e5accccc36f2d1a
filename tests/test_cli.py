"""`ntmviz train | eval | record | export` as a person types them, in a subprocess."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ntmviz
from ntmviz import checkpoint

TINY = ["--task", "copy", "--task-option", "max_length=3", "--task-option", "bits=3", "--memory-slots", "8",
        "--memory-width", "5", "--controller-size", "12", "--batch-size", "4", "--quiet"]


def ntmviz_cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "ntmviz.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.safetensors"
    run = ntmviz_cli("train", *TINY, "--steps", 30, "--checkpoint-every", 10, "--eval-samples", 20, "--out", path)
    assert run.returncode == 0, run.stderr
    assert "bit errors per sequence" in run.stdout and path.exists()
    return path


def test_train_writes_a_checkpoint_that_resumes(trained, tmp_path):
    ckpt = checkpoint.load(trained)
    assert (ckpt.step, ckpt.sequences, ckpt.task.name) == (30, 120, "copy")
    assert ckpt.optimizer_state is not None and ckpt.meta["history"]["sequences"]
    out = tmp_path / "more.safetensors"
    run = ntmviz_cli("train", "--resume", trained, "--steps", 40, "--out", out, "--quiet", "--slim")
    assert run.returncode == 0, run.stderr
    more = checkpoint.load(out)
    assert (more.step, more.sequences) == (40, 160) and more.optimizer_state is None


def test_eval_json_reports_each_size(trained):
    run = ntmviz_cli("eval", "--checkpoint", trained, "--lengths", "2,5", "--samples", 10, "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["task"] == "copy" and [r["size"] for r in report["rows"]] == ["training range", 2, 5]
    assert all(r["samples"] == 10 and r["bit_errors"] >= 0 for r in report["rows"])
    assert report["checksum"] == "verified" and "checksums verified" in run.stderr


def test_eval_says_a_shipped_checkpoint_carries_no_checksum():
    shipped = Path(__file__).resolve().parent.parent / "checkpoints" / "copy-ntm.safetensors"
    run = ntmviz_cli("eval", "--checkpoint", shipped, "--lengths", "2", "--samples", 2, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["checksum"] == "absent"
    assert "carries no checksum" in run.stderr


def test_eval_card_is_written_beside_the_checkpoint(trained, tmp_path):
    copy = tmp_path / "c.safetensors"
    copy.write_bytes(trained.read_bytes())
    run = ntmviz_cli("eval", "--checkpoint", copy, "--lengths", "4", "--samples", 5, "--card")
    assert run.returncode == 0, run.stderr
    card = (tmp_path / "c.md").read_text()
    assert "120 sequences" in card and '"memory_slots": 8' in card and "bit errors/seq" in card


def test_record_writes_an_episode_of_the_asked_length(trained, tmp_path):
    out = tmp_path / "ep.safetensors"
    run = ntmviz_cli("record", "--checkpoint", trained, "--length", 5, "--seed", 2, "--out", out)
    assert run.returncode == 0, run.stderr
    ep = ntmviz.Episode.load(out)
    assert ep.steps == 2 * 5 + 1 and ep.memory.shape == (12, 8, 5)
    assert ep.meta["task"] == "copy" and ep.meta["seed"] == 2
    np.testing.assert_allclose(ep.read.weights[3] @ ep.memory[3], ep.reads[3], atol=1e-5)


@pytest.mark.parametrize("args, words", [
    (["train", "--task", "sorting"], "unknown task 'sorting'"),
    (["train", "--model", "gru", *TINY[:4]], "unknown model 'gru'"),
    (["train", "--task", "copy", "--memory-slots", "10"], "needs 20 memory slots"),
    (["train", "--task", "copy", "--memory-slots", "0"], "memory_slots must be a positive integer"),
])
def test_bad_training_requests_fail_in_one_line(args, words, tmp_path):
    run = ntmviz_cli(*args, "--out", tmp_path / "x.safetensors")
    assert run.returncode == 2
    assert words in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_bad_record_and_eval_requests(trained, tmp_path):
    run = ntmviz_cli("record", "--checkpoint", trained, "--task", "associative_recall", "--out", tmp_path / "e")
    assert run.returncode == 2 and "trained on copy, not associative_recall" in run.stderr
    run = ntmviz_cli("record", "--checkpoint", trained, "--length", 9, "--out", tmp_path / "e")
    assert run.returncode == 2 and "needs 9 memory slots, the model has 8" in run.stderr
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(trained.read_bytes()[:500])
    for command in (["eval"], ["record", "--out", tmp_path / "e"], ["train", "--out", tmp_path / "t"]):
        flag = "--resume" if command[0] == "train" else "--checkpoint"
        run = ntmviz_cli(*command, flag, cut)
        assert run.returncode == 2 and "cut.safetensors" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "e").exists()


def test_nan_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "nan.safetensors"
    run = ntmviz_cli("train", *TINY, "--lr", "1e20", "--clip", "0", "--steps", 200, "--checkpoint-every", 1,
                     "--out", out)
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "training stopped" in run.stderr and "at step" in run.stderr
    assert out.exists()
    ckpt = checkpoint.load(out)  # the last good checkpoint, from before the NaN
    assert ckpt.step >= 1 and all(np.isfinite(p.detach().numpy()).all() for p in ckpt.model.parameters())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_saves_and_says_how_to_resume(tmp_path, sig):
    out = tmp_path / "int.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "ntmviz.cli", "train", *TINY, "--steps", "1000000",
                             "--checkpoint-every", "1000000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while "step 100 " not in line and time.time() < deadline:  # --quiet prints every 100 steps
        line = proc.stdout.readline()
    assert "step 100 " in line, proc.stderr.read() if proc.poll() is not None else "no progress"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert checkpoint.load(out).step >= 100
