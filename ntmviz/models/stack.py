"""The neural stack, queue and deque of Grefenstette, Hermann, Suleyman & Blunsom 2015
("Learning to Transduce with Unbounded Memory"), one model or a seed ensemble of K.

Shapes: P = K x B rows (model major, layers.py), T steps, I inputs, O outputs, C controller
units, M value width (memory_width), N rows of the structure, H ends that push and read (1 for
the stack and queue, 2 for the deque: the top end, then the bottom end).

The structure (the paper's section 3) is a value matrix V [N, M] and a strength vector s [N].
Every push appends a row that never changes again; pops and pushes only move strengths.
Each step pops, pushes, then reads the structure it has just changed:

    stack   s_t[i] = max(0, s_t-1[i] - max(0, u_t - sum_{j>i} s_t-1[j]))   rows pushed before t (eq. 2)
            s_t[t] = d_t,  V_t[t] = v_t                                                (eqs. 1, 2)
            r_t = sum_i min(s_t[i], max(0, 1 - sum_{j>i} s_t[j])) V_t[i]                (eq. 3)
    queue   the same, with the sums over the rows below (j < i): it pops and reads the oldest
            rows, the front, and pushes at the back (eqs. 4, 5)
    deque   pop u_top from the top (sums above), then u_bot from the bottom of what is left
            (sums below), then push v_top at the top and v_bot at the bottom, then read at the
            top (sums above) and at the bottom (sums below) (eqs. 6-11)

Each read's weights min(s[i], max(0, 1 - sum of the strengths before row i)) are the read's
attention over the rows: they sum to at most 1 (to 1 once the structure holds 1 of strength).
max and min take the derivative of their left argument at ties (the paper's footnote 1):
relu's derivative at 0 is 0, and the read's min is a where() that picks s on a tie.

Row layout: fixed, so row i is always the same pushed vector. Stack and queue: N = T, row t
is pushed at step t. Deque: N = 2T, the top end's push at step t is row T + t and the bottom
end's row T - 1 - t, so the rows in use are always one block, bottom to top (the paper's rows
1..2t; its eq. 6 moves every row up one a step instead). Rows not pushed yet are zeros of
strength 0, which adds nothing to any sum, so the equations over all N rows are the paper's.
`stack_update`, `queue_read`, `deque_update` ... work on this layout. The model itself runs on
the rows pushed so far, bottom to top (the paper's own layout, `grow`): every step then costs
what its rows in use cost, and its backward slices gradients instead of zero-filling [P, N, M]
ones; `place` puts its rows where the fixed layout keeps them for the recording.

The controller (section 3.4): an LSTM of C units reads [x_t, r_t-1] (the deque: [x_t, r_top,
r_bot]); r_0, V_0 and s_0 are 0, and so are the LSTM's first state (the paper learns h_0).
From its output o'_t:

    d_t = sigmoid(W_d o'_t + b_d)   push        u_t = sigmoid(W_u o'_t + b_u)   pop
    v_t = tanh(W_v o'_t + b_v)      value       y_t = W_y o'_t + b_y            the task's logits

y_t reads o'_t alone, as the paper's o_t = tanh(W_o o'_t + b_o) does: the read r_t reaches the
outputs through the next step's controller. b_u starts at config.pop_bias: the paper's appendix
B initialises the pop bias to -1 so that a new controller pushes more than it pops (a
controller that pops what it has just pushed uses the structure as one more hidden layer and
gets no gradient to learn otherwise).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import StackConfig
from ..contract import Family, HeadGroup, Param, Recording, SlotField, Stage
from ..errors import ConfigError
from ..layers import Stacked, StackedLinear, StackedLSTMWeights, rows_per_model
from .ntm import check_inputs

# ---- the declarations ---------------------------------------------------------------------

PUSH = Param("push", "number", (), "d", "push strength: the strength this step's row starts with",
             signed=False, range=(0.0, 1.0))
VALUE = Param("value", "vector", ("M",), "v", "the vector pushed this step, in [-1, 1]; its row keeps it for good")
POP = Param("pop", "number", (), "u", "pop strength: how much strength this end removes before the read",
            signed=False, range=(0.0, 1.0))
POPPED = Stage("popped", "the strength this step's pop took from each row: u, or less when the structure "
                         "holds less, taken from the rows nearest this end first")
STRENGTH = SlotField("strength", "s: how much of each row is still in the structure after the step "
                                 "(pushed with d, worn down by pops)", range=(0.0, 1.0))


def _family(name: str, title: str, ends: int, push_doc: str, read_doc: str, doc: str) -> Family:
    """A structure's declaration: push heads write rows, read heads pop then read (see the module docstring)."""
    return Family(
        name=name,
        title=title,
        groups=(
            HeadGroup("push", ends, params=(PUSH, VALUE), normalised=False, writes=True, doc=push_doc),
            HeadGroup("read", ends, stages=(POPPED,), params=(POP,), normalised=False, reads=True, doc=read_doc),
        ),
        memory="written",
        slot_state=(STRENGTH,),
        order="write, read",
        doc=doc,
    )


