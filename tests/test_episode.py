"""Tests for ntmviz.episode: record(), the Episode's shapes and self-consistency, files.

Sizes are small and unequal (B=3, T=4, I=6, O=4, N=7, M=5, R=2, W=2, S=3).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import ntmviz
from ntmviz import NTM, Episode, FileFormatError, HeadRecord, LSTMBaseline, LSTMConfig, NTMConfig, record
from ntmviz.episode import FORMAT, VERSION

B, T, I, O, N, M, R, W, S = 3, 4, 6, 4, 7, 5, 2, 2, 3


def make_ntm(seed=0, **changes) -> NTM:
    torch.manual_seed(seed)
    base = dict(input_size=I, output_size=O, memory_slots=N, memory_width=M, read_heads=R, write_heads=W,
                controller_size=11, shift_range=S // 2, memory_init_value=0.1)
    return NTM(NTMConfig(**{**base, **changes}))


def make_inputs(seed=1) -> torch.Tensor:
    return torch.rand(B, T, I, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def model() -> NTM:
    return make_ntm()


@pytest.fixture
def episode(model) -> Episode:
    x = make_inputs()
    targets = torch.rand(B, T, O, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([0.0, 0.0, 1.0, 1.0]).expand(B, T)
    return record(model, x, targets, mask=mask, meta={"task": "test", "seed": 7})[1]


# ---- record ----------------------------------------------------------------------------

def test_record_single_gives_an_episode(model):
    ep = record(model, make_inputs()[0])
    assert isinstance(ep, Episode)
    assert ep.steps == len(ep) == T and ep.slots == N and ep.width == M


def test_record_batch_gives_a_list(model):
    eps = record(model, make_inputs())
    assert isinstance(eps, list) and len(eps) == B
    assert all(isinstance(ep, Episode) and ep.steps == T for ep in eps)


def test_record_accepts_numpy(model):
    x = make_inputs()
    a = record(model, x.numpy()[0])
    b = record(model, x[0])
    np.testing.assert_array_equal(a.memory, b.memory)


def test_record_batch_object(model):
    x = make_inputs()
    targets = torch.zeros(B, T, O)
    mask = torch.ones(B, T)
    batch = SimpleNamespace(inputs=x, targets=targets, mask=mask, lengths=torch.tensor([4, 2, 3]))
    eps = record(model, batch)
    assert [ep.steps for ep in eps] == [4, 2, 3]
    assert eps[1].targets.shape == (2, O) and eps[1].mask.shape == (2,)


def test_episode_shapes(episode):
    ep = episode
    expected = {
        "inputs": (T, I), "outputs": (T, O), "targets": (T, O), "mask": (T,),
        "memory": (T + 1, N, M), "reads": (T, R, M),
    }
    for name, shape in expected.items():
        a = getattr(ep, name)
        assert a.shape == shape, name
        assert a.dtype == np.float32, name
    for kind, heads in (("read", R), ("write", W)):
        rec = getattr(ep, kind)
        assert isinstance(rec, HeadRecord) and rec.heads == heads
        shapes = dict(key=(T, heads, M), beta=(T, heads), gate=(T, heads), shift=(T, heads, S),
                      gamma=(T, heads), content=(T, heads, N), gated=(T, heads, N), shifted=(T, heads, N),
                      weights=(T, heads, N))
        if kind == "write":
            shapes.update(erase=(T, W, M), add=(T, W, M))
        # the NTM's records under the generic names, in the order the addressing makes them
        assert list(rec.stages) == ["content", "gated", "shifted"]
        assert list(rec.params) == ["key", "beta", "gate", "shift", "gamma"] + (["erase", "add"] if kind == "write" else [])
        for name, shape in shapes.items():
            a = getattr(rec, name)
            assert a.shape == shape, (kind, name)
            assert a.dtype == np.float32, (kind, name)
    ep.validate()


def test_episode_values_are_sane(episode):
    ep = episode
    for rec in (ep.read, ep.write):
        for stage in (rec.content, rec.gated, rec.shifted, rec.weights, rec.shift):
            assert np.all(stage >= 0)
            np.testing.assert_allclose(stage.sum(-1), 1, atol=1e-5)
    assert np.all((ep.outputs >= 0) & (ep.outputs <= 1))
    np.testing.assert_allclose(ep.memory[0], 0.1)  # memory before the first step
    assert ep.meta["task"] == "test" and ep.meta["seed"] == 7
    assert ep.meta["model"]["kind"] == "ntm" and ep.meta["model"]["memory_slots"] == N


def test_reads_equal_weights_times_memory(episode):
    for t in range(T):
        np.testing.assert_allclose(episode.read.weights[t] @ episode.memory[t], episode.reads[t], atol=1e-5)


def test_replay_write_rebuilds_next_memory(episode):
    for t in range(T):
        np.testing.assert_allclose(episode.replay_write(t), episode.memory[t + 1], atol=1e-5)


def test_memory_changes_over_the_episode(episode):
    assert not np.allclose(episode.memory[0], episode.memory[-1])


def test_record_with_one_write_head_is_consistent():
    model = make_ntm(read_heads=1, write_heads=1)
    ep = record(model, make_inputs()[2])
    for t in range(T):
        np.testing.assert_allclose(ep.read.weights[t] @ ep.memory[t], ep.reads[t], atol=1e-5)
        np.testing.assert_allclose(ep.replay_write(t), ep.memory[t + 1], atol=1e-5)


def test_record_outputs_equal_training_forward(model):
    x = make_inputs()
    eps = record(model, x)
    with torch.no_grad():
        want = torch.sigmoid(model(x)).numpy()
    for b, ep in enumerate(eps):
        np.testing.assert_allclose(ep.outputs, want[b], atol=1e-6)
        np.testing.assert_array_equal(ep.inputs, x[b].numpy())


def test_record_trace_equals_model_steps(model):
    x = make_inputs()
    ep = record(model, x)[0]
    state = model.initial_state(B)
    with torch.no_grad():
        for t in range(T):
            _, state, trace = model.step(x[:, t], state)
            np.testing.assert_allclose(ep.read.weights[t], trace.weights[0, :R].numpy(), atol=1e-6)
            np.testing.assert_allclose(ep.write.weights[t], trace.weights[0, R:].numpy(), atol=1e-6)
            np.testing.assert_allclose(ep.write.erase[t], trace.erase[0].numpy(), atol=1e-6)
            np.testing.assert_allclose(ep.memory[t + 1], trace.memory[0].numpy(), atol=1e-6)


def test_record_with_lengths_trims_each(model):
    x = make_inputs()
    full = record(model, x)
    eps = record(model, x, lengths=[2, 4, 1])
    for ep, whole, n in zip(eps, full, [2, 4, 1]):
        assert ep.steps == n
        assert ep.memory.shape == (n + 1, N, M)
        assert ep.reads.shape == (n, R, M)
        assert ep.read.weights.shape == (n, R, N) and ep.write.add.shape == (n, W, M)
        np.testing.assert_array_equal(ep.memory, whole.memory[: n + 1])
        np.testing.assert_array_equal(ep.write.weights, whole.write.weights[:n])
        np.testing.assert_array_equal(ep.outputs, whole.outputs[:n])
        ep.validate()


@pytest.mark.parametrize("training", [True, False])
def test_record_keeps_the_training_flag(model, training):
    model.train(training)
    record(model, make_inputs())
    assert model.training is training
    assert all(m.training is training for m in model.modules())


def test_record_does_not_track_gradients(model):
    record(model, make_inputs())
    assert all(p.grad is None for p in model.parameters())


def test_record_rejects_wrong_input_width(model):
    with pytest.raises(ntmviz.ConfigError, match=str(I)):
        record(model, torch.zeros(T, I + 1))
    with pytest.raises(ntmviz.ConfigError):
        record(model, torch.zeros(B, 0, I))


def test_record_float64_model():
    model = make_ntm().double()
    ep = record(model, make_inputs()[0])
    assert ep.memory.dtype == np.float32
    for t in range(T):
        np.testing.assert_allclose(ep.read.weights[t] @ ep.memory[t], ep.reads[t], atol=1e-5)


# ---- files -----------------------------------------------------------------------------

def assert_same_episode(a: Episode, b: Episode):
    assert a.meta == b.meta and a.slot_labels == b.slot_labels
    for name in ("inputs", "outputs", "targets", "mask", "memory", "reads"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    for kind in ("read", "write"):
        ra, rb = getattr(a, kind), getattr(b, kind)
        assert (ra is None) == (rb is None), kind
        if ra is not None:
            assert ra.arrays().keys() == rb.arrays().keys()
            assert list(ra.stages) == list(rb.stages) and list(ra.params) == list(rb.params)
            for k, v in ra.arrays().items():
                np.testing.assert_array_equal(v, getattr(rb, k), err_msg=f"{kind}.{k}")


def test_save_load_round_trip(episode, tmp_path):
    path = episode.save(tmp_path / "ep.safetensors")
    assert Path(path).is_file()
    again = Episode.load(path)
    assert_same_episode(episode, again)
    assert again.meta["task"] == "test" and again.meta["model"] == episode.meta["model"]


def test_from_bytes_round_trip(episode, tmp_path):
    path = episode.save(tmp_path / "ep.safetensors")
    assert_same_episode(episode, Episode.from_bytes(path.read_bytes()))


def test_save_creates_folders(episode, tmp_path):
    path = episode.save(tmp_path / "a" / "b" / "ep.safetensors")
    assert_same_episode(episode, Episode.load(path))


def test_save_leaves_no_temp_files(episode, tmp_path):
    episode.save(tmp_path / "ep.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["ep.safetensors"]


def test_save_replaces_an_existing_file(model, tmp_path):
    path = tmp_path / "ep.safetensors"
    first, second = record(model, make_inputs())[:2]
    first.save(path)
    second.save(path)
    assert_same_episode(second, Episode.load(path))
    assert [p.name for p in tmp_path.iterdir()] == ["ep.safetensors"]


def test_failed_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = tmp_path / "ep.safetensors"
    first, second = record(model, make_inputs())[:2]
    first.save(path)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ntmviz.files.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        second.save(path)
    monkeypatch.undo()
    assert_same_episode(first, Episode.load(path))
    assert [p.name for p in tmp_path.iterdir()] == ["ep.safetensors"]


def test_lstm_baseline_episode(tmp_path):
    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig(input_size=I, output_size=O, hidden_size=9, layers=2))
    x = make_inputs()
    eps = record(model, x, torch.zeros(B, T, O))
    ep = eps[0]
    assert not ep.has_memory and ep.memory is None and ep.read is None and ep.write is None
    assert ep.reads is None and ep.slots == 0
    assert ep.outputs.shape == (T, O) and ep.targets.shape == (T, O)
    with torch.no_grad():
        np.testing.assert_allclose(ep.outputs, torch.sigmoid(model(x))[0].numpy(), atol=1e-6)
    ep.validate()
    again = Episode.load(ep.save(tmp_path / "lstm.safetensors"))
    assert_same_episode(ep, again)
    assert again.meta["model"]["kind"] == "lstm"


def test_bit_errors(episode):
    errors = episode.bit_errors()
    assert errors.shape == (T,)
    assert np.all(errors[:2] == 0)  # unscored steps


# ---- bad files -----------------------------------------------------------------------

def raises_format_error(path_or_bytes, *words):
    with pytest.raises(FileFormatError) as info:
        if isinstance(path_or_bytes, bytes):
            Episode.from_bytes(path_or_bytes, name="upload.safetensors")
        else:
            Episode.load(path_or_bytes)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)
    return message


def saved_arrays(episode, tmp_path) -> dict[str, np.ndarray]:
    return st_load(episode.save(tmp_path / "src.safetensors").read_bytes())


def header(episode, version=str(VERSION), fmt=FORMAT, meta="{}"):
    """A version 3 header describing `episode`'s arrays (as `save` writes it), without checksums."""
    return {"format": fmt, "version": version, "meta": meta, "contents": json.dumps(sorted(episode.arrays())),
            "family": json.dumps(episode.family.to_dict())}


