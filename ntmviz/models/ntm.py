"""The Neural Turing Machine, one model or a seed ensemble of K (its declaration: heads.NTM).

Shapes: B batch, T time, I input width, O output width, N slots, M word width,
R read heads, W write heads, H = R + W (read heads first), S shift width, C controller size,
K models, P = K x B rows (model major: see layers.py). A single model is K = 1, P = B.

One step of the NTM, for inputs x_t:

    controller([x_t, r_{t-1}])       -> h_t            (LSTM or feed-forward)
    heads(h_t)                       -> raw parameters (every head's key, β, g, s, γ; e, a)
    address(M_{t-1}, w_{t-1}, ...)   -> w_t            (all H heads at once)
    read(M_{t-1}, w_t[:R])           -> r_t            (reads see memory before this write)
    write(M_{t-1}, w_t[R:], e, a)    -> M_t            (erase, then add)
    output([h_t, r_t])               -> y_t            (logits; outputs are sigmoid(y_t))

So an Episode's `weights[t] @ memory[t] == reads[t]`, with memory[t] the memory before step t.
The heads-to-write part runs as one fused autograd node (fused.py), checked against the pure
reference functions (heads.activate, addressing.address, memory.read/write) by the tests.
`forward` prepares the weights once per sequence, projects every step's input in one product
and applies the output layer to all steps at once; `step` runs one step on its own (record).
The traces are return values of the step, not hooks: training ignores them, `record` keeps them
and hands them back under the names the declaration gives (contract.Recording).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..config import NTMConfig
from ..contract import Recording
from ..errors import ConfigError
from ..fused import Layer, MemoryStep, SequenceTrace, Spec, lstm_cell, run_sequence
from ..ops import named_step as memory_step
from ..heads import NTM as FAMILY  # the NTM declares itself beside its heads
from ..heads import WRITE_PARAMS, Heads
from ..layers import Stacked, StackedLinear, StackedLSTMWeights, rows_per_model
from ..memory import constant_memory


class NTMState(NamedTuple):
    """Everything carried from one step to the next."""

    hidden: tuple[Tensor, ...]  # controller h per LSTM layer, each [P, C]; () if feed-forward
    cell: tuple[Tensor, ...]  # controller c per LSTM layer, each [P, C]; () if feed-forward
    memory: Tensor  # [P, N, M]
    weights: Tensor  # [P, H, N]  w_{t-1} of every head, read heads first
    reads: Tensor  # [P, R, M]  r_{t-1}


class _Weights(NamedTuple):
    """The operands of one sequence's batched products, prepared once (K models each)."""

    inputs: tuple[Tensor, Tensor]  # x_t's term in the first layer: (W [K, I, G], b [K, 1, G])
    layers: list[Layer]  # the controller's layers (fused.Layer; layer 0 without its x_t term)
    heads: tuple[Tensor, Tensor]  # (W [K, C, raw], b [K, 1, raw])
    output: tuple[Tensor, Tensor]  # (W [K, C + R*M, O], b [K, 1, O])


def check_inputs(inputs: Tensor, input_size: int, models: int) -> None:
    """ConfigError unless inputs are [P, T, input_size] with P a multiple of `models`."""
    if inputs.dim() != 3 or inputs.shape[-1] != input_size:
        raise ConfigError(f"inputs must be [batch, time, {input_size}], got {list(inputs.shape)}")
    if inputs.shape[0] % models:
        raise ConfigError(f"{inputs.shape[0]} sequences do not split evenly over {models} models")


