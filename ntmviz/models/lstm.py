"""The LSTM baseline of the paper: a stack of LSTM layers and a linear output, one model or a
seed ensemble of K. It has no memory: its declaration says so, and its episodes hold the
sequence alone.

Shapes: P = K x B rows (model major, layers.py), T time, I input width, O output width,
C hidden size, L layers.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..config import LSTMConfig
from ..contract import Family, Recording
from ..layers import Stacked, StackedLinear, StackedLSTMWeights, rows_per_model
from .ntm import check_inputs

FAMILY = Family("lstm", "LSTM baseline", memory="none",
                doc="The paper's baseline: a stack of LSTM layers with a linear output, and no memory.")


class LSTMState(NamedTuple):
    hidden: Tensor  # [L, P, C]
    cell: Tensor  # [L, P, C]


class LSTMBaseline(Stacked):
    """A stack of LSTM layers with a linear output: the paper's baseline, same interface.

    K models run one after another through torch's fused LSTM (one call per model), then one
    batched output layer."""

    def __init__(self, config: LSTMConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = models
        self.lstm = nn.Module()  # parameters named as torch.nn.LSTM names them: weight_ih_l0, ...
        for layer in range(c.layers):
            weights = StackedLSTMWeights(models, c.input_size if layer == 0 else c.hidden_size, c.hidden_size)
            for name, p in weights.named_parameters():
                self.lstm.register_parameter(f"{name}_l{layer}", p)
        self.output = StackedLinear(models, c.hidden_size, c.output_size)

    def with_models(self, models: int) -> "LSTMBaseline":
        return LSTMBaseline(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    def initial_state(self, rows: int) -> LSTMState:
        c = self.config
        rows_per_model(rows, self.models)
        zeros = torch.zeros(c.layers, rows, c.hidden_size, device=self.device, dtype=self.output.weight.dtype)
        return LSTMState(zeros, zeros)

    def _run(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """x [P, T, I] -> (top layer's h [P, T, C], state), one fused LSTM call per model."""
        c = self.config
        B = rows_per_model(x.shape[0], self.models)
        names = [f"{kind}_l{layer}" for layer in range(c.layers)
                 for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        params = [getattr(self.lstm, name) for name in names]
        outs, hidden, cell = [], [], []
        for k in range(self.models):
            rows = slice(k * B, (k + 1) * B)
            hx = (state.hidden[:, rows].contiguous(), state.cell[:, rows].contiguous())
            h, hk, ck = torch.lstm(x[rows], hx, [p[k] for p in params],
                                   True, c.layers, 0.0, self.training, False, True)
            outs.append(h)
            hidden.append(hk)
            cell.append(ck)
        return torch.cat(outs, 0), LSTMState(torch.cat(hidden, 1), torch.cat(cell, 1))

    def step(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState, None]:
        """x [P, I] -> (logits [P, O], next state, None: there is no memory to trace)."""
        h, state = self._run(x.unsqueeze(1), state)
        return self.output(h[:, 0]), state, None

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O]; each model's sequence in one fused call."""
        check_inputs(inputs, self.config.input_size, self.models)
        h, _ = self._run(inputs, self.initial_state(inputs.shape[0]))
        return self.output(h)

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> each row's output probabilities, cut to its length (there is no
        memory to trace). Call under inference mode."""
        outputs = torch.sigmoid(self(inputs)).float().cpu().numpy()
        return Recording(FAMILY, [{"outputs": outputs[b, :n]} for b, n in enumerate(lengths)])
