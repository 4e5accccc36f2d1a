"""The differentiable neural computer (Graves et al. 2016, Nature, "Hybrid computing using a
neural network with dynamic external memory", Methods), one model or a seed ensemble of K.

Shapes: P = K x B rows (model major, layers.py), T steps, I input width, O output width,
N slots, M word width, R read heads, C controller units. One write head.

One step, for inputs x_t (every line batched over the P rows and the R read heads):

    controller([x_t, r_{t-1}], h_{t-1})  -> h_t                 one LSTM layer
    interface(h_t)                        -> xi_t                (ξ: keys, strengths, gates, ...)
    psi_t = prod_i (1 - f^i w^{r,i}_{t-1})                       retention ψ
    u_t   = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi_t  usage
    a_t   = allocation(u_t)                                      the free list, least used first
    c^w_t = C(M_{t-1}, k^w, beta^w)                              write content weighting
    w^w_t = g^w (g^a a_t + (1 - g^a) c^w_t)                      write weighting
    M_t   = M_{t-1} o (E - w^w e^T) + w^w v^T                    erase, then add
    L_t   = (1 - w^w_i - w^w_j) L_{t-1} + w^w_i p_{t-1,j}, L_t[i, i] = 0    temporal links
    p_t   = (1 - sum w^w_t) p_{t-1} + w^w_t                      precedence
    f^i_t = L_t w^{r,i}_{t-1},  b^i_t = L_t^T w^{r,i}_{t-1}      forward, backward
    c^{r,i}_t = C(M_t, k^{r,i}, beta^{r,i})                      read content weighting
    w^{r,i}_t = pi^i[0] b^i + pi^i[1] c^{r,i} + pi^i[2] f^i      read weighting (modes π)
    r^i_t = M_t^T w^{r,i}_t                                      reads see this step's write
    y_t   = W_y h_t + W_r [r^1_t .. r^R_t]                       logits; outputs are sigmoid(y_t)

So an Episode's `read.weights[t] @ memory[t + 1] == reads[t]` (order "write, read").
The memory, usage, precedence, links, weightings and reads all start at zero.

Each line above is a small pure function below; `memory_step` chains them, passing a
`DNCState` along (the model keeps no state between calls). The controller's products are
batched over the K models (layers.py); its pointwise part is fused.lstm_cell, one autograd node.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DNCConfig
from ..contract import Family, HeadGroup, Param, Recording, SlotField, Stage
from ..fused import lstm_cell
from ..layers import Stacked, StackedLinear, StackedLSTMWeights, rows_per_model
from .ntm import check_inputs

# ---- the declaration ---------------------------------------------------------------------------

_KEY = Param("key", "vector", ("M",), "k", "the content key, compared with every slot (cosine similarity)")
_STRENGTH = Param("strength", "number", (), "β",
                  "key strength, oneplus(x) >= 1: how sharply content addressing picks", range=(1.0, 50.0), log=True)

FAMILY = Family(
    name="dnc",
    title="Differentiable neural computer",
    groups=(
        HeadGroup(
            "read", "read_heads",
            (Stage("content", "the key against every slot of the memory just written, sharpened by β, softmaxed"),
             Stage("backward", "the previous read weighting moved back along the temporal links (L^T w)"),
             Stage("forward", "the previous read weighting moved forward along the temporal links (L w)")),
            (_KEY, _STRENGTH,
             Param("free", "number", (), "f", "free gate: how much of what this head read last step the "
                   "write may reuse (it lowers those slots' usage)", range=(0.0, 1.0)),
             Param("modes", "distribution", ("3",), "π", "read modes: how much of the read weighting comes "
                   "from the backward, content and forward weightings", labels=("backward", "content", "forward"))),
            normalised=False, reads=True,
            doc="read heads: a mix of content lookup and the temporal links' two directions; r = w M, "
                "from the memory after this step's write"),
        HeadGroup(
            "write", 1,
            (Stage("content", "the write key against every slot, sharpened by β, softmaxed"),
             Stage("allocation", "the free list: the least-used slot gets the most (from the usage)")),
            (_KEY, _STRENGTH,
             Param("alloc_gate", "number", (), "g^a", "allocation gate: 1 writes where the allocation points, "
                   "0 where the content key points", range=(0.0, 1.0)),
             Param("write_gate", "number", (), "g^w", "write gate: 0 writes nothing this step", range=(0.0, 1.0)),
             Param("erase", "vector", ("M",), "e", "what the write erases, in [0, 1] per component", signed=False),
             Param("add", "vector", ("M",), "v", "the write vector, added where the write weighting points")),
            normalised=False, writes=True,
            doc="the write head: g^w (g^a allocation + (1 - g^a) content); erases e, then adds v"),
    ),
    memory="written",
    slot_state=(
        SlotField("usage", "u: how used each slot is as this step allocates (writes up to the step "
                  "before, less what the free gates released)", range=(0.0, 1.0)),
        SlotField("retention", "ψ: how much of each slot's usage the free gates keep this step", range=(0.0, 1.0)),
        SlotField("precedence", "p: how much each slot was the last one written, after this step's write"),
    ),
    slot_matrices=(
        SlotField("links", "L[i, j]: how much slot i was written right after slot j, after this step",
                  range=(0.0, 1.0)),
    ),
    order="write, read",
    doc="Graves et al. 2016: an LSTM controller writes by content or to the least-used slot and reads "
        "by content or along the order of its writes (temporal links).",
)

# ---- the addressing: pure functions, batched over P rows (and H heads) ------------------------

# Added under the norms' square roots so zero memory (where every DNC starts) and zero keys give
# finite values and gradients; as large as the paper's reference code uses, so that the gradient
# of the cosine at a zero slot (~ 1 / sqrt(EPS)) stays moderate.
EPS = 1e-6


def content_weighting(memory: Tensor, keys: Tensor, strength: Tensor) -> Tensor:
    """C(M, k, β): softmax over slots of β * cosine(k, M[i]).

    memory [P, N, M], keys [P, H, M], strength [P, H] -> [P, H, N], each row sums to 1."""
    dots = torch.bmm(keys, memory.transpose(1, 2))  # [P, H, N]
    key_norm = torch.sqrt((keys * keys).sum(-1, keepdim=True) + EPS)  # [P, H, 1]
    slot_norm = torch.sqrt((memory * memory).sum(-1) + EPS).unsqueeze(1)  # [P, 1, N]
    return torch.softmax(strength.unsqueeze(-1) * dots / (key_norm * slot_norm), -1)


def retention(free: Tensor, read_weights: Tensor) -> Tensor:
    """ψ_t = prod_i (1 - f^i w^{r,i}_{t-1}): what the free gates keep of each slot's usage.

    free [P, R] in 0..1, read_weights [P, R, N] (the previous step's) -> [P, N] in 0..1."""
    return torch.prod(1 - free.unsqueeze(-1) * read_weights, 1)


def update_usage(usage: Tensor, write_weights: Tensor, psi: Tensor) -> Tensor:
    """u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o ψ_t.

    usage [P, N], write_weights [P, N] (the previous step's), psi [P, N] -> [P, N] in 0..1."""
    return torch.addcmul(usage, write_weights, 1 - usage) * psi


def allocation(usage: Tensor) -> Tensor:
    """a_t[φ_j] = (1 - u[φ_j]) prod_{i<j} u[φ_i], φ the slots in order of usage, least used
    first (ties in slot order). Sums to at most 1; the least-used slot gets the most.

    usage [P, N] -> [P, N]. The gradient flows through the sorted values, not the order."""
    sorted_usage, order = torch.sort(usage, dim=-1, stable=True)  # [P, N] each
    # exclusive cumulative product: prod_{i<j}, 1 for the first slot of the free list
    before = torch.cumprod(F.pad(sorted_usage[:, :-1], (1, 0), value=1.0), -1)
    return torch.zeros_like(usage).scatter(-1, order, (1 - sorted_usage) * before)


def write_weighting(alloc: Tensor, content: Tensor, alloc_gate: Tensor, write_gate: Tensor) -> Tensor:
    """w^w = g^w (g^a a + (1 - g^a) c^w).

    alloc [P, N], content [P, N], alloc_gate [P], write_gate [P] -> [P, N], sums to <= 1."""
    g_a = alloc_gate.unsqueeze(-1)
    return write_gate.unsqueeze(-1) * torch.lerp(content, alloc, g_a)


def write_memory(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """M_t = M_{t-1} o (E - w e^T) + w v^T, written as M + w (v - M o e) (one write head).

    memory [P, N, M], weights [P, N], erase [P, M] in 0..1, add [P, M] -> [P, N, M]."""
    change = add.unsqueeze(1) - memory * erase.unsqueeze(1)  # [P, N, M]
    return torch.addcmul(memory, weights.unsqueeze(-1), change)


def update_links(links: Tensor, weights: Tensor, precedence: Tensor, off_diagonal: Tensor | None = None) -> Tensor:
    """L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j], with L_t[i, i] = 0.

    links [P, N, N], weights [P, N] (this step's write), precedence [P, N] (the previous step's),
    off_diagonal [N, N] (1 - I; made here when not given) -> [P, N, N] in 0..1.
    L_{t-1}'s diagonal is already 0 and its factor keeps it so: only the new term needs the mask."""
    if off_diagonal is None:
        off_diagonal = 1 - torch.eye(links.shape[-1], dtype=links.dtype, device=links.device)
    w_i, w_j = weights.unsqueeze(-1), weights.unsqueeze(-2)  # [P, N, 1], [P, 1, N]
    fresh = w_i * precedence.unsqueeze(-2) * off_diagonal
    return torch.addcmul(fresh, 1 - w_i - w_j, links)


def update_precedence(precedence: Tensor, weights: Tensor) -> Tensor:
    """p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t.

    precedence [P, N], weights [P, N] -> [P, N], sums to <= 1."""
    return torch.addcmul(weights, 1 - weights.sum(-1, keepdim=True), precedence)


def directional_weightings(links: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """(backward b^i = L^T w^{r,i}, forward f^i = L w^{r,i}) for every read head.

    links [P, N, N], read_weights [P, R, N] (the previous step's) -> ([P, R, N], [P, R, N])."""
    backward = torch.bmm(read_weights, links)  # b[j] = sum_i w[i] L[i, j]
    forward = torch.bmm(read_weights, links.transpose(1, 2))  # f[i] = sum_j L[i, j] w[j]
    return backward, forward


def read_weighting(backward: Tensor, content: Tensor, forward: Tensor, modes: Tensor) -> Tensor:
    """w^r = π[0] b + π[1] c + π[2] f.

    backward, content, forward [P, R, N], modes [P, R, 3] (a distribution) -> [P, R, N], sums to <= 1."""
    pi = modes.unsqueeze(-1)  # [P, R, 3, 1]
    return pi[:, :, 0] * backward + pi[:, :, 1] * content + pi[:, :, 2] * forward


def read_memory(memory: Tensor, weights: Tensor) -> Tensor:
    """r^i = M^T w^{r,i}.  memory [P, N, M], weights [P, R, N] -> [P, R, M]."""
    return torch.bmm(weights, memory)


# ---- the interface vector ξ ----------------------------------------------------------------------

class Interface(NamedTuple):
    """One step's interface ξ_t, through its activations (the paper's order)."""

    read_keys: Tensor  # [P, R, M]  k^{r,i}
    read_strengths: Tensor  # [P, R]  β^{r,i} = oneplus
    write_key: Tensor  # [P, 1, M]  k^w
    write_strength: Tensor  # [P, 1]  β^w = oneplus
    erase: Tensor  # [P, M]  e = sigmoid
    add: Tensor  # [P, M]  v, unconstrained
    free: Tensor  # [P, R]  f^i = sigmoid
    alloc_gate: Tensor  # [P]  g^a = sigmoid
    write_gate: Tensor  # [P]  g^w = sigmoid
    modes: Tensor  # [P, R, 3]  π^i = softmax


def interface_sizes(R: int, M: int) -> tuple[int, ...]:
    """Widths of the slices of the raw interface vector in the paper's order: read keys R*M,
    read strengths R, write key M, write strength 1, erase M, write vector M, then the gates
    (R free gates, g^a, g^w: adjacent, so one sigmoid), read modes 3R. R*M + 3M + 5R + 3 in all."""
    return (R * M, R, M, 1, M, M, R + 2, 3 * R)


def oneplus(x: Tensor) -> Tensor:
    """1 + softplus(x): a strength >= 1."""
    return 1 + F.softplus(x)


def activate(raw: Tensor, R: int, M: int) -> Interface:
    """raw [P, R*M + 3M + 5R + 3] (the interface layer's output) -> Interface."""
    P = raw.shape[0]
    rk, rs, wk, ws, e, v, g, pi = raw.split(interface_sizes(R, M), -1)
    gates = torch.sigmoid(g)  # [P, R + 2]: f^1 .. f^R, g^a, g^w
    return Interface(
        read_keys=rk.reshape(P, R, M), read_strengths=oneplus(rs), write_key=wk.reshape(P, 1, M),
        write_strength=oneplus(ws), erase=torch.sigmoid(e), add=v, free=gates[:, :R],
        alloc_gate=gates[:, R], write_gate=gates[:, R + 1], modes=torch.softmax(pi.reshape(P, R, 3), -1))


# ---- one step of the memory ------------------------------------------------------------------

class DNCState(NamedTuple):
    """Everything carried from one step to the next (the model itself keeps none of it)."""

    hidden: Tensor  # [P, C]  controller h_{t-1}
    cell: Tensor  # [P, C]  controller cell
    memory: Tensor  # [P, N, M]
    usage: Tensor  # [P, N]  u_{t-1}
    precedence: Tensor  # [P, N]  p_{t-1}
    links: Tensor  # [P, N, N]  L_{t-1}
    read_weights: Tensor  # [P, R, N]  w^r_{t-1}
    write_weights: Tensor  # [P, N]  w^w_{t-1}
    reads: Tensor  # [P, R, M]  r_{t-1}


class MemoryTrace(NamedTuple):
    """The weightings one memory step computed on the way (for recording; training drops them)."""

    retention: Tensor  # [P, N]  ψ_t
    allocation: Tensor  # [P, N]  a_t
    write_content: Tensor  # [P, N]  c^w_t
    read_content: Tensor  # [P, R, N]  c^r_t
    backward: Tensor  # [P, R, N]  b_t
    forward: Tensor  # [P, R, N]  f_t


def memory_step(state: DNCState, xi: Interface, off_diagonal: Tensor | None = None) -> tuple[DNCState, MemoryTrace]:
    """The memory's part of one step (the module docstring's lines psi_t .. r_t): the state
    before the step (its hidden and cell are passed through) and this step's interface ->
    (the state after, with the new reads; what the step computed on the way)."""
    psi = retention(xi.free, state.read_weights)
    usage = update_usage(state.usage, state.write_weights, psi)
    alloc = allocation(usage)
    write_content = content_weighting(state.memory, xi.write_key, xi.write_strength)[:, 0]
    ww = write_weighting(alloc, write_content, xi.alloc_gate, xi.write_gate)
    memory = write_memory(state.memory, ww, xi.erase, xi.add)
    links = update_links(state.links, ww, state.precedence, off_diagonal)
    precedence = update_precedence(state.precedence, ww)
    backward, forward = directional_weightings(links, state.read_weights)
    read_content = content_weighting(memory, xi.read_keys, xi.read_strengths)
    wr = read_weighting(backward, read_content, forward, xi.modes)
    reads = read_memory(memory, wr)
    nxt = DNCState(state.hidden, state.cell, memory, usage, precedence, links, wr, ww, reads)
    return nxt, MemoryTrace(psi, alloc, write_content, read_content, backward, forward)


def _one_head(a: Tensor) -> Tensor:
    """[P, T, ...] -> [P, T, 1, ...]: a write-head field as a group of one head."""
    return a.unsqueeze(2)


class Run(NamedTuple):
    """One sequence's outputs, and with `record` every step's state and trace, stacked over time."""

    logits: Tensor  # [P, T, O]
    states: DNCState | None  # each field [P, T, ...]: the state after each step
    traces: MemoryTrace | None  # each field [P, T, ...]
    interfaces: Interface | None  # each field [P, T, ...]


# ---- the model ---------------------------------------------------------------------------------

class DNC(Stacked):
    """A differentiable neural computer, or K of one configuration (a seed ensemble), as one
    computation over P = K x B rows."""

    def __init__(self, config: DNCConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        R, M = c.read_heads, c.memory_width
        self.controller = StackedLSTMWeights(K, c.input_size + R * M, c.controller_size)
        self.interface = StackedLinear(K, c.controller_size, sum(interface_sizes(R, M)))
        self.output = StackedLinear(K, c.controller_size + R * M, c.output_size)  # [W_y, W_r]
        self.register_buffer("off_diagonal", 1 - torch.eye(c.memory_slots), persistent=False)

    def with_models(self, models: int) -> "DNC":
        return DNC(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    def initial_state(self, rows: int) -> DNCState:
        """Zeros everywhere for `rows` = K x B sequences, on the model's device and dtype."""
        c = self.config
        rows_per_model(rows, self.models)
        N, M, R = c.memory_slots, c.memory_width, c.read_heads

        def zeros(*shape: int) -> Tensor:
            return torch.zeros(rows, *shape, device=self.device, dtype=self.output.weight.dtype)

        return DNCState(zeros(c.controller_size), zeros(c.controller_size), zeros(N, M), zeros(N), zeros(N),
                        zeros(N, N), zeros(R, N), zeros(N), zeros(R, M))

    def run(self, inputs: Tensor, record: bool = False) -> Run:
        """inputs [P, T, I] -> logits [P, T, O] (and every step's state, trace and interface
        when `record`). x_t's controller term and the output layer run once for all steps."""
        c = self.config
        check_inputs(inputs, c.input_size, self.models)
        K, I = self.models, c.input_size
        P, T, _ = inputs.shape
        B = P // K
        lstm = self.controller
        w_all = torch.cat([lstm.weight_ih, lstm.weight_hh], -1).transpose(1, 2)  # [K, I + R*M + C, 4C]
        w_x, w_rec = w_all[:, :I], w_all[:, I:]  # x_t's rows; [r_{t-1}, h_{t-1}]'s rows
        bias = (lstm.bias_ih + lstm.bias_hh).unsqueeze(1)  # [K, 1, 4C]
        x_in = torch.baddbmm(bias, inputs.reshape(K, B * T, I), w_x)  # [K, B*T, 4C]
        # one tensor per step: indexing x_in[t] instead would make each step's backward fill a
        # whole [T, K, B, 4C] gradient (quadratic in T); unbind's backward stacks them once
        x_in = x_in.reshape(K, B, T, -1).permute(2, 0, 1, 3).contiguous().unbind(0)  # T of [K, B, 4C]
        w_if, b_if = self.interface.matrices()
        state = self.initial_state(P)
        hiddens, reads, kept = [], [], []
        for t in range(T):
            rec = torch.cat([state.reads.reshape(P, -1), state.hidden], -1).reshape(K, B, -1)
            gates = torch.baddbmm(x_in[t], rec, w_rec).reshape(P, -1)
            h, cell = lstm_cell(gates, state.cell)
            raw = torch.baddbmm(b_if, h.reshape(K, B, -1), w_if).reshape(P, -1)
            xi = activate(raw, c.read_heads, c.memory_width)
            state, trace = memory_step(state._replace(hidden=h, cell=cell), xi, self.off_diagonal)
            hiddens.append(h)
            reads.append(state.reads.reshape(P, -1))
            if record:
                kept.append((state, trace, xi))
        both = torch.cat([torch.stack(hiddens, 1), torch.stack(reads, 1)], -1)  # [P, T, C + R*M]
        logits = self.output(both)
        if not record:
            return Run(logits, None, None, None)
        states, traces, xis = zip(*kept)
        return Run(logits, *(kind(*(torch.stack(f, 1) for f in zip(*steps)))
                             for kind, steps in ((DNCState, states), (MemoryTrace, traces), (Interface, xis))))

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O] (P = K x B, model major)."""
        return self.run(inputs).logits

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> every step under the declaration's names (FAMILY), each row cut to
        its length n: outputs [n, O] (probabilities), memory [n+1, N, M] (before step 0, then
        after each step), reads [n, R, M], read.* [n, R, ...], write.* [n, 1, ...], slot.* [n, N],
        matrix.links [n, N, N]. Call under inference mode."""
        c = self.config
        run = self.run(inputs, record=True)
        s, tr, xi = run.states, run.traces, run.interfaces
        P = inputs.shape[0]
        first = self.initial_state(P).memory.unsqueeze(1)  # [P, 1, N, M]
        arrays = {
            "outputs": torch.sigmoid(run.logits), "memory": torch.cat([first, s.memory], 1), "reads": s.reads,
            "read.content": tr.read_content, "read.backward": tr.backward, "read.forward": tr.forward,
            "read.weights": s.read_weights, "read.key": xi.read_keys, "read.strength": xi.read_strengths,
            "read.free": xi.free, "read.modes": xi.modes,
            "write.content": _one_head(tr.write_content), "write.allocation": _one_head(tr.allocation),
            "write.weights": _one_head(s.write_weights),
            "write.key": xi.write_key, "write.strength": xi.write_strength,
            "write.alloc_gate": _one_head(xi.alloc_gate), "write.write_gate": _one_head(xi.write_gate),
            "write.erase": _one_head(xi.erase), "write.add": _one_head(xi.add),
            "slot.usage": s.usage, "slot.retention": tr.retention, "slot.precedence": s.precedence,
            "matrix.links": s.links,
        }
        host = {name: a.float().cpu().numpy() for name, a in arrays.items()}
        items = []
        for b, n in enumerate(lengths):
            n = int(n)
            items.append({name: a[b, : n + 1] if name == "memory" else a[b, :n] for name, a in host.items()})
        return Recording(FAMILY.resolve(c), items)
