"""The stack-augmented recurrent network of Joulin & Mikolov 2015 ("Inferring Algorithmic
Patterns with Stack-Augmented Recurrent Nets"), one model or a seed ensemble of K.

Shapes: P = K x B rows (model major, layers.py), T time, I input width, O output width,
C hidden units, S stacks, D stack depth (positions per stack, the top is position 0),
k = read_depth (the top values of each stack the hidden layer reads).

One step, for inputs x_t (every stack at once, each with its own rows of A and D):

    h_t      = sigmoid(U x_t + R h_{t-1} + P s^k_{t-1})       s^k: the top k values of every stack
    a_t      = softmax(A h_t)                                 per stack, over (PUSH, POP, NO-OP)
    s_t[0]   = a[PUSH] sigmoid(D h_t) + a[POP] s_{t-1}[1] + a[NO-OP] s_{t-1}[0]
    s_t[i]   = a[PUSH] s_{t-1}[i-1]   + a[POP] s_{t-1}[i+1] + a[NO-OP] s_{t-1}[i]
    y_t      = V h_t                                          logits; outputs are sigmoid(y_t)

h_0 = 0. Stacks hold scalars. They start empty, every position holding EMPTY = -1 (as the
authors' code, EMPTY_STACK_VALUE); a POP brings EMPTY up from below the bottom and a PUSH drops
the bottom value. The hidden state reads the stacks as they were before this step (s_{t-1});
then the stacks move: the declaration's order is "read, write". The paper's softmax output is
a sigmoid per symbol here, as in every family of the project (the task chooses the loss).

Depth: after t steps every position >= t still holds EMPTY exactly (a move shifts by one
position at most, and a mixture of EMPTYs is EMPTY), so a sequence of T steps runs on
min(D, max(T, k)) positions and gives what the full depth gives, gradients included.

Speed: on a CPU the step is a dozen tiny ops, bound by dispatch, so (as fused.py does for the
NTM) the time loop runs as one autograd node with its backward written out: `_Sequence`. The
weight gradients of all steps come out of one product each. tests/test_stack_rnn.py checks it
against a float64 loop of the equations above and with gradcheck.

`test_actions` "discrete" (a config field, so a checkpoint keeps it): a model in eval mode
replaces each action distribution by the one-hot of its most likely action (the authors' "-hard"
option: discrete actions at validation and test time). Training is unaffected.

Recorded (see FAMILY): the memory [T+1, N, S] holds the stacks, one column per stack, the top
in slot 0, cut to the deepest position ever away from EMPTY (at least k slots). Head group
"read" (k heads) is what h_t reads: head i fixed on slot i, so weights @ memory[t] is s^k_{t-1}
exactly. Head group "stack" (a head per stack) writes: its weighting is a[PUSH] on slot 0, the
only slot a new value enters (by that share); the shifts that move the old contents are its
"action" param, the pushed value its "value" param. `replay(...)` rebuilds memory[t+1] from
memory[t] and the step's recorded actions and values.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import StackRNNConfig
from ..contract import Family, HeadGroup, Param, Recording
from ..errors import ConfigError
from ..layers import Stacked, StackedLinear, rows_per_model
from .ntm import check_inputs

EMPTY = -1.0  # what an empty stack position holds
ACTIONS = ("push", "pop", "no-op")  # the recorded actions' order (the paper's)
# The heads' order: how far a stack's contents move, one down (push), none, one up (pop).
MOVES = ("push", "no-op", "pop")
REORDER = [0, 2, 1]  # ACTIONS <-> MOVES (the same index both ways)
USED = 1e-4  # a position is in use once it differs from EMPTY by more than this (recordings)

FAMILY = Family(
    name="stack_rnn",
    title="Stack-augmented RNN",
    groups=(
        HeadGroup("read", "read_depth", reads=True,
                  doc="the hidden layer reads the top k values of every stack, before this step's move: "
                      "read head i is fixed on depth i, so its read is row i of the memory (a value per stack)"),
        # The weighting: where new content enters a stack and how much of it. Only the top slot
        # takes a new value, by the push's share: s_t[0] gets a[PUSH] * sigmoid(D h_t). The rest
        # of the update moves what is already there (down by a[PUSH], up by a[POP]), which the
        # action records; so the weights sum to a[PUSH] <= 1 (normalised=False).
        HeadGroup("stack", "stacks", params=(
            Param("action", "distribution", ("A",), "a",
                  "this step's move of the stack: push a value, pop the top, or leave it", labels=ACTIONS),
            Param("value", "number", (), "σ(Dh)", "the value a push puts on top, sigmoid(D h_t)",
                  signed=False, range=(0.0, 1.0)),
        ), normalised=False, writes=True,
            doc="one head per stack (its column of the memory): its weighting is the push's share "
                "a[PUSH] on the top slot, where the pushed value enters"),
    ),
    memory="written",
    order="read, write",
    doc="Joulin & Mikolov 2015: a sigmoid RNN with stacks of scalars it pushes, pops or leaves, "
        "reading the top values of every stack.",
    extra={"empty": EMPTY},
)


# ---- the stack's move --------------------------------------------------------------------------

def shift(stack: Tensor, moves: Tensor, value: Tensor) -> Tensor:
    """One move of every stack, a mixture of the stack shifted one down (push), kept (no-op)
    and shifted one up (pop): stack [..., S, D] s_{t-1}, moves [..., S, 3] in MOVES order,
    value [..., S] the pushed value -> s_t [..., S, D]. Plain values: no autograd."""
    padded = torch.cat([value.unsqueeze(-1), stack, stack.new_full((*stack.shape[:-1], 1), EMPTY)], -1)
    out = stack.new_empty(stack.shape)
    _mix(padded, moves, out)
    return out


def _mix(padded: Tensor, weights: Tensor, out: Tensor) -> None:
    """padded [..., D+2], weights [..., 3] -> out [..., D]: the windows of `padded` at offsets
    0, 1, 2 (pushed, kept, popped for a stack between its pushed value and EMPTY), weighted and
    summed in place (no [..., 3, D] temporary)."""
    D = out.shape[-1]
    torch.mul(padded[..., 1: D + 1], weights[..., 1:2], out=out)
    out.addcmul_(padded[..., :D], weights[..., 0:1])
    out.addcmul_(padded[..., 2:], weights[..., 2:3])


def stack_step(stack: Tensor, action: Tensor, value: Tensor) -> Tensor:
    """The paper's update: stack [..., S, D] s_{t-1}, action [..., S, 3] a_t in ACTIONS order
    (push, pop, no-op), value [..., S] sigmoid(D h_t) -> s_t [..., S, D]."""
    return shift(stack, action[..., REORDER], value)


def replay(memory: np.ndarray, action: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A recorded step again: memory [N, S] before it (a stack per column, top in row 0),
    action [S, 3], value [S] -> the memory [N, S] after it."""
    as64 = [torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (memory, action, value)]
    return stack_step(as64[0].T, as64[1], as64[2]).T.numpy()


