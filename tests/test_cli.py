"""`ntmviz train | eval | record | export` as a person types them, in a subprocess."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
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
    assert "bit errors/seq (validation" in run.stdout and path.exists()
    assert "scored on 20 validation-stream sequences" in run.stdout
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
    assert report["task"] == "copy" and [r["size"] for r in report["rows"]] == ["training range", "2", "5"]
    assert report["stream"] == "test" and report["seed"] == 0
    for r in report["rows"]:
        lo, hi = r["interval"]
        assert r["samples"] == 10 and 0 <= lo <= r["bit_errors"] <= hi
        assert 0 <= r["exact"] <= 1
    assert report["checksum"] == "verified" and "checksums verified" in run.stderr


def test_eval_says_a_checkpoint_from_before_checksums_carries_none(trained, tmp_path):
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(trained), "np") as f:  # the same file as ntmviz wrote it before checksums
        metadata = {k: v for k, v in f.metadata().items() if k not in ("modelspec.hash_sha256", "ntmviz.checksum")}
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(trained)), str(old), metadata=metadata)
    run = ntmviz_cli("eval", "--checkpoint", old, "--lengths", "2", "--samples", 2, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["checksum"] == "absent"
    assert "carries no checksum" in run.stderr


def test_eval_card_is_written_beside_the_checkpoint(trained, tmp_path):
    ckpt = checkpoint.load(trained, device="cpu")  # the same weights as another seed's run
    copy = checkpoint.save(tmp_path / "c.safetensors", ckpt.model, task=ckpt.task, step=ckpt.step,
                           sequences=ckpt.sequences, meta={**ckpt.meta, "skipped_batches": [12, 40]})
    other = checkpoint.save(tmp_path / "other.safetensors", ckpt.model, task=ckpt.task, step=ckpt.step,
                            sequences=ckpt.sequences, meta={**ckpt.meta, "seed": 7})
    run = ntmviz_cli("eval", "--checkpoint", copy, "--lengths", "4", "--samples", 5, "--card", "--json",
                     "--seeds-from", copy, other)
    assert run.returncode == 0, run.stderr
    card = (tmp_path / "c.md").read_text()
    assert "120 sequences" in card and '"memory_slots": 8' in card and "bit errors/seq" in card
    assert "| from step | lr |" in card and "| 0 | 0.001 | adam | 4 | 10.0 | new |" in card  # the run's phases
    assert "from the test stream" in card and "training batches from the train stream" in card
    assert "2 seeds; bit errors per sequence from" in card and "solved (bit errors < 0.01)" in card
    seeds = json.loads(run.stdout)["seeds"]
    assert [r["seed"] for r in seeds] == [ckpt.meta["seed"], 7]  # the runs' seeds, not the evaluation's
    assert [r["hardest"]["size"] for r in seeds] == ["4", "4"]
    assert seeds[0]["hardest"]["bit_errors"] == seeds[1]["hardest"]["bit_errors"]  # same weights, same sequences
    assert f"{ckpt.meta['seed']} ({ckpt.step})" in card and f"7 ({ckpt.step})" in card
    assert "at 4: from" in card and "under 1" in card
    assert "2 training batch(es) skipped because the gradient overflowed float32 (steps 12, 40)" in card
    assert f"- computed by: {ckpt.compute}\n" in card and ckpt.compute != "not recorded"  # the trained run's path


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


@pytest.mark.parametrize("args, words", [
    (["--stream", "dev"], "evaluation streams are validation and test, not 'dev'"),
    (["--stream", "train"], "not 'train'"),
    (["--samples", "0"], "samples must be a positive integer"),
    (["--lengths", "9"], "needs 9 memory slots, the model has 8"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
])
def test_bad_eval_requests_fail_in_one_line(trained, args, words):
    run = ntmviz_cli("eval", "--checkpoint", trained, *args)
    errors = [line for line in run.stderr.splitlines() if not line.endswith("checksums verified")]
    assert run.returncode == 2 and len(errors) == 1 and errors[0].startswith("ntmviz: error: "), run.stderr
    assert words in errors[0]


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


def test_seeds_train_one_checkpoint_per_seed_and_print_their_table(tmp_path):
    out = tmp_path / "ens.safetensors"
    run = ntmviz_cli("train", *TINY, "--seeds", "0,3", "--steps", 12, "--checkpoint-every", 6, "--eval-samples", 10,
                     "--validation-samples", 10, "--out", out)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if line.strip().startswith(("0 ", "3 "))]
    assert [r[0] for r in rows] == ["0", "3"]
    for seed in (0, 3):
        ckpt = checkpoint.load(tmp_path / f"ens-seed{seed}.safetensors")
        assert ckpt.meta["seed"] == seed and ckpt.meta["ensemble"] == {"seeds": [0, 3], "member": [0, 3].index(seed)}
        assert ckpt.step == 12 and ckpt.meta["validation"]["step"] == [6, 12]
        best = checkpoint.load(tmp_path / f"ens-seed{seed}.best.safetensors")
        assert best.meta["chosen_by"].startswith("validation stream") and best.step in (6, 12)
    assert not out.exists()


def test_seeds_0_is_the_single_run(tmp_path):
    one = tmp_path / "a.safetensors"
    other = tmp_path / "b.safetensors"
    for flag, path in (("--seed", one), ("--seeds", other)):
        run = ntmviz_cli("train", *TINY, flag, "0", "--steps", 5, "--eval-samples", 5, "--out", path)
        assert run.returncode == 0, run.stderr
    a, b = checkpoint.load(one), checkpoint.load(other)
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("args, words", [
    (["--seeds", "5-2"], "runs backwards"),
    (["--seeds", ""], "empty item"),
    (["--seeds", "-1"], "not a seed"),
    (["--seeds", "0-100000"], "more than 1024 seeds"),
    (["--seeds", "0-1000", "--batch-size", "100000"], "GB per step"),
    (["--seed", "1", "--seeds", "2"], "not both"),
])
def test_bad_seed_requests_fail_before_any_work(args, words, tmp_path):
    run = ntmviz_cli("train", "--task", "copy", *args, "--out", tmp_path / "x.safetensors")
    assert run.returncode == 2, run.stderr
    assert words in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not list(tmp_path.iterdir())


def test_ctrl_c_saves_every_model_of_an_ensemble_between_steps_and_resumes_exactly(tmp_path):
    out = tmp_path / "int.safetensors"
    common = [*TINY, "--checkpoint-every", "1000000", "--validate-every", "1000000"]
    proc = subprocess.Popen([sys.executable, "-m", "ntmviz.cli", "train", *common, "--seeds", "1-2",
                             "--steps", "1000000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while "step 100 " not in line and time.time() < deadline:
        line = proc.stdout.readline()
    assert "step 100 " in line, proc.stderr.read() if proc.poll() is not None else "no progress"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    paths = [tmp_path / f"int-seed{s}.safetensors" for s in (1, 2)]
    assert f"--resume {paths[0]} {paths[1]}" in err
    stopped = [checkpoint.load(p) for p in paths]
    step = stopped[0].step
    assert step >= 100 and stopped[1].step == step
    # resuming to step + 3 gives what an uninterrupted run to step + 3 gives
    run = ntmviz_cli("train", "--resume", *paths, "--steps", step + 3, "--eval-samples", 5, "--quiet")
    assert run.returncode == 0, run.stderr
    straight = tmp_path / "straight.safetensors"
    run = ntmviz_cli("train", *common, "--seeds", "1-2", "--steps", step + 3, "--eval-samples", 5, "--out", straight)
    assert run.returncode == 0, run.stderr
    for seed, path in zip((1, 2), paths):
        resumed, direct = checkpoint.load(path), checkpoint.load(tmp_path / f"straight-seed{seed}.safetensors")
        assert resumed.step == direct.step == step + 3
        for (name, x), y in zip(resumed.model.state_dict().items(), direct.model.state_dict().values()):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


def test_eval_reports_what_the_heads_did(trained, tmp_path):
    run = ntmviz_cli("eval", "--checkpoint", trained, "--lengths", "2", "--samples", 6)
    assert run.returncode == 0, run.stderr
    assert "What the heads did (copy, 6 sequences from the test stream, seed 0;" in run.stdout
    for title in ("write head walks one slot per vector", "parked read head does not slip",
                  "playback starts where writing began"):
        assert title in run.stdout
    run = ntmviz_cli("eval", "--checkpoint", trained, "--lengths", "2", "--samples", 6, "--json",
                     "--stream", "validation")
    heads = json.loads(run.stdout)["mechanisms"]
    assert heads["task"] == "copy" and heads["stream"] == "validation" and heads["samples"] == 6
    assert [r["name"] for r in heads["results"]] == ["write_walk", "playback", "playback_start", "parked",
                                                     "parked_focus", "sharpness"]
    for r in heads["results"]:
        assert r["samples"] <= 6 and isinstance(r["passes"], bool) and r["verdict"]
    lstm = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(input_size=4, output_size=3, hidden_size=8, layers=1))
    from ntmviz.tasks import get_task

    path = tmp_path / "lstm.safetensors"
    checkpoint.save(path, lstm, task=get_task("copy", bits=3, max_length=3))
    run = ntmviz_cli("eval", "--checkpoint", path, "--lengths", "2", "--samples", 4)
    assert run.returncode == 0, run.stderr
    assert "What the heads did: nothing to measure (the LSTM baseline has no memory)." in run.stdout


def test_eval_takes_a_shipped_checkpoint_by_name():
    run = ntmviz_cli("eval", "--checkpoint", "copy-ntm", "--lengths", "3", "--samples", 4, "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    checkout = Path(ntmviz.__file__).resolve().parent.parent  # the checkout's top-level checkpoints/
    assert report["task"] == "copy" and report["checkpoint"] == str(checkout / "checkpoints" / "copy-ntm.safetensors")


@pytest.mark.parametrize("task_name, saved_at", [("copy", [1, 2]), ("ngrams", [1])])
def test_validation_keeps_the_checkpoint_best_by_the_tasks_own_measure(task_name, saved_at, monkeypatch):
    """Copy's best has the fewest bit errors; n-grams' the lowest loss (its measure, the
    cross-entropy: which bits a near-optimal predictor gets wrong is mostly luck)."""
    from types import SimpleNamespace
    import ntmviz.evaluate
    from ntmviz.tasks import get_task
    from ntmviz.train_callbacks import Validation  # the callback `ntmviz train`, sweeps and the app share

    scores = iter([(10.0, 5.0), (8.0, 6.0)])  # step 2: fewer bit errors, higher loss
    monkeypatch.setattr(ntmviz.evaluate, "sequence_results", lambda *a, **k: dict(zip(
        ("bit_errors", "loss"), (np.array([[v]]) for v in next(scores)))))
    trainer = SimpleNamespace(model=None, task=get_task(task_name), alive=[True],
                              validation=[{"step": [], "bit_errors": [], "loss": []}])
    saved = []
    validation = Validation(1, 5, on_best=lambda trainer, k, step: saved.append(step))
    validation.on_start(trainer)
    for step in (1, 2):
        validation.on_step(trainer, SimpleNamespace(step=step))
    assert saved == saved_at
    assert trainer.validation[0] == {"step": [1, 2], "bit_errors": [10.0, 8.0], "loss": [5.0, 6.0]}
    again = Validation(1, 5)
    again.on_start(trainer)  # a resumed run's best, from the recorded scores
    assert again.best[0] == trainer.task.validation_key(*((10.0, 5.0) if task_name == "ngrams" else (8.0, 6.0)))


def test_an_ngrams_card_gives_every_seeds_gap_to_the_optimum(tmp_path):
    """n-grams are measured by the gap to the Bayesian optimum, so that is what the card lists
    per seed (and the spread), beside bit errors that are mostly luck."""
    from ntmviz.tasks import get_task

    task = get_task("ngrams", n=3, sequence_length=20)
    paths = []
    for seed in (4, 9):
        torch.manual_seed(seed)
        model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=8, memory_width=4,
                                            controller_size=8))
        paths.append(checkpoint.save(tmp_path / f"ng{seed}.safetensors", model, task=task, meta={"seed": seed}))
    run = ntmviz_cli("eval", "--checkpoint", paths[0], "--samples", 30, "--card", "--json", "--seeds-from", *paths)
    assert run.returncode == 0, run.stderr
    seeds = json.loads(run.stdout)["seeds"]
    card = (tmp_path / "ng4.md").read_text()
    assert "gap, bits per prediction" in card
    gaps = []
    for row in seeds:
        gap, (lo, hi) = row["extra"]["gap"], row["extra"]["gap_interval"]
        gaps.append(gap)
        assert f"{gap:8.4f} [{lo:.4f}, {hi:.4f}]" in card, row
    assert gaps[0] != gaps[1]  # two models, two gaps
    low, high = sorted(gaps)
    assert f"gap to the optimum from {low:.4f} to {high:.4f} bits per prediction" in card


def test_out_may_name_a_folder(tmp_path):
    """`--out DIR` (or `.`) writes TASK-MODEL.safetensors there, per seed for an ensemble; a file stays a file."""
    from ntmviz.cli import member_paths
    assert member_paths(tmp_path, [0], "tsp-pointer") == [tmp_path / "tsp-pointer.safetensors"]
    assert member_paths(Path("."), [0, 2], "copy-ntm") == [Path("copy-ntm-seed0.safetensors"),
                                                           Path("copy-ntm-seed2.safetensors")]
    assert member_paths(tmp_path / "a.safetensors", [0, 1]) == [tmp_path / "a-seed0.safetensors",
                                                                tmp_path / "a-seed1.safetensors"]


def test_another_models_setting_is_named_as_ignored(tmp_path):
    """One command line may give every model's sizes (benchmarks/figure2a.py's do); a setting the
    chosen model does not take is one line naming the models it sets, and the model is built
    without it."""
    from ntmviz.config import foreign_settings
    assert foreign_settings("ntm", ["memory_slots", "hops", "lr"]) == [
        "--hops is not a setting of --model ntm (it sets memn2n): ignored"]
    assert foreign_settings("deque", ["embedding_size"]) == [
        "--embedding-size is not a setting of --model deque (it sets memn2n or dmn): ignored"]
    assert foreign_settings("dmn", ["embedding_size", "gate_supervision", "passes"]) == []
    path = tmp_path / "m.safetensors"
    run = ntmviz_cli("train", *TINY, "--hops", 2, "--steps", 1, "--eval-samples", 2, "--out", path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[0] == "ntmviz: --hops is not a setting of --model ntm (it sets memn2n): ignored"
    assert checkpoint.load(path).config.kind == "ntm"
