"""The fast path of the NTM: its maths as plain tensor ops with hand-written backward passes.

On a CPU the NTM is bound by dispatch, not arithmetic: each step is a few dozen tiny ops,
and autograd records every one and replays it backward. Here the same maths as the pure
reference functions (heads.activate, addressing.address, memory.read and memory.write, an
LSTM cell) runs with autograd off, and the backward pass is written out in fewer, larger
ops. Two granularities share the same forward and backward code:

    run_sequence(...)        a whole sequence as ONE autograd node: the time loop runs
                             inside, and backward runs the loop in reverse; the weight
                             gradients of all steps come out of one product each
    ops.named_step(...)      one step's heads -> address -> read -> write as one node: the
                             registered operator torch.ops.ntmviz.memory_step (ops.py, above this)
    lstm_cell(...)           one LSTM cell's pointwise part as one node (used by step())

Inside them, the memory step runs as compiled loops on a CPU (native.py, kernels.cpp), as
Triton kernels on a CUDA GPU with triton installed (triton_step.py), and as the torch ops
below anywhere else: memory_forward / memory_backward choose (the operator's implementations,
called without the dispatcher). The LSTM cell's pointwise part: compiled loops on a CPU, else
torch ops (lstm_forward / lstm_backward).
tests/test_fused.py checks both against the reference functions, values and gradients, and
gradcheck in float64; tests/test_native.py checks one against the other at training sizes.

Shapes: K models, B batch, P = K x B rows (model major), T steps, H = R + W heads (read
heads first), N slots, M word width, S shifts, C controller units, G = 4C (LSTM) or C
(feed-forward) pre-activation width. See heads.py for the layout of the heads' raw vector.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import NamedTuple

import torch
from torch import Tensor

from . import native
from .addressing import EPS
from .heads import PARAMS, STEP_FIELDS, activate

log = logging.getLogger(__name__)

# What one memory step returns, named once in heads.STEP_FIELDS (the kernels write the same
# fields in the same order): weights [P, H, N] (w_t of every head: the next step's w_{t-1}),
# reads [P, R, M] and memory [P, N, M] (after this step's write) carry gradients; then every
# head parameter (heads.PARAMS: key [P, H, M], beta, gate, gamma [P, H], shift [P, H, S],
# erase, add [P, W, M]) and every addressing stage (content, gated, shifted [P, H, N]).
MemoryStep = NamedTuple("MemoryStep", [(name, Tensor) for name in STEP_FIELDS])
MemoryStep.__doc__ = "What one memory step returns (heads.STEP_FIELDS). Only the first three carry gradients."


def _softmax_backward(grad: Tensor, out: Tensor) -> Tensor:
    """d/dx of softmax(x) along the last axis, given its output and the output's gradient."""
    return out * (grad - (grad * out).sum(-1, keepdim=True))


# ---- one memory step: forward and backward as plain functions ------------------------------------
# Written for few passes over the [P, N, M] memory, the cost that grows with the batch: the
# circular shift is a windowed sum over a wrapped copy of the weighting (no gather), outer
# products are broadcasts, and the write is M + w (a - e * M), two passes for one write head.

def _wrapped_windows(w: Tensor, half: int) -> Tensor:
    """w [..., N] -> [..., N, 2*half + 1]: window i holds w(i - half) .. w(i + half), indices mod N."""
    if half == 0:
        return w.unsqueeze(-1)
    return torch.cat([w[..., -half:], w, w[..., :half]], -1).unfold(-1, 2 * half + 1, 1)


@cache
def triton_kernels():
    """ntmviz.triton_step (the step's Triton kernels, for CUDA tensors), or None where triton does not
    import (one log line says why). NTMVIZ_TRITON=0 turns them off."""
    if os.environ.get("NTMVIZ_TRITON", "1") == "0":
        log.info("ntmviz: NTMVIZ_TRITON=0: the NTM step on a GPU runs as torch ops")
        return None
    try:
        from . import triton_step
    except ImportError as exc:
        log.info("ntmviz: triton is not importable (%s): the NTM step on a GPU runs as torch ops", exc)
        return None
    return triton_step


