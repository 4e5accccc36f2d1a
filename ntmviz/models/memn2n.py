"""The end-to-end memory network (Sukhbaatar, Szlam, Weston & Fergus 2015), one model or a
seed ensemble of K, over the story tasks' encoding (tasks/babi.py).

Shapes: P = K x B rows (model major, layers.py), T = S + 1 steps (the question, then S <= N
sentences), L words per sentence, V vocabulary, d embedding size, O answer words, H hops.

    inputs [P, T, L]    step 0 the question's word ids, steps 1..S the sentences' (0: padding;
                        a sentence of padding only is no memory)
    logits [P, T, O]    the answer's logits at step 0, zeros elsewhere (the task scores step 0)

One story:

    m_i^h = sum_j l_j * A_h[x_ij] + T_A^h[r_i]     memory i at hop h (position encoding l_j)
    c_i^h = sum_j l_j * C_h[x_ij] + T_C^h[r_i]     its output embedding
    u^1   = sum_j l_j * B[q_j]                       the question
    p^h   = softmax_i(u^h . m_i^h)                   hop h's attention over the memories
    u^h+1 = u^h + sum_i p_i^h c_i^h
    a     = W u^H+1                                  logits over the answer words

r_i is sentence i's recency (0 for the last sentence: temporal encoding counts back from the
question). Adjacent weight tying: A_h+1 = C_h, T_A^h+1 = T_C^h, B = A_1 and W = C_H (rows of
the answer words). So the weights are H + 1 word embeddings and H + 1 time embeddings:
`words[:, h]` is A_h+1 (h < H) and C_h (h > 0). Position encoding (the paper's section 4.1):
l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J of a J-word sentence, dimension k = 1..d.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..config import MemN2NConfig
from ..contract import Family, HeadGroup, Recording
from ..errors import ConfigError
from ..layers import Stacked, rows_per_model

# Recorded, a story is an episode whose steps are the hops: each hop's attention over the
# sentences is the one read head's weighting at that step, the sentences are the slots (labelled
# by their text, which the task supplies), and the memory is the output memories c^1 of hop 1
# (the input memories of hop 2), the same at every step. Only the last hop's readout is the answer.
FAMILY = Family(
    name="memn2n",
    title="End-to-end memory network",
    groups=(HeadGroup("read", 1, doc="each hop's attention over the story's sentences (one step per hop)"),),
    memory="read-only",
    slot_labels=True,
    steps="passes",
    measure="answer_errors",
    doc="Sukhbaatar, Szlam, Weston & Fergus 2015: hops of attention over a story's sentences.",
)


class Story(NamedTuple):
    """A batch of stories as word ids, read once for every model that reads stories."""

    question: Tensor  # [P, L] the question's word ids
    story: Tensor  # [P, S, L] the sentences' word ids (0: padding)
    valid: Tensor  # [P, S] whether a sentence has a word (a padding sentence is no memory)
    recency: Tensor  # [P, S] sentences after this one (0: the last), for the temporal encoding
    which: Tensor  # [P, 1] the model each row belongs to


def read_story(inputs: Tensor, config, models: int, slots: str) -> Story:
    """inputs [P, T, L] (step 0 the question, steps 1.. the sentences) -> a Story; ConfigError,
    naming the model's `slots` ("memories", "facts"), for inputs that do not fit `config`."""
    c = config
    if inputs.dim() != 3 or inputs.shape[-1] != c.input_size:
        raise ConfigError(f"inputs must be [batch, time, {c.input_size}], got {list(inputs.shape)}")
    P, T, _ = inputs.shape
    B = rows_per_model(P, models)
    S = T - 1
    if S < 1 or S > c.memory_slots:
        raise ConfigError(f"a story of {S} sentences does not fit {c.memory_slots} {slots}")
    ids = inputs.round().long()
    if int(ids.min()) < 0 or int(ids.max()) >= c.vocab_size:
        raise ConfigError(f"word ids must be in 0..{c.vocab_size - 1}, got {int(ids.min())}..{int(ids.max())}")
    question, story = ids[:, 0], ids[:, 1:]  # [P, L], [P, S, L]
    valid = (story > 0).any(-1)  # [P, S]
    n = valid.sum(-1)  # [P]
    recency = (n.unsqueeze(1) - 1 - torch.arange(S, device=ids.device)).clamp(min=0)  # [P, S]
    which = (torch.arange(P, device=ids.device) // B).unsqueeze(1)  # [P, 1]
    return Story(question, story, valid, recency, which)


def position_encoding(ids: Tensor, d: int) -> Tensor:
    """ids [..., L] word ids (0: padding, words first) -> l [..., L, d]: the paper's weights,
    J = the sentence's own word count, zero on padding."""
    present = ids > 0
    J = present.sum(-1, keepdim=True).clamp(min=1).to(torch.float32)  # [..., 1]
    j = torch.arange(1, ids.shape[-1] + 1, device=ids.device, dtype=torch.float32)  # [L]
    k = torch.arange(1, d + 1, device=ids.device, dtype=torch.float32)  # [d]
    jj = (j / J).unsqueeze(-1)  # [..., L, 1]
    weights = (1 - jj) - (k / d) * (1 - 2 * jj)  # [..., L, d]
    return weights * present.unsqueeze(-1)


class Hops(NamedTuple):
    """What one run computed, for recording and the mechanism metric."""

    logits: Tensor  # [P, O] the answer's logits
    hop_logits: Tensor  # [P, H, O] the answer W u^h+1 read out after each hop (the last is `logits`)
    attention: Tensor  # [P, H, S] each hop's softmax over the memories (0 on padding sentences)
    memory_in: Tensor  # [P, H, S, d] m^h: the input memories of each hop
    memory_out: Tensor  # [P, H, S, d] c^h: the output memories of each hop
    sentences: Tensor  # [P] S_b, the story's sentences (the rest are padding)


class MemN2N(Stacked):
    """An end-to-end memory network, or K of one configuration (a seed ensemble)."""

    def __init__(self, config: MemN2NConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        # The paper's initialisation: N(0, 0.1) for every embedding.
        self.words = nn.Parameter(0.1 * torch.randn(K, c.hops + 1, c.vocab_size, c.embedding_size))
        self.times = nn.Parameter(0.1 * torch.randn(K, c.hops + 1, c.memory_slots, c.embedding_size))

    def with_models(self, models: int) -> "MemN2N":
        return MemN2N(self.config, models).to(self.device, self.words.dtype)

    @property
    def device(self) -> torch.device:
        return self.words.device

    def _embed(self, level: Tensor, ids: Tensor) -> Tensor:
        """level [K, V, d] one word embedding of every model, ids [P, ..., L] -> [P, ..., d]
        position-encoded sums (row p uses model p // B's embedding)."""
        P = ids.shape[0]
        B = rows_per_model(P, self.models)
        which = (torch.arange(P, device=ids.device) // B).view(P, *([1] * (ids.dim() - 1)))
        vectors = level[which, ids]  # [P, ..., L, d]
        return (position_encoding(ids, level.shape[-1]).to(vectors.dtype) * vectors).sum(-2)

    def hops(self, inputs: Tensor) -> Hops:
        """inputs [P, T, L] -> every hop's attention and memories (see the module docstring)."""
        c = self.config
        question, story, valid, recency, which = read_story(inputs, c, self.models, "memories")
        levels = [self._embed(self.words[:, h], story) + self.times[:, h][which, recency]
                  for h in range(c.hops + 1)]  # H + 1 of [P, S, d]
        u = self._embed(self.words[:, 0], question)  # [P, d]  B = A_1
        answers = self.words[:, c.hops, 1: c.output_size + 1][which[:, 0]]  # [P, O, d]  W = C_H's answer rows
        attention, hop_logits = [], []
        for h in range(c.hops):
            m, out = levels[h], levels[h + 1]  # A_h+1 = C_h: adjacent tying
            scores = (m * u.unsqueeze(1)).sum(-1).masked_fill(~valid, float("-inf"))  # [P, S]
            p = torch.softmax(scores, -1)
            u = u + (p.unsqueeze(-1) * out).sum(1)
            attention.append(p)
            hop_logits.append(torch.einsum("pd,pod->po", u, answers))
        return Hops(hop_logits[-1], torch.stack(hop_logits, 1), torch.stack(attention, 1),
                    torch.stack(levels[:-1], 1), torch.stack(levels[1:], 1), valid.sum(-1))

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, L] -> each story as its hops (see FAMILY): n = length - 1 sentences,
        M = d. Per row: outputs [H, O] the answer probabilities read out after each hop (W u^h+1),
        memory [n, d] the output memories c^1, read.weights [H, 1, n] each hop's attention.
        Call under inference mode."""
        hops = self.hops(inputs)
        probs = torch.softmax(hops.hop_logits, -1).float().cpu().numpy()  # [P, H, O]
        attention = hops.attention.float().cpu().numpy()  # [P, H, S]
        memory = hops.memory_out[:, 0].float().cpu().numpy()  # [P, S, d]
        items = []
        for b, length in enumerate(lengths):
            n = int(length) - 1
            items.append({"outputs": probs[b], "memory": memory[b, :n], "read.weights": attention[b, :, None, :n]})
        return Recording(FAMILY.resolve(self.config), items)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, L] -> logits [P, T, O]: the answer at step 0, zeros after."""
        logits = self.hops(inputs).logits
        rest = logits.new_zeros(logits.shape[0], inputs.shape[1] - 1, logits.shape[1])
        return torch.cat([logits.unsqueeze(1), rest], 1)
