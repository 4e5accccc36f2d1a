"""The NTM's memory step as one registered operator, forward and backward.

    torch.ops.ntmviz.memory_step(raw, memory, previous, shift_width, read_heads)
        -> heads.STEP_FIELDS, then SAVED                    (what fused.memory_step returns, by name)
    torch.ops.ntmviz.memory_step_backward(memory, previous, <BACKWARD_FIELDS>, g_weights, g_reads,
                                          g_memory, read_heads) -> (g_raw, g_memory, g_previous)

Both schemas are written from the NTM's declaration (heads.STEP_FIELDS, which heads.PARAMS and
heads.STAGES make), so a parameter added there is a field here. The forward's outputs are the
step's fields, each its own tensor (an operator's outputs may not share storage), plus SAVED:
|key| [P, H], |slot| [P, N] and their cosines [P, H, N], which the backward reads. Only weights,
reads and memory carry gradients; the rest are marked non-differentiable, as before.

Which implementation runs, chosen by `implementation(memory)`, the same for forward and backward:

    "kernels"    a CPU float32/float64 tensor with the compiled kernels built (native.py)
    "triton"     a CUDA float32/float64 tensor, triton importable (triton_step.py: one program per row)
    "torch ops"  anything else (fused.torch_memory_forward / torch_memory_backward)

The pure functions (heads.activate, addressing.address, memory.read / write) are the reference
(tests/test_ops.py). The training loop (fused.run_sequence, one autograd node per sequence) calls
the same implementations through fused.memory_forward / memory_backward without the dispatcher,
whose cost per call would show at batch 1; fused.memory_step (NTM.step) goes through the operator.

Shapes: P rows, H = R + W heads (read heads first), N slots, M word width, S shifts, Z raw width
(heads.head_sizes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import native
from .addressing import EPS
from .errors import ConfigError
from .fused import MemoryStep, on_triton, torch_memory_backward, torch_memory_forward, triton_kernels
from .heads import BACKWARD_FIELDS, DIFFERENTIABLE, OUTPUTS, STEP_FIELDS, output_shapes, raw_width  # noqa: F401

GRADS = ("g_weights", "g_reads", "g_memory")

_ARGS = "Tensor raw, Tensor memory, Tensor previous, int shift_width, int read_heads"
SCHEMA = f"({_ARGS}) -> ({', '.join(f'Tensor {name}' for name in OUTPUTS)})"
BACKWARD_SCHEMA = ("(Tensor memory, Tensor previous, " + ", ".join(f"Tensor {name}" for name in BACKWARD_FIELDS)
                   + ", " + ", ".join(f"Tensor? {name}" for name in GRADS)
                   + ", int read_heads) -> (Tensor g_raw, Tensor g_memory_before, Tensor g_previous)")


# ---- which implementation ------------------------------------------------------------------------

def triton_step():
    """The Triton kernels' module (ntmviz.triton_step), or None where triton does not import."""
    return triton_kernels()


def implementation(memory: Tensor) -> str:
    """"kernels", "triton" or "torch ops": which implementation runs the step for this tensor."""
    if native.usable(memory):
        return "kernels"
    if on_triton(memory):
        return "triton"
    return "torch ops"


def _check(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int) -> None:
    """ConfigError naming the argument that does not fit: the kernels trust every shape they are given."""
    if raw.dim() != 2 or memory.dim() != 3 or previous.dim() != 3:
        raise ConfigError(f"memory_step: raw must be [P, Z], memory [P, N, M], previous [P, H, N]; got "
                          f"{list(raw.shape)}, {list(memory.shape)}, {list(previous.shape)}")
    P, H, N = previous.shape
    if memory.shape[:2] != (P, N) or raw.shape[0] != P:
        raise ConfigError(f"memory_step: memory {list(memory.shape)} and raw {list(raw.shape)} do not fit "
                          f"previous [P={P}, H={H}, N={N}]")
    if not 0 < read_heads < H or shift_width < 1 or shift_width % 2 == 0 or shift_width // 2 > N:
        raise ConfigError(f"memory_step: read_heads={read_heads}, shift_width={shift_width} do not fit "
                          f"{H} heads and {N} slots (0 < read_heads < heads; an odd shift_width <= 2N+1)")
    width = raw_width(H, H - read_heads, memory.shape[2], shift_width)
    if raw.shape[1] != width:
        raise ConfigError(f"memory_step: raw has {raw.shape[1]} numbers per row; these heads take {width}")
    if raw.dtype != memory.dtype or previous.dtype != memory.dtype:
        raise ConfigError(f"memory_step: raw, memory and previous must share a dtype; got "
                          f"{raw.dtype}, {memory.dtype}, {previous.dtype}")


# ---- the implementations --------------------------------------------------------------------------

def torch_forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int
                  ) -> tuple[Tensor, ...]:
    """OUTPUTS as torch ops (any device)."""
    out, saved = torch_memory_forward(raw, memory, previous, shift_width, read_heads)
    key_norm, slot_norm, cosine = saved[9], saved[10], saved[11]  # [P, H, 1], [P, 1, N], [P, H, N]
    fields = list(out)
    key = STEP_FIELDS.index("key")
    fields[key] = fields[key].clone()  # the key is raw's own numbers (a view): an output may not alias an input
    return (*fields, key_norm.squeeze(-1), slot_norm.squeeze(1), cosine)