def on_triton(memory: Tensor) -> bool:
    """Whether the step runs as the Triton kernels here: a CUDA float32/float64 tensor, triton importable."""
    return memory.device.type == "cuda" and memory.dtype in (torch.float32, torch.float64) \
        and triton_kernels() is not None


def memory_forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int,
                   into: Tensor | None = None) -> tuple[MemoryStep, tuple]:
    """raw [P, sum(head_sizes)], memory [P, N, M], previous [P, H, N]
    -> (MemoryStep, what memory_backward needs). Compiled loops on a CPU (native.py), Triton kernels
    on a CUDA GPU (triton_step.py), else torch ops: the registered operator's implementations (ops.py),
    called here without the dispatcher. into: where the compiled loops write the outputs (a row of
    native.steps_buffer, when recording)."""
    if native.usable(memory):  # a native.Step: MemoryStep's fields, each made into a tensor when asked for
        return native.forward(raw, memory, previous, shift_width, read_heads, into)
    if on_triton(memory):
        fields, saved = triton_kernels().run_forward(raw, memory, previous, shift_width, read_heads)
        return MemoryStep(*fields[:len(STEP_FIELDS)]), saved
    return torch_memory_forward(raw, memory, previous, shift_width, read_heads)


def memory_backward(saved: tuple, read_heads: int, g_weights: Tensor | None, g_reads: Tensor | None,
                    g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of one memory step: (g_raw, g_memory before the step, g_previous); None stands for zeros."""
    if isinstance(saved, native.Saved):
        return native.backward(saved, read_heads, g_weights, g_reads, g_memory)
    if type(saved) is not tuple:  # a triton_step.Saved (the torch ops save a plain tuple)
        return triton_kernels().run_backward(saved, read_heads, g_weights, g_reads, g_memory)
    return torch_memory_backward(saved, read_heads, g_weights, g_reads, g_memory)


def torch_memory_forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int
                         ) -> tuple[MemoryStep, tuple]:
    """memory_forward as torch ops (any device)."""
    P, H, N = previous.shape
    M = memory.shape[2]
    S, half = shift_width, shift_width // 2
    W = H - read_heads
    key, beta, gate, shift, gamma, erase, add = activate(raw, H, W, M, S)

    # content focus (eq. 5): softmax of β times the cosine of key and slot
    key_norm = torch.sqrt(key.square().sum(-1, keepdim=True) + EPS)  # [P, H, 1]
    slot_norm = torch.sqrt(torch.linalg.vector_norm(memory, dim=-1).square() + EPS).unsqueeze(1)  # [P, 1, N]
    cosine = torch.bmm(key, memory.transpose(1, 2)) / (key_norm * slot_norm)  # [P, H, N]
    content = torch.softmax(beta.unsqueeze(-1) * cosine, dim=-1)
    # interpolation (eq. 7), circular shift (eq. 8), sharpening (eq. 9)
    gated = torch.lerp(previous, content, gate.unsqueeze(-1))
    # shifted(i) = sum_s shift_s gated(i - offset_s): window i read backwards, so weights flipped
    shifted = (_wrapped_windows(gated, half) * shift.flip(-1).unsqueeze(-2)).sum(-1)
    log_shifted = torch.log(shifted + EPS)
    weights = torch.softmax(gamma.unsqueeze(-1) * log_shifted, dim=-1)
    # read (eq. 2) and write (eqs. 3, 4), both from the memory before this step
    w_read, w_write = weights[:, :read_heads], weights[:, read_heads:]
    reads = torch.bmm(w_read, memory)
    if W == 1:  # M' = M (1 - w e^T) + w a^T = M + w (a - e * M)
        change = torch.addcmul(add, erase, memory, value=-1)  # [P, N, M]
        new_memory = torch.addcmul(memory, w_write.transpose(1, 2), change)
    else:
        change = None
        keep = torch.prod(torch.rsub(w_write.unsqueeze(-1) * erase.unsqueeze(-2), 1), dim=1)
        new_memory = torch.baddbmm(memory * keep, w_write.transpose(1, 2), add)

    out = MemoryStep(weights=weights, reads=reads, memory=new_memory, key=key, beta=beta, gate=gate, shift=shift,
                     gamma=gamma, erase=erase, add=add, content=content, gated=gated, shifted=shifted)
    saved = (memory, previous, key, beta, gate, shift, gamma, erase, add,
             key_norm, slot_norm, cosine, content, gated, log_shifted, shifted, weights, change)
    return out, saved


def torch_memory_backward(saved: tuple, read_heads: int, g_weights: Tensor | None, g_reads: Tensor | None,
                          g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """memory_backward as torch ops, from what torch_memory_forward saved."""
    (memory, previous, key, beta, gate, shift, gamma, erase, add,
     key_norm, slot_norm, cosine, content, gated, log_shifted, shifted, weights, change) = saved
    R = read_heads
    P, H, N = previous.shape
    W = H - R
    half = shift.shape[-1] // 2
    w_read, w_write = weights[:, :R], weights[:, R:]

    # write
    if g_memory is None:
        g_mem = torch.zeros_like(memory)
        g_w_write = torch.zeros_like(w_write)
        g_erase, g_add = torch.zeros_like(erase), torch.zeros_like(add)
    elif W == 1:  # M' = M + w (a - e * M): dM = g (1 - w e^T), dw = <g, a - e * M>, de = -w^T (g * M), da = w^T g
        g_mem = torch.addcmul(g_memory, w_write.transpose(1, 2) * erase, g_memory, value=-1)
        g_w_write = torch.linalg.vecdot(g_memory, change).unsqueeze(1)  # [P, 1, N]
        g_erase = -torch.bmm(w_write, g_memory * memory)
        g_add = torch.bmm(w_write, g_memory)
    else:  # M' = M prod_v (1 - w_v e_v^T) + sum_v w_v a_v^T
        factors = torch.rsub(w_write.unsqueeze(-1) * erase.unsqueeze(-2), 1)  # [P, W, N, M]
        g_mem = g_memory * torch.prod(factors, dim=1)
        g_add = torch.bmm(w_write, g_memory)
        g_keep = g_memory * memory
        g_w_write = torch.bmm(add, g_memory.transpose(1, 2))
        g_erase = torch.empty_like(erase)
        for v in range(W):  # each head's factor times the product of the others
            others = torch.prod(torch.cat([factors[:, :v], factors[:, v + 1:]], 1), dim=1)
            g_factor = g_keep * others  # [P, N, M]
            g_w_write[:, v] -= (g_factor * erase[:, v].unsqueeze(1)).sum(-1)
            g_erase[:, v] = -(g_factor * w_write[:, v].unsqueeze(-1)).sum(1)
    # read: reads = w_read memory
    if g_reads is None:
        g_w_read = torch.zeros_like(w_read)
    else:
        g_w_read = torch.bmm(g_reads, memory.transpose(1, 2))
        if R == 1:
            g_mem = torch.addcmul(g_mem, w_read.transpose(1, 2), g_reads)
        else:
            g_mem = torch.baddbmm(g_mem, w_read.transpose(1, 2), g_reads)
    g_w = torch.cat([g_w_read, g_w_write], 1)
    if g_weights is not None:
        g_w = g_w + g_weights

    # sharpen: weights = softmax(γ log(shifted + eps))
    g_z = _softmax_backward(g_w, weights)
    g_gamma = (g_z * log_shifted).sum(-1)
    g_shifted = g_z * gamma.unsqueeze(-1) / (shifted + EPS)
    # shift: shifted(i) = sum_s shift_s gated(i - offset_s), so gated(j) reached shifted(j + offset_s)
    g_shift = (_wrapped_windows(gated, half) * g_shifted.unsqueeze(-1)).sum(-2).flip(-1)
    g_gated = (_wrapped_windows(g_shifted, half) * shift.unsqueeze(-2)).sum(-1)
    # interpolation: gated = previous + g (content - previous)
    g_gate = (g_gated * (content - previous)).sum(-1)
    g_content = g_gated * gate.unsqueeze(-1)
    g_previous = g_gated - g_content
    # content focus: content = softmax(β cosine), cosine = key.slot / (|key| |slot|)
    g_u = _softmax_backward(g_content, content)
    g_beta = (g_u * cosine).sum(-1)
    g_cos = g_u * beta.unsqueeze(-1)
    g_dots = g_cos / (key_norm * slot_norm)
    g_cc = g_cos * cosine
    g_key = torch.bmm(g_dots, memory) - key * (g_cc.sum(-1, keepdim=True) / key_norm.square())
    g_mem = torch.baddbmm(g_mem, g_dots.transpose(1, 2), key)
    g_mem = torch.addcmul(g_mem, memory, (g_cc.sum(1) / slot_norm.squeeze(1).square()).unsqueeze(-1), value=-1)

    # through the activations that gave each parameter its range, into the raw vector's layout
    g_params = {
        "key": g_key,
        "beta": g_beta * -torch.expm1(-beta),  # softplus' = sigmoid = 1 - exp(-softplus)
        "gate": g_gate * (gate - gate * gate),
        "shift": _softmax_backward(g_shift, shift),
        "gamma": g_gamma * -torch.expm1(torch.rsub(gamma, 1)),
        "erase": g_erase * (erase - erase * erase),
        "add": g_add * torch.rsub(add * add, 1),
    }
    grads = (g_params[name] for name in PARAMS)  # a number per head is [P, heads] already: no reshape
    g_raw = torch.cat([g if g.dim() == 2 else g.reshape(P, -1) for g in grads], dim=-1)
    return g_raw, g_mem, g_previous


# ---- one LSTM cell -------------------------------------------------------------------------------

def lstm_forward(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, tuple]:
    """gates [P, 4C] (i, f, g, o as torch.nn.LSTMCell orders them), cell [P, C]
    -> (hidden [P, C], cell [P, C], what lstm_backward needs). Compiled loops on a CPU, else torch ops."""
    if native.usable(cell):
        return native.lstm_forward(gates, cell)
    return torch_lstm_forward(gates, cell)


def lstm_backward(saved: tuple, g_hidden: Tensor | None, g_cell: Tensor | None) -> tuple[Tensor, Tensor]:
    """(g_gates [P, 4C], g_cell before the step [P, C]); None stands for zeros."""
    if isinstance(saved, native.LSTMSaved):
        return native.lstm_backward(saved, g_hidden, g_cell)
    return torch_lstm_backward(saved, g_hidden, g_cell)


def torch_lstm_forward(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, tuple]:
    """lstm_forward as torch ops (any device)."""
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)
    g = torch.tanh(gates.chunk(4, dim=-1)[2])
    new_cell = torch.addcmul(f * cell, i, g)
    tanh_cell = torch.tanh(new_cell)
    return o * tanh_cell, new_cell, (cell, i, f, g, o, tanh_cell)


def torch_lstm_backward(saved: tuple, g_hidden: Tensor | None, g_cell: Tensor | None) -> tuple[Tensor, Tensor]:
    """lstm_backward as torch ops, from what torch_lstm_forward saved."""
    cell, i, f, g, o, tanh_cell = saved
    g_c = torch.zeros_like(cell) if g_cell is None else g_cell
    if g_hidden is None:
        g_o = torch.zeros_like(o)
    else:
        g_c = torch.addcmul(g_c, g_hidden * o, torch.rsub(tanh_cell * tanh_cell, 1))
        g_o = g_hidden * tanh_cell * (o - o * o)
    g_gates = torch.cat([g_c * g * (i - i * i), g_c * cell * (f - f * f), g_c * i * torch.rsub(g * g, 1), g_o], -1)
    return g_gates, g_c * f


# ---- single steps as autograd nodes (NTM.step) -----------------------------------------------------

class _LSTMCell(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gates, cell):
        hidden, new_cell, saved = lstm_forward(gates, cell)
        # through save_for_backward (torch's version checks and saved-tensor hooks apply): the kernels'
        # outputs are one block, saved whole with its layout beside it; the torch ops' are a tuple
        if isinstance(saved, native.LSTMSaved):
            ctx.block_shapes = saved.block.shapes
            ctx.save_for_backward(saved.cell, saved.block.flat)
        else:
            ctx.block_shapes = None
            ctx.save_for_backward(*saved)
        return hidden, new_cell

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_hidden, g_cell):
        saved = ctx.saved_tensors
        if ctx.block_shapes is not None:
            saved = native.LSTMSaved(saved[0], native.Block(saved[0], ctx.block_shapes, saved[1]))
        return lstm_backward(saved, g_hidden, g_cell)


def lstm_cell(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM cell after its matrix products: gates [P, 4C] (i, f, g, o), cell [P, C]
    -> (hidden [P, C], cell [P, C]), as one autograd node."""
    return _LSTMCell.apply(gates, cell)


# ---- a whole sequence as one autograd node ------------------------------------------------------

class Layer(NamedTuple):
    """One controller layer's operands for K models. Layer 0's input term (x_t times its
    weights, plus the bias) is computed for every step at once outside, so it has w_in and
    bias None; its w_rec multiplies [r_{t-1}, h_{t-1}] (LSTM) or r_{t-1} (feed-forward).
    Higher layers: w_in multiplies the layer below's h_t; w_rec (LSTM only) this layer's h_{t-1}."""

    w_in: Tensor | None  # [K, C, G]
    w_rec: Tensor | None  # [K, rec, G]
    bias: Tensor | None  # [K, 1, G]


class Spec(NamedTuple):
    """What the sequence needs besides tensors."""

    read_heads: int
    shift_width: int  # S
    lstm: bool  # LSTM controller (else feed-forward with ReLU)
    layers: int


class SequenceTrace(NamedTuple):
    """Every step of a recorded sequence: MemoryStep's fields stacked over time, and the memory
    before the first step and after each (steps.memory is memories[:, 1:])."""

    steps: MemoryStep  # each field [P, T, ...]
    memories: Tensor  # [P, T+1, N, M]


def _bmm_k(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """x [P, in] times w [K, in, out] per model (+ bias [K, 1, out]) -> [P, out]."""
    K = w.shape[0]
    xk = x.reshape(K, -1, x.shape[-1])
    y = torch.bmm(xk, w) if bias is None else torch.baddbmm(bias, xk, w)
    return y.reshape(x.shape[0], -1)


def _sequence_forward(spec: Spec, x_in: Tensor, memory0: Tensor, weights0: Tensor,
                      heads: tuple[Tensor, Tensor], layers: list[Layer], keep: bool, record: bool):
    """The time loop. x_in [K, B, T, G] (layer 0's input term, bias included).

    Returns (hidden [P, T, C] of the top layer, reads [P, T, R*M], tape for backward or None,
    SequenceTrace or None)."""
    K, B, T, _ = x_in.shape
    P = K * B
    R, lstm = spec.read_heads, spec.lstm
    w_heads, b_heads = heads
    C = w_heads.shape[1]
    memory, weights = memory0, weights0
    reads = torch.bmm(weights0[:, :R], memory0)  # r_0: what the heads see before the first step
    hidden = [x_in.new_zeros(P, C) for _ in range(spec.layers)] if lstm else []
    cells = [x_in.new_zeros(P, C) for _ in range(spec.layers)] if lstm else []
    tops, all_reads, tape, trace = [], [], [], []
    inputs = x_in.unbind(2)
    buffer = native.steps_buffer(memory0, weights0, spec.shift_width, R, T) if record and native.usable(memory0) \
        else None  # recording with the kernels: every step's outputs in one allocation
    for t in range(T):
        step_tape = []
        below = None
        for i, layer in enumerate(layers):
            if i == 0:
                rec = torch.cat([reads.reshape(P, -1), hidden[0]], -1) if lstm else reads.reshape(P, -1)
                pre = torch.baddbmm(inputs[t], rec.reshape(K, B, -1), layer.w_rec).reshape(P, -1)
            else:
                rec = hidden[i] if lstm else None
                pre = _bmm_k(below, layer.w_in, layer.bias)
                if lstm:
                    pre = pre + _bmm_k(rec, layer.w_rec)
            if lstm:
                h, c, saved = lstm_forward(pre, cells[i])
                hidden[i], cells[i] = h, c
            else:
                h, saved = torch.relu(pre), None
            step_tape.append((below, rec, saved, h))
            below = h
        raw = _bmm_k(below, w_heads, b_heads)
        out, saved = memory_forward(raw, memory, weights, spec.shift_width, R, None if buffer is None else buffer[t])
        memory, weights, reads = out.memory, out.weights, out.reads
        tops.append(below)
        all_reads.append(reads.reshape(P, -1))
        if keep:
            tape.append((step_tape, saved))
        if record:
            trace.append(out)
    hidden_all = torch.stack(tops, 1)
    reads_all = torch.stack(all_reads, 1)
    traced = None
    if record:
        if buffer is not None:
            over_time, memories = native.over_time(buffer, trace[0], memory0)
        else:
            over_time = [torch.stack(parts, 1) for parts in zip(*trace)]
            memories = torch.cat([memory0.unsqueeze(1), over_time[MemoryStep._fields.index("memory")]], 1)
        traced = SequenceTrace(MemoryStep(*over_time), memories)
    return hidden_all, reads_all, (tape if keep else None), traced


# ---- the tape through save_for_backward ------------------------------------------------------------
# _Sequence keeps every tensor its backward reads in ctx.save_for_backward, so torch's version checks
# (a saved tensor changed in place before backward) and saved-tensor hooks (offloading, packing) see
# them; ctx keeps only where each one sits. Each distinct tensor is saved once (a tensor saved twice
# would be packed, and with copying hooks stored, twice): found by identity, one dict look-up each.

class _Slots:
    """The tensors to save, each once, and their positions: index(t) -> position (None for None)."""

    def __init__(self):
        self.tensors: list[Tensor] = []
        self._at: dict[int, int] = {}  # id(tensor) -> position; every tensor here is alive meanwhile

    def index(self, t: Tensor | None) -> int | None:
        if t is None:
            return None
        i = self._at.get(id(t))
        if i is None:
            i = self._at[id(t)] = len(self.tensors)
            self.tensors.append(t)
        return i


def _layout_of(saved, slots: _Slots) -> tuple | None:
    """What memory_forward or lstm_forward saved -> (kind, shapes, positions of its tensors); None for None.
    The kernels' outputs are one block: saved whole, its shapes beside it (as _LSTMCell does)."""
    if saved is None:
        return None
    if isinstance(saved, native.Saved):
        block = saved.step.block
        return native.Saved, block.shapes, (slots.index(saved.memory), slots.index(saved.previous),
                                            slots.index(block.flat))
    if isinstance(saved, native.LSTMSaved):
        return native.LSTMSaved, saved.block.shapes, (slots.index(saved.cell), slots.index(saved.block.flat))
    if type(saved) is tuple:  # the torch ops: a tuple of tensors (or None)
        return tuple, None, tuple(map(slots.index, saved))
    # a triton_step.Saved (memory_backward tells them apart the same way): memory, previous, fields
    return type(saved), None, tuple(map(slots.index, (saved.memory, saved.previous, *saved.fields)))


def _at(tensors: tuple, i: int | None) -> Tensor | None:
    """The saved tensor at position i (_Slots.index's inverse)."""
    return None if i is None else tensors[i]


def _rebuild(layout: tuple | None, tensors: tuple):
    """_layout_of's inverse, from ctx.saved_tensors."""
    if layout is None:
        return None
    kind, shapes, at = layout
    parts = [_at(tensors, i) for i in at]
    if kind is native.Saved:  # the kernels read raw addresses: contiguous, whatever a hook returned
        memory, previous, flat = (t.contiguous() for t in parts)
        return native.Saved(memory, previous, native.Step(native.Block(flat, shapes, flat)))
    if kind is native.LSTMSaved:
        cell, flat = (t.contiguous() for t in parts)
        return native.LSTMSaved(cell, native.Block(flat, shapes, flat))
    if kind is tuple:
        return tuple(parts)
    return kind(parts[0], parts[1], parts[2:])


class _Sequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, x_in, memory0, weights0, w_heads, b_heads, *flat_layers):
        layers = [Layer(*flat_layers[i:i + 3]) for i in range(0, len(flat_layers), 3)]
        hidden, reads, tape, _ = _sequence_forward(spec, x_in, memory0, weights0, (w_heads, b_heads),
                                                   layers, keep=True, record=False)
        # Saved: what backward reads, nothing more (the biases' and memory0's values it does not read).
        slots = _Slots()
        ctx.w_heads = slots.index(w_heads)
        ctx.weights0 = slots.index(weights0 if ctx.needs_input_grad[2] else None)  # for g_memory0 only
        ctx.layers = [(slots.index(layer.w_in), slots.index(layer.w_rec), layer.bias is not None)
                      for layer in layers]
        # per step: per layer (below, rec, h, the LSTM's saved), then the memory step's saved
        ctx.steps = [(tuple((slots.index(below), slots.index(rec), slots.index(h), _layout_of(lstm_saved, slots))
                           for below, rec, lstm_saved, h in step_tape), _layout_of(saved, slots))
                    for step_tape, saved in tape]
        ctx.save_for_backward(*slots.tensors)
        ctx.spec, ctx.shape, ctx.memory_width = spec, x_in.shape, memory0.shape[2]
        return hidden, reads

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_hidden, g_reads_out):
        spec = ctx.spec
        saved_tensors = ctx.saved_tensors
        w_heads = saved_tensors[ctx.w_heads]
        weights0 = _at(saved_tensors, ctx.weights0)
        layers = [(_at(saved_tensors, i), _at(saved_tensors, r), has_bias)  # w_in, w_rec, whether a bias
                  for i, r, has_bias in ctx.layers]
        K, B, T, _ = ctx.shape
        P = K * B
        R, lstm, L = spec.read_heads, spec.lstm, spec.layers
        M = ctx.memory_width
        if g_hidden is None:
            g_hidden = torch.zeros(P, T, w_heads.shape[1], dtype=w_heads.dtype, device=w_heads.device)
        if g_reads_out is None:
            g_reads_out = torch.zeros(P, T, R * M, dtype=w_heads.dtype, device=w_heads.device)
        w_heads_t = w_heads.transpose(1, 2)
        w_in_t = [None if w_in is None else w_in.transpose(1, 2) for w_in, _, _ in layers]
        w_rec_t = [None if w_rec is None else w_rec.transpose(1, 2) for _, w_rec, _ in layers]
        g_h_next = [None] * L  # gradient reaching h_t of each LSTM layer from step t+1
        g_c_next = [None] * L
        g_r_next = None  # gradient reaching r_t from step t+1's controller input
        g_m_next, g_w_next = None, None  # ... reaching M_t and w_t from step t+1's memory step
        # What the weight gradients need, per step (collected last step first).
        g_raws, tops = [], []
        g_pres = [[] for _ in range(L)]
        recs = [[] for _ in range(L)]
        belows = [[] for _ in range(L)]
        for t in range(T - 1, -1, -1):
            layer_slots, memory_layout = ctx.steps[t]
            step_tape = [(_at(saved_tensors, b), _at(saved_tensors, r), _rebuild(lstm_layout, saved_tensors),
                          saved_tensors[h]) for b, r, h, lstm_layout in layer_slots]
            saved = _rebuild(memory_layout, saved_tensors)
            g_r = g_reads_out[:, t].reshape(P, R, M)
            if g_r_next is not None:
                g_r = g_r + g_r_next
            g_raw, g_m_next, g_w_next = memory_backward(saved, R, g_w_next, g_r, g_m_next)
            g_raws.append(g_raw)
            tops.append(step_tape[-1][3])
            g_h = torch.baddbmm(g_hidden[:, t].reshape(K, B, -1), g_raw.reshape(K, B, -1), w_heads_t).reshape(P, -1)
            for i in range(L - 1, -1, -1):
                below, rec, lstm_saved, h = step_tape[i]
                if lstm:
                    if g_h_next[i] is not None:
                        g_h = g_h + g_h_next[i]
                    g_pre, g_c_next[i] = lstm_backward(lstm_saved, g_h, g_c_next[i])
                else:
                    g_pre = g_h * (h > 0)
                g_pres[i].append(g_pre)
                recs[i].append(rec)
                belows[i].append(below)
                if i == 0:
                    g_rec = _bmm_k(g_pre, w_rec_t[0])
                    g_r_next = g_rec[:, : R * M].reshape(P, R, M)
                    if lstm:
                        g_h_next[0] = g_rec[:, R * M:]
                else:
                    if lstm:
                        g_h_next[i] = _bmm_k(g_pre, w_rec_t[i])
                    g_h = _bmm_k(g_pre, w_in_t[i])

        def over_time(parts: list[Tensor]) -> Tensor:
            """T tensors [P, X], last step first -> [K, T*B, X] in step order (model major)."""
            return torch.stack(parts[::-1], 1).reshape(K, T * B, -1)

        def weight_grad(inputs: list[Tensor], grads: Tensor) -> Tensor:
            """sum over steps and rows of input^T grad, per model: [K, X, Y]."""
            return torch.bmm(over_time(inputs).transpose(1, 2), grads)

        g_raw_all = over_time(g_raws)
        g_w_heads = weight_grad(tops, g_raw_all)
        g_b_heads = g_raw_all.sum(1, keepdim=True)
        flat_grads = []
        g_x_in = None
        for i, (w_in, w_rec, has_bias) in enumerate(layers):
            g_pre_all = over_time(g_pres[i])
            g_w_in = weight_grad(belows[i], g_pre_all) if w_in is not None else None
            g_w_rec = weight_grad(recs[i], g_pre_all) if w_rec is not None else None
            g_bias = g_pre_all.sum(1, keepdim=True) if has_bias else None
            flat_grads += [g_w_in, g_w_rec, g_bias]
            if i == 0:
                g_x_in = g_pre_all.reshape(K, B, T, -1)
        g_memory0 = None
        if ctx.needs_input_grad[2]:  # a learned initial memory: through M_0 and through r_0 = w_0 M_0
            g_memory0 = torch.baddbmm(g_m_next, weights0[:, :R].transpose(1, 2), g_r_next)
        return (None, g_x_in, g_memory0, None, g_w_heads, g_b_heads, *flat_grads)


def run_sequence(spec: Spec, x_in: Tensor, memory0: Tensor, weights0: Tensor,
                 heads: tuple[Tensor, Tensor], layers: list[Layer], record: bool = False
                 ) -> tuple[Tensor, Tensor, SequenceTrace | None]:
    """Run the NTM's time loop from layer 0's input term x_in [K, B, T, G] (bias included).

    memory0 [P, N, M], weights0 [P, H, N], heads (w [K, C, raw], b [K, 1, raw]),
    layers: one Layer per controller layer. Returns (hidden [P, T, C] of the top controller
    layer, reads [P, T, R*M], SequenceTrace when `record`). With gradients enabled the loop
    is one autograd node; recording runs the same forward without keeping anything for backward.
    """
    if record or not torch.is_grad_enabled():
        hidden, reads, _, traced = _sequence_forward(spec, x_in, memory0, weights0, heads, layers,
                                                     keep=False, record=record)
        return hidden, reads, traced
    flat = [t for layer in layers for t in layer]
    hidden, reads = _Sequence.apply(spec, x_in, memory0, weights0, heads[0], heads[1], *flat)
    return hidden, reads, None

