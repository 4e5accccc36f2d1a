"""Sweeps on a real Dask cluster on loopback: a scheduler and two worker processes.

One test kills a worker in the middle of a sweep and checks that every run still finishes,
exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from dataclasses import dataclass

import pytest

import ntmviz
from ntmviz import checkpoint, config, models
from ntmviz.config import StackRNNConfig, setting, setting_of
from ntmviz.contract import Family
from ntmviz.sweep import Sweep, build_run, keys, parse_grid, run_paths, run_sweep, sequence_models

distributed = pytest.importorskip("distributed", reason="sweeps need the cluster extra: pip install 'ntmviz[cluster]'")

TINY = {"task.max_length": 3, "task.bits": 3, "memory_slots": 8, "memory_width": 5, "controller_size": 12,
        "batch_size": 4}


def tiny_sweep(steps=15, seeds=(0, 1, 2, 3), **options) -> Sweep:
    return Sweep.create("copy", seeds=seeds, grid={"lr": [1e-3, 3e-3]}, fixed=TINY, steps=steps,
                        validation_samples=10, ensemble_size=2, **options)


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    yield cluster
    cluster.close()


def test_a_sweep_runs_every_combination_and_seed_once(cluster, tmp_path):
    sweep = tiny_sweep()
    seen = []
    rows = run_sweep(sweep, tmp_path, scheduler=cluster.scheduler_address,
                     progress=lambda done, total, row: seen.append((done, total)))
    assert sorted((r["combination"], r["seed"]) for r in rows) == [(c, s) for c in (0, 1) for s in (0, 1, 2, 3)]
    assert seen[-1] == (8, 8)
    for row in rows:
        paths = run_paths(tmp_path, row["combination"], row["seed"])
        ckpt = checkpoint.load(paths["checkpoint"])
        assert ckpt.step == 15 and ckpt.meta["seed"] == row["seed"]
        assert ckpt.meta["sweep"]["settings"]["lr"] == row["lr"]
        assert "Validation score (sweep lr=" in paths["card"].read_text()
        lo, hi = row["interval"]
        assert lo <= row["bit_errors"] <= hi and row["status"] == "done" and row["solved"] in (True, False)
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("combination,lr,seed,bit_errors") and len(lines) == 9
    assert (tmp_path / "summary.md").read_text().count("| lr=0.001 |") == 4
    # the same sweep again: nothing left to do, the same rows
    again = run_sweep(sweep, tmp_path, scheduler=cluster.scheduler_address)
    assert sorted(json.dumps(r, sort_keys=True) for r in again) == sorted(json.dumps(r, sort_keys=True) for r in rows)


def test_a_killed_worker_does_not_lose_or_double_a_run(cluster, tmp_path):
    sweep = tiny_sweep(steps=400, seeds=(0, 1, 2, 3, 4, 5))
    client = distributed.Client(cluster.scheduler_address)
    pids = client.run(os.getpid)
    client.close()
    killed = []

    def kill_one():  # as soon as some run has a partial checkpoint, a worker dies mid-task
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            runs = tmp_path / "runs"
            if runs.exists() and any(runs.glob("c*/partial-seed*.safetensors")):
                victim = next(iter(pids.values()))
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.2)

    thread = threading.Thread(target=kill_one, daemon=True)
    thread.start()
    rows = run_sweep(sweep, tmp_path, scheduler=cluster.scheduler_address)
    thread.join(5)
    assert killed, "no worker was killed: the sweep ended before any partial checkpoint"
    keys = [(r["combination"], r["seed"]) for r in rows]
    assert sorted(keys) == [(c, s) for c in (0, 1) for s in range(6)]  # every run, once
    assert len((tmp_path / "summary.csv").read_text().splitlines()) == 13
    assert not list((tmp_path / "runs").glob("c*/partial-*"))  # the finished runs left no partials behind
    for row in rows:
        assert checkpoint.load(tmp_path / row["checkpoint"]).step == 400


def test_a_diverging_run_is_recorded_as_diverged(cluster, tmp_path):
    sweep = Sweep.create("copy", seeds=[0, 1], fixed={**TINY, "lr": 1e38, "clip": 0}, steps=20,
                         validation_samples=5, ensemble_size=2)
    rows = run_sweep(sweep, tmp_path, scheduler=cluster.scheduler_address)
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "diverged" and "at step" in row["diverged"] and row["solved"] is False


def test_a_folder_of_another_sweep_is_refused_unless_resumed(cluster, tmp_path):
    (tmp_path / "sweep.json").write_text(tiny_sweep(seeds=(0,)).to_json())
    with pytest.raises(ntmviz.ConfigError, match="holds another sweep"):
        run_sweep(tiny_sweep(seeds=(0, 1)), tmp_path, scheduler=cluster.scheduler_address)
    rows = run_sweep(tiny_sweep(seeds=(0, 1)), tmp_path, scheduler=cluster.scheduler_address, resume=True)
    assert sorted(r["seed"] for r in rows) == [0, 0]  # the folder's own sweep: seed 0, both combinations


def test_bad_definitions_are_refused_before_any_work(tmp_path):
    with pytest.raises(ntmviz.ConfigError, match="unknown setting 'lrr'"):
        parse_grid(["lrr=1e-3"])
    with pytest.raises(ntmviz.ConfigError, match="lr: 'fast' is not a number"):
        parse_grid(["lr=fast"])
    with pytest.raises(ntmviz.ConfigError, match="heads: 0 is below 1"):
        parse_grid(["heads=0"])
    with pytest.raises(ntmviz.ConfigError, match="needs 20 memory slots"):
        Sweep.create("copy", seeds=[0], grid={"memory_slots": [128, 10]})
    with pytest.raises(ntmviz.ConfigError, match="not a setting of the lstm model"):
        Sweep.create("copy", model="lstm", seeds=[0], grid={"heads": [1, 2]})
    assert not list(tmp_path.iterdir())


def like(cls, name: str):
    s = setting_of(cls, name)
    return setting(s.default, help=s.help, type=s.type, bounds=s.bounds, softbounds=s.softbounds)


@dataclass(frozen=True)
class ToyConfig:
    """A model kind sweep.py has never heard of, registered at test time alone."""

    input_size: int = setting(help="inputs per step", type=int, bounds=(1, None), derived=True)
    output_size: int = setting(help="outputs per step", type=int, bounds=(1, None), derived=True)
    controller_size: int = like(StackRNNConfig, "controller_size")
    stacks: int = like(StackRNNConfig, "stacks")

    kind = "toy"

    @classmethod
    def for_task(cls, task, **settings):
        return cls(task.input_size, task.output_size, **settings)


def test_the_models_and_their_keys_come_from_the_configs(monkeypatch):
    assert {"ntm", "lstm"} <= set(sequence_models()) and "memn2n" not in sequence_models()  # it reads stories
    assert "hops" not in keys()
    monkeypatch.setattr(config, "MODEL_KINDS", (*config.MODEL_KINDS, "toy"))
    monkeypatch.setitem(config.MODEL_CONFIGS, "toy", ToyConfig)
    assert "toy" not in sequence_models()  # no model registered for it yet
    monkeypatch.setitem(models.FAMILIES, "toy", Family("toy", "Toy memory", memory="none"))
    assert keys()["stacks"] == setting_of(ToyConfig, "stacks")._replace(owner=keys()["stacks"].owner)
    sweep = Sweep.create("copy", model="toy", seeds=[0], grid={"stacks": [1, 3], "controller_size": [8]})
    task, built, _, _ = build_run(sweep, sweep.combinations()[1], [0], check_only=True)
    assert built == ToyConfig(task.input_size, task.output_size, controller_size=8, stacks=3)
    with pytest.raises(ntmviz.ConfigError, match="heads: not a setting of the toy model"):
        Sweep.create("copy", model="toy", seeds=[0], grid={"heads": [1, 2]})
    with pytest.raises(ntmviz.ConfigError, match="stacks: not a setting of the ntm model"):
        Sweep.create("copy", model="ntm", seeds=[0], grid={"stacks": [1, 2]})
    with pytest.raises(ntmviz.ConfigError, match="unknown model 'memn2n'; expected one of ntm, lstm"):
        Sweep.create("copy", model="memn2n", seeds=[0])


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "sweep"
    run = subprocess.run([sys.executable, "-m", "ntmviz.cli", "sweep", "--task", "copy", "--seeds", "0",
                          "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 5 s" in run.stderr
    assert run.stderr.count("\n") == 1 and not out.exists()
