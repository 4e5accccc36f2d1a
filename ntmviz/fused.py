"""The fast path of an NTM step: two autograd Functions with hand-written backward passes.

On a CPU the NTM's step is bound by dispatch, not arithmetic: a few dozen tiny ops, each
recorded by autograd and replayed backward. These Functions run the same maths as the pure
reference functions (addressing.py, memory.py, heads.py) as plain tensor ops with autograd
off, and give autograd one node each, whose backward is written out below in fewer, larger
ops. tests/test_fused.py checks values and gradients against the reference, and gradcheck
in float64.

    memory_step(raw, memory, previous, index, read_heads)   heads -> address -> read -> write
    lstm_cell(gates, cell)                                   the LSTM cell's pointwise part

Shapes: P rows (batch, or models x batch), H = R + W heads (read heads first), N slots,
M word width, S shifts, C controller units. See heads.py for the layout of `raw`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .addressing import EPS
from .heads import head_sizes


class MemoryStep(NamedTuple):
    """What one fused memory step returns. Only the first three carry gradients."""

    weights: Tensor  # [P, H, N]  w_t of every head: the next step's w_{t-1}
    reads: Tensor  # [P, R, M]
    memory: Tensor  # [P, N, M]  after this step's write
    key: Tensor  # [P, H, M]
    beta: Tensor  # [P, H]
    gate: Tensor  # [P, H]
    shift: Tensor  # [P, H, S]
    gamma: Tensor  # [P, H]
    erase: Tensor  # [P, W, M]
    add: Tensor  # [P, W, M]
    content: Tensor  # [P, H, N]
    gated: Tensor  # [P, H, N]
    shifted: Tensor  # [P, H, N]


def _softmax_backward(grad: Tensor, out: Tensor) -> Tensor:
    """d/dx of softmax(x) along the last axis, given its output and the output's gradient."""
    return out * (grad - (grad * out).sum(-1, keepdim=True))


class _MemoryStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, raw: Tensor, memory: Tensor, previous: Tensor, index: Tensor, read_heads: int):
        P, H, N = previous.shape
        M = memory.shape[2]
        S = index.shape[0]
        W = H - read_heads
        key, beta, gate, shift, gamma, erase, add = raw.split(head_sizes(H, W, M, S), dim=-1)
        key = key.reshape(P, H, M)
        beta = F.softplus(beta)  # β >= 0
        gate = torch.sigmoid(gate)  # g in [0, 1]
        shift = torch.softmax(shift.reshape(P, H, S), dim=-1)
        gamma = 1 + F.softplus(gamma)  # γ >= 1
        erase = torch.sigmoid(erase).reshape(P, W, M)
        add = torch.tanh(add).reshape(P, W, M)

        # content focus (eq. 5): softmax of β times the cosine of key and slot
        key_norm = torch.sqrt((key * key).sum(-1, keepdim=True) + EPS)  # [P, H, 1]
        slot_norm = torch.sqrt((memory * memory).sum(-1) + EPS).unsqueeze(1)  # [P, 1, N]
        cosine = torch.bmm(key, memory.transpose(1, 2)) / (key_norm * slot_norm)  # [P, H, N]
        content = torch.softmax(beta.unsqueeze(-1) * cosine, dim=-1)
        # interpolation (eq. 7), circular shift (eq. 8), sharpening (eq. 9)
        g = gate.unsqueeze(-1)
        gated = torch.lerp(previous, content, g)
        rolled = gated[..., index]  # [P, H, S, N]: rolled[..., s, i] = w(i - offset_s)
        shifted = torch.bmm(shift.reshape(P * H, 1, S), rolled.reshape(P * H, S, N)).reshape(P, H, N)
        log_shifted = torch.log(shifted + EPS)
        weights = torch.softmax(gamma.unsqueeze(-1) * log_shifted, dim=-1)
        # read (eq. 2) and write (eqs. 3, 4), both from the memory before this step
        w_read, w_write = weights[:, :read_heads], weights[:, read_heads:]
        reads = torch.bmm(w_read, memory)
        if W == 1:
            keep = 1 - w_write.transpose(1, 2) * erase  # [P, N, 1] * [P, 1, M]
        else:
            keep = torch.prod(1 - w_write.unsqueeze(-1) * erase.unsqueeze(-2), dim=1)
        new_memory = torch.baddbmm(memory * keep, w_write.transpose(1, 2), add)

        ctx.read_heads = read_heads
        ctx.save_for_backward(memory, previous, index, key, beta, gate, shift, gamma, erase, add,
                              key_norm, slot_norm, cosine, content, gated, shifted, log_shifted, weights, keep)
        ctx.mark_non_differentiable(key, beta, gate, shift, gamma, erase, add, content, gated, shifted)
        return weights, reads, new_memory, key, beta, gate, shift, gamma, erase, add, content, gated, shifted

    @staticmethod
    def backward(ctx, g_weights, g_reads, g_memory, *_unused):
        (memory, previous, index, key, beta, gate, shift, gamma, erase, add,
         key_norm, slot_norm, cosine, content, gated, shifted, log_shifted, weights, keep) = ctx.saved_tensors
        R = ctx.read_heads
        P, H, N = previous.shape
        W = H - R
        S = index.shape[0]
        w_read, w_write = weights[:, :R], weights[:, R:]

        # write: new = memory * keep + w_write^T add
        if g_memory is None:
            g_mem = torch.zeros_like(memory)
            g_w_write = torch.zeros_like(w_write)
            g_erase, g_add = torch.zeros_like(erase), torch.zeros_like(add)
        else:
            g_mem = g_memory * keep
            g_add = torch.bmm(w_write, g_memory)  # [P, W, M]
            g_keep = g_memory * memory  # [P, N, M]
            if W == 1:  # keep = 1 - w e^T
                g_w_write = torch.bmm(add, g_memory.transpose(1, 2)) - torch.bmm(erase, g_keep.transpose(1, 2))
                g_erase = -torch.bmm(w_write, g_keep)
            else:  # keep = prod_v (1 - w_v e_v^T): each head's factor times the product of the others
                factors = 1 - w_write.unsqueeze(-1) * erase.unsqueeze(-2)  # [P, W, N, M]
                g_w_write = torch.bmm(add, g_memory.transpose(1, 2))
                g_erase = torch.empty_like(erase)
                for v in range(W):
                    others = torch.prod(torch.cat([factors[:, :v], factors[:, v + 1:]], 1), dim=1)
                    g_factor = g_keep * others  # [P, N, M]
                    g_w_write[:, v] -= (g_factor * erase[:, v].unsqueeze(1)).sum(-1)
                    g_erase[:, v] = -(g_factor * w_write[:, v].unsqueeze(-1)).sum(1)
        # read: reads = w_read memory
        if g_reads is None:
            g_w_read = torch.zeros_like(w_read)
        else:
            g_w_read = torch.bmm(g_reads, memory.transpose(1, 2))
            g_mem = torch.baddbmm(g_mem, w_read.transpose(1, 2), g_reads)
        g_w = torch.cat([g_w_read, g_w_write], 1)
        if g_weights is not None:
            g_w = g_w + g_weights

        # sharpen: weights = softmax(γ log(shifted + eps))
        g_z = _softmax_backward(g_w, weights)
        g_gamma = (g_z * log_shifted).sum(-1)
        g_shifted = g_z * gamma.unsqueeze(-1) / (shifted + EPS)
        # shift: shifted(i) = sum_s shift_s gated(i - offset_s)
        rolled = gated[..., index]  # [P, H, S, N]
        g_shift = torch.bmm(rolled.reshape(P * H, S, N), g_shifted.reshape(P * H, N, 1)).reshape(P, H, S)
        # gated(j) reached shifted(j + offset_s); offsets are symmetric, so index.flip(0)[s, j] is that slot
        g_gated = torch.bmm(shift.reshape(P * H, 1, S),
                            g_shifted[..., index.flip(0)].reshape(P * H, S, N)).reshape(P, H, N)
        # interpolation: gated = previous + g (content - previous)
        g = gate.unsqueeze(-1)
        g_gate = (g_gated * (content - previous)).sum(-1)
        g_content = g_gated * g
        g_previous = g_gated - g_content
        # content focus: content = softmax(β cosine), cosine = key.slot / (|key| |slot|)
        g_u = _softmax_backward(g_content, content)
        g_beta = (g_u * cosine).sum(-1)
        g_cos = g_u * beta.unsqueeze(-1)
        g_dots = g_cos / (key_norm * slot_norm)
        g_cc = g_cos * cosine
        g_key = torch.bmm(g_dots, memory) - key * (g_cc.sum(-1, keepdim=True) / key_norm.square())
        g_mem = torch.baddbmm(g_mem, g_dots.transpose(1, 2), key)
        g_mem = g_mem - memory * (g_cc.sum(1) / slot_norm.squeeze(1).square()).unsqueeze(-1)

        # the activations that gave each parameter its range
        g_raw = torch.cat([
            g_key.reshape(P, -1),
            g_beta * -torch.expm1(-beta),  # softplus' = sigmoid = 1 - exp(-softplus)
            g_gate * gate * (1 - gate),
            _softmax_backward(g_shift, shift).reshape(P, -1),
            g_gamma * -torch.expm1(1 - gamma),
            (g_erase * erase * (1 - erase)).reshape(P, -1),
            (g_add * (1 - add * add)).reshape(P, -1),
        ], dim=-1)
        return g_raw, g_mem, g_previous, None, None


