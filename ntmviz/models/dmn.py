"""The dynamic memory network (Kumar et al. 2015, "Ask me anything"), one model or a seed
ensemble of K, over the story tasks' encoding (tasks/babi.py, as memn2n.py reads it).

Shapes: P = K x B rows (model major, layers.py), T = S + 1 steps (the question, then S <= N
sentences), L words per sentence, V vocabulary, d the size of every vector (word embeddings,
facts, the question, the memory), O answer words, E passes of the episodic module.

    inputs [P, T, L]    step 0 the question's word ids, steps 1..S the sentences' (0: padding;
                        a sentence of padding only is no fact)
    logits [P, T, O]    the answer's logits at step 0, zeros elsewhere (the task scores step 0)

One story (the four modules):

    input      c_i = sum_j l_j * A[x_ij] + R[r_i]          fact i: position-encoded words (memn2n.py's
                                                          l_j) plus a recency vector (r_i = 0 for the
                                                          last sentence, as MemN2N's temporal encoding)
    question   q = sum_j l_j * A[q_j]                      the same word embedding A
    episodic   m^0 = q; for each pass e = 1..E:
               z_i  = [c_i * q, c_i * m, |c_i - q|, |c_i - m|]        [4d]
               s_i  = w2 . tanh(W1 z_i + b1) + b2                    the gate's raw score
               g    = softmax_i(s)                                    the gates over the facts
               e^e  = sum_i g_i c_i                                   the episode
               m^e  = GRU(e^e, m^{e-1})                               the memory update (one GRU for all passes)
    answer     a = W [m^E ; q] + b                         logits over the answer words

The episode is the softmax-weighted sum of the facts (the variant of Xiong et al. 2016's "soft
attention"), not the paper's gated GRU over the facts, for two reasons: with a weighted sum the
gates are exactly what a pass read (the episode is gates @ facts, the read vector every head here
records), so the facts x passes gate matrix explains the answer with nothing hidden in a GRU's
state; and a pass is one batched product rather than a loop over the facts. The gates learn from
the answer alone unless `gate_supervision` > 0, which adds the paper's supervision: each pass's
gates against a supporting fact, in the order a reader follows them (tasks/babi.py fact_chain);
docs/attention.md has what each finds, on one and on two supporting facts. A weighted sum is blind
to the facts' order, which a gated GRU is not, so each fact carries a learned recency vector
instead (MemN2N's temporal encoding). The answer module is one linear layer over [m^E; q], as Xiong et al. use for
one-word answers, in place of the paper's answer GRU (every answer here is one word).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..config import DMNConfig
from ..contract import Family, HeadGroup, Recording, Stage
from ..layers import Stacked, StackedGRUCell, StackedLinear
from .memn2n import position_encoding, read_story

# Recorded, a story is an episode whose steps are the passes: each pass's gates over the facts are
# the one read head's weighting at that step (its raw scores the stage before the softmax, a signed
# stage: w2 . tanh(...) + b2 may be < 0), the facts are the slots (labelled by their sentences,
# which the task supplies) and the static memory, and each pass's episode is the read vector.
# Only the last pass's answer is scored.
FAMILY = Family(
    name="dmn",
    title="Dynamic memory network",
    groups=(HeadGroup("read", 1, stages=(Stage("scores", "the gate network's raw score of each fact, "
                                                         "before the softmax over the facts", signed=True),),
                      reads=True,
                      doc="each pass's attention gates over the story's facts (one step per pass); the "
                          "episode, the gates' weighted sum of the facts, is the read vector"),),
    memory="read-only",
    slot_labels=True,
    steps="passes",
    measure="answer_errors",
    doc="Kumar et al. 2015: passes of an episodic memory over a story's facts, gated by the question "
        "and the memory so far.",
)


class Passes(NamedTuple):
    """What one run computed, for recording and the mechanism metric."""

    logits: Tensor  # [P, O] the answer's logits, from the last pass's memory
    pass_logits: Tensor  # [P, E, O] the answer read out after each pass (the last is `logits`)
    scores: Tensor  # [P, E, S] each pass's raw gate scores (-inf on padding sentences)
    attention: Tensor  # [P, E, S] each pass's gates g (softmax of the scores; 0 on padding)
    facts: Tensor  # [P, S, d] the input module's fact vectors c_i
    question: Tensor  # [P, d] q
    episodes: Tensor  # [P, E, d] e^e = g^e @ facts
    memories: Tensor  # [P, E + 1, d] m^0 = q, then the memory after each pass
    sentences: Tensor  # [P] S_b, the story's sentences (the rest are padding)


class DMN(Stacked):
    """A dynamic memory network, or K of one configuration (a seed ensemble)."""

    def __init__(self, config: DMNConfig, models: int = 1):
        super().__init__()
        self.config = c = config
        self.models = K = models
        d = c.embedding_size
        # N(0, 0.1) embeddings, as the memory network's (memn2n.py)
        self.words = nn.Parameter(0.1 * torch.randn(K, c.vocab_size, d))
        self.times = nn.Parameter(0.1 * torch.randn(K, c.memory_slots, d))
        self.gate_hidden = StackedLinear(K, 4 * d, d)  # W1, b1
        self.gate_out = StackedLinear(K, d, 1)  # w2, b2
        self.memory = StackedGRUCell(K, d, d, torch_init=True)
        self.answer = StackedLinear(K, 2 * d, c.output_size)

    def with_models(self, models: int) -> "DMN":
        return DMN(self.config, models).to(self.device, self.words.dtype)

    @property
    def device(self) -> torch.device:
        return self.words.device

    def _embed(self, ids: Tensor, which: Tensor) -> Tensor:
        """ids [P, ..., L], which [P, 1...] each row's model -> [P, ..., d] position-encoded sums."""
        vectors = self.words[which, ids]  # [P, ..., L, d]
        return (position_encoding(ids, vectors.shape[-1]).to(vectors.dtype) * vectors).sum(-2)

    def gate_scores(self, facts: Tensor, q: Tensor, m: Tensor) -> Tensor:
        """facts [P, S, d], q and m [P, d] -> the raw gate scores s [P, S] (no mask)."""
        qq, mm = q.unsqueeze(1), m.unsqueeze(1)
        z = torch.cat([facts * qq, facts * mm, (facts - qq).abs(), (facts - mm).abs()], -1)  # [P, S, 4d]
        return self.gate_out(torch.tanh(self.gate_hidden(z))).squeeze(-1)

    def passes(self, inputs: Tensor) -> Passes:
        """inputs [P, T, L] -> every pass's gates, episodes and memories (module docstring)."""
        c = self.config
        question, story, valid, recency, which = read_story(inputs, c, self.models, "facts")
        facts = self._embed(story, which.unsqueeze(-1)) + self.times[which, recency]  # [P, S, d]
        facts = facts * valid.unsqueeze(-1).to(facts.dtype)  # a padding sentence is no fact
        q = self._embed(question, which)  # [P, d]
        m = q
        scores, gates, episodes, memories, pass_logits = [], [], [], [m], []
        for _ in range(c.passes):
            s = self.gate_scores(facts, q, m).masked_fill(~valid, float("-inf"))  # [P, S]
            g = torch.softmax(s, -1)
            e = (g.unsqueeze(-1) * facts).sum(1)  # [P, d]
            m = self.memory(e, m)
            scores.append(s)
            gates.append(g)
            episodes.append(e)
            memories.append(m)
            pass_logits.append(self.answer(torch.cat([m, q], -1)))
        return Passes(pass_logits[-1], torch.stack(pass_logits, 1), torch.stack(scores, 1), torch.stack(gates, 1),
                      facts, q, torch.stack(episodes, 1), torch.stack(memories, 1), valid.sum(-1))

    def hops(self, inputs: Tensor) -> Passes:
        """`passes` under the name the memory networks' mechanism metric reads (mechanisms.py's
        hop_traces takes `.attention`, each pass's gates, as a hop's attention)."""
        return self.passes(inputs)

    def record(self, inputs: Tensor, lengths: Sequence[int]) -> Recording:
        """inputs [P, T, L] -> each story as its passes (see FAMILY): n = length - 1 facts,
        M = d. Per row: outputs [E, O] the answer probabilities read out after each pass,
        memory [n, d] the facts, read.scores and read.weights [E, 1, n] each pass's raw gate
        scores and gates, reads [E, 1, d] each pass's episode. Call under inference mode."""
        run = self.passes(inputs)
        probs = torch.softmax(run.pass_logits, -1).float().cpu().numpy()  # [P, E, O]
        scores = run.scores.float().cpu().numpy()  # [P, E, S]
        gates = run.attention.float().cpu().numpy()
        facts = run.facts.float().cpu().numpy()  # [P, S, d]
        episodes = run.episodes.float().cpu().numpy()  # [P, E, d]
        items = []
        for b, length in enumerate(lengths):
            k = int(length) - 1
            items.append({"outputs": probs[b], "memory": facts[b, :k], "read.scores": scores[b, :, None, :k],
                          "read.weights": gates[b, :, None, :k], "reads": episodes[b, :, None]})
        return Recording(FAMILY.resolve(self.config), items)

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [P, T, L] -> logits [P, T, O]: the answer at step 0, zeros after."""
        return _at_steps(self.passes(inputs).logits, inputs.shape[1])

    def outputs_and_loss(self, task, batch) -> tuple[Tensor, Tensor]:
        """The answer's loss, plus, with `gate_supervision`, that weight times the gates'
        cross-entropy against the story's supporting facts (task.fact_loss): pass e onto the e-th
        fact a reader follows from the question."""
        run = self.passes(batch.inputs)
        logits = _at_steps(run.logits, batch.inputs.shape[1])
        loss = task.sequence_loss(logits, batch)
        if self.config.gate_supervision:
            loss = loss + self.config.gate_supervision * task.fact_loss(run.scores, batch)
        return logits, loss


def _at_steps(logits: Tensor, steps: int) -> Tensor:
    """The answer's logits [P, O] -> [P, T, O]: at step 0, zeros after."""
    rest = logits.new_zeros(logits.shape[0], steps - 1, logits.shape[1])
    return torch.cat([logits.unsqueeze(1), rest], 1)
