"""The NTM's memory step in Triton, forward and backward: the registered operator's implementation
on a CUDA GPU (ops.py), and the step of the training loop there (fused.memory_forward / backward).

One program per row, as the compiled CPU kernels (kernels.cpp) loop over rows: a row's memory
[N, M] is loaded once into a tile, its heads are addressed one after another (H is a compile-time
constant, so the head loop unrolls), and the read and the write (erase, then add) come from that
tile. The same maths as fused.torch_memory_forward / torch_memory_backward and the reference
functions (heads.activate, addressing.address, memory.read / write); tests/test_triton_step.py
checks it against them under Triton's interpreter (TRITON_INTERPRET=1, on the CPU).

The circular shift reads a weighting at indices modulo N, which a program's registers cannot be
indexed by: the gated weighting (an output anyway) and, in backward, the shifted weighting's
gradient (a scratch row) go to memory first, then are read back rotated, after a barrier.

A row's whole memory is one tile of next_power_of_2(N) x next_power_of_2(M) numbers (4,096 at
the paper's N=128, M=20): memories far larger (tens of thousands of numbers a row) would spill
out of a program's registers and want the tile split over slots. Never run on a GPU here: the
compiled kernels are tested only where tests/test_gpu.py finds one.

Shapes: P rows, H = R + W heads (read heads first), N slots, M word width, S shifts; every
tensor contiguous, in the layouts of ops.OUTPUTS and ops.BACKWARD_FIELDS. Importing this module
imports triton (ImportError without it: ops.implementation then never picks it).
"""

from __future__ import annotations

from typing import NamedTuple

import triton
import triton.language as tl
from torch import Tensor

from . import native
from .addressing import EPS
from .heads import BACKWARD_FIELDS, OUTPUTS, STEP_FIELDS, output_shapes, raw_width

VERSION = triton.__version__


@triton.jit
def _softplus(x):
    # log(1 + e^x) without overflow: e^-|x| <= 1
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _tanh(x):
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)


@triton.jit
def _softmax(x, mask):
    x = tl.where(mask, x, float("-inf"))
    e = tl.exp(x - tl.max(x, 0))
    return e / tl.sum(e, 0)