def memory_step(raw: Tensor, memory: Tensor, previous: Tensor, index: Tensor, read_heads: int) -> MemoryStep:
    """Heads' activations, addressing, read and write of one step, as one autograd node.

    raw [P, sum(head_sizes)] (the heads' linear output), memory [P, N, M], previous [P, H, N],
    index [S, N] (addressing.shift_index) -> MemoryStep.
    """
    return MemoryStep(*_MemoryStep.apply(raw, memory, previous, index, read_heads))


class _LSTMCell(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gates: Tensor, cell: Tensor):
        i, f, g, o = torch.sigmoid(gates).chunk(4, dim=-1)  # nn.LSTMCell's order
        g = torch.tanh(gates.chunk(4, dim=-1)[2])
        new_cell = torch.addcmul(f * cell, i, g)
        tanh_cell = torch.tanh(new_cell)
        hidden = o * tanh_cell
        ctx.save_for_backward(cell, i, f, g, o, tanh_cell)
        return hidden, new_cell

    @staticmethod
    def backward(ctx, g_hidden, g_cell):
        cell, i, f, g, o, tanh_cell = ctx.saved_tensors
        g_c = torch.zeros_like(cell) if g_cell is None else g_cell
        if g_hidden is None:
            g_o = torch.zeros_like(o)
        else:
            g_c = torch.addcmul(g_c, g_hidden * o, 1 - tanh_cell * tanh_cell)
            g_o = g_hidden * tanh_cell * o * (1 - o)
        g_gates = torch.cat([g_c * g * i * (1 - i), g_c * cell * f * (1 - f), g_c * i * (1 - g * g), g_o], dim=-1)
        return g_gates, g_c * f


def lstm_cell(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM cell after its matrix products: gates [P, 4C] (i, f, g, o), cell [P, C]
    -> (hidden [P, C], cell [P, C]), as one autograd node."""
    return _LSTMCell.apply(gates, cell)
