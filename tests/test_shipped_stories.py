"""The shipped memory-network checkpoints (checkpoints/babi_*-memn2n): they load as
memn2n models of their story task, answer held-out test-stream stories, attend to the
supporting facts, and carry their cards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ntmviz import checkpoint
from ntmviz.evaluate import evaluate
from ntmviz.mechanisms import measure
from ntmviz.models.memn2n import MemN2N

FOLDER = Path(__file__).resolve().parent.parent / "checkpoints"
# name -> the fewest stories on which the hops' top memory is a supporting fact: the issue's 90%
# for the one- and two-fact tasks; yes/no answers well but its hops attend to the supporting fact
# on 79% [76, 81] of test stories (its card), so its bar is that card's claim, with room for 200 stories.
SUPPORT = {"babi_single-memn2n": 0.9, "babi_two-memn2n": 0.9, "babi_yes_no-memn2n": 0.7}
SHIPPED = list(SUPPORT)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_story_checkpoint_answers_and_attends_to_the_facts(name):
    torch.set_num_threads(1)
    path = FOLDER / f"{name}.safetensors"
    ckpt = checkpoint.load(path, device="cpu")
    assert ckpt.checksum == "verified" and isinstance(ckpt.model, MemN2N) and ckpt.config.kind == "memn2n"
    assert ckpt.task.name == name.split("-")[0] and ckpt.optimizer_state is None
    assert len(ckpt.meta["trained_seeds"]) >= 3 and "validation stream" in ckpt.meta["seed_chosen_by"]
    assert path.stat().st_size < 100_000
    # a seed of its own on the test stream, not the card's seed 0
    score = evaluate(ckpt.model, ckpt.task, stream="test", seed=11, samples=400)[0]
    assert score.bit_errors < 0.05  # answer error rate
    report = measure(ckpt.model, ckpt.task, stream="test", seed=11, samples=200)[0]
    assert report.results[0].mechanism.name == "support" and report.results[0].value >= SUPPORT[name]
    card = path.with_suffix(".md").read_text()
    assert "answer error rate" in card and "hops attend to a supporting fact" in card and "every seed trained" in card
