"""Layers with a leading model axis: K models' weights in one tensor, run as one computation.

A seed ensemble is K models of one configuration trained side by side. Every parameter
holds all K models' values, [K, ...]; activations are [P, ...] with P = K x B rows, model
major (rows k*B .. k*B + B - 1 belong to model k). Products with the weights are batched
matrix products over K, and everything without weights (addressing, memory) runs on the P
rows as one batch. A single model is K = 1.

`Stacked` gives a module made of such layers its members: `member_state_dict(k)` holds
model k's tensors under the names and shapes a single model has (so checkpoints stay
per-model), `member(k)` is model k alone, `stack(members)` is the inverse.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def rows_per_model(rows: int, models: int) -> int:
    """B for P = K x B rows; P must divide evenly."""
    if rows % models:
        raise ValueError(f"{rows} rows do not split evenly over {models} models")
    return rows // models


def _uniform(shape: tuple[int, ...], bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class StackedLinear(nn.Module):
    """K linear layers: weight [K, out, in], bias [K, out]. x [P, in] -> [P, out].

    Initialised as torch.nn.Linear is, U(-1/sqrt(in), 1/sqrt(in)), each model independently.
    """

    def __init__(self, models: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = _uniform((models, out_features, in_features), bound)
        self.bias = _uniform((models, out_features), bound)

    def matrices(self) -> tuple[Tensor, Tensor]:
        """(weight^T [K, in, out], bias [K, 1, out]): the operands of a batched product."""
        return self.weight.transpose(1, 2), self.bias.unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        K, out_features, in_features = self.weight.shape
        w, b = self.matrices()
        y = torch.baddbmm(b, x.reshape(K, -1, in_features), w)
        return y.reshape(*x.shape[:-1], out_features)


class StackedGRUCell(nn.Module):
    """K GRU cells, their products named input and hidden (StackedLinear, initialised as it is;
    `torch_init` re-draws both U(-1/sqrt(d), 1/sqrt(d)), as torch.nn.GRUCell does): x [P, in],
    h [P, d] -> h' [P, d], gates r, z, n in torch's order:

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h
    """

    def __init__(self, models: int, in_features: int, hidden: int, torch_init: bool = False):
        super().__init__()
        self.input = StackedLinear(models, in_features, 3 * hidden)
        self.hidden = StackedLinear(models, hidden, 3 * hidden)
        if torch_init:
            bound = 1 / math.sqrt(hidden)
            with torch.no_grad():
                for layer in (self.input, self.hidden):
                    layer.weight.uniform_(-bound, bound)
                    layer.bias.uniform_(-bound, bound)

    def step(self, x_terms: Tensor, h: Tensor) -> Tensor:
        """x_terms [P, 3d] this step's input products (self.input(x), computed for every step at
        once where the inputs are known ahead), h [P, d] -> h' [P, d]."""
        xr, xz, xn = x_terms.chunk(3, -1)
        hr, hz, hn = self.hidden(h).chunk(3, -1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        return self.step(self.input(x), h)


class StackedLSTMWeights(nn.Module):
    """One LSTM layer's weights for K models, named as torch.nn.LSTMCell names them:
    weight_ih [K, 4C, in], weight_hh [K, 4C, C], bias_ih and bias_hh [K, 4C] (gates i, f, g, o).
    Initialised as torch's LSTM is, U(-1/sqrt(C), 1/sqrt(C))."""

    def __init__(self, models: int, in_features: int, hidden: int):
        super().__init__()
        bound = 1 / math.sqrt(hidden)
        self.weight_ih = _uniform((models, 4 * hidden, in_features), bound)
        self.weight_hh = _uniform((models, 4 * hidden, hidden), bound)
        self.bias_ih = _uniform((models, 4 * hidden), bound)
        self.bias_hh = _uniform((models, 4 * hidden), bound)


class Stacked(nn.Module):
    """A module whose parameters and persistent buffers all carry a leading model axis K."""

    models: int

    def outputs_and_loss(self, task, batch) -> tuple[Tensor, Tensor]:
        """(logits [P, T, O], each sequence's training loss [P] in nats) on a task's batch: the
        task's loss of the outputs. A model that learns from more than its outputs (a DMN with
        supervised gates) adds its own terms."""
        logits = self(batch.inputs)
        return logits, task.sequence_loss(logits, batch)

    def _stacked_tensors(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict(keep_vars=True).items()}

    def member_state_dict(self, k: int) -> dict[str, Tensor]:
        """Model k's tensors (detached), named and shaped as in a single model's file."""
        if not 0 <= k < self.models:
            raise IndexError(f"model {k} of {self.models}")
        return {name: t.detach()[k] for name, t in self._stacked_tensors().items()}

    def load_member_state_dict(self, k: int, state: dict[str, Tensor]) -> None:
        """Set model k's tensors from `member_state_dict`'s form. Names and shapes must match."""
        own = self._stacked_tensors()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise RuntimeError(f"state does not match the model:\n missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, t in own.items():
                value = state[name]
                if tuple(value.shape) != tuple(t.shape[1:]):
                    raise RuntimeError(f"state does not match the model:\n {name} is {list(value.shape)}, "
                                       f"expected {list(t.shape[1:])}")
                t[k].copy_(value)

    def member(self, k: int) -> "Stacked":
        """Model k alone (K = 1), a copy on the same device."""
        single = self.with_models(1)
        single.load_member_state_dict(0, self.member_state_dict(k))
        return single.train(self.training)

    def with_models(self, models: int) -> "Stacked":
        """A new module of the same configuration with `models` models (fresh weights)."""
        raise NotImplementedError

    @classmethod
    def stack(cls, members: list["Stacked"]) -> "Stacked":
        """One module holding every member's weights (each member K = 1 or more), in order."""
        if not members:
            raise ValueError("nothing to stack")
        singles = [m.member(k) for m in members for k in range(m.models)]
        stacked = members[0].with_models(len(singles))
        for k, m in enumerate(singles):
            stacked.load_member_state_dict(k, m.member_state_dict(0))
        return stacked.train(members[0].training)
