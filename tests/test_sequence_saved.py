"""fused.run_sequence keeps its tape through ctx.save_for_backward (issue 29).

So torch's version counters catch a saved tensor changed in place before backward, and
saved-tensor hooks (offloading, packing) see every tensor the backward reads. Every test runs
twice: with the compiled kernels (native.py) and with the torch ops that stand in for them.
"""

from __future__ import annotations

import pytest
import torch

from ntmviz.fused import Layer, Spec, run_sequence
from ntmviz.heads import raw_width

K, B, T, N, M, C = 2, 3, 7, 6, 5, 4  # small, unequal sizes
R, W, S = 2, 1, 3


pytestmark = pytest.mark.usefixtures("fast_path")  # every test with the kernels and with the torch ops (conftest.py)


def sequence_inputs(lstm: bool, seed: int = 0) -> tuple[Spec, dict[str, torch.Tensor]]:
    """A two-layer controller's operands for run_sequence, float64: each a leaf that wants a gradient,
    but for the initial weighting, which is fixed, as the model's is."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return (0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    G = 4 * C if lstm else C
    H = R + W
    t = {
        "x_in": randn(K, B, T, G),
        "memory0": randn(K * B, N, M),
        "weights0": torch.softmax(torch.randn(K * B, H, N, generator=g, dtype=torch.float64), -1),
        "w_heads": randn(K, C, raw_width(H, W, M, S)),
        "b_heads": randn(K, 1, raw_width(H, W, M, S)),
        "w_rec0": randn(K, R * M + (C if lstm else 0), G),
        "w_in1": randn(K, C, G),
        "b1": randn(K, 1, G),
    }
    if lstm:
        t["w_rec1"] = randn(K, C, G)
    return Spec(read_heads=R, shift_width=S, lstm=lstm, layers=2), t


def run(spec: Spec, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    layers = [Layer(None, t["w_rec0"], None), Layer(t["w_in1"], t.get("w_rec1"), t["b1"])]
    hidden, reads, _ = run_sequence(spec, t["x_in"], t["memory0"], t["weights0"], (t["w_heads"], t["b_heads"]),
                                    layers)
    return hidden, reads


def loss(hidden: torch.Tensor, reads: torch.Tensor) -> torch.Tensor:
    """Unequal weights per element, so a gradient in the wrong place shows."""
    g = torch.Generator().manual_seed(9)
    return (hidden * torch.randn(hidden.shape, generator=g, dtype=hidden.dtype)).sum() \
        + (reads * torch.randn(reads.shape, generator=g, dtype=reads.dtype)).sum()


def learned(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: v for name, v in t.items() if v.requires_grad}


def grads(spec: Spec, t: dict[str, torch.Tensor], hidden=None, reads=None) -> tuple[torch.Tensor, ...]:
    """The gradients of loss in every learned input; of a new run of the sequence unless one is given."""
    if hidden is None:
        hidden, reads = run(spec, t)
    return torch.autograd.grad(loss(hidden, reads), list(learned(t).values()))


# ---- (1) the gradients are the reference's (the model's against the pure functions: test_fused.py) --

@pytest.mark.parametrize("lstm", [True, False], ids=["lstm", "feed-forward"])
def test_run_sequence_gradcheck(lstm):
    spec, t = sequence_inputs(lstm)
    names = list(t)

    def f(*values):
        return run(spec, dict(zip(names, values)))

    assert torch.autograd.gradcheck(f, tuple(t.values()), fast_mode=True)


# ---- (2) saved-tensor hooks see the tape, and backward reads what they give back ---------------------

def tensors_in(value) -> list[torch.Tensor]:
    """Every tensor in a value, looking into tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


@pytest.mark.parametrize("lstm", [True, False], ids=["lstm", "feed-forward"])
def test_saved_tensor_hooks_see_the_tape_and_nothing_is_kept_beside_it(lstm):
    spec, t = sequence_inputs(lstm)
    packed, unpacked = [], []

    def pack(x):
        packed.append(x)
        return len(packed) - 1  # a handle, not the tensor: backward can only have it through unpack

    def unpack(i):
        unpacked.append(i)
        return packed[i].clone()

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        hidden, reads = run(spec, t)
    node = hidden.grad_fn
    assert reads.grad_fn is node  # the whole time loop is one node ...
    assert len(packed) > 4 * T  # ... whose tape, every step's, went through the hooks
    assert not tensors_in(vars(node)), "a tensor kept on ctx, behind autograd's back"
    # each tensor once; the weights backward reads among them, by identity
    assert len({id(x) for x in packed}) == len(packed)
    assert any(x is t["w_heads"] for x in packed) and any(x is t["w_rec0"] for x in packed)
    assert not any(x is t["b_heads"] or x is t["b1"] for x in packed)  # backward never reads a bias
    hooked = grads(spec, t, hidden, reads)
    assert sorted(unpacked) == list(range(len(packed)))  # every one read back, once
    for name, a, b in zip(learned(t), hooked, grads(spec, t)):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("lstm", [True, False], ids=["lstm", "feed-forward"])
def test_backward_reads_the_tensors_the_unpack_hook_gives(lstm):
    spec, t = sequence_inputs(lstm)
    with torch.autograd.graph.saved_tensors_hooks(lambda x: x, lambda x: torch.full_like(x, float("nan"))):
        hidden, reads = run(spec, t)
    poisoned = torch.autograd.grad(loss(hidden, reads), [t["w_heads"], t["w_rec0"]])
    assert all(g.isnan().all() for g in poisoned)


def test_the_kernels_tape_is_saved_as_blocks(fast_path):
    """With the kernels, each step's outputs are one allocation, saved whole (as _LSTMCell saves its own)."""
    spec, t = sequence_inputs(lstm=True)
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: packed.append(x) or x, lambda x: x):
        run(spec, t)
    flat = [x for x in packed if x.dim() == 1]
    # per step: the memory step's block and each LSTM layer's block; none when the torch ops ran
    assert len(flat) == (3 * T if fast_path == "compiled" else 0)
    # and on either path, the memory before each step, which the memory step's backward reads
    assert sum(x.shape == (K * B, N, M) for x in packed) >= T


# ---- (3) a saved tensor changed in place is caught -------------------------------------------------

@pytest.mark.parametrize("name", ["memory0", "w_heads", "w_rec0", "w_in1"])
def test_an_input_changed_in_place_before_backward_is_an_error(name):
    spec, t = sequence_inputs(lstm=True)
    hidden, reads = run(spec, t)
    with torch.no_grad():
        t[name].add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss(hidden, reads).backward()


def test_a_bias_changed_in_place_changes_nothing_backward_reads():
    """A bias's gradient does not depend on its value: not saved, so changing it in place is no error."""
    spec, t = sequence_inputs(lstm=True)
    expected = grads(spec, t)
    hidden, reads = run(spec, t)
    with torch.no_grad():
        t["b1"].add_(1)
        t["b_heads"].add_(1)
    for name, a, b in zip(learned(t), grads(spec, t, hidden, reads), expected):
        assert torch.equal(a, b), name