@triton.jit
def _forward_kernel(raw, memory, previous,
                    weights, reads, new_memory, key, beta, gate, shift, gamma, erase, add, content, gated, shifted,
                    key_norm, slot_norm, cosine,
                    H: tl.constexpr, R: tl.constexpr, N: tl.constexpr, M: tl.constexpr, S: tl.constexpr,
                    BN: tl.constexpr, BM: tl.constexpr, BS: tl.constexpr):
    p = tl.program_id(0)
    W: tl.constexpr = H - R
    Z: tl.constexpr = H * M + 3 * H + H * S + 2 * W * M
    HALF: tl.constexpr = S // 2
    n = tl.arange(0, BN)
    m = tl.arange(0, BM)
    j = tl.arange(0, BS)
    n_in, m_in, j_in = n < N, m < M, j < S
    tile_in = n_in[:, None] & m_in[None, :]
    r = raw + p * Z
    # the raw vector's slices (heads.raw_layout): key H*M | beta H | gate H | shift H*S | gamma H | erase W*M | add W*M
    r_beta = r + H * M
    r_gate = r_beta + H
    r_shift = r_gate + H
    r_gamma = r_shift + H * S
    r_erase = r_gamma + H
    r_add = r_erase + W * M

    mem = tl.load(memory + p * N * M + n[:, None] * M + m[None, :], mask=tile_in, other=0.0)
    sn = tl.sqrt(tl.sum(mem * mem, 1) + EPS)
    tl.store(slot_norm + p * N + n, sn, mask=n_in)
    erased = mem
    added = tl.zeros([BN, BM], dtype=mem.dtype)
    for h in tl.static_range(H):
        row = p * H + h
        # content focus (eq. 5)
        k = tl.load(r + h * M + m, mask=m_in, other=0.0)
        tl.store(key + row * M + m, k, mask=m_in)
        kn = tl.sqrt(tl.sum(k * k, 0) + EPS)
        tl.store(key_norm + row, kn)
        cos = tl.sum(mem * k[None, :], 1) / (kn * sn)
        tl.store(cosine + row * N + n, cos, mask=n_in)
        b = _softplus(tl.load(r_beta + h))
        g = tl.sigmoid(tl.load(r_gate + h))
        y = 1.0 + _softplus(tl.load(r_gamma + h))
        tl.store(beta + row, b)
        tl.store(gate + row, g)
        tl.store(gamma + row, y)
        c = _softmax(b * cos, n_in)
        tl.store(content + row * N + n, c, mask=n_in)
        # interpolation (eq. 7)
        prev = tl.load(previous + row * N + n, mask=n_in, other=0.0)
        gd = prev + g * (c - prev)
        tl.store(gated + row * N + n, gd, mask=n_in)
        tl.debug_barrier()  # gated is read back rotated below
        # circular shift (eq. 8): shifted(i) = sum_j s_j gated(i + HALF - j), indices mod N
        s = _softmax(tl.load(r_shift + h * S + j, mask=j_in, other=0.0), j_in)
        tl.store(shift + row * S + j, s, mask=j_in)
        sh = tl.zeros([BN], dtype=mem.dtype)
        for jj in tl.static_range(S):
            s_j = tl.sum(tl.where(j == jj, s, 0.0), 0)
            sh += s_j * tl.load(gated + row * N + (n + HALF - jj + S * N) % N, mask=n_in, other=0.0)
        tl.store(shifted + row * N + n, sh, mask=n_in)
        # sharpening (eq. 9)
        w = _softmax(y * tl.log(sh + EPS), n_in)
        tl.store(weights + row * N + n, w, mask=n_in)
        if h < R:  # read (eq. 2), from the memory before this step's write
            tl.store(reads + (p * R + h) * M + m, tl.sum(w[:, None] * mem, 0), mask=m_in)
        else:  # write (eqs. 3, 4): every head's erase multiplies, every head's add sums
            v = h - R
            e = tl.sigmoid(tl.load(r_erase + v * M + m, mask=m_in, other=0.0))
            a = _tanh(tl.load(r_add + v * M + m, mask=m_in, other=0.0))
            tl.store(erase + (p * W + v) * M + m, e, mask=m_in)
            tl.store(add + (p * W + v) * M + m, a, mask=m_in)
            erased = erased * (1.0 - w[:, None] * e[None, :])
            added += w[:, None] * a[None, :]
    tl.store(new_memory + p * N * M + n[:, None] * M + m[None, :], erased + added, mask=tile_in)