def test_file_format_error_is_a_value_error():
    assert issubclass(FileFormatError, ValueError)


def test_missing_file(tmp_path):
    raises_format_error(tmp_path / "nope.safetensors", "nope.safetensors", "no such")


def test_directory_is_not_a_file(tmp_path):
    raises_format_error(tmp_path, str(tmp_path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    raises_format_error(path, "empty.safetensors: empty file")


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.9])
def test_truncated_file(episode, tmp_path, fraction):
    data = episode.save(tmp_path / "full.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: int(len(data) * fraction)])
    raises_format_error(path, "cut.safetensors")


def test_one_byte_short(episode, tmp_path):
    data = episode.save(tmp_path / "full.safetensors").read_bytes()
    raises_format_error(data[:-1], "upload.safetensors")


@pytest.mark.parametrize("size", [3, 8, 100, 5000])
def test_random_bytes(tmp_path, size):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes())
    raises_format_error(path, "noise.safetensors")


def test_header_length_pointing_past_the_end():
    raises_format_error((10**6).to_bytes(8, "little") + b'{"a": 1}', "upload.safetensors")


def test_header_json_not_an_object():
    body = b"[1, 2, 3]"
    raises_format_error(len(body).to_bytes(8, "little") + body + b"\0" * 16, "upload.safetensors")


