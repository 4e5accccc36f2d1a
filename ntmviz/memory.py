"""NTM memory operations (Graves et al. 2014, sections 3.1 and 3.2): pure functions.

Shapes: B batch, N slots, M word width, R read heads, W write heads.
"""

from __future__ import annotations

import torch
from torch import Tensor


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """Read vectors r = sum_i w(i) M(i)  (eq. 2).

    memory [B, N, M], weights [B, R, N] -> [B, R, M].
    """
    return torch.bmm(weights, memory)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Erase, then add  (eqs. 3 and 4), for W write heads at once.

    M~ = M * prod_h (1 - w_h e_h^T);   M' = M~ + sum_h w_h a_h^T.
    The order of the heads does not matter: erasures multiply, additions sum.

    memory [B, N, M], weights [B, W, N], erase [B, W, M] in [0, 1], add [B, W, M]
    -> [B, N, M].
    """
    if weights.shape[1] == 1:  # the common case, without the product over heads
        keep = 1 - weights.transpose(1, 2) * erase  # [B, N, 1] * [B, 1, M] -> [B, N, M]
    else:
        keep = torch.prod(1 - weights.unsqueeze(-1) * erase.unsqueeze(-2), dim=1)
    return memory * keep + torch.bmm(weights.transpose(1, 2), add)


def constant_memory(slots: int, width: int, value: float = 1e-6, *, device=None, dtype=None) -> Tensor:
    """A memory with every cell set to `value`  -> [N, M].

    A small constant is the initialisation reported to converge fastest
    (Collier & Beel, ICANN 2018).
    """
    return torch.full((slots, width), value, device=device, dtype=dtype)
