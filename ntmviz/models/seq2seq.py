"""An RNN encoder-decoder with additive attention (Bahdanau, Cho & Bengio 2015, "Neural Machine
Translation by Jointly Learning to Align and Translate"), or without it (the paper's RNNenc
baseline); one model or a seed ensemble of K.

Shapes: P = K x B rows (model major, layers.py), T time, I input width (the last channel is the
delimiter), O output width, H encoder units per direction, D decoder units, A attention units,
L_b the input tokens of row b (the steps before its delimiter), J decoder steps.

A sequence is laid out as copy's (tasks/alignment.py): L input tokens, a delimiter at step L,
then the output phase, steps L+1 ..., which is scored. The model reads its input phase with a
bidirectional GRU and writes one output per step of the output phase:

    f_j = GRU_f(x_j, f_{j-1}),  b_j = GRU_b(x_j, b_{j+1}),  h_j = [f_j; b_j]   j < L    annotations [L, 2H]
    s_0 = tanh(W_init b_0)                                                      the decoder's first state
    e_tj = v . tanh(W s_{t-1} + U h_j)                                          energies        (attention)
    a_t  = softmax_j(e_t)                                                       the weights     (attention)
    c_t  = sum_j a_tj h_j                                                       the context     (attention)
    c_t  = [f_{L-1}; b_0]                                   every step, without attention (RNNenc)
    s_t  = GRU_dec([y_{t-1}; c_t], s_{t-1})
    logits_t = W_out [s_t; c_t; y_{t-1}]

GRU is torch's: r = σ(W_r x + U_r h), z = σ(W_z x + U_z h), n = tanh(W_n x + r ⊙ (U_n h)) (each
product with its bias), h' = (1 - z) ⊙ n + z ⊙ h. The paper's deep maxout output is one linear
layer here; its decoder reads the same three things.

No teacher forcing: y_{t-1} is the model's own previous output (zeros before the first), the
one-hot of its most likely answer (config.feedback "answer") or its thresholded bits ("bits"),
with no gradient through the choice. The Trainer gives a model its inputs only, and the input
phase holds no answer, so training runs exactly as a test does.

Logits are zero on the input phase and the delimiter step (they are not scored). The decoder
cannot tell a row's padding from its output phase (both have zero inputs), so it writes on until
the batch's last step; the mask scores only the row's own.

Recorded (see FAMILY): the memory is read-only, the annotations h_j [L, 2H] of the row's L input
tokens (slots labelled with the tokens by the task); one head, "attention", whose stage is the
energies e_t as computed (a signed stage: they may be < 0, and the weights are exactly their
softmax) and whose weights are a_t; its read vector is the context c_t; its "query" param is
s_{t-1}, the state the energies compare with each h_j.
Every step of the episode is there, the input phase with zero weights (the decoder has not
started), so the head's weightings over time are the paper's alignment matrix (Figure 3).
Without attention the family has no memory (the views show the sequence alone).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Seq2SeqConfig
from ..contract import Family, HeadGroup, Param, Recording, Stage, chosen_by_config
from ..errors import ConfigError
from ..layers import Stacked, StackedGRUCell, StackedLinear, rows_per_model
from .ntm import check_inputs

# Recorded (module docstring): the memory is the annotations, one slot per input token; the one head's
# weights are a_t on the output steps and zero before (normalised=False: the encoder's steps have none).
ATTENTION = Family(
    name="seq2seq",
    title="Encoder-decoder with attention",
    groups=(HeadGroup(
        "attention", 1, reads=True, normalised=False,
        stages=(Stage("energy", "the energies e_tj = v . tanh(W s_{t-1} + U h_j), before the softmax over the "
                                "inputs (their softmax is the weights)", signed=True),),
        params=(Param("query", "vector", ("D",), "s", "the decoder's previous state s_{t-1}, which the energies "
                                                      "compare with each input's annotation"),),
        doc="the decoder's attention over the annotations of the input tokens: a softmax over them at each "
            "output step (its read is the context c_t), zero while the encoder reads"),),
    memory="read-only",
    slot_labels=True,
    measure="answer_errors",
    doc="Bahdanau, Cho & Bengio 2015: a bidirectional GRU encodes the input; at each output step a GRU "
        "decoder attends over the encoder's states (energies, softmax, context).",
)
NO_ATTENTION = Family(
    name="seq2seq", title="Encoder-decoder without attention", memory="none", measure="answer_errors",
    doc="The RNNenc baseline of Bahdanau et al. 2015: the decoder sees only the encoder's final states.")


# The registry's declaration: ATTENTION, which resolves to the family a config builds (NO_ATTENTION for "none").
FAMILY = chosen_by_config(ATTENTION, lambda config: ATTENTION if config.attends else NO_ATTENTION)


def delimiters(inputs: Tensor) -> Tensor:
    """inputs [P, T, I] -> L [P] int64: each row's first step whose last channel (the delimiter)
    is on, or T when it has none (all of it is input). ConfigError for a row whose delimiter comes
    first: it has no input to read."""
    on = inputs[..., -1] > 0.5  # [P, T]
    T = inputs.shape[1]
    first = torch.where(on.any(1), on.float().argmax(1), torch.full_like(on[:, 0], T, dtype=torch.long))
    if bool((first == 0).any()):
        raise ConfigError("a sequence starts with its delimiter: there is no input to read")
    return first.long()


class Run(NamedTuple):
    """What one run computed (J decoder steps, N = the longest input phase)."""

    logits: Tensor  # [P, T, O]
    annotations: Tensor  # [P, N, 2H] h_j (zero past a row's L)
    lengths: Tensor  # [P] L_b
    energies: Tensor  # [P, J, N] e_tj (-inf past L; empty without attention)
    weights: Tensor  # [P, J, N] a_t (empty without attention)
    contexts: Tensor  # [P, J, 2H] c_t
    queries: Tensor  # [P, J, D] s_{t-1}


class Seq2Seq(Stacked):
    """An encoder-decoder, with additive attention or without (config.attention), or K of one
    configuration (a seed ensemble). See the module docstring for the equations."""

    def __init__(self, config: Seq2SeqConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        I, O, H, D, A = c.input_size, c.output_size, c.encoder_size, c.decoder_size, c.attention_size
        self.forward_rnn = StackedGRUCell(K, I, H)
        self.backward_rnn = StackedGRUCell(K, I, H)
        self.init = StackedLinear(K, H, D)  # W_init on b_0
        self.decoder = StackedGRUCell(K, O + 2 * H, D)
        self.output = StackedLinear(K, D + 2 * H + O, O)
        if c.attends:
            self.query = StackedLinear(K, D, A)  # W (with a bias)
            self.key = StackedLinear(K, 2 * H, A)  # U (with a bias)
            self.energy = nn.Parameter(torch.empty(K, A).uniform_(-A ** -0.5, A ** -0.5))  # v

    def with_models(self, models: int) -> "Seq2Seq":
        return Seq2Seq(self.config, models).to(self.device, self.output.weight.dtype)

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    # ---- the encoder ---------------------------------------------------------------------------
    def encode(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """inputs [P, T, I], lengths [P] -> annotations [P, N, 2H], N = max L (zero past each L).
        Both directions see only a row's own tokens: an update past L is not taken."""
        N = int(lengths.max())
        x = inputs[:, :N]
        H = self.config.encoder_size
        live = (torch.arange(N, device=x.device)[None] < lengths[:, None]).to(x.dtype).unsqueeze(-1)  # [P, N, 1]
        out = []
        for rnn, order in ((self.forward_rnn, range(N)), (self.backward_rnn, reversed(range(N)))):
            x_terms = rnn.input(x)  # [P, N, 3H]
            h = x.new_zeros(x.shape[0], H)
            states = [None] * N
            for j in order:
                h = live[:, j] * rnn.step(x_terms[:, j], h) + (1 - live[:, j]) * h
                states[j] = h
            out.append(torch.stack(states, 1))
        return torch.cat(out, -1) * live

    # ---- the whole run -------------------------------------------------------------------------
    def run(self, inputs: Tensor) -> Run:
        """inputs [P, T, I] -> every step (see Run)."""
        c = self.config
        check_inputs(inputs, c.input_size, self.models)
        P, T, _ = inputs.shape
        rows_per_model(P, self.models)
        L = delimiters(inputs)  # [P]
        h = self.encode(inputs, L)  # [P, N, 2H]
        N, H = h.shape[1], c.encoder_size
        rows = torch.arange(P, device=inputs.device)
        first_b = h[:, 0, H:]  # b_0
        s = torch.tanh(self.init(first_b))  # s_0
        J = max(T - int(L.min()) - 1, 0)
        y = inputs.new_zeros(P, c.output_size)
        logits, energies, weights, contexts, queries = [], [], [], [], []
        if c.attends:
            keys = self.key(h)  # [P, N, A]  U h_j
            v = self.energy.repeat_interleave(P // self.models, 0).unsqueeze(-1)  # [P, A, 1]
            valid = torch.arange(N, device=inputs.device)[None] < L[:, None]  # [P, N]
        else:
            summary = torch.cat([h[rows, L.clamp(max=N) - 1, :H], first_b], -1)  # [f_{L-1}; b_0]
        for _ in range(J):
            if c.attends:
                e = (torch.tanh(self.query(s).unsqueeze(1) + keys) @ v).squeeze(-1)  # [P, N]
                e = e.masked_fill(~valid, float("-inf"))
                a = torch.softmax(e, -1)
                context = (a.unsqueeze(-1) * h).sum(1)
                energies.append(e)
                weights.append(a)
            else:
                context = summary
            queries.append(s)
            s = self.decoder.step(self.decoder.input(torch.cat([y, context], -1)), s)
            out = self.output(torch.cat([s, context, y], -1))
            logits.append(out)
            contexts.append(context)
            y = self._feedback(out.detach())
        full = inputs.new_zeros(P, T, c.output_size)
        if J:
            steps = L[:, None] + 1 + torch.arange(J, device=inputs.device)[None]  # [P, J]
            inside = steps < T
            full = full.index_put((rows[:, None].expand(P, J)[inside], steps[inside]),
                                  torch.stack(logits, 1)[inside])
        stack = lambda xs, *shape: torch.stack(xs, 1) if xs else inputs.new_zeros(P, 0, *shape)  # noqa: E731
        return Run(full, h, L, stack(energies, N), stack(weights, N), stack(contexts, 2 * H),
                   stack(queries, c.decoder_size))

    def _feedback(self, logits: Tensor) -> Tensor:
        """The previous output as the decoder reads it: its most likely answer one-hot, or its bits."""
        if self.config.feedback == "bits":
            return (logits > 0).to(logits.dtype)
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, I] -> logits [P, T, O] (zero up to each row's delimiter)."""
        return self.run(inputs).logits

    # ---- recording ----------------------------------------------------------------------------
    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, I] -> each row cut to its n steps: outputs [n, O] (softmax, or sigmoid
        for feedback "bits"); with attention also memory [L, 2H] (the annotations),
        attention.weights and attention.energy [n, 1, L] (the energies as computed, signed),
        attention.query [n, 1, D], reads [n, 1, 2H] (the contexts), zero off the output phase.
        Call under inference mode."""
        c = self.config
        run = self.run(inputs)
        if c.feedback == "bits":
            outputs = torch.sigmoid(run.logits)
        else:
            outputs = torch.softmax(run.logits, -1)
        outputs = outputs.float().cpu().numpy()
        family = FAMILY.resolve(c)
        if not c.attends:
            return Recording(family, [{"outputs": outputs[b, :n]} for b, n in enumerate(lengths)])
        # the energies' -inf past a row's L are cut off below (per_step keeps the first L)
        arrays = [x.float().cpu().numpy()
                  for x in (run.annotations, run.weights, run.energies, run.queries, run.contexts)]
        annotations, weights, energies, queries, contexts = arrays
        items = []
        for b, n in enumerate(lengths):
            L = int(run.lengths[b])
            steps = list(range(L + 1, n))  # the output phase within the row's n steps
            j = np.arange(len(steps))

            def per_step(a: np.ndarray, width: int) -> np.ndarray:
                out = np.zeros((n, 1, width), np.float32)
                out[steps, 0] = a[b, j, :width]
                return out

            items.append({"outputs": outputs[b, :n], "memory": annotations[b, :L].copy(),
                          "attention.weights": per_step(weights, L), "attention.energy": per_step(energies, L),
                          "attention.query": per_step(queries, c.decoder_size),
                          "reads": per_step(contexts, 2 * c.encoder_size)})
        return Recording(family, items)