_PAPER = "Grefenstette, Hermann, Suleyman & Blunsom 2015: an LSTM pushes and pops vectors with continuous strengths"

STACK = _family(
    "stack", "Neural stack", 1,
    push_doc="pushes v onto the top with strength d: the weighting is d on row t, the row pushed at step t",
    read_doc="pops u from the top, then reads the top 1 of strength: r = w V (w: each row's share of the read)",
    doc=f"{_PAPER}; last in, first out. One row per step (row t pushed at step t); a step pops, pushes, "
        "then reads the top. Push 1 and read 1 are the top.")
QUEUE = _family(
    "queue", "Neural queue", 1,
    push_doc="pushes v at the back (the top: the newest row) with strength d: d on row t, pushed at step t",
    read_doc="pops u from the front (the bottom: the oldest rows), then reads the front 1 of strength: r = w V",
    doc=f"{_PAPER}; first in, first out. One row per step (row t pushed at step t); a step pops the front, "
        "pushes at the back, then reads the front. Push 1 is the back (top), read 1 the front (bottom).")
DEQUE = _family(
    "deque", "Neural deque", 2,
    push_doc="push 1 pushes v_top at the top, push 2 v_bot at the bottom, each with its own strength d",
    read_doc="read 1 pops u_top from the top and reads the top 1 of strength; read 2 then pops u_bot from "
             "the bottom and reads the bottom 1 of strength",
    doc=f"{_PAPER}; pushed, popped and read at both ends. Two rows per step: the top end's push at step t "
        "is row T + t, the bottom end's row T - 1 - t (T steps, 2T rows), so the rows in use are one block, "
        "bottom to top. A step pops the top, then the bottom, pushes at both ends, then reads both. "
        "Head 1 of each group is the top end, head 2 the bottom end.")

FAMILIES = {"stack": STACK, "queue": QUEUE, "deque": DEQUE}
# The ends each structure pops and reads at, one per read head, in head order.
ENDS = {"stack": ("top",), "queue": ("bottom",), "deque": ("top", "bottom")}


# ---- the structure: pure functions ----------------------------------------------------------

def sum_above(strength: Tensor) -> Tensor:
    """strength [P, N] -> [P, N]: sum_{j > i} s[j], the strength nearer the top than row i."""
    running = strength.cumsum(-1)
    return running[..., -1:] - running  # exactly 0 above the top row that holds any strength


def sum_below(strength: Tensor) -> Tensor:
    """strength [P, N] -> [P, N]: sum_{j < i} s[j], the strength nearer the bottom than row i."""
    return strength.cumsum(-1) - strength


COVER = {"top": sum_above, "bottom": sum_below}  # what lies between a row and each end


def pop_end(strength: Tensor, pop: Tensor, end: str) -> Tensor:
    """strength [P, N], pop [P] u -> [P, N]: each row loses what is left of u after the rows
    nearer `end` took theirs (eqs. 2, 4, 7, 8)."""
    left = F.relu(pop.unsqueeze(-1) - COVER[end](strength))  # max(0, u - sum nearer the end)
    return F.relu(strength - left)


def read_weights(strength: Tensor, end: str) -> Tensor:
    """strength [P, N] -> weights [P, N]: each row's share of a read of 1 from `end`,
    min(s[i], max(0, 1 - sum nearer the end)) (eqs. 3, 5, 10, 11)."""
    room = F.relu(1 - COVER[end](strength))
    return torch.where(strength <= room, strength, room)  # min(s, room), s's derivative on a tie


def with_row(x: Tensor, row: int, value: Tensor) -> Tensor:
    """x [P, N, ...] with row `row` set to value [P, ...]: a new tensor (autograd keeps the old)."""
    return torch.cat([x[:, :row], value.unsqueeze(1), x[:, row + 1:]], 1)


