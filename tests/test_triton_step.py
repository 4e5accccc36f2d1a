"""The memory step's Triton kernels (triton_step.py) under Triton's interpreter, on this CPU: values
and gradients against the pure reference functions in float64, every incoming gradient present or
missing, through the registered operator (gradcheck) and through the training loop's whole-sequence
node. The interpreter runs the same kernel source a GPU compiles, one program per row, with numpy.

Needs triton (the test extra; `pip install triton`: no CUDA toolchain needed for the interpreter).
On a GPU, tests/test_gpu.py runs the compiled kernels."""

from __future__ import annotations

import os

import pytest

# before triton is imported: its jit decorator reads this when the kernels are defined
os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="triton is not installed (pip install triton, or the test extra): "
                                     "the Triton kernels of the memory step are not tested")

import torch  # noqa: E402

import ntmviz  # noqa: E402
from ntmviz import fused, native, ops, triton_step  # noqa: E402
from ntmviz.addressing import address, shift_index  # noqa: E402
from ntmviz.heads import activate, head_sizes  # noqa: E402
from ntmviz.memory import read, write  # noqa: E402
from ntmviz.models import build_model  # noqa: E402

P, N, M = 3, 7, 5
if not triton_step._forward_kernel.__class__.__name__.startswith("Interpreted"):
    pytest.skip("triton was imported before TRITON_INTERPRET=1 was set: run this file on its own",
                allow_module_level=True)


def inputs(heads, write_heads, shift_width, seed=0, rows=P):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(rows, sum(head_sizes(heads, write_heads, M, shift_width)), generator=g, dtype=torch.float64)
    memory = torch.randn(rows, N, M, generator=g, dtype=torch.float64)
    previous = torch.softmax(torch.randn(rows, heads, N, generator=g, dtype=torch.float64) * 2, -1)
    return [(t * 1.5 if i == 0 else t).detach().requires_grad_() for i, t in enumerate((raw, memory, previous))]


def reference(raw, memory, previous, shift_width, read_heads):
    """ops.OUTPUTS from the pure functions, the norms and cosines written out."""
    H = previous.shape[1]
    p = activate(raw, H, H - read_heads, M, shift_width)
    trace = address(memory, previous, p.key, p.beta, p.gate, p.shift, p.gamma, shift_index(N, shift_width))
    w = trace.weights
    key_norm = (p.key * p.key).sum(-1).add(1e-8).sqrt()
    slot_norm = (memory * memory).sum(-1).add(1e-8).sqrt()
    cosine = torch.einsum("phm,pnm->phn", p.key, memory) / (key_norm[:, :, None] * slot_norm[:, None, :])
    fields = {"weights": w, "reads": read(memory, w[:, :read_heads]),
              "memory": write(memory, w[:, read_heads:], p.erase, p.add), **p._asdict(),
              "content": trace.content, "gated": trace.gated, "shifted": trace.shifted,
              "key_norm": key_norm, "slot_norm": slot_norm, "cosine": cosine}
    return tuple(fields[name] for name in ops.OUTPUTS)


@pytest.fixture
def on_triton(monkeypatch):
    """The operator and the training loop pick the Triton kernels for CPU tensors, as they do for CUDA ones."""
    monkeypatch.setattr(ops, "implementation", lambda memory: "triton")
    monkeypatch.setattr(native, "usable", lambda tensor: False)
    real = fused.triton_kernels

    def forward(raw, memory, previous, shift_width, read_heads, into=None):
        fields, saved = real().run_forward(raw, memory, previous, shift_width, read_heads)
        return fused.MemoryStep(*fields[:len(fused.STEP_FIELDS)]), saved

    monkeypatch.setattr(fused, "memory_forward", forward)