@triton.jit
def _backward_kernel(memory, previous, key, beta, gate, shift, gamma, erase, add, content, gated, shifted, weights,
                     key_norm, slot_norm, cosine, g_weights, g_reads, g_memory, g_raw, g_memory_out, g_previous,
                     scratch,
                     H: tl.constexpr, R: tl.constexpr, N: tl.constexpr, M: tl.constexpr, S: tl.constexpr,
                     BN: tl.constexpr, BM: tl.constexpr, BS: tl.constexpr,
                     HAS_GW: tl.constexpr, HAS_GR: tl.constexpr, HAS_GM: tl.constexpr):
    p = tl.program_id(0)
    W: tl.constexpr = H - R
    Z: tl.constexpr = H * M + 3 * H + H * S + 2 * W * M
    HALF: tl.constexpr = S // 2
    n = tl.arange(0, BN)
    m = tl.arange(0, BM)
    j = tl.arange(0, BS)
    n_in, m_in, j_in = n < N, m < M, j < S
    tile = n[:, None] * M + m[None, :]
    tile_in = n_in[:, None] & m_in[None, :]
    out = g_raw + p * Z
    o_beta = out + H * M
    o_gate = o_beta + H
    o_shift = o_gate + H
    o_gamma = o_shift + H * S
    o_erase = o_gamma + H
    o_add = o_erase + W * M

    mem = tl.load(memory + p * N * M + tile, mask=tile_in, other=0.0)
    sn = tl.load(slot_norm + p * N + n, mask=n_in, other=1.0)
    g_mem = tl.zeros([BN, BM], dtype=mem.dtype)
    if HAS_GM:  # M' = M prod_v (1 - w_v e_v^T) + sum_v w_v a_v^T: dM = g prod_v (1 - w_v e_v^T)
        g_in = tl.load(g_memory + p * N * M + tile, mask=tile_in, other=0.0)
        g_mem = g_in
        for v in tl.static_range(W):
            wv = tl.load(weights + (p * H + R + v) * N + n, mask=n_in, other=0.0)
            ev = tl.load(erase + (p * W + v) * M + m, mask=m_in, other=0.0)
            g_mem = g_mem * (1.0 - wv[:, None] * ev[None, :])
    g_cc_slot = tl.zeros([BN], dtype=mem.dtype)
    for h in tl.static_range(H):
        row = p * H + h
        w = tl.load(weights + row * N + n, mask=n_in, other=0.0)
        if HAS_GW:
            g_w = tl.load(g_weights + row * N + n, mask=n_in, other=0.0)
        else:
            g_w = tl.zeros([BN], dtype=mem.dtype)
        # the gradient reaching this head's weighting from the read or the write
        if h < R:
            if HAS_GR:
                g_r = tl.load(g_reads + (p * R + h) * M + m, mask=m_in, other=0.0)
                g_w += tl.sum(g_r[None, :] * mem, 1)
                g_mem += w[:, None] * g_r[None, :]
        else:
            v = h - R
            e = tl.load(erase + (p * W + v) * M + m, mask=m_in, other=0.0)
            a = tl.load(add + (p * W + v) * M + m, mask=m_in, other=0.0)
            g_e = tl.zeros([BM], dtype=mem.dtype)
            g_a = tl.zeros([BM], dtype=mem.dtype)
            if HAS_GM:
                others = g_in * mem  # d keep / d factor_v: the other write heads' factors
                for u in tl.static_range(W):
                    if u != v:
                        wu = tl.load(weights + (p * H + R + u) * N + n, mask=n_in, other=0.0)
                        eu = tl.load(erase + (p * W + u) * M + m, mask=m_in, other=0.0)
                        others = others * (1.0 - wu[:, None] * eu[None, :])
                g_w += tl.sum(a[None, :] * g_in - others * e[None, :], 1)
                g_a = tl.sum(w[:, None] * g_in, 0)
                g_e = -tl.sum(others * w[:, None], 0)
            tl.store(o_erase + v * M + m, g_e * (e - e * e), mask=m_in)  # sigmoid'
            tl.store(o_add + v * M + m, g_a * (1.0 - a * a), mask=m_in)  # tanh'
        # sharpening: w = softmax(gamma log(shifted + eps))
        sh = tl.load(shifted + row * N + n, mask=n_in, other=0.0)
        y = tl.load(gamma + row)
        g_z = w * (g_w - tl.sum(g_w * w, 0))
        g_gamma = tl.sum(g_z * tl.log(sh + EPS), 0)
        g_sh = g_z * y / (sh + EPS)
        tl.store(scratch + row * N + n, g_sh, mask=n_in)
        tl.debug_barrier()  # g_sh is read back rotated below
        # circular shift: shifted(i) = sum_j s_j gated(i + HALF - j)
        s = tl.load(shift + row * S + j, mask=j_in, other=0.0)
        g_s = tl.zeros([BS], dtype=mem.dtype)
        g_gd = tl.zeros([BN], dtype=mem.dtype)
        for jj in tl.static_range(S):
            gd_rot = tl.load(gated + row * N + (n + HALF - jj + S * N) % N, mask=n_in, other=0.0)
            g_s = tl.where(j == jj, tl.sum(g_sh * gd_rot, 0), g_s)
            s_j = tl.sum(tl.where(j == jj, s, 0.0), 0)
            g_gd += s_j * tl.load(scratch + row * N + (n - HALF + jj + S * N) % N, mask=n_in, other=0.0)
        # interpolation: gated = previous + g (content - previous)
        c = tl.load(content + row * N + n, mask=n_in, other=0.0)
        prev = tl.load(previous + row * N + n, mask=n_in, other=0.0)
        g = tl.load(gate + row)
        g_gate = tl.sum(g_gd * (c - prev), 0)
        g_c = g_gd * g
        tl.store(g_previous + row * N + n, g_gd - g_c, mask=n_in)
        # content focus: content = softmax(beta cosine), cosine = key.slot / (|key| |slot|)
        g_u = c * (g_c - tl.sum(g_c * c, 0))
        cos = tl.load(cosine + row * N + n, mask=n_in, other=0.0)
        b = tl.load(beta + row)
        kn = tl.load(key_norm + row)
        g_beta = tl.sum(g_u * cos, 0)
        g_cos = g_u * b
        g_dot = g_cos / (kn * sn)
        g_cc_slot += g_cos * cos
        k = tl.load(key + row * M + m, mask=m_in, other=0.0)
        g_k = tl.sum(g_dot[:, None] * mem, 0) - k * (tl.sum(g_cos * cos, 0) / (kn * kn))
        g_mem += g_dot[:, None] * k[None, :]
        # through the activations into the raw vector's layout
        tl.store(out + h * M + m, g_k, mask=m_in)
        tl.store(o_beta + h, g_beta * (1.0 - tl.exp(-b)))  # softplus' = 1 - e^-softplus
        tl.store(o_gate + h, g_gate * (g - g * g))
        tl.store(o_shift + h * S + j, s * (g_s - tl.sum(g_s * s, 0)), mask=j_in)
        tl.store(o_gamma + h, g_gamma * (1.0 - tl.exp(1.0 - y)))
    g_mem -= mem * (g_cc_slot / (sn * sn))[:, None]
    tl.store(g_memory_out + p * N * M + tile, g_mem, mask=tile_in)


