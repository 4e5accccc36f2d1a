"""NTM addressing (Graves, Wayne & Danihelka 2014, section 3.3), one pure function per stage.

Every function is batched over a leading batch dimension B and a head dimension H, so all
heads of a step are addressed in one call. Shapes: N memory slots, M word width, S shift
width (2 * shift_range + 1).

    content_weighting -> interpolate -> circular_shift -> sharpen

`address` chains the four and returns every stage as an `AddressTrace`, so recording the
pipeline costs nothing beyond keeping tensors that exist anyway.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

# Added under square roots and logarithms so zero memory or zero keys give finite values
# and finite gradients (d sqrt(x)/dx and d log(x)/dx are infinite at 0).
EPS = 1e-8


class AddressTrace(NamedTuple):
    """The stages of one addressing step, each [B, H, N]."""

    content: Tensor  # w^c, after content focus
    gated: Tensor  # w^g, after the interpolation gate
    shifted: Tensor  # w~,  after the circular shift
    weights: Tensor  # w,   after sharpening: the weighting used


def cosine_similarity(memory: Tensor, keys: Tensor) -> Tensor:
    """K[k, M(i)] for every head and slot.

    memory [B, N, M], keys [B, H, M] -> [B, H, N], each in [-1, 1].
    """
    dots = torch.bmm(keys, memory.transpose(1, 2))  # [B, H, N]
    key_norm = torch.sqrt((keys * keys).sum(-1, keepdim=True) + EPS)  # [B, H, 1]
    slot_norm = torch.sqrt((memory * memory).sum(-1) + EPS).unsqueeze(1)  # [B, 1, N]
    return dots / (key_norm * slot_norm)


def content_weighting(memory: Tensor, keys: Tensor, beta: Tensor) -> Tensor:
    """Content focus: softmax over slots of beta * cosine(key, slot)  (eq. 5).

    memory [B, N, M], keys [B, H, M], beta [B, H] (key strength, >= 0) -> [B, H, N].
    """
    return torch.softmax(beta.unsqueeze(-1) * cosine_similarity(memory, keys), dim=-1)


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """Interpolation gate: g * w^c + (1 - g) * w_{t-1}  (eq. 7).

    content [B, H, N], previous [B, H, N], gate [B, H] in [0, 1] -> [B, H, N].
    """
    g = gate.unsqueeze(-1)
    return g * content + (1 - g) * previous


def shift_offsets(shift_width: int, device: torch.device | str | None = None) -> Tensor:
    """The offsets a shift distribution of width S covers: [-(S//2), ..., S//2]  -> [S]."""
    half = shift_width // 2
    return torch.arange(-half, half + 1, device=device)


def shift_index(slots: int, shift_width: int, device: torch.device | str | None = None) -> Tensor:
    """Gather index for a circular convolution: index[s, i] = (i - offset_s) mod N  -> [S, N]."""
    offsets = shift_offsets(shift_width, device)
    slots_range = torch.arange(slots, device=device)
    return (slots_range.unsqueeze(0) - offsets.unsqueeze(1)) % slots


def circular_shift(weights: Tensor, shift: Tensor, index: Tensor | None = None) -> Tensor:
    """Circular convolution with the shift distribution (eq. 8).

    w~(i) = sum_k w(i - k) s(k) for offsets k in -S//2 .. S//2, indices modulo N, so a shift
    of +1 moves the focus one slot forward and wraps around at the end.

    weights [B, H, N], shift [B, H, S] (sums to 1) -> [B, H, N].
    `index` is `shift_index(N, S)`; pass it to avoid rebuilding it every step.
    """
    slots, width = weights.shape[-1], shift.shape[-1]
    if index is None:
        index = shift_index(slots, width, weights.device)
    rolled = weights[..., index]  # [B, H, S, N]: rolled[..., s, i] = w(i - offset_s)
    return torch.einsum("bhsn,bhs->bhn", rolled, shift)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening: w^gamma / sum(w^gamma)  (eq. 9), gamma >= 1.

    Computed as softmax(gamma * log(w + eps)): the same value, with no 0 ** gamma whose
    gradient in gamma is 0 * log(0).

    weights [B, H, N], gamma [B, H] -> [B, H, N].
    """
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(weights + EPS), dim=-1)


def address(
    memory: Tensor,
    previous: Tensor,
    key: Tensor,
    beta: Tensor,
    gate: Tensor,
    shift: Tensor,
    gamma: Tensor,
    index: Tensor | None = None,
) -> AddressTrace:
    """The whole addressing pipeline for H heads at once.

    memory [B, N, M], previous [B, H, N] (w_{t-1}), key [B, H, M], beta [B, H],
    gate [B, H], shift [B, H, S], gamma [B, H] -> AddressTrace of four [B, H, N].
    """
    content = content_weighting(memory, key, beta)
    gated = interpolate(content, previous, gate)
    shifted = circular_shift(gated, shift, index)
    weights = sharpen(shifted, gamma)
    return AddressTrace(content, gated, shifted, weights)