# ---- the time loop, forward and backward ----------------------------------------------------------

class Weights(NamedTuple):
    """The operands of one sequence's batched products (K models each)."""

    hidden: Tensor  # R^T [K, C, C]
    stacks: Tensor  # P^T [K, S*k, C], rows stack major (stack 0's top k, then stack 1's)
    heads: Tensor  # (A and D)^T [K, C, 4S]: columns 3s..3s+2 stack s's actions (MOVES order), 3S + s its D
    bias: Tensor  # the heads' bias [K, 1, 4S]


class Run(NamedTuple):
    """Every step of one sequence, [K, B, ...] blocks."""

    hiddens: Tensor  # [K, B, T, C] h_t
    padded: Tensor  # [K, B, T+1, S, D+2] s_t before step 0, then after each step, each stack between
    #                 the value step t+1 pushes (EMPTY after the last step) and EMPTY below its bottom
    moves: Tensor  # [K, B, T, S, 3] a_t in MOVES order
    values: Tensor  # [K, B, T, S] sigmoid(D h_t)

    @property
    def stacks(self) -> Tensor:
        """[K, B, T+1, S, D] s_t before step 0, then after each step."""
        return self.padded[..., 1:-1]


def run_forward(x_terms: Tensor, w: Weights, k: int, depth: int, discrete: bool = False) -> Run:
    """x_terms [K, B, T, C] every step's U x_t + b -> the whole run (no autograd: each step
    writes the stacks in place into one buffer)."""
    K, B, T, C = x_terms.shape
    S = w.bias.shape[-1] // 4
    padded = x_terms.new_full((K, B, T + 1, S, depth + 2), EMPTY)
    stacks = padded.unbind(2)  # s_t, each [K, B, S, D+2]
    hidden = x_terms.new_zeros(K, B, C)
    hiddens, moves, values = [], [], []
    for t, x_term in enumerate(x_terms.unbind(2)):
        top = stacks[t][..., 1: k + 1].reshape(K, B, S * k)  # s^k_{t-1}
        hidden = torch.sigmoid(torch.baddbmm(torch.baddbmm(x_term, hidden, w.hidden), top, w.stacks))
        raw = torch.baddbmm(w.bias, hidden, w.heads)  # [K, B, 4S]
        move = torch.softmax(raw[..., : 3 * S].view(K, B, S, 3), -1)
        if discrete:
            move = F.one_hot(move.argmax(-1), 3).to(move.dtype)
        value = torch.sigmoid(raw[..., 3 * S:])
        stacks[t][..., 0] = value
        _mix(stacks[t], move, stacks[t + 1][..., 1:-1])
        hiddens.append(hidden)
        moves.append(move)
        values.append(value)
    return Run(torch.stack(hiddens, 2), padded, torch.stack(moves, 2), torch.stack(values, 2))


