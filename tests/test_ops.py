"""The NTM's memory step as a registered operator (ops.py): torch.ops.ntmviz.memory_step against the
pure reference functions (heads.activate, addressing.address, memory.read / write) composed with
autograd, values and gradients in float64; gradcheck; torch.library.opcheck; its schema written
from the NTM's declaration; saved tensors going through save_for_backward; bad input.

Every test runs with the compiled kernels and with the torch ops (the GPU's fallback);
tests/test_triton_step.py runs the Triton kernels the same way."""

from __future__ import annotations

import pytest
import torch

from ntmviz import native, ops
from ntmviz.addressing import address, shift_index
from ntmviz.errors import ConfigError
from ntmviz.fused import MemoryStep
from ntmviz.ops import named_step as memory_step
from ntmviz.heads import NTM, PARAMS, STEP_FIELDS, activate, head_sizes
from ntmviz.memory import read, write

P, N, M = 3, 7, 5


@pytest.fixture(autouse=True, params=["kernels", "torch ops"])
def way(request, monkeypatch):
    if request.param == "torch ops":
        monkeypatch.setattr(native, "usable", lambda tensor: False)
    else:
        assert native.library() is not None, "the compiled kernels did not build (is there a C++ compiler?)"
    assert ops.implementation(torch.zeros(1, dtype=torch.float64)) == request.param
    return request.param


def inputs(heads, write_heads, shift_width, seed=0, rows=P, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(rows, sum(head_sizes(heads, write_heads, M, shift_width)), generator=g, dtype=dtype) * 1.5
    memory = torch.randn(rows, N, M, generator=g, dtype=dtype)
    previous = torch.softmax(torch.randn(rows, heads, N, generator=g, dtype=dtype) * 2, -1)
    return [t.requires_grad_() for t in (raw, memory, previous)]


def reference(raw, memory, previous, shift_width, read_heads):
    """Every output of the operator from the pure functions; the cosines and norms written out."""
    H = previous.shape[1]
    p = activate(raw, H, H - read_heads, M, shift_width)
    trace = address(memory, previous, p.key, p.beta, p.gate, p.shift, p.gamma, shift_index(N, shift_width))
    w = trace.weights
    key_norm = (p.key * p.key).sum(-1).add(1e-8).sqrt()  # [P, H]
    slot_norm = (memory * memory).sum(-1).add(1e-8).sqrt()  # [P, N]
    cosine = torch.einsum("phm,pnm->phn", p.key, memory) / (key_norm[:, :, None] * slot_norm[:, None, :])
    fields = {"weights": w, "reads": read(memory, w[:, :read_heads]),
              "memory": write(memory, w[:, read_heads:], p.erase, p.add), **p._asdict(),
              "content": trace.content, "gated": trace.gated, "shifted": trace.shifted,
              "key_norm": key_norm, "slot_norm": slot_norm, "cosine": cosine}
    return tuple(fields[name] for name in ops.OUTPUTS)


SHAPES = [(1, 1, 3), (2, 3, 5), (1, 2, 1), (3, 1, 3)]  # read heads, write heads, shift width


@pytest.mark.parametrize("R, W, S", SHAPES)
def test_the_operator_matches_the_reference_in_values_and_gradients(R, W, S):
    x = inputs(R + W, W, S)
    calls = native.calls()
    out = torch.ops.ntmviz.memory_step(*x, S, R)
    ref = reference(*x, S, R)
    assert len(out) == len(ops.OUTPUTS)
    for name, a, b in zip(ops.OUTPUTS, out, ref):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, msg=name)
    g = torch.Generator().manual_seed(1)
    probes = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in ref[:3]]
    grads = torch.autograd.grad(sum((a * p).sum() for a, p in zip(out[:3], probes)), x)
    ref_grads = torch.autograd.grad(sum((a * p).sum() for a, p in zip(ref[:3], probes)), x)
    for name, a, b in zip(("raw", "memory", "previous"), grads, ref_grads):
        torch.testing.assert_close(a, b, msg=name)
    # the compiled kernels ran exactly when they should (checkpoints record it from this counter)
    assert native.calls() - calls == (1 if ops.implementation(x[1]) == "kernels" else 0)


@pytest.mark.parametrize("R, W, S", [(1, 1, 3), (2, 2, 3)])
def test_gradcheck(R, W, S):
    x = inputs(R + W, W, S, seed=4, rows=2)
    assert torch.autograd.gradcheck(lambda *t: torch.ops.ntmviz.memory_step(*t, S, R)[:3], x)
    # one gradient missing (the last step's memory, which nothing reads): the others still right
    assert torch.autograd.gradcheck(lambda *t: torch.ops.ntmviz.memory_step(*t, S, R)[1], x)


