"""The Neural Turing Machine and the LSTM baseline, each with one `step()`.

Shapes: B batch, T time, I input width, O output width, N slots, M word width,
R read heads, W write heads, H = R + W (read heads first), S shift width, C controller size.

One step of the NTM, for inputs x_t:

    controller([x_t, r_{t-1}])       -> h_t            (LSTM or feed-forward)
    heads(h_t)                       -> HeadParams     (every head's key, β, g, s, γ; e, a)
    address(M_{t-1}, w_{t-1}, ...)   -> w_t            (all H heads in one call)
    read(M_{t-1}, w_t[:R])           -> r_t            (reads see memory before this write)
    write(M_{t-1}, w_t[R:], e, a)    -> M_t            (erase, then add)
    output([h_t, r_t])               -> y_t            (logits; outputs are sigmoid(y_t))

So an Episode's `weights[t] @ memory[t] == reads[t]`, with memory[t] the memory before step t.
The traces are return values of the step, not hooks: training ignores them, `record` keeps them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .addressing import address, shift_index
from .config import LSTMConfig, ModelConfig, NTMConfig
from .errors import ConfigError
from .heads import Heads
from .memory import constant_memory, read, write


class NTMState(NamedTuple):
    """Everything carried from one step to the next."""

    hidden: tuple[Tensor, ...]  # controller h per LSTM layer, each [B, C]; () if feed-forward
    cell: tuple[Tensor, ...]  # controller c per LSTM layer, each [B, C]; () if feed-forward
    memory: Tensor  # [B, N, M]
    weights: Tensor  # [B, H, N]  w_{t-1} of every head, read heads first
    reads: Tensor  # [B, R, M]  r_{t-1}


class StepTrace(NamedTuple):
    """What one NTM step computed, for recording. H = R + W heads, read heads first."""

    key: Tensor  # [B, H, M]
    beta: Tensor  # [B, H]
    gate: Tensor  # [B, H]
    shift: Tensor  # [B, H, S]
    gamma: Tensor  # [B, H]
    erase: Tensor  # [B, W, M]
    add: Tensor  # [B, W, M]
    content: Tensor  # [B, H, N]  w^c
    gated: Tensor  # [B, H, N]  w^g
    shifted: Tensor  # [B, H, N]  w~
    weights: Tensor  # [B, H, N]  w
    reads: Tensor  # [B, R, M]
    memory: Tensor  # [B, N, M]  after this step's write


def _check_inputs(inputs: Tensor, input_size: int) -> None:
    if inputs.dim() != 3 or inputs.shape[-1] != input_size:
        raise ConfigError(
            f"inputs must be [batch, time, {input_size}], got {list(inputs.shape)}")


class NTM(nn.Module):
    """A Neural Turing Machine. `step` is the one implementation of its maths."""

    def __init__(self, config: NTMConfig):
        super().__init__()
        self.config = c = config
        controller_in = c.input_size + c.read_heads * c.memory_width
        if c.controller == "lstm":
            sizes = [controller_in] + [c.controller_size] * c.controller_layers
            self.controller = nn.ModuleList(nn.LSTMCell(a, b) for a, b in zip(sizes, sizes[1:]))
        else:
            layers: list[nn.Module] = []
            for i in range(c.controller_layers):
                layers += [nn.Linear(controller_in if i == 0 else c.controller_size, c.controller_size), nn.ReLU()]
            self.controller = nn.Sequential(*layers)
        self.heads = Heads(c.controller_size, c.read_heads, c.write_heads, c.memory_width, c.shift_width)
        self.output = nn.Linear(c.controller_size + c.read_heads * c.memory_width, c.output_size)

        memory0 = constant_memory(c.memory_slots, c.memory_width, c.memory_init_value)
        if c.memory_init == "learned":
            self.memory0 = nn.Parameter(memory0)
        else:
            self.register_buffer("memory0", memory0, persistent=False)
        # Every head starts focused on slot 0: a fixed, visible origin for location addressing.
        weights0 = torch.zeros(c.heads, c.memory_slots)
        weights0[:, 0] = 1
        self.register_buffer("weights0", weights0, persistent=False)
        self.register_buffer("shift_index", shift_index(c.memory_slots, c.shift_width), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.weights0.device

    def initial_state(self, batch_size: int) -> NTMState:
        """The state before the first step, on the model's device and dtype."""
        c = self.config
        dtype = self.output.weight.dtype
        if c.memory_init == "random":
            memory = c.memory_init_value * torch.randn(
                batch_size, c.memory_slots, c.memory_width, device=self.device, dtype=dtype)
        else:
            memory = self.memory0.to(dtype).expand(batch_size, -1, -1)
        weights = self.weights0.to(dtype).expand(batch_size, -1, -1)
        zeros = torch.zeros(batch_size, c.controller_size, device=self.device, dtype=dtype)
        layers = c.controller_layers if c.controller == "lstm" else 0
        return NTMState(
            hidden=(zeros,) * layers,
            cell=(zeros,) * layers,
            memory=memory,
            weights=weights,
            reads=read(memory, weights[:, : c.read_heads]),
        )

    def step(self, x: Tensor, state: NTMState) -> tuple[Tensor, NTMState, StepTrace]:
        """One time step. x [B, I] -> (logits [B, O], next state, StepTrace)."""
        c = self.config
        batch = x.shape[0]
        h = torch.cat([x, state.reads.reshape(batch, -1)], dim=-1)
        hidden, cell = [], []
        if c.controller == "lstm":
            for layer, h_prev, c_prev in zip(self.controller, state.hidden, state.cell):
                h, c_new = layer(h, (h_prev, c_prev))
                hidden.append(h)
                cell.append(c_new)
        else:
            h = self.controller(h)

        p = self.heads(h)
        trace = address(state.memory, state.weights, p.key, p.beta, p.gate, p.shift, p.gamma, self.shift_index)
        w = trace.weights
        reads = read(state.memory, w[:, : c.read_heads])
        memory = write(state.memory, w[:, c.read_heads:], p.erase, p.add)
        y = self.output(torch.cat([h, reads.reshape(batch, -1)], dim=-1))

        next_state = NTMState(tuple(hidden), tuple(cell), memory, w, reads)
        return y, next_state, StepTrace(*p, *trace, reads, memory)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [B, T, I] -> logits [B, T, O]. Loops `step`, drops the traces."""
        _check_inputs(inputs, self.config.input_size)
        state = self.initial_state(inputs.shape[0])
        outputs = []
        for t in range(inputs.shape[1]):
            y, state, _ = self.step(inputs[:, t], state)
            outputs.append(y)
        return torch.stack(outputs, dim=1)


class LSTMState(NamedTuple):
    hidden: Tensor  # [L, B, C]
    cell: Tensor  # [L, B, C]


class LSTMBaseline(nn.Module):
    """A stack of LSTM layers with a linear output: the paper's baseline, same interface."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = c = config
        self.lstm = nn.LSTM(c.input_size, c.hidden_size, num_layers=c.layers, batch_first=True)
        self.output = nn.Linear(c.hidden_size, c.output_size)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    def initial_state(self, batch_size: int) -> LSTMState:
        c = self.config
        zeros = torch.zeros(c.layers, batch_size, c.hidden_size, device=self.device, dtype=self.output.weight.dtype)
        return LSTMState(zeros, zeros)

    def step(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState, None]:
        """x [B, I] -> (logits [B, O], next state, None: there is no memory to trace)."""
        h, (hidden, cell) = self.lstm(x.unsqueeze(1), tuple(state))
        return self.output(h[:, 0]), LSTMState(hidden, cell), None

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [B, T, I] -> logits [B, T, O]; the whole sequence in one fused call."""
        _check_inputs(inputs, self.config.input_size)
        h, _ = self.lstm(inputs, tuple(self.initial_state(inputs.shape[0])))
        return self.output(h)


def build_model(config: ModelConfig) -> NTM | LSTMBaseline:
    """The model a config describes."""
    return NTM(config) if isinstance(config, NTMConfig) else LSTMBaseline(config)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