def push_rows(kind: str, t: int, rows: int) -> tuple[int, ...]:
    """The row each push head writes at step t, of `rows` rows: (t,) for the stack and queue,
    (top, bottom) = (rows/2 + t, rows/2 - 1 - t) for the deque."""
    if kind == "deque":
        half = rows // 2
        return half + t, half - 1 - t
    return (t,)


def structure_rows(kind: str, steps: int) -> int:
    """N, the rows `steps` steps may push: T, or 2T for the deque."""
    return 2 * steps if kind == "deque" else steps


def structure_pop(kind: str, strength: Tensor, pop: Tensor) -> list[Tensor]:
    """strength [P, N] s_t-1, pop [P, H] u -> the strength [P, N] after each end's pop, in pop
    order (the deque: the top, then the bottom of what is left); the last is what the pushes see."""
    after = []
    for end, u in zip(ENDS[kind], pop.unbind(1)):
        strength = pop_end(strength, u, end)
        after.append(strength)
    return after


def structure_push(kind: str, strength: Tensor, push: Tensor, t: int) -> Tensor:
    """strength [P, N] after the pops, push [P, H] d -> s_t: each push head's row starts at d."""
    for h, row in enumerate(push_rows(kind, t, strength.shape[-1])):
        strength = with_row(strength, row, push[:, h])
    return strength


def structure_update(kind: str, strength: Tensor, pop: Tensor, push: Tensor, t: int) -> Tensor:
    """strength [P, N] s_t-1, pop [P, H] u, push [P, H] d -> s_t [P, N]: pop, then push."""
    return structure_push(kind, structure_pop(kind, strength, pop)[-1], push, t)


def popped(before: Tensor, after: Sequence[Tensor]) -> Tensor:
    """before [P, N] s_t-1 and `structure_pop`'s strengths -> [P, H, N]: what each pop took from each row."""
    return torch.stack([a - b for a, b in zip([before, *after], after)], 1)


def structure_values(kind: str, values: Tensor, value: Tensor, t: int) -> Tensor:
    """values [P, N, M] V_t-1, value [P, H, M] v -> V_t: each push head's row set (eqs. 1, 6)."""
    for h, row in enumerate(push_rows(kind, t, values.shape[1])):
        values = with_row(values, row, value[:, h])
    return values