def test_header_not_json():
    body = b"\xff\xfe not json at all"
    raises_format_error(len(body).to_bytes(8, "little") + body + b"\0" * 16, "upload.safetensors")


def test_safetensors_file_of_another_format(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(st_save({"weight": np.zeros((3, 2), np.float32)}, metadata={"format": "pt"}))
    raises_format_error(path, "weights.safetensors", FORMAT, "'pt'")


def test_safetensors_file_without_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    path.write_bytes(st_save({"inputs": np.zeros((3, 2), np.float32)}))
    raises_format_error(path, FORMAT)


def test_checkpoint_is_not_an_episode(episode, tmp_path):
    arrays = saved_arrays(episode, tmp_path)
    path = tmp_path / "other.safetensors"
    path.write_bytes(st_save(arrays, metadata=header(episode, fmt="ntmviz-checkpoint")))
    raises_format_error(path, "ntmviz-checkpoint")


def test_future_version(episode, tmp_path):
    arrays = saved_arrays(episode, tmp_path)
    path = tmp_path / "future.safetensors"
    path.write_bytes(st_save(arrays, metadata=header(episode, version="99")))
    raises_format_error(path, "future.safetensors", "99", "version")


def test_rewritten_current_version_loads(episode, tmp_path):
    """The control for the bad-file tests: the same API with the right header loads."""
    arrays = saved_arrays(episode, tmp_path)
    path = tmp_path / "same.safetensors"
    path.write_bytes(st_save(arrays, metadata=header(episode, meta=json.dumps(episode.meta))))
    assert_same_episode(episode, Episode.load(path))


def test_bad_meta_json(episode, tmp_path):
    arrays = saved_arrays(episode, tmp_path)
    raises_format_error(st_save(arrays, metadata=header(episode, meta="{not json")), "meta")


@pytest.mark.parametrize(
    "missing", ["inputs", "outputs", "memory", "reads", "read.weights", "write.erase", "write.key", "read.shift"])
def test_missing_arrays(episode, tmp_path, missing):
    arrays = saved_arrays(episode, tmp_path)
    del arrays[missing]
    path = tmp_path / "partial.safetensors"
    path.write_bytes(st_save(arrays, metadata=header(episode)))
    raises_format_error(path, "partial.safetensors", missing.split(".")[-1])


def test_unknown_head_array(episode, tmp_path):
    arrays = saved_arrays(episode, tmp_path)
    arrays["read.colour"] = np.zeros((T, R), np.float32)
    raises_format_error(st_save(arrays, metadata=header(episode)), "colour")


@pytest.mark.parametrize("name, shape", [("memory", (T, N, M)), ("reads", (T, R + 1, M)),
                                         ("write.weights", (T, W, N + 1)), ("mask", (T + 1,))])
def test_inconsistent_shapes(episode, tmp_path, name, shape):
    arrays = saved_arrays(episode, tmp_path)
    arrays[name] = np.zeros(shape, np.float32)
    raises_format_error(st_save(arrays, metadata=header(episode)), name.split(".")[-1])
