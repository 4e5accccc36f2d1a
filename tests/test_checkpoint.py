"""Checkpoints: round trips, optimiser state, and every kind of bad file."""

import pickle

import pytest
import torch

import ntmviz
from ntmviz import checkpoint
from ntmviz.files import seal
from ntmviz.tasks import get_task


@pytest.fixture
def task():
    return get_task("copy", bits=3, max_length=4)


@pytest.fixture
def trained(task):
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=7, memory_width=5,
                                        read_heads=2, controller_size=11))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = task.sample(3, seed=0)
    for _ in range(2):
        opt.zero_grad()
        task.loss(model(batch.inputs), batch).backward()
        opt.step()
    return model, opt


def test_round_trip_rebuilds_model_and_optimiser(trained, task, tmp_path):
    model, opt = trained
    path = checkpoint.save(tmp_path / "c.safetensors", model, task=task, optimizer=opt, step=2, sequences=6,
                           meta={"seed": 3})
    ckpt = checkpoint.load(path, device="cpu")
    assert ckpt.config == model.config and ckpt.task == task
    assert (ckpt.step, ckpt.sequences, ckpt.meta["seed"], ckpt.optimizer_class) == (2, 6, 3, "Adam")
    for (k, a), b in zip(model.state_dict().items(), ckpt.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = task.sample(2, seed=1).inputs
    with torch.no_grad():
        assert torch.equal(model(x), ckpt.model(x))
    opt2 = torch.optim.Adam(ckpt.model.parameters(), lr=1e-2)
    opt2.load_state_dict(ckpt.optimizer_state)
    for p1, p2 in zip(model.parameters(), ckpt.model.parameters()):
        s1, s2 = opt.state[p1], opt2.state[p2]
        assert torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"]) and float(s1["step"]) == float(s2["step"])


def test_lstm_baseline_round_trip(task, tmp_path):
    model = ntmviz.LSTMBaseline(ntmviz.LSTMConfig(task.input_size, task.output_size, hidden_size=9, layers=2))
    ckpt = checkpoint.load(checkpoint.save(tmp_path / "l.safetensors", model, task=task), device="cpu")
    assert isinstance(ckpt.model, ntmviz.LSTMBaseline) and ckpt.optimizer_state is None


def test_save_is_atomic_and_replaces(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "c.safetensors"
    checkpoint.save(path, model, step=1)
    checkpoint.save(path, model, step=2)
    assert checkpoint.load(path).step == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def bad(path, *words):
    with pytest.raises(ntmviz.FileFormatError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_bad_files(trained, task, tmp_path):
    model, _ = trained
    good = checkpoint.save(tmp_path / "good.safetensors", model, task=task).read_bytes()
    bad(tmp_path / "missing.safetensors", "no such")
    (tmp_path / "half.safetensors").write_bytes(good[: len(good) // 2])
    bad(tmp_path / "half.safetensors", "half.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    bad(tmp_path / "empty.safetensors", "empty.safetensors: empty file")
    # a pickle is refused without being unpickled
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"a": 1}))
    bad(tmp_path / "evil.pt", "not a ntmviz-checkpoint")
    # an episode is a safetensors file of another format
    ep = ntmviz.record(model, task.sample(1, seed=0))[0]
    ep.save(tmp_path / "ep.safetensors")
    bad(tmp_path / "ep.safetensors", "ntmviz-episode")
    # weights that do not fit the config in the header
    other = ntmviz.NTM(ntmviz.NTMConfig(task.input_size, task.output_size, memory_slots=7, memory_width=6))
    data = checkpoint.save(tmp_path / "other.safetensors", other, task=task).read_bytes()
    head_len = int.from_bytes(data[:8], "little")
    header = data[8:8 + head_len].replace(b'\\"memory_width\\": 6', b'\\"memory_width\\": 5')
    assert header != data[8:8 + head_len]
    edited = data[:8] + header + data[8 + head_len:]
    (tmp_path / "mismatch.safetensors").write_bytes(edited)
    bad(tmp_path / "mismatch.safetensors", "damaged: its header does not match the checksum")
    (tmp_path / "mismatch.safetensors").write_bytes(seal(edited))  # a consistent file, wrong weights
    bad(tmp_path / "mismatch.safetensors", "do not match the config")