class NTM(Stacked):
    """A Neural Turing Machine, or K of one configuration (a seed ensemble) as one computation."""

    def __init__(self, config: NTMConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        controller_in = c.input_size + c.read_heads * c.memory_width
        sizes = [controller_in] + [c.controller_size] * c.controller_layers
        if c.controller == "lstm":
            self.controller = nn.ModuleList(StackedLSTMWeights(K, a, b) for a, b in zip(sizes, sizes[1:]))
        else:
            self.controller = nn.ModuleList(StackedLinear(K, a, b) for a, b in zip(sizes, sizes[1:]))
        self.heads = Heads(K, c.controller_size, c.read_heads, c.write_heads, c.memory_width, c.shift_width)
        self.output = StackedLinear(K, c.controller_size + c.read_heads * c.memory_width, c.output_size)

        memory0 = constant_memory(c.memory_slots, c.memory_width, c.memory_init_value)
        if c.memory_init == "learned":
            self.memory0 = nn.Parameter(memory0.expand(K, -1, -1).clone())
        else:
            self.register_buffer("memory0", memory0, persistent=False)
        # Every head starts focused on slot 0: a fixed, visible origin for location addressing.
        weights0 = torch.zeros(c.heads, c.memory_slots)
        weights0[:, 0] = 1
        self.register_buffer("weights0", weights0, persistent=False)

    def with_models(self, models: int) -> "NTM":
        return NTM(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.weights0.device

    def initial_state(self, rows: int) -> NTMState:
        """The state before the first step for `rows` = K x B sequences, on the model's device and dtype."""
        c = self.config
        B = rows_per_model(rows, self.models)
        dtype = self.output.weight.dtype
        if c.memory_init == "random":
            memory = c.memory_init_value * torch.randn(
                rows, c.memory_slots, c.memory_width, device=self.device, dtype=dtype)
        elif c.memory_init == "learned":  # model k's rows start from model k's memory
            memory = self.memory0.to(dtype).unsqueeze(1).expand(-1, B, -1, -1).reshape(rows, *self.memory0.shape[1:])
        else:
            memory = self.memory0.to(dtype).expand(rows, -1, -1)
        weights = self.weights0.to(dtype).expand(rows, -1, -1)
        zeros = torch.zeros(rows, c.controller_size, device=self.device, dtype=dtype)
        layers = c.controller_layers if c.controller == "lstm" else 0
        return NTMState(
            hidden=(zeros,) * layers,
            cell=(zeros,) * layers,
            memory=memory,
            weights=weights,
            reads=torch.bmm(weights[:, : c.read_heads], memory),
        )

    # ---- the step ------------------------------------------------------------------------
    def _weights(self) -> _Weights:
        c = self.config
        layers, inputs = [], None
        for i, layer in enumerate(self.controller):
            if c.controller == "lstm":  # columns: [x_t or h below, r_{t-1} (first layer), h_{t-1}]
                w = torch.cat([layer.weight_ih, layer.weight_hh], -1).transpose(1, 2)
                b = (layer.bias_ih + layer.bias_hh).unsqueeze(1)
            else:  # columns: [x_t or h below, r_{t-1} (first layer)]
                w, b = layer.matrices()
            if i == 0:
                inputs = (w[:, : c.input_size], b)
                layers.append(Layer(None, w[:, c.input_size:], None))
            else:
                size = c.controller_size
                layers.append(Layer(w[:, :size], w[:, size:] if c.controller == "lstm" else None, b))
        return _Weights(inputs, layers, self.heads.linear.matrices(), self.output.matrices())

    def _spec(self) -> Spec:
        c = self.config
        return Spec(c.read_heads, c.shift_width, c.controller == "lstm", c.controller_layers)

    def _project_inputs(self, x: Tensor, weights: _Weights) -> Tensor:
        """x [P, ..., I] -> the first controller layer's x_t term [K, B*..., G] (bias included)."""
        w, b = weights.inputs
        return torch.baddbmm(b, x.reshape(self.models, -1, x.shape[-1]), w)

    def _output(self, h: Tensor, reads: Tensor, weights: _Weights) -> Tensor:
        """h [P, ..., C], reads [P, ..., R*M] -> logits [P, ..., O]."""
        w, b = weights.output
        both = torch.cat([h, reads], -1)
        return torch.baddbmm(b, both.reshape(self.models, -1, both.shape[-1]), w).reshape(*both.shape[:-1], -1)

    def _step(self, x_in: Tensor, state: NTMState, weights: _Weights) -> tuple[Tensor, NTMState, MemoryStep]:
        """One step as a few autograd nodes (fused.lstm_cell, ops.named_step: the registered operator), from the
        first layer's x_t term x_in [K, B, G]. Returns (top layer's h [P, C], next state, the step)."""
        lstm = self.config.controller == "lstm"
        K = self.models
        rows = state.memory.shape[0]
        hidden, cell = [], []
        h = state.reads
        for i, layer in enumerate(weights.layers):
            if i == 0:
                rec = torch.cat([state.reads.reshape(rows, -1), state.hidden[0]], -1) if lstm \
                    else state.reads.reshape(rows, -1)
                pre = torch.baddbmm(x_in, rec.reshape(K, -1, rec.shape[-1]), layer.w_rec).reshape(rows, -1)
            else:
                pre = torch.baddbmm(layer.bias, h.reshape(K, -1, h.shape[-1]), layer.w_in)
                if lstm:
                    pre = torch.baddbmm(pre, state.hidden[i].reshape(K, -1, h.shape[-1]), layer.w_rec)
                pre = pre.reshape(rows, -1)
            if lstm:
                h, c_i = lstm_cell(pre, state.cell[i])
                hidden.append(h)
                cell.append(c_i)
            else:
                h = torch.relu(pre)
        w_heads, b_heads = weights.heads
        raw = torch.baddbmm(b_heads, h.reshape(K, -1, h.shape[-1]), w_heads).reshape(rows, -1)
        step = memory_step(raw, state.memory, state.weights, self.config.shift_width, self.config.read_heads)
        return h, NTMState(tuple(hidden), tuple(cell), step.memory, step.weights, step.reads), step

    def step(self, x: Tensor, state: NTMState) -> tuple[Tensor, NTMState, MemoryStep]:
        """One time step. x [P, I] -> (logits [P, O], next state, the step's MemoryStep: every
        field of heads.STEP_FIELDS, H = R + W heads, read heads first)."""
        weights = self._weights()
        h, nxt, s = self._step(self._project_inputs(x, weights), state, weights)
        y = self._output(h, s.reads.reshape(x.shape[0], -1), weights)
        return y, nxt, s

    def run(self, inputs: Tensor, record: bool = False) -> tuple[Tensor, SequenceTrace | None]:
        """inputs [P, T, I] -> (logits [P, T, O], every step's trace when `record`), P = K x B
        model major. The time loop is one autograd node (fused.run_sequence)."""
        check_inputs(inputs, self.config.input_size, self.models)
        rows, steps, _ = inputs.shape
        weights = self._weights()
        state = self.initial_state(rows)
        x_in = self._project_inputs(inputs, weights).reshape(self.models, rows // self.models, steps, -1)
        hidden, reads, trace = run_sequence(self._spec(), x_in, state.memory, state.weights, weights.heads,
                                            weights.layers, record=record)
        return self._output(hidden, reads, weights), trace

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O] (P = K x B, model major)."""
        return self.run(inputs)[0]


    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> every step's trace under the declaration's names, each row cut to
        its length: the training path's forward (fused.run_sequence) keeping every step, one copy
        per field over time and one move to the CPU per field. Call under inference mode."""
        c = self.config
        logits, trace = self.run(inputs, record=True)
        steps = {name: getattr(trace.steps, name).float().cpu().numpy() for name in trace.steps._fields}
        memories = trace.memories.float().cpu().numpy()
        outputs = torch.sigmoid(logits).float().cpu().numpy()
        R = c.read_heads
        groups = {"read": slice(0, R), "write": slice(R, None)}
        items = []
        for b, n in enumerate(lengths):
            item = {"outputs": outputs[b, :n], "memory": memories[b, : n + 1], "reads": steps["reads"][b, :n]}
            for group in FAMILY.groups:
                heads = groups[group.name]
                for name in group.stage_names:
                    item[f"{group.name}.{name}"] = steps[name][b, :n, heads]
                for p in group.params:  # write-only params are laid out over the write heads alone
                    item[f"{group.name}.{p.name}"] = steps[p.name][b, :n] if p.name in WRITE_PARAMS \
                        else steps[p.name][b, :n, heads]
            items.append(item)
        return Recording(FAMILY.resolve(c), items)