@pytest.mark.parametrize("R, W, S", [(1, 1, 3), (2, 3, 5), (1, 2, 1), (3, 1, 3)])
def test_the_kernels_match_the_reference_in_values_and_gradients(R, W, S):
    x = inputs(R + W, W, S)
    raw, memory, previous = (t.detach() for t in x)
    H = R + W
    out = [memory.new_empty(shape) for shape in ops.output_shapes(P, H, R, N, M, S)]
    calls = native.calls()
    triton_step.forward(raw, memory, previous, S, R, out)
    assert native.calls() == calls + 1  # counted, so a checkpoint records that a kernel ran
    ref = reference(*x, S, R)
    for name, a, b in zip(ops.OUTPUTS, out, ref):
        torch.testing.assert_close(a, b, msg=name)
    g = torch.Generator().manual_seed(1)
    probes = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in ref[:3]]
    named = dict(zip(ops.OUTPUTS, out))
    saved = [named[name] for name in ops.BACKWARD_FIELDS]
    # every incoming gradient, and each one missing in turn (None: a gradient that did not flow)
    for missing in (None, 0, 1, 2):
        given = [None if i == missing else p for i, p in enumerate(probes)]
        ref_grads = torch.autograd.grad(sum((a * p).sum() for a, p in zip(ref[:3], given) if p is not None), x,
                                        retain_graph=True)
        grads = [raw.new_empty(raw.shape), memory.new_empty(memory.shape), previous.new_empty(previous.shape)]
        triton_step.backward(memory, previous, saved, R, *given, grads)
        for name, a, b in zip(("raw", "memory", "previous"), grads, ref_grads):
            torch.testing.assert_close(a, b, msg=f"{name}, gradient {missing} missing")


def test_float32_matches_float64():
    x = [t.detach() for t in inputs(3, 2, 3, seed=5)]
    out64 = [x[1].new_empty(s) for s in ops.output_shapes(P, 3, 1, N, M, 3)]
    out32 = [t.float() for t in out64]
    triton_step.forward(*x, 3, 1, out64)
    triton_step.forward(*(t.float() for t in x), 3, 1, out32)
    for name, a, b in zip(ops.OUTPUTS, out32, out64):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, b.float(), rtol=1e-4, atol=1e-5, msg=name)


def test_the_operator_on_the_triton_kernels_passes_gradcheck(on_triton):
    x = inputs(3, 2, 3, seed=4, rows=2)
    assert torch.autograd.gradcheck(lambda *t: torch.ops.ntmviz.memory_step(*t, 3, 1)[:3], x, fast_mode=True)
    out = torch.ops.ntmviz.memory_step(*x, 3, 1)
    for name, a, b in zip(ops.OUTPUTS, out, reference(*x, 3, 1)):
        torch.testing.assert_close(a, b, msg=name)


def test_the_training_loop_on_the_triton_kernels_matches_the_torch_ops(on_triton, monkeypatch):
    """A whole sequence (fused.run_sequence: forward, then backward in reverse) of a 2-seed ensemble."""
    config = ntmviz.NTMConfig(input_size=4, output_size=3, memory_slots=N, memory_width=M, controller_size=6,
                              read_heads=2, write_heads=2)
    model = build_model(config, seeds=[0, 1]).double()
    x = torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    calls = native.calls()
    y = model(x)
    y.square().sum().backward()
    assert native.calls() - calls == 4  # one kernel call per step
    grads = [p.grad.clone() for p in model.parameters()]
    monkeypatch.undo()
    monkeypatch.setattr(native, "usable", lambda tensor: False)  # now the torch ops
    model.zero_grad()
    y_ref = model(x)
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref)
    for (name, p), g in zip(model.named_parameters(), grads):
        torch.testing.assert_close(g, p.grad, msg=name)


def test_a_gpu_kernel_run_is_recorded_as_such():
    record = native.compute_path("cuda:0", kernels_ran=True)
    assert record["path"] == "gpu kernel" and record["name"] == "triton" and record["version"] == triton_step.VERSION
    assert native.describe_compute(record).startswith("gpu kernel (name triton, version ")