@pytest.mark.parametrize("R, W, S", [(1, 1, 3), (2, 3, 5)])
def test_opcheck(R, W, S):
    x = inputs(R + W, W, S, seed=2)
    result = torch.library.opcheck(torch.ops.ntmviz.memory_step.default, (*x, S, R))
    assert all(v == "SUCCESS" for v in result.values()), result
    detached = [t.detach() for t in x]
    result = torch.library.opcheck(torch.ops.ntmviz.memory_step.default, (*detached, S, R))
    assert all(v == "SUCCESS" for v in result.values()), result
    # the backward operator on its own, with every incoming gradient and with one missing
    out = dict(zip(ops.OUTPUTS, torch.ops.ntmviz.memory_step(*detached, S, R)))
    saved = [out[name] for name in ops.BACKWARD_FIELDS]
    grads = [torch.randn_like(out[name]) for name in ("weights", "reads", "memory")]
    for given in (grads, [grads[0], grads[1], None]):
        result = torch.library.opcheck(torch.ops.ntmviz.memory_step_backward.default,
                                       (*detached[1:], *saved, *given, R))
        assert all(v == "SUCCESS" for v in result.values()), result


def test_fused_memory_step_is_the_operator_with_named_fields():
    x = inputs(3, 2, 3)
    step = memory_step(*x, 3, 1)
    assert isinstance(step, MemoryStep) and step._fields == STEP_FIELDS
    assert "ntmviz_memory_step" in step.weights.grad_fn.name()  # the operator's autograd node
    for name, a, b in zip(STEP_FIELDS, step, reference(*x, 3, 1)):
        torch.testing.assert_close(a, b, msg=name)
    # only weights, reads and memory carry gradients
    assert [t.requires_grad for t in step] == [name in ("weights", "reads", "memory") for name in STEP_FIELDS]


def test_the_schema_is_the_declarations_fields():
    schema = torch.ops.ntmviz.memory_step.default._schema
    assert [r.name for r in schema.returns] == list(STEP_FIELDS) + ["key_norm", "slot_norm", "cosine"]
    assert [a.name for a in schema.arguments] == ["raw", "memory", "previous", "shift_width", "read_heads"]
    # the declaration's parameters and stages, in its order, after weights, reads and memory
    declared = [p.name for p in NTM.groups[1].params] + [s.name for s in NTM.groups[1].stages]
    assert list(STEP_FIELDS[3:]) == declared and list(PARAMS) == declared[:len(PARAMS)]
    backward = torch.ops.ntmviz.memory_step_backward.default._schema
    assert [a.name for a in backward.arguments][2:-4] == list(ops.BACKWARD_FIELDS)
    assert [r.name for r in backward.returns] == ["g_raw", "g_memory_before", "g_previous"]


def test_saved_tensors_go_through_save_for_backward():
    x = inputs(3, 2, 3)
    packed = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = torch.ops.ntmviz.memory_step(*x, 3, 1)
    # memory and previous, then every field the backward reads: nothing kept on ctx behind autograd's back
    assert len(packed) == 2 + len(ops.BACKWARD_FIELDS)
    assert packed[0] is x[1] and packed[1] is x[2]
    names = dict(zip(ops.OUTPUTS, out))
    assert all(a is names[n] for a, n in zip(packed[2:], ops.BACKWARD_FIELDS))
    # so torch's version counter catches an input changed in place before the backward
    out = torch.ops.ntmviz.memory_step(*x, 3, 1)
    with torch.no_grad():
        x[1].add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out[0].sum().backward()


def test_float32_on_the_cpu_matches_float64():
    x64 = inputs(4, 2, 3, seed=3)
    x32 = [t.detach().float().requires_grad_() for t in x64]
    out64, out32 = torch.ops.ntmviz.memory_step(*x64, 3, 2), torch.ops.ntmviz.memory_step(*x32, 3, 2)
    for name, a, b in zip(ops.OUTPUTS, out32, out64):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b.float(), rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("change, field", [
    (lambda raw, memory, previous: (raw[:, :-1], memory, previous), "raw has 52 numbers per row"),
    (lambda raw, memory, previous: (raw, memory[:2], previous), "memory"),
    (lambda raw, memory, previous: (raw, memory.float(), previous), "share a dtype"),
    (lambda raw, memory, previous: (raw, memory[0], previous), "raw must be"),
])
def test_bad_input_is_one_clear_error(change, field):
    x = [t.detach() for t in inputs(3, 2, 3)]
    with pytest.raises(ConfigError, match=field):
        torch.ops.ntmviz.memory_step(*change(*x), 3, 1)
    with pytest.raises(ConfigError, match="read_heads=3"):
        torch.ops.ntmviz.memory_step(*x, 3, 3)
    with pytest.raises(ConfigError, match="shift_width=4"):
        torch.ops.ntmviz.memory_step(*x, 4, 1)


def test_the_lstm_cell_saves_through_save_for_backward():
    from ntmviz.fused import lstm_cell

    g = torch.Generator().manual_seed(6)
    gates = torch.randn(P, 4 * 6, generator=g, dtype=torch.float64, requires_grad=True)
    cell = torch.randn(P, 6, generator=g, dtype=torch.float64, requires_grad=True)
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        hidden, new_cell = lstm_cell(gates, cell)
    # the kernels: the cell before and their one block of outputs; the torch ops: cell, i, f, g, o, tanh(cell')
    assert len(packed) == (2 if native.usable(cell) else 6) and packed[0] is cell
    hidden, new_cell = lstm_cell(gates, cell)
    with torch.no_grad():
        cell.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        hidden.sum().backward()