def run_backward(grad: Tensor, run: Run, w: Weights, k: int, discrete: bool) -> tuple[Tensor, ...]:
    """grad [K, B, T, C] dL/dh_t from the output layer -> the gradients of x_terms and of
    Weights' four tensors. Back through the steps, carrying dL/dh_t and dL/ds_t."""
    K, B, T, C = grad.shape
    S, D = run.padded.shape[-2], run.padded.shape[-1] - 2
    steps = [x.unbind(2) for x in (grad, run.padded, run.moves, run.moves.flip(-1), run.values * (1 - run.values),
                                   run.hiddens * (1 - run.hiddens))]
    heads_t, hidden_t, stacks_t = (x.transpose(1, 2) for x in (w.heads, w.hidden, w.stacks))
    g_hidden = grad.new_zeros(K, B, C)  # dL/dh_t from step t+1
    g_stacks = [grad.new_zeros(K, B, S, D + 2) for _ in range(2)]  # dL/ds_t from step t+1, zero padded; and the next
    g_pres, g_raws = [], []  # dL/d(pre-activation of h_t), dL/d(A h_t, D h_t)
    for t in reversed(range(T)):
        g_out, padded, move, flipped, d_value, d_hidden = (x[t] for x in steps)
        g_stack = g_stacks[0][..., 1:-1]
        g_move = (padded.unfold(-1, D, 1) @ g_stack.unsqueeze(-1)).squeeze(-1)  # [K, B, S, 3]
        g_logits = torch.zeros_like(g_move) if discrete else \
            move * (g_move - (g_move * move).sum(-1, keepdim=True))  # through the softmax
        g_value = move[..., 0] * g_stack[..., 0] * d_value  # the pushed value, through its sigmoid
        g_raw = torch.cat([g_logits.reshape(K, B, 3 * S), g_value], -1)
        g = torch.baddbmm(g_out + g_hidden, g_raw, heads_t).mul_(d_hidden)
        g_hidden = torch.bmm(g, hidden_t)
        # s_{t-1} reaches s_t through the three moves (the gradient shifts the other way) and h_t
        _mix(g_stacks[0], flipped, g_stacks[1][..., 1:-1])
        g_stacks[1][..., 1: k + 1] += torch.bmm(g, stacks_t).view(K, B, S, k)
        g_stacks.reverse()
        g_pres.append(g)
        g_raws.append(g_raw)
    g_pre, g_raw = torch.stack(g_pres[::-1], 2), torch.stack(g_raws[::-1], 2)
    previous = torch.cat([run.hiddens.new_zeros(K, B, 1, C), run.hiddens[:, :, :-1]], 2)
    tops = run.padded[:, :, :-1, :, 1: k + 1].reshape(K, B * T, S * k)
    rows = g_pre.reshape(K, B * T, C)
    return (g_pre, previous.reshape(K, B * T, C).transpose(1, 2) @ rows, tops.transpose(1, 2) @ rows,
            run.hiddens.reshape(K, B * T, C).transpose(1, 2) @ g_raw.reshape(K, B * T, 4 * S),
            g_raw.sum((1, 2)).unsqueeze(1))