def torch_backward(memory: Tensor, previous: Tensor, saved: list[Tensor], read_heads: int,
                   g_weights: Tensor | None, g_reads: Tensor | None, g_memory: Tensor | None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """(g_raw, g_memory, g_previous) as torch ops, from BACKWARD_FIELDS' tensors."""
    f = dict(zip(BACKWARD_FIELDS, saved))
    W = f["erase"].shape[1]
    # what torch_memory_forward kept besides these fields, made again (two pointwise ops)
    change = torch.addcmul(f["add"], f["erase"], memory, value=-1) if W == 1 else None
    log_shifted = torch.log(f["shifted"] + EPS)
    kept = (memory, previous, f["key"], f["beta"], f["gate"], f["shift"], f["gamma"], f["erase"], f["add"],
            f["key_norm"].unsqueeze(-1), f["slot_norm"].unsqueeze(1), f["cosine"], f["content"], f["gated"],
            log_shifted, f["shifted"], f["weights"], change)
    return torch_memory_backward(kept, read_heads, g_weights, g_reads, g_memory)


def _forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int) -> tuple[Tensor, ...]:
    _check(raw, memory, previous, shift_width, read_heads)
    way = implementation(memory)
    if way == "torch ops":
        return torch_forward(raw, memory, previous, shift_width, read_heads)
    P, H, N = previous.shape
    out = [memory.new_empty(shape) for shape in output_shapes(P, H, read_heads, N, memory.shape[2], shift_width)]
    if way == "kernels":
        native.forward_fields(raw, memory, previous, shift_width, read_heads, out)
    else:
        triton_step().forward(raw, memory, previous, shift_width, read_heads, out)
    return tuple(out)


def _backward(memory: Tensor, previous: Tensor, saved: list[Tensor], read_heads: int, g_weights: Tensor | None,
              g_reads: Tensor | None, g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    way = implementation(memory)
    if way == "torch ops":
        return torch_backward(memory, previous, saved, read_heads, g_weights, g_reads, g_memory)
    P, H, N = previous.shape
    M, S = memory.shape[2], saved[BACKWARD_FIELDS.index("shift")].shape[2]
    out = [memory.new_empty(P, raw_width(H, H - read_heads, M, S)), memory.new_empty(P, N, M),
           memory.new_empty(P, H, N)]
    if way == "kernels":
        native.backward_fields(memory, previous, saved, read_heads, g_weights, g_reads, g_memory, out)
    else:
        triton_step().backward(memory, previous, saved, read_heads, g_weights, g_reads, g_memory, out)
    return tuple(out)


# ---- the operators --------------------------------------------------------------------------------

@torch.library.custom_op("ntmviz::memory_step", mutates_args=(), schema=SCHEMA)
def memory_step_op(raw, memory, previous, shift_width, read_heads):
    """The NTM's memory step: raw [P, Z], memory [P, N, M], previous [P, H, N] -> OUTPUTS."""
    return _forward(raw, memory, previous, shift_width, read_heads)


@torch.library.custom_op("ntmviz::memory_step_backward", mutates_args=(), schema=BACKWARD_SCHEMA)
def memory_step_backward_op(memory, previous, *args):
    """Gradients of one memory step: (g_raw [P, Z], g_memory before the step [P, N, M], g_previous [P, H, N])."""
    saved, (g_weights, g_reads, g_memory, read_heads) = list(args[:len(BACKWARD_FIELDS)]), args[len(BACKWARD_FIELDS):]
    return _backward(memory, previous, saved, read_heads, g_weights, g_reads, g_memory)


@memory_step_op.register_fake
def _(raw, memory, previous, shift_width, read_heads):
    _check(raw, memory, previous, shift_width, read_heads)
    P, H, N = previous.shape
    return tuple(memory.new_empty(shape) for shape in output_shapes(P, H, read_heads, N, memory.shape[2], shift_width))


@memory_step_backward_op.register_fake
def _(memory, previous, *args):
    read_heads = args[-1]
    P, H, N = previous.shape
    M, S = memory.shape[2], args[BACKWARD_FIELDS.index("shift")].shape[2]
    return (memory.new_empty(P, raw_width(H, H - read_heads, M, S)), memory.new_empty(P, N, M),
            memory.new_empty(P, H, N))


def _setup_context(ctx, inputs, output):
    ctx.read_heads = inputs[4]
    ctx.set_materialize_grads(False)  # a gradient that did not flow stays None: the kernels skip it
    ctx.mark_non_differentiable(*output[DIFFERENTIABLE:])
    fields = dict(zip(OUTPUTS, output))
    ctx.save_for_backward(inputs[1], inputs[2], *(fields[name] for name in BACKWARD_FIELDS))


def _backward_formula(ctx, g_weights, g_reads, g_memory, *_not_differentiable):
    memory, previous, *saved = ctx.saved_tensors
    g_raw, g_mem, g_previous = torch.ops.ntmviz.memory_step_backward(memory, previous, *saved, g_weights, g_reads,
                                                                     g_memory, ctx.read_heads)
    return g_raw, g_mem, g_previous, None, None


memory_step_op.register_autograd(_backward_formula, setup_context=_setup_context)


def memory_step(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int) -> tuple[Tensor, ...]:
    """torch.ops.ntmviz.memory_step: OUTPUTS (named_step names the first len(STEP_FIELDS))."""
    return torch.ops.ntmviz.memory_step(raw, memory, previous, shift_width, read_heads)


def named_step(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int) -> MemoryStep:
    """Heads' activations, addressing, read and write of one step through the registered operator,
    differentiable in raw, memory and previous: raw [P, sum(head_sizes)] (the heads' linear
    output), memory [P, N, M], previous [P, H, N] -> MemoryStep (NTM.step)."""
    return MemoryStep(*memory_step(raw, memory, previous, shift_width, read_heads)[:len(STEP_FIELDS)])