def _blocks(N: int, M: int, S: int) -> dict[str, int]:
    return {"BN": triton.next_power_of_2(N), "BM": triton.next_power_of_2(M), "BS": triton.next_power_of_2(S)}


def forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int,
            out: list[Tensor]) -> None:
    """Write ops.OUTPUTS (each contiguous, of memory's dtype and device) for raw [P, Z],
    memory [P, N, M], previous [P, H, N]: one program per row."""
    raw, memory, previous = raw.contiguous(), memory.contiguous(), previous.contiguous()
    P, H, N = previous.shape
    M = memory.shape[2]
    native._count()  # a kernel ran: the trainer records the path (native.compute_path)
    _forward_kernel[(P,)](raw, memory, previous, *out, H=H, R=read_heads, N=N, M=M, S=shift_width,
                          **_blocks(N, M, shift_width))


def backward(memory: Tensor, previous: Tensor, saved: list[Tensor], read_heads: int, g_weights: Tensor | None,
             g_reads: Tensor | None, g_memory: Tensor | None, out: list[Tensor]) -> None:
    """Write (g_raw [P, Z], g_memory before the step [P, N, M], g_previous [P, H, N]) into `out`, from
    ops.BACKWARD_FIELDS' tensors; a None gradient stands for zeros."""
    memory, previous = memory.contiguous(), previous.contiguous()
    saved = [t.contiguous() for t in saved]
    P, H, N = previous.shape
    M, S = memory.shape[2], saved[STEP_FIELDS.index("shift") - 3].shape[2]
    given = [memory if g is None else g.contiguous() for g in (g_weights, g_reads, g_memory)]  # memory: unread
    scratch = memory.new_empty(P, H, N)
    _backward_kernel[(P,)](memory, previous, *saved, *given, *out, scratch, H=H, R=read_heads, N=N, M=M, S=S,
                           **_blocks(N, M, S), HAS_GW=g_weights is not None, HAS_GR=g_reads is not None,
                           HAS_GM=g_memory is not None)


class Saved(NamedTuple):
    """What the training loop's backward needs of a step run here (fused.memory_backward)."""

    memory: Tensor  # [P, N, M]  before the step
    previous: Tensor  # [P, H, N]
    fields: list  # ops.OUTPUTS' tensors


def run_forward(raw: Tensor, memory: Tensor, previous: Tensor, shift_width: int, read_heads: int
                ) -> tuple[list[Tensor], Saved]:
    """The step's ops.OUTPUTS, newly allocated, and what run_backward needs."""
    P, H, N = previous.shape
    fields = [memory.new_empty(shape) for shape in output_shapes(P, H, read_heads, N, memory.shape[2], shift_width)]
    forward(raw, memory, previous, shift_width, read_heads, fields)
    return fields, Saved(memory, previous, fields)


def run_backward(saved: Saved, read_heads: int, g_weights: Tensor | None, g_reads: Tensor | None,
                 g_memory: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """(g_raw, g_memory before the step, g_previous) of a step run_forward ran."""
    memory, previous, fields = saved
    named = dict(zip(OUTPUTS, fields))
    P, H, N = previous.shape
    M, S = memory.shape[2], named["shift"].shape[2]
    out = [memory.new_empty(P, raw_width(H, H - read_heads, M, S)), memory.new_empty(P, N, M),
           memory.new_empty(P, H, N)]
    backward(memory, previous, [named[name] for name in BACKWARD_FIELDS], read_heads, g_weights, g_reads, g_memory,
             out)
    return out[0], out[1], out[2]