class _Sequence(torch.autograd.Function):
    """The time loop as one autograd node: (x_terms, *Weights) -> hiddens [K, B, T, C]."""

    @staticmethod
    def forward(ctx, x_terms, hidden, stacks, heads, bias, k, depth, discrete):
        w = Weights(hidden, stacks, heads, bias)
        run = run_forward(x_terms, w, k, depth, discrete)
        ctx.save_for_backward(*w, *run)
        ctx.k, ctx.discrete = k, discrete
        return run.hiddens

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        return (*run_backward(grad.contiguous(), Run(*saved[4:]), Weights(*saved[:4]), ctx.k, ctx.discrete),
                None, None, None)


# ---- the model -------------------------------------------------------------------------------------

def _matrix(models: int, out_features: int, in_features: int) -> nn.Parameter:
    """[K, out, in] initialised as torch.nn.Linear's weight is, U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1 / math.sqrt(in_features)
    return nn.Parameter(torch.empty(models, out_features, in_features).uniform_(-bound, bound))


class StackRNN(Stacked):
    """A stack-augmented RNN, or K of one configuration (a seed ensemble) as one computation.

    Parameters (each [K, ...]): input U [C, I] with the hidden layer's bias; recurrent [R | P]
    [C, C + S*k] on [h_{t-1}, s^k_{t-1}]; heads [4S, C] with bias: rows 3s..3s+2 stack s's
    action logits (A, in MOVES order), row 3S + s its D; output V [O, C] with bias."""

    def __init__(self, config: StackRNNConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        self.input = StackedLinear(K, c.input_size, c.controller_size)  # U, with the hidden layer's bias
        self.recurrent = _matrix(K, c.controller_size, c.controller_size + c.stacks * c.read_depth)  # [R | P]
        self.heads = StackedLinear(K, c.controller_size, 4 * c.stacks)  # A (3 rows per stack), then D
        self.output = StackedLinear(K, c.controller_size, c.output_size)  # V

    def with_models(self, models: int) -> "StackRNN":
        return StackRNN(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    @property
    def discrete(self) -> bool:
        """Whether this step's actions are one-hot: in eval mode with test_actions "discrete"."""
        return self.config.test_actions == "discrete" and not self.training

    def weights(self) -> Weights:
        """The operands of the batched products, transposed once per sequence."""
        C = self.config.controller_size
        recurrent = self.recurrent.transpose(1, 2)  # [K, C + S*k, C]
        heads, bias = self.heads.matrices()
        return Weights(recurrent[:, :C], recurrent[:, C:], heads, bias)

    def _prepare(self, inputs: Tensor) -> tuple[Tensor, int]:
        """inputs [P, T, I] -> (every step's U x_t + b [K, B, T, C], the depth the run needs)."""
        c = self.config
        check_inputs(inputs, c.input_size, self.models)
        P, T, _ = inputs.shape
        B = rows_per_model(P, self.models)
        if T == 0:
            raise ConfigError("inputs have no time steps")
        depth = min(c.stack_depth, max(T, c.read_depth))  # deeper positions stay EMPTY (module docstring)
        return self.input(inputs).reshape(self.models, B, T, -1), depth

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O] (P = K x B, model major)."""
        x_terms, depth = self._prepare(inputs)
        hiddens = _Sequence.apply(x_terms, *self.weights(), self.config.read_depth, depth,
                                  self.discrete)
        return self.output(hiddens.reshape(*inputs.shape[:2], -1))  # y_t = V h_t for all steps at once

    def run(self, inputs: Tensor) -> tuple[Tensor, Run]:
        """inputs [P, T, I] -> (logits [P, T, O], every step of the run), without gradients."""
        with torch.no_grad():
            x_terms, depth = self._prepare(inputs)
            run = run_forward(x_terms, self.weights(), self.config.read_depth, depth,
                              self.discrete)
            return self.output(run.hiddens.reshape(*inputs.shape[:2], -1)), run

    # ---- recording -------------------------------------------------------------------------
    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> each row's steps under FAMILY's names, cut to its length n and to
        the N slots its stacks used: outputs [n, O], memory [n+1, N, S], reads [n, k, S],
        read.weights [n, k, N], stack.weights [n, S, N], stack.action [n, S, 3] (ACTIONS
        order), stack.value [n, S]. Call under inference mode."""
        c = self.config
        P, T, _ = inputs.shape
        logits, run = self.run(inputs)
        outputs = torch.sigmoid(logits).float().cpu().numpy()
        stacks = run.stacks.reshape(P, T + 1, c.stacks, -1).float().cpu().numpy()
        actions = run.moves[..., REORDER].reshape(P, T, c.stacks, 3).float().cpu().numpy()
        values = run.values.reshape(P, T, c.stacks).float().cpu().numpy()
        items = []
        for b, n in enumerate(lengths):
            memory = stacks[b, : n + 1].transpose(0, 2, 1)  # [n+1, D', S]: a column per stack
            memory = memory[:, : used_depth(memory, c.read_depth)]
            items.append(_item(outputs[b, :n], memory, actions[b, :n], values[b, :n], c.read_depth))
        return Recording(FAMILY.resolve(c), items)


def used_depth(memory: np.ndarray, at_least: int) -> int:
    """memory [T+1, D, S] -> the slots down to the deepest one ever away from EMPTY, and at
    least `at_least` (never more than D)."""
    used = np.flatnonzero((np.abs(memory - EMPTY) > USED).any(axis=(0, 2)))
    return min(memory.shape[1], max(at_least, int(used[-1]) + 1 if len(used) else 0))


def _item(outputs: np.ndarray, memory: np.ndarray, actions: np.ndarray, values: np.ndarray,
          k: int) -> dict[str, np.ndarray]:
    """One row's arrays under the declaration's names (memory [n+1, N, S], actions [n, S, 3])."""
    n, N = outputs.shape[0], memory.shape[1]
    S = memory.shape[2]
    read_weights = np.zeros((n, k, N), np.float32)
    read_weights[:, np.arange(k), np.arange(k)] = 1  # read head i on depth i
    stack_weights = np.zeros((n, S, N), np.float32)
    stack_weights[:, :, 0] = actions[:, :, 0]  # the push's share, on the top slot
    return {"outputs": outputs, "memory": memory, "reads": memory[:-1, :k].copy(),
            "read.weights": read_weights, "stack.weights": stack_weights,
            "stack.action": actions, "stack.value": values}