def structure_read(kind: str, strength: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """strength [P, N], values [P, N, M] -> (weights [P, H, N], reads [P, H, M]): each end's read."""
    ends = ENDS[kind]
    weights = read_weights(strength, ends[0]).unsqueeze(1) if len(ends) == 1 else \
        torch.stack([read_weights(strength, end) for end in ends], 1)
    return weights, torch.bmm(weights, values)


def grow(kind: str, x: Tensor, new: Tensor) -> Tensor:
    """x [P, n, ...] the rows pushed so far, bottom to top (the paper's own layout), new [P, H, ...]
    this step's pushes -> [P, n + H, ...]: the stack and queue push on the top (last); the deque's
    top head on the top and its bottom head under the bottom (first). The model's layout: it runs
    on the rows in use only, and `place` puts them where the fixed layout has them."""
    if kind == "deque":
        top, bottom = new.split(1, 1)
        return torch.cat([bottom, x, top], 1)
    return torch.cat([x, new], 1)


def place(kind: str, x: Tensor, t: int, rows: int, dim: int = 1) -> Tensor:
    """x [..., n, ...] the rows in use after step t (along `dim`) -> [..., rows, ...]: where the
    fixed layout keeps them (rows 0..t; the deque's rows/2 - 1 - t .. rows/2 + t), zeros elsewhere."""
    lo = rows // 2 - 1 - t if kind == "deque" else 0
    shape = list(x.shape)
    shape[dim] = rows
    out = x.new_zeros(shape)
    out.narrow(dim, lo, x.shape[dim]).copy_(x)
    return out


def stack_update(strength: Tensor, pop: Tensor, push: Tensor, t: int) -> Tensor:
    """strength [P, N] s_t-1, pop [P] u_t, push [P] d_t -> s_t [P, N] (eq. 2)."""
    return structure_update("stack", strength, pop.unsqueeze(1), push.unsqueeze(1), t)


def stack_read(strength: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """strength [P, N], values [P, N, M] -> (weights [P, N], read [P, M]): the top 1 of strength (eq. 3)."""
    weights, reads = structure_read("stack", strength, values)
    return weights[:, 0], reads[:, 0]


def queue_update(strength: Tensor, pop: Tensor, push: Tensor, t: int) -> Tensor:
    """strength [P, N] s_t-1, pop [P] u_t, push [P] d_t -> s_t [P, N]: pops the front (eq. 4)."""
    return structure_update("queue", strength, pop.unsqueeze(1), push.unsqueeze(1), t)


def queue_read(strength: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """strength [P, N], values [P, N, M] -> (weights [P, N], read [P, M]): the front 1 of strength (eq. 5)."""
    weights, reads = structure_read("queue", strength, values)
    return weights[:, 0], reads[:, 0]


def deque_update(strength: Tensor, pop: Tensor, push: Tensor, t: int) -> Tensor:
    """strength [P, N] s_t-1 (N = 2T), pop [P, 2] and push [P, 2] (top, bottom) -> s_t [P, N]:
    pops the top, then the bottom, then pushes rows N/2 + t and N/2 - 1 - t (eqs. 7-9)."""
    return structure_update("deque", strength, pop, push, t)


def deque_read(strength: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """strength [P, N], values [P, N, M] -> (weights [P, 2, N], reads [P, 2, M]): top, bottom (eqs. 10, 11)."""
    return structure_read("deque", strength, values)


# ---- the model ---------------------------------------------------------------------------------

def lstm_cell(gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """gates [P, 4C] (i, f, g, o, as torch orders them), cell [P, C] -> (h, c) [P, C]."""
    i, f, _, o = torch.sigmoid(gates).chunk(4, -1)  # one kernel for i, f, o (g's sigmoid is not used)
    cell = torch.addcmul(f * cell, i, torch.tanh(gates.chunk(4, -1)[2]))
    return o * torch.tanh(cell), cell


class Trace(NamedTuple):
    """Every step of a run, for recording (P rows, T steps)."""

    push: Tensor  # [P, T, H] d
    value: Tensor  # [P, T, H, M] v
    pop: Tensor  # [P, T, H] u
    popped: Tensor  # [P, T, H, N] what each pop took from each row
    weights: Tensor  # [P, T, H, N] each read's weights
    reads: Tensor  # [P, T, H, M] r_t
    strength: Tensor  # [P, T, N] s_t
    memory: Tensor  # [P, T + 1, N, M] V before step 0, then after each step


def host(x: Tensor):
    """A tensor as float32 numpy on the CPU (an episode's arrays)."""
    return x.float().cpu().numpy()


class NeuralStack(Stacked):
    """An LSTM with a neural stack, queue or deque (its config's kind), or K of one
    configuration (a seed ensemble) as one computation."""

    def __init__(self, config: StackConfig, models: int = 1):
        super().__init__()
        kind = getattr(config, "kind", None)
        if kind not in ENDS:
            raise ConfigError(f"a neural stack's kind must be one of {sorted(ENDS)}, got {kind!r}")
        self.config = c = config
        self.kind = kind
        self.models = K = models
        self.ends = H = len(ENDS[kind])
        M, C = c.memory_width, c.controller_size
        self.controller = StackedLSTMWeights(K, c.input_size + H * M, C)  # reads [x_t, r_t-1]
        self.interface = StackedLinear(K, C, 2 * H + H * M)  # d [H] | u [H] | v [H*M]
        self.output = StackedLinear(K, C, c.output_size)
        with torch.no_grad():  # appendix B: a negative pop bias, so a new controller pushes more than it pops
            self.interface.bias[:, H: 2 * H] = c.pop_bias

    def with_models(self, models: int) -> "NeuralStack":
        return NeuralStack(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    @property
    def family(self) -> Family:
        """The declaration of this model's structure, resolved."""
        return FAMILIES[self.kind].resolve(self.config)

    def _controller_matrices(self) -> tuple[Tensor, Tensor, Tensor]:
        """(w_x [K, I, 4C], w_rec [K, H*M + C, 4C], bias [K, 1, 4C]): the LSTM's products split into
        the input's term (computed for every step at once) and the recurrent one ([r_t-1, h_t-1])."""
        w = self.controller
        I = self.config.input_size
        w_x = w.weight_ih[:, :, :I].transpose(1, 2)
        w_rec = torch.cat([w.weight_ih[:, :, I:], w.weight_hh], -1).transpose(1, 2)
        return w_x, w_rec, (w.bias_ih + w.bias_hh).unsqueeze(1)

    def _interface(self, h: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h [P, C] o'_t -> (push [P, H] d, pop [P, H] u, value [P, H, M] v)."""
        P, H = h.shape[0], self.ends
        raw = torch.baddbmm(b, h.reshape(self.models, -1, h.shape[-1]), w).reshape(P, -1)
        d, u, v = raw.split([H, H, raw.shape[-1] - 2 * H], -1)  # split: one backward node, not one per slice
        return torch.sigmoid(d), torch.sigmoid(u), torch.tanh(v).reshape(P, H, -1)

    def run(self, inputs: Tensor, record: bool = False) -> tuple[Tensor, Trace | None]:
        """inputs [P, T, I] -> (logits [P, T, O], every step's trace when `record`)."""
        c = self.config
        check_inputs(inputs, c.input_size, self.models)
        P, T, _ = inputs.shape
        K, B, H, M, C = self.models, rows_per_model(P, self.models), self.ends, c.memory_width, c.controller_size
        N = structure_rows(self.kind, T)
        dtype = self.output.weight.dtype
        w_x, w_rec, bias = self._controller_matrices()
        w_i, b_i = self.interface.matrices()
        x_in = torch.baddbmm(bias, inputs.to(dtype).reshape(K, B * T, -1), w_x).reshape(K, B, T, 4 * C)
        x_steps = x_in.unbind(2)  # one backward node; indexing each step would zero-fill [K, B, T, 4C] a step

        zeros = inputs.new_zeros
        h, cell = zeros(P, C, dtype=dtype), zeros(P, C, dtype=dtype)
        reads = zeros(P, H, M, dtype=dtype)  # r_0
        # s and V over the rows pushed so far (`grow`): no row is pushed before step 0
        strength, values = zeros(P, 0, dtype=dtype), zeros(P, 0, M, dtype=dtype)
        hidden, steps = [], []
        for t in range(T):
            recurrent = torch.cat([reads.reshape(P, H * M), h], -1)
            gates = torch.baddbmm(x_steps[t], recurrent.reshape(K, B, -1), w_rec).reshape(P, 4 * C)
            h, cell = lstm_cell(gates, cell)
            push, pop, value = self._interface(h, w_i, b_i)
            after = structure_pop(self.kind, strength, pop)
            took = popped(strength, after) if record else None
            strength = grow(self.kind, after[-1], push)
            values = grow(self.kind, values, value)
            weights, reads = structure_read(self.kind, strength, values)
            hidden.append(h)
            if record:
                steps.append((push, value, pop, place(self.kind, took, t - 1, N, -1),  # the rows before the pushes
                              place(self.kind, weights, t, N, -1), reads, place(self.kind, strength, t, N),
                              place(self.kind, values, t, N)))
        logits = self.output(torch.stack(hidden, 1))
        if not record:
            return logits, None
        fields = [torch.stack(f, 1) for f in zip(*steps)]
        fields[-1] = torch.cat([zeros(P, 1, N, M, dtype=dtype), fields[-1]], 1)  # V_0, then V_t
        return logits, Trace(*fields)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O] (P = K x B, model major)."""
        return self.run(inputs)[0]

    def push_weights(self, push: Tensor) -> Tensor:
        """push [P, T, H] d -> [P, T, H, N]: each push head's weighting, d on the row it pushed."""
        P, T, H = push.shape
        N = structure_rows(self.kind, T)
        rows = torch.tensor([push_rows(self.kind, t, N) for t in range(T)], device=push.device)  # [T, H]
        return push.new_zeros(P, T, H, N).scatter_(-1, rows.expand(P, T, H).unsqueeze(-1), push.unsqueeze(-1))

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> every step under the declaration's names, each row cut to its
        length (N = T or 2T rows for the whole batch). Call under inference mode."""
        logits, trace = self.run(inputs, record=True)
        outputs = host(torch.sigmoid(logits))
        arrays = {"memory": host(trace.memory), "reads": host(trace.reads),
                  "push.weights": host(self.push_weights(trace.push)), "push.push": host(trace.push),
                  "push.value": host(trace.value), "read.weights": host(trace.weights),
                  "read.popped": host(trace.popped), "read.pop": host(trace.pop),
                  "slot.strength": host(trace.strength)}
        items = []
        for b, n in enumerate(lengths):
            item = {"outputs": outputs[b, :n]}
            for name, a in arrays.items():
                item[name] = a[b, : n + 1] if name == "memory" else a[b, :n]
            items.append(item)
        return Recording(self.family, items)


__all__ = ["STACK", "QUEUE", "DEQUE", "FAMILIES", "NeuralStack", "stack_update", "stack_read", "queue_update",
           "queue_read", "deque_update", "deque_read", "structure_pop", "structure_push", "structure_update",
           "structure_read", "structure_values", "popped", "grow", "place"]
