"""Training, validation and test data come from disjoint seed namespaces."""

import pytest

import ntmviz
from ntmviz.streams import STREAMS, stream_of, stream_seed
from ntmviz.tasks import get_task
from ntmviz.train import Trainer


def test_each_seed_names_its_stream():
    for stream in STREAMS:
        for seed in (0, 1, 12345, 2**40):
            for index in (0, 1, 999):
                value = stream_seed(stream, seed, index)
                assert 0 <= value < 2**63 and stream_of(value) == stream


def test_no_two_streams_share_a_seed():
    seeds = {s: {stream_seed(s, seed, i) for seed in range(5) for i in range(2000)} for s in STREAMS}
    assert all(len(v) == 5 * 2000 for v in seeds.values())  # no collisions within a stream either
    assert not seeds["train"] & seeds["validation"] and not seeds["train"] & seeds["test"]
    assert not seeds["validation"] & seeds["test"]


def test_no_training_batch_equals_an_evaluation_batch():
    task = get_task("copy", max_length=5)
    model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, 8, 4, controller_size=6))
    trainer = Trainer(model, task, batch_size=8, seeds=0)
    train = {trainer.batch(step).inputs.numpy().tobytes() for step in range(300)}
    for stream in ("validation", "test"):
        held_out = {task.sample(8, seed=stream_seed(stream, 0, i)).inputs.numpy().tobytes() for i in range(300)}
        assert not train & held_out


def test_bad_stream_requests():
    with pytest.raises(ntmviz.ConfigError, match="unknown stream 'dev'"):
        stream_seed("dev", 0, 0)
    with pytest.raises(ntmviz.ConfigError, match="seed must be a non-negative integer"):
        stream_seed("test", -3, 0)
