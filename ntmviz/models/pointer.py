"""Pointer networks (Vinyals, Fortunato & Jaitly 2015), one model or a seed ensemble of K:
an LSTM encoder over the inputs and an LSTM decoder whose attention over the encoder's states
is its output, a pointer at one input per step.

Shapes: P = K x B rows (model major, layers.py), T steps, F numbers per input (a number; a
point's x, y), I = F + 2 input channels, O = positions + 1 pointers, C units, N = n + 1 slots.
The batch layout is the pointer tasks' (tasks/geometry.py): step t < n carries input t
(features, then the flag "input" = 1); the last channel "previous" carries the target pointer
of step t - 1.

One item of n inputs. Position 0 is the end (the paper's extra position): its input is the
end token z_0 = (0, ..., 0, 1); input j = 1..n is z_j = (features_j, 0).

    e_0 .. e_n = LSTM_enc(z_0, z_1, ..., z_n)             the encoder's states: the memory [N, C]
    decoder state before step 0: the encoder's last (h, c)
    d_i   = LSTM_dec(z_{p_(i-1)}, d_(i-1))                 p_(-1) = 0: the end token starts it
    u_ij  = v^T tanh(W1 e_j + W2 d_i)     j = 0..n         the energies (stage "energies")
    a_i   = softmax_j(u_ij)                                the pointer (the weights, the output)

The decoder's next input is the input pointed at: under teacher forcing in training mode (p_i
is the target pointer, read from the "previous" channel), its own argmax p_i = argmax_j u_ij
in eval mode (evaluation, validation, recording). The logits [P, T, O] are the energies, with
a large negative number at the positions an item does not have (j > n), so a softmax over O
is a_i followed by zeros.

Output "vocabulary" (config.output) is the paper's baseline, an encoder-decoder with attention
on the same tasks: the same encoder, decoder and energies, but the attention is read, not
answered with, and the answer is a softmax over the O positions as a fixed vocabulary of words
(it may name a position the item does not have):

    c_i      = sum_j a_ij e_j                              the context (the read)
    logits_i = W_out [d_i; c_i] + b_out                    [O]
    p_i      = argmax logits_i                             fed back as z_(p_i) (zeros past the inputs)

Both feed back the input their previous answer names, so the two differ in the output layer only.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..config import PointerConfig
from ..contract import Family, HeadGroup, Recording, Stage, chosen_by_config
from ..errors import ConfigError
from ..layers import Stacked, StackedLSTMWeights, rows_per_model

NOT_THERE = -1e9  # the logit of a position an item does not have
END_COORDS = {1: (-0.1, 0.0), 2: (-0.1, -0.1)}  # where the end is drawn among the points (outside [0, 1]^F)

FAMILY = Family(
    name="pointer",
    title="Pointer network",
    groups=(HeadGroup("pointer", 1, stages=(
        Stage("energies", "u_j = v^T tanh(W1 e_j + W2 d_i): the score of each input before the softmax "
                     "(its softmax is the weights)", signed=True),),
        doc="the decoder's attention over the encoded inputs: its output, a pointer at one input per step"),),
    memory="read-only",
    slot_coords=True,
    slot_labels=True,
    measure="answer_errors",
    doc="Vinyals, Fortunato & Jaitly 2015: an LSTM encoder over the inputs (slot 0 the end, then one slot per "
        "input), an LSTM decoder whose softmax over those slots is its answer. Points: the inputs in their plane "
        "(numbers on a line), the end drawn outside the unit square.",
)
VOCABULARY = Family(
    name="pointer",
    title="Encoder-decoder with attention (the pointer network's baseline)",
    groups=(HeadGroup("attention", 1, reads=True, stages=(
        Stage("energies", "u_j = v^T tanh(W1 e_j + W2 d_i): the score of each input before the softmax "
                     "(its softmax is the weights)", signed=True),),
        doc="the decoder's attention over the encoded inputs, read as a context c_i; the answer is a softmax "
            "over the positions as a fixed vocabulary, not this attention"),),
    memory="read-only",
    slot_coords=True,
    slot_labels=True,
    measure="answer_errors",
    doc="The baseline of Vinyals, Fortunato & Jaitly 2015 (LSTM with attention): the pointer network's encoder, "
        "decoder and attention, the answer a softmax over the positions 0..O-1 as words, read from the decoder's "
        "state and the attention's context.",
)
POINTERS = FAMILY
# The registry's declaration: the pointer network, which resolves to the family a config builds.
FAMILY = chosen_by_config(POINTERS, lambda config: POINTERS if config.points else VOCABULARY)


class Pointers(NamedTuple):
    """What one run computed, for the logits and for recording."""

    energies: Tensor  # [P, T, N] u, NOT_THERE where j > n
    weights: Tensor  # [P, T, N] the softmax of u (0 where j > n)
    logits: Tensor  # [P, T, O] the answer's: u padded with NOT_THERE, or the vocabulary's
    contexts: Tensor | None  # [P, T, C] c_i, what the vocabulary's output layer reads (None: pointer)
    memory: Tensor  # [P, N, C] the encoder's states e_0 .. e_N-1
    tokens: Tensor  # [P, N, F + 1] z_0 .. z_N-1: the end token, then the inputs
    counts: Tensor  # [P] n, each row's inputs


def lstm_cell(weights: StackedLSTMWeights, x: Tensor, h: Tensor, c: Tensor, models: int) -> tuple[Tensor, Tensor]:
    """One step of K LSTMs (torch's gate order i, f, g, o): x [P, in], h, c [P, C] -> (h, c)."""
    P = x.shape[0]
    B = rows_per_model(P, models)
    xs, hs = x.reshape(models, B, -1), h.reshape(models, B, -1)
    gates = (torch.bmm(xs, weights.weight_ih.transpose(1, 2)) + torch.bmm(hs, weights.weight_hh.transpose(1, 2))
             + (weights.bias_ih + weights.bias_hh).unsqueeze(1)).reshape(P, -1)
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class PointerNetwork(Stacked):
    """A pointer network, or K of one configuration (a seed ensemble)."""

    def __init__(self, config: PointerConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        Fw, C = c.features, c.pointer_size
        self.encoder = StackedLSTMWeights(K, Fw + 1, C)
        self.decoder = StackedLSTMWeights(K, Fw + 1, C)
        bound = 1 / math.sqrt(C)
        self.w1 = nn.Parameter(torch.empty(K, C, C).uniform_(-bound, bound))  # W1, on the encoder's states
        self.w2 = nn.Parameter(torch.empty(K, C, C).uniform_(-bound, bound))  # W2, on the decoder's state
        self.v = nn.Parameter(torch.empty(K, C).uniform_(-bound, bound))
        if not c.points:  # the baseline's output layer over the positions as words
            out_bound = 1 / math.sqrt(2 * C)
            self.w_out = nn.Parameter(torch.empty(K, c.output_size, 2 * C).uniform_(-out_bound, out_bound))
            self.b_out = nn.Parameter(torch.zeros(K, c.output_size))

    def with_models(self, models: int) -> "PointerNetwork":
        return PointerNetwork(self.config, models).to(self.device, self.v.dtype)

    @property
    def device(self) -> torch.device:
        return self.v.device

    def _check(self, inputs: Tensor) -> None:
        c = self.config
        if inputs.dim() != 3 or inputs.shape[-1] != c.input_size:
            raise ConfigError(f"inputs must be [batch, time, {c.input_size}], got {list(inputs.shape)}")
        rows_per_model(inputs.shape[0], self.models)
        if inputs.shape[1] - 1 > c.output_size - 1:
            raise ConfigError(f"{inputs.shape[1] - 1} inputs, but the model points over at most {c.output_size - 1}")

    def run(self, inputs: Tensor, each_once: bool = False) -> Pointers:
        """inputs [P, T, I] -> every step's energies and pointer (module docstring).

        each_once (eval mode only; teacher forcing ignores it): the answer may point at each input
        once and at the end only after every input, so a tour or a sorted order is always a whole
        permutation (Vinyals et al. decode TSP keeping only valid tours). Only the answer's logits
        are masked: the energies and weights stay the attention's own."""
        self._check(inputs)
        c, K = self.config, self.models
        P, T, _ = inputs.shape
        Fw, C = c.features, c.pointer_size
        present = inputs[:, :, Fw] > 0.5  # [P, T]
        counts = present.sum(1)  # [P] n
        N = T  # slots 0..T-1: the end, then up to T - 1 inputs
        tokens = inputs.new_zeros(P, N, Fw + 1)  # z_0 .. z_N-1
        tokens[:, 0, Fw] = 1  # the end token
        tokens[:, 1:, :Fw] = inputs[:, : N - 1, :Fw] * present[:, : N - 1, None]
        j = torch.arange(N, device=inputs.device)
        there = j[None] <= counts[:, None]  # [P, N]

        # The encoder: its state stays put past an item's inputs, so its last is that of z_n.
        h = inputs.new_zeros(P, C)
        cell = inputs.new_zeros(P, C)
        states = []
        for t in range(N):
            h_new, c_new = lstm_cell(self.encoder, tokens[:, t], h, cell, K)
            keep = there[:, t, None]
            h, cell = torch.where(keep, h_new, h), torch.where(keep, c_new, cell)
            states.append(h_new * keep)
        memory = torch.stack(states, 1)  # [P, N, C]
        B = rows_per_model(P, K)
        keys = torch.bmm(memory.reshape(K, B * N, C), self.w1.transpose(1, 2)).reshape(P, N, C)  # W1 e_j
        v = self.v.repeat_interleave(B, 0)  # [P, C]

        O = c.output_size
        fed = torch.nn.functional.pad(tokens, (0, 0, 0, O - N))  # [P, O, F + 1]: zeros past the inputs
        teacher = self.training
        previous = inputs[:, :, -1].round().long().clamp(0, O - 1) if teacher else None  # [P, T]
        pointer = torch.zeros(P, dtype=torch.long, device=inputs.device)
        energies, weights, logits, contexts = [], [], [], []
        rows = torch.arange(P, device=inputs.device)
        constrain = each_once and not teacher
        chosen = torch.zeros(P, O, dtype=torch.bool, device=inputs.device)  # positions answered so far
        exists = torch.arange(O, device=inputs.device)[None] <= counts[:, None]  # [P, O]: the end and the inputs
        for i in range(T):
            if teacher:
                pointer = previous[:, i]
            h, cell = lstm_cell(self.decoder, fed[rows, pointer], h, cell, K)
            query = torch.bmm(h.reshape(K, B, C), self.w2.transpose(1, 2)).reshape(P, 1, C)  # W2 d_i
            u = (torch.tanh(keys + query) * v[:, None]).sum(-1)  # [P, N]
            u = u.masked_fill(~there, NOT_THERE)
            a = torch.softmax(u, -1)
            energies.append(u)
            weights.append(a)
            if c.points:
                answer = torch.nn.functional.pad(u, (0, O - N), value=NOT_THERE)
            else:
                context = torch.bmm(a[:, None], memory)[:, 0]  # [P, C]
                read = torch.cat([h, context], -1).reshape(K, B, 2 * C)
                answer = (torch.bmm(read, self.w_out.transpose(1, 2)) + self.b_out[:, None]).reshape(P, O)
                contexts.append(context)
            if constrain:
                done = chosen[:, 1:].sum(1) >= counts  # [P] every input answered: the end, and only it
                allowed = exists & ~chosen
                allowed[:, 0] = done
                answer = answer.masked_fill(~allowed, NOT_THERE)
            logits.append(answer)
            pointer = answer.argmax(-1)
            if constrain:
                chosen[rows, pointer] = True
        return Pointers(torch.stack(energies, 1), torch.stack(weights, 1), torch.stack(logits, 1),
                        torch.stack(contexts, 1) if contexts else None, memory, tokens, counts)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O]: the energies, NOT_THERE past each item's inputs
        (or, output "vocabulary", the output layer's logits over the positions)."""
        return self.run(inputs).logits

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> each item as T = n + 1 steps over N = n + 1 slots (n = length - 1):
        outputs [T, O] the answer's probabilities over the positions, memory [N, C] the encoder's
        states, <group>.energies (u as computed: a signed stage) and <group>.weights [T, 1, N]
        (group "pointer", or "attention" for output "vocabulary", whose reads [T, 1, C] are the
        contexts), coords [N, 2] the inputs in their plane (a number v at (v, 0)), the end outside.
        Call under inference mode, in eval mode."""
        run = self.run(inputs)
        family = FAMILY.resolve(self.config)
        group = family.groups[0].name
        probs = torch.softmax(run.logits, -1).float().cpu().numpy()
        energies = run.energies.float().cpu().numpy()
        weights = run.weights.float().cpu().numpy()
        memory = run.memory.float().cpu().numpy()
        tokens = run.tokens.float().cpu().numpy()
        contexts = None if run.contexts is None else run.contexts.float().cpu().numpy()
        Fw = self.config.features
        items = []
        for b, length in enumerate(lengths):
            N = int(length)
            coords = np.zeros((N, 2), np.float32)
            coords[0] = END_COORDS[min(Fw, 2)]
            coords[1:, : min(Fw, 2)] = tokens[b, 1:N, : min(Fw, 2)]
            # the item's own positions only: NOT_THERE (j > n) is not an energy
            item = {"outputs": probs[b, :N], "memory": memory[b, :N], f"{group}.energies": energies[b, :N, None, :N],
                    f"{group}.weights": weights[b, :N, None, :N], "coords": coords}
            if contexts is not None:
                item["reads"] = contexts[b, :N, None]
            items.append(item)
        return Recording(family, items)
