"""The Neural Turing Machine and the LSTM baseline, each one model or a seed ensemble of K.

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
The traces are return values of the step, not hooks: training ignores them, `record` keeps them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .config import LSTMConfig, ModelConfig, NTMConfig
from .errors import ConfigError
from .fused import Layer, MemoryStep, SequenceTrace, Spec, lstm_cell, memory_step, run_sequence
from .heads import Heads
from .layers import Stacked, StackedLinear, StackedLSTMWeights, rows_per_model
from .memn2n import MemN2N
from .memory import constant_memory


class NTMState(NamedTuple):
    """Everything carried from one step to the next."""

    hidden: tuple[Tensor, ...]  # controller h per LSTM layer, each [P, C]; () if feed-forward
    cell: tuple[Tensor, ...]  # controller c per LSTM layer, each [P, C]; () if feed-forward
    memory: Tensor  # [P, N, M]
    weights: Tensor  # [P, H, N]  w_{t-1} of every head, read heads first
    reads: Tensor  # [P, R, M]  r_{t-1}


class StepTrace(NamedTuple):
    """What one NTM step computed, for recording. H = R + W heads, read heads first."""

    key: Tensor  # [P, H, M]
    beta: Tensor  # [P, H]
    gate: Tensor  # [P, H]
    shift: Tensor  # [P, H, S]
    gamma: Tensor  # [P, H]
    erase: Tensor  # [P, W, M]
    add: Tensor  # [P, W, M]
    content: Tensor  # [P, H, N]  w^c
    gated: Tensor  # [P, H, N]  w^g
    shifted: Tensor  # [P, H, N]  w~
    weights: Tensor  # [P, H, N]  w
    reads: Tensor  # [P, R, M]
    memory: Tensor  # [P, N, M]  after this step's write


class _Weights(NamedTuple):
    """The operands of one sequence's batched products, prepared once (K models each)."""

    inputs: tuple[Tensor, Tensor]  # x_t's term in the first layer: (W [K, I, G], b [K, 1, G])
    layers: list[Layer]  # the controller's layers (fused.Layer; layer 0 without its x_t term)
    heads: tuple[Tensor, Tensor]  # (W [K, C, raw], b [K, 1, raw])
    output: tuple[Tensor, Tensor]  # (W [K, C + R*M, O], b [K, 1, O])


def _check_inputs(inputs: Tensor, input_size: int, models: int) -> None:
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
        """One step as a few autograd nodes (fused.lstm_cell, fused.memory_step), from the
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

    def step(self, x: Tensor, state: NTMState) -> tuple[Tensor, NTMState, StepTrace]:
        """One time step. x [P, I] -> (logits [P, O], next state, StepTrace)."""
        weights = self._weights()
        h, nxt, s = self._step(self._project_inputs(x, weights), state, weights)
        y = self._output(h, s.reads.reshape(x.shape[0], -1), weights)
        trace = StepTrace(s.key, s.beta, s.gate, s.shift, s.gamma, s.erase, s.add,
                          s.content, s.gated, s.shifted, s.weights, s.reads, s.memory)
        return y, nxt, trace

    def run(self, inputs: Tensor, record: bool = False) -> tuple[Tensor, SequenceTrace | None]:
        """inputs [P, T, I] -> (logits [P, T, O], every step's trace when `record`), P = K x B
        model major. The time loop is one autograd node (fused.run_sequence)."""
        _check_inputs(inputs, self.config.input_size, self.models)
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
        _check_inputs(inputs, self.config.input_size, self.models)
        h, _ = self._run(inputs, self.initial_state(inputs.shape[0]))
        return self.output(h)


def build_model(config: ModelConfig, seeds: list[int] | None = None) -> NTM | LSTMBaseline | MemN2N:
    """The model a config describes: one model, or one per seed, each initialised from its own
    seed (so model k of seeds [0..7] is the model seed k alone would give). Leaves torch's
    global random state as it found it."""
    cls = {"ntm": NTM, "lstm": LSTMBaseline, "memn2n": MemN2N}[config.kind]
    if seeds is None:
        return cls(config)
    if not seeds:
        raise ConfigError("no seeds given")
    members = []
    with torch.random.fork_rng(devices=[]):
        for seed in seeds:
            torch.manual_seed(seed)
            members.append(cls(config))
    return cls.stack(members)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
