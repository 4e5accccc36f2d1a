"""Tests for the differentiable neural computer (models/dnc.py): each addressing function against
the paper's equations written out in plain float64 loops, their properties, an independent
implementation (the `dnc` package, ixaxaar/pytorch-dnc) as an oracle, the recorded episode
(every array recomputed from the others), the seed ensemble, gradients, and a short training run.

Sizes are small and unequal (P=3 rows, N=5 slots, M=3 word width, R=2 read heads) so that a
swapped axis fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ntmviz.config import DNCConfig
from ntmviz.contract import Family
from ntmviz.episode import Episode, record
from ntmviz.errors import ConfigError
from ntmviz.models import dnc
from ntmviz.models.dnc import DNC, FAMILY
from ntmviz.tasks import Batch, get_task
from ntmviz.train import Trainer

P, N, M, R = 3, 5, 3, 2


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float64))


def distribution(rng, *shape, total=1.0):
    """Random weightings over the last axis, each summing to `total` (a scalar or per row)."""
    w = rng.random(shape) + 0.05
    return w / w.sum(-1, keepdims=True) * np.asarray(total)[..., None]


def small_config(task, **kw) -> DNCConfig:
    settings = dict(memory_slots=6, memory_width=4, read_heads=2, controller_size=16)
    return DNCConfig.for_task(task, **{**settings, **kw})


# ---- the paper's equations, one row (or one slot) at a time, in float64 ----------------------

def ref_content(memory, key, strength, eps=0.0):
    """C(M, k, β)[i] = exp(β D(k, M[i])) / sum_j exp(β D(k, M[j])), D the cosine similarity
    (with `eps` under each norm's square root, as the model keeps zero slots finite)."""
    norm = lambda x: np.sqrt(x @ x + eps)  # noqa: E731
    d = np.array([key @ memory[i] / (norm(key) * norm(memory[i])) for i in range(len(memory))])
    e = np.exp(strength * d)
    return e / e.sum()


def ref_retention(free, read_weights):
    """ψ[n] = prod_i (1 - f^i w^{r,i}[n])."""
    psi = np.ones(read_weights.shape[-1])
    for n in range(len(psi)):
        for i in range(len(free)):
            psi[n] *= 1 - free[i] * read_weights[i, n]
    return psi


def ref_usage(usage, write_weights, psi):
    """u_t[n] = (u[n] + w[n] - u[n] w[n]) ψ[n]."""
    return np.array([(u + w - u * w) * p for u, w, p in zip(usage, write_weights, psi)])


def ref_allocation(usage):
    """a[φ_j] = (1 - u[φ_j]) prod_{i<j} u[φ_i], φ the slots sorted by usage (ties: lower slot first)."""
    phi = sorted(range(len(usage)), key=lambda n: (usage[n], n))
    a, before = np.zeros(len(usage)), 1.0
    for n in phi:
        a[n] = (1 - usage[n]) * before
        before *= usage[n]
    return a


def ref_write_memory(memory, w, erase, add):
    """M_t[n, m] = M[n, m] (1 - w[n] e[m]) + w[n] v[m]."""
    out = np.empty_like(memory)
    for n in range(memory.shape[0]):
        for m in range(memory.shape[1]):
            out[n, m] = memory[n, m] * (1 - w[n] * erase[m]) + w[n] * add[m]
    return out


def ref_links(links, w, precedence):
    """L_t[i, j] = (1 - w[i] - w[j]) L[i, j] + w[i] p[j], and 0 on the diagonal."""
    n = len(w)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = (1 - w[i] - w[j]) * links[i, j] + w[i] * precedence[j]
    return out


def ref_precedence(precedence, w):
    """p_t = (1 - sum w) p + w."""
    return (1 - sum(w)) * precedence + w


def ref_directions(links, read_weights):
    """(b, f) per read head: f[i] = sum_j L[i, j] w[j], b[i] = sum_j L[j, i] w[j]."""
    n = links.shape[0]
    f = np.array([[sum(links[i, j] * w[j] for j in range(n)) for i in range(n)] for w in read_weights])
    b = np.array([[sum(links[j, i] * w[j] for j in range(n)) for i in range(n)] for w in read_weights])
    return b, f


def random_links(rng, *shape):
    """Link matrices as the DNC makes them: entries in 0..1, zero diagonal, rows and columns
    summing to at most 1."""
    n = shape[-1]
    L = rng.random(shape) * (1 - np.eye(n))
    return L / (1.5 * max(L.sum(-1).max(), L.sum(-2).max()))


# ---- 1. each addressing function against the paper's equations --------------------------------

def test_content_weighting_is_a_softmax_of_cosine_similarity(rng):
    memory, keys, strength = rng.standard_normal((P, N, M)), rng.standard_normal((P, R, M)), 1 + 4 * rng.random((P, R))
    got = dnc.content_weighting(t64(memory), t64(keys), t64(strength)).numpy()
    assert got.shape == (P, R, N)
    want = np.array([[ref_content(memory[p], keys[p, h], strength[p, h]) for h in range(R)] for p in range(P)])
    # the epsilon under the norms' roots (zero memory) moves the cosine by ~ EPS / |x|^2
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_retention_and_usage_follow_the_paper(rng):
    free, read_w = rng.random((P, R)), distribution(rng, P, R, N)
    usage, write_w = rng.random((P, N)), distribution(rng, P, N, total=rng.random(P))
    psi = dnc.retention(t64(free), t64(read_w)).numpy()
    assert psi.shape == (P, N)
    np.testing.assert_allclose(psi, [ref_retention(free[p], read_w[p]) for p in range(P)], rtol=1e-12)
    got = dnc.update_usage(t64(usage), t64(write_w), t64(psi)).numpy()
    np.testing.assert_allclose(got, [ref_usage(usage[p], write_w[p], psi[p]) for p in range(P)], rtol=1e-12)


def test_allocation_with_distinct_usages(rng):
    usage = np.stack([rng.permutation(np.linspace(0.05, 0.95, N)) for _ in range(P)])
    got = dnc.allocation(t64(usage)).numpy()
    np.testing.assert_allclose(got, [ref_allocation(u) for u in usage], rtol=1e-12, atol=1e-15)


def test_allocation_with_ties_takes_the_lower_slot_first():
    usage = np.array([[0.5, 0.2, 0.5, 0.2, 0.9],  # ties: slot 1 before 3, slot 0 before 2
                      [0.0, 0.0, 0.0, 0.0, 0.0],  # empty memory: all of it to slot 0
                      [1.0, 1.0, 1.0, 1.0, 1.0]])  # full memory: nowhere to allocate
    got = dnc.allocation(t64(usage)).numpy()
    # free list 1, 3, 0, 2, 4: each slot gets (1 - its usage) times the usages before it
    np.testing.assert_allclose(got[0], [0.5 * 0.2 * 0.2, 0.8, 0.5 * 0.2 * 0.2 * 0.5, 0.8 * 0.2,
                                        0.1 * 0.2 * 0.2 * 0.5 * 0.5], rtol=1e-12)
    np.testing.assert_allclose(got, [ref_allocation(u) for u in usage], rtol=1e-12)
    assert got[1].tolist() == [1, 0, 0, 0, 0] and got[2].tolist() == [0] * 5


def test_write_weighting_and_the_write(rng):
    alloc, content = distribution(rng, P, N, total=rng.random(P)), distribution(rng, P, N)
    g_a, g_w = rng.random(P), rng.random(P)
    got = dnc.write_weighting(t64(alloc), t64(content), t64(g_a), t64(g_w)).numpy()
    want = [g_w[p] * (g_a[p] * alloc[p] + (1 - g_a[p]) * content[p]) for p in range(P)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    memory, erase, add = rng.standard_normal((P, N, M)), rng.random((P, M)), rng.standard_normal((P, M))
    written = dnc.write_memory(t64(memory), t64(got), t64(erase), t64(add)).numpy()
    np.testing.assert_allclose(written, [ref_write_memory(memory[p], got[p], erase[p], add[p]) for p in range(P)],
                               rtol=1e-12, atol=1e-14)


def test_links_have_a_zero_diagonal_and_follow_the_paper(rng):
    links, w, prec = random_links(rng, P, N, N), distribution(rng, P, N, total=rng.random(P)), distribution(rng, P, N)
    for off in (None, 1 - torch.eye(N, dtype=torch.float64)):  # the mask made here, or the model's
        got = dnc.update_links(t64(links), t64(w), t64(prec), off).numpy()
        np.testing.assert_allclose(got, [ref_links(links[p], w[p], prec[p]) for p in range(P)], rtol=1e-12, atol=1e-15)
        assert (np.diagonal(got, axis1=1, axis2=2) == 0).all()
    # the new term alone would put w[i] p[i] on the diagonal
    assert (np.diagonal(links, axis1=1, axis2=2) == 0).all() and (w * prec > 0).all()


def test_precedence_follows_the_paper(rng):
    prec, w = distribution(rng, P, N, total=rng.random(P)), distribution(rng, P, N, total=rng.random(P))
    got = dnc.update_precedence(t64(prec), t64(w)).numpy()
    np.testing.assert_allclose(got, [ref_precedence(prec[p], w[p]) for p in range(P)], rtol=1e-12)
    assert (got.sum(-1) <= 1 + 1e-12).all()


def test_directional_and_read_weightings(rng):
    links, read_w = random_links(rng, P, N, N), distribution(rng, P, R, N)
    backward, forward = (x.numpy() for x in dnc.directional_weightings(t64(links), t64(read_w)))
    for p in range(P):
        b, f = ref_directions(links[p], read_w[p])
        np.testing.assert_allclose(backward[p], b, rtol=1e-12)
        np.testing.assert_allclose(forward[p], f, rtol=1e-12)
    content, modes = distribution(rng, P, R, N), distribution(rng, P, R, 3)
    got = dnc.read_weighting(t64(backward), t64(content), t64(forward), t64(modes)).numpy()
    want = [[modes[p, i, 0] * backward[p, i] + modes[p, i, 1] * content[p, i] + modes[p, i, 2] * forward[p, i]
             for i in range(R)] for p in range(P)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    memory = rng.standard_normal((P, N, M))
    np.testing.assert_allclose(dnc.read_memory(t64(memory), t64(got)).numpy(),
                               [got[p] @ memory[p] for p in range(P)], rtol=1e-12)


def test_interface_layout_and_activations(rng):
    """The raw interface vector splits in the paper's order, each slice through its activation."""
    sizes = dnc.interface_sizes(R, M)
    assert sum(sizes) == R * M + 3 * M + 5 * R + 3
    raw = t64(rng.standard_normal((P, sum(sizes))))
    xi = dnc.activate(raw, R, M)
    at = np.cumsum((0,) + sizes)
    part = [raw[:, a:b] for a, b in zip(at, at[1:])]
    assert torch.equal(xi.read_keys, part[0].reshape(P, R, M)) and torch.equal(xi.write_key, part[2].reshape(P, 1, M))
    assert torch.allclose(xi.read_strengths, 1 + torch.log1p(torch.exp(part[1])))
    assert torch.allclose(xi.write_strength, 1 + torch.log1p(torch.exp(part[3])))
    assert torch.allclose(xi.erase, torch.sigmoid(part[4])) and torch.equal(xi.add, part[5])
    gates = torch.sigmoid(part[6])
    assert torch.allclose(xi.free, gates[:, :R]) and torch.allclose(xi.alloc_gate, gates[:, R])
    assert torch.allclose(xi.write_gate, gates[:, R + 1])
    assert torch.allclose(xi.modes, torch.softmax(part[7].reshape(P, R, 3), -1))


# ---- 2. properties ----------------------------------------------------------------------------

def test_weightings_sum_as_the_paper_says(rng):
    torch.manual_seed(0)
    memory = torch.randn(P, N, M, dtype=torch.float64)
    content = dnc.content_weighting(memory, torch.randn(P, R, M, dtype=torch.float64),
                                    1 + 10 * torch.rand(P, R, dtype=torch.float64))
    assert torch.allclose(content.sum(-1), torch.ones(P, R, dtype=torch.float64))
    zero = dnc.content_weighting(torch.zeros(P, N, M), torch.zeros(P, R, M), torch.ones(P, R))  # all slots alike
    assert torch.allclose(zero, torch.full((P, R, N), 1 / N)) and torch.isfinite(zero).all()

    usage = torch.rand(P, N, dtype=torch.float64)
    alloc = dnc.allocation(usage)
    assert (alloc >= 0).all() and (alloc.sum(-1) <= 1 + 1e-12).all()
    assert torch.equal(alloc.argmax(-1), usage.argmin(-1))  # the most to the least-used slot
    assert torch.allclose(alloc.sum(-1), 1 - usage.prod(-1))  # what is not allocated: every slot in use

    g_a, g_w = torch.rand(2, P, dtype=torch.float64)
    ww = dnc.write_weighting(alloc, content[:, 0], g_a, g_w)
    assert (ww >= 0).all() and (ww.sum(-1) <= 1 + 1e-12).all()

    modes = dnc.activate(torch.randn(P, sum(dnc.interface_sizes(R, M)), dtype=torch.float64), R, M).modes
    assert (modes >= 0).all() and torch.allclose(modes.sum(-1), torch.ones(P, R, dtype=torch.float64))
    links = t64(random_links(rng, P, N, N))
    backward, forward = dnc.directional_weightings(links, content)
    read_w = dnc.read_weighting(backward, content, forward, modes)
    assert (read_w >= 0).all() and (read_w.sum(-1) <= 1 + 1e-9).all()


# ---- 3. an independent implementation as an oracle ---------------------------------------------

def test_addressing_agrees_with_the_dnc_package(rng):
    """ixaxaar/pytorch-dnc's memory module (float32) fed the same state. Its conventions: usage
    as u + (1 - u)(1 - prod(1 - w^w)) (the same for one write head); allocation from
    δ + (1 - δ) u (δ = 1e-6), so ours gets that usage; cosine as x.y / (|x||y| + δ); read modes
    ordered (backward, forward, content) where ours are (backward, content, forward); its
    forward and backward weightings keep a write-head axis [B, R, 1, N]. Its sort breaks ties in
    no fixed order, so the usages here are distinct."""
    pytest.importorskip("dnc")
    from dnc.memory import Memory
    from dnc.util import δ as delta

    f32 = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    theirs = Memory(input_size=4, mem_size=N, cell_size=M, read_heads=R)
    for seed in range(3):
        r = np.random.default_rng(seed)
        usage, free = f32(r.random((P, N))), f32(r.random((P, R)))
        read_w, write_w = f32(distribution(r, P, R, N)), f32(distribution(r, P, N, total=r.random(P)))
        links, prec = f32(random_links(r, P, N, N)), f32(distribution(r, P, N, total=r.random(P)))

        want_usage = theirs.get_usage_vector(usage, free, read_w, write_w.unsqueeze(1))
        ours_usage = dnc.update_usage(usage, write_w, dnc.retention(free, read_w))
        torch.testing.assert_close(ours_usage, want_usage, atol=1e-5, rtol=0)

        want_alloc, shifted = theirs.allocate(ours_usage, None)
        ours_alloc = dnc.allocation(delta + (1 - delta) * ours_usage)
        torch.testing.assert_close(ours_alloc, want_alloc[:, 0], atol=1e-5, rtol=0)
        torch.testing.assert_close(shifted, delta + (1 - delta) * ours_usage)

        memory, key = f32(r.standard_normal((P, N, M))), f32(r.standard_normal((P, 1, M)))
        strength = f32(1 + 3 * r.random((P, 1)))
        ours_content = dnc.content_weighting(memory, key, strength)
        torch.testing.assert_close(ours_content, theirs.content_weightings(memory, key, strength), atol=1e-5, rtol=0)

        g_w, g_a = f32(r.random(P)), f32(r.random(P))
        want_ww = theirs.write_weighting(memory, ours_content, want_alloc, g_w.unsqueeze(1), g_a.unsqueeze(1))
        ours_ww = dnc.write_weighting(want_alloc[:, 0], ours_content[:, 0], g_a, g_w)
        torch.testing.assert_close(ours_ww, want_ww[:, 0], atol=1e-6, rtol=0)

        want_links = theirs.get_link_matrix(links.unsqueeze(1), ours_ww.unsqueeze(1), prec.unsqueeze(1))
        ours_links = dnc.update_links(links, ours_ww, prec)
        torch.testing.assert_close(ours_links, want_links[:, 0], atol=1e-6, rtol=0)
        want_prec = theirs.update_precedence(prec.unsqueeze(1), ours_ww.unsqueeze(1))
        torch.testing.assert_close(dnc.update_precedence(prec, ours_ww), want_prec[:, 0], atol=1e-6, rtol=0)

        want_f, want_b = theirs.directional_weightings(ours_links.unsqueeze(1), read_w)
        ours_b, ours_f = dnc.directional_weightings(ours_links, read_w)
        torch.testing.assert_close(ours_f, want_f[:, :, 0], atol=1e-6, rtol=0)
        torch.testing.assert_close(ours_b, want_b[:, :, 0], atol=1e-6, rtol=0)

        content, modes = f32(distribution(r, P, R, N)), f32(distribution(r, P, R, 3))
        want_read = theirs.read_weightings(memory, content, ours_links.unsqueeze(1), modes[:, :, [0, 2, 1]], read_w)
        torch.testing.assert_close(dnc.read_weighting(ours_b, content, ours_f, modes), want_read, atol=1e-6, rtol=0)


# ---- 4. the recorded episode -------------------------------------------------------------------

@pytest.fixture
def copy_task():
    return get_task("copy", bits=3, max_length=4)


def two_lengths(task) -> Batch:
    """Two copy sequences of different lengths."""
    batch = next(b for b in (task.sample(2, seed=s) for s in range(100)) if b.lengths[0] != b.lengths[1])
    return batch


def test_declaration(copy_task):
    c = small_config(copy_task, read_heads=3)
    resolved = FAMILY.resolve(c)
    assert [(g.name, g.count) for g in resolved.groups] == [("read", 3), ("write", 1)]
    assert FAMILY.order == "write, read" and FAMILY.memory == "written"
    read, write = FAMILY.group("read"), FAMILY.group("write")
    assert read.stage_names == ("content", "backward", "forward", "weights") and read.reads and not read.normalised
    assert write.stage_names == ("content", "allocation", "weights") and write.writes and not write.normalised
    assert read.param("modes").labels == ("backward", "content", "forward")
    assert [p.name for p in write.params] == ["key", "strength", "alloc_gate", "write_gate", "erase", "add"]
    assert [f.name for f in FAMILY.slot_state] == ["usage", "retention", "precedence"]
    assert [f.name for f in FAMILY.slot_matrices] == ["links"]
    assert all(x.doc for g in FAMILY.groups for x in (*g.stages, *g.params))
    assert all(f.doc for f in (*FAMILY.slot_state, *FAMILY.slot_matrices))
    assert Family.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved


def test_recorded_episode_is_consistent_with_the_paper(copy_task, tmp_path):
    torch.manual_seed(1)
    model = DNC(small_config(copy_task))
    batch = two_lengths(copy_task)
    episodes = record(model, batch, task=copy_task)
    Nm, Mm, Rm = 6, 4, 2
    for b, ep in enumerate(episodes):
        n = int(batch.lengths[b])
        assert ep.family.name == "dnc" and ep.steps == n and ep.memory.shape == (n + 1, Nm, Mm)
        assert (ep.memory[0] == 0).all() and ep.outputs.shape == (n, copy_task.output_size)
        assert ((ep.outputs > 0) & (ep.outputs < 1)).all()
        rd, wr = ep.heads["read"], ep.heads["write"]
        assert rd.weights.shape == (n, Rm, Nm) and wr.weights.shape == (n, 1, Nm) and ep.reads.shape == (n, Rm, Mm)
        assert ep.slot_state["usage"].shape == (n, Nm) and ep.slot_matrices["links"].shape == (n, Nm, Nm)
        a = {k: v.astype(np.float64) for k, v in ep.arrays().items()}
        zeros_n, zeros_rn = np.zeros(Nm), np.zeros((Rm, Nm))
        for t in range(n):
            prev_read = a["read.weights"][t - 1] if t else zeros_rn
            prev_write = a["write.weights"][t - 1, 0] if t else zeros_n
            prev_usage = a["slot.usage"][t - 1] if t else zeros_n
            prev_prec = a["slot.precedence"][t - 1] if t else zeros_n
            prev_links = a["matrix.links"][t - 1] if t else np.zeros((Nm, Nm))
            # order "write, read": the reads see the memory after this step's write
            np.testing.assert_allclose(a["reads"][t], a["read.weights"][t] @ a["memory"][t + 1], atol=1e-5)
            psi = ref_retention(a["read.free"][t], prev_read)
            np.testing.assert_allclose(a["slot.retention"][t], psi, atol=1e-6)
            np.testing.assert_allclose(a["slot.usage"][t], ref_usage(prev_usage, prev_write, psi), atol=1e-6)
            np.testing.assert_allclose(a["write.allocation"][t, 0], ref_allocation(a["slot.usage"][t]), atol=1e-5)
            np.testing.assert_allclose(a["write.content"][t, 0], ref_content(
                a["memory"][t], a["write.key"][t, 0], a["write.strength"][t, 0], dnc.EPS), atol=1e-5)
            for i in range(Rm):
                np.testing.assert_allclose(a["read.content"][t, i], ref_content(
                    a["memory"][t + 1], a["read.key"][t, i], a["read.strength"][t, i], dnc.EPS), atol=1e-5)
            g_a, g_w = a["write.alloc_gate"][t, 0], a["write.write_gate"][t, 0]
            ww = g_w * (g_a * a["write.allocation"][t, 0] + (1 - g_a) * a["write.content"][t, 0])
            np.testing.assert_allclose(a["write.weights"][t, 0], ww, atol=1e-6)
            np.testing.assert_allclose(a["memory"][t + 1], ref_write_memory(
                a["memory"][t], ww, a["write.erase"][t, 0], a["write.add"][t, 0]), atol=1e-5)
            np.testing.assert_allclose(a["matrix.links"][t], ref_links(prev_links, ww, prev_prec), atol=1e-6)
            np.testing.assert_allclose(a["slot.precedence"][t], ref_precedence(prev_prec, ww), atol=1e-6)
            back, fwd = ref_directions(a["matrix.links"][t], prev_read)
            np.testing.assert_allclose(a["read.backward"][t], back, atol=1e-6)
            np.testing.assert_allclose(a["read.forward"][t], fwd, atol=1e-6)
            pi = a["read.modes"][t]
            mixed = pi[:, :1] * back + pi[:, 1:2] * a["read.content"][t] + pi[:, 2:] * fwd
            np.testing.assert_allclose(a["read.weights"][t], mixed, atol=1e-6)
        assert (a["read.weights"].sum(-1) <= 1 + 1e-5).all() and (a["write.weights"].sum(-1) <= 1 + 1e-5).all()
        np.testing.assert_allclose(a["read.modes"].sum(-1), 1, atol=1e-6)

        again = Episode.load(ep.save(tmp_path / f"dnc{b}.safetensors"))
        assert again.family == ep.family and again.family.order == "write, read"
        assert set(again.slot_state) == {"usage", "retention", "precedence"} and set(again.slot_matrices) == {"links"}
        for k, v in ep.arrays().items():
            np.testing.assert_array_equal(again.arrays()[k], v, err_msg=k)


def test_a_row_records_alone_as_in_its_batch(copy_task):
    """Padding after a row's length changes nothing before it, and rows do not mix."""
    torch.manual_seed(2)
    model = DNC(small_config(copy_task))
    batch = two_lengths(copy_task)
    both = record(model, batch, task=copy_task)
    for b in range(2):
        n = int(batch.lengths[b])
        alone = record(model, batch.inputs[b, :n], task=copy_task)
        for k, v in alone.arrays().items():
            if k not in ("targets", "mask"):
                np.testing.assert_allclose(both[b].arrays()[k], v, atol=1e-6, err_msg=k)


def test_bad_inputs_are_refused(copy_task):
    model = DNC(small_config(copy_task))
    width = copy_task.input_size
    with pytest.raises(ConfigError, match=rf"inputs must be \[batch, time, {width}\], got \[2, 3, {width + 1}\]"):
        model(torch.zeros(2, 3, width + 1))
    with pytest.raises(ConfigError, match=r"got \[3, 4\]"):
        model(torch.zeros(3, width))
    with pytest.raises(ConfigError, match="do not split evenly over 2 models"):
        DNC.stack([model, model])(torch.zeros(3, 2, width))


# ---- 5. the seed ensemble ----------------------------------------------------------------------

def test_seed_ensemble_members_are_the_single_models(copy_task):
    c = small_config(copy_task)
    members = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        members.append(DNC(c))
    ensemble = DNC.stack(members)
    assert ensemble.models == 2 and ensemble.controller.weight_ih.shape[0] == 2
    x = copy_task.sample(3, seed=0).inputs
    out = ensemble(torch.cat([x, x]))
    for k, single in enumerate(members):
        torch.testing.assert_close(out[3 * k: 3 * k + 3], single(x), atol=1e-6, rtol=1e-5)
        for name, value in single.member_state_dict(0).items():
            assert torch.equal(ensemble.member_state_dict(k)[name], value)
    assert torch.equal(ensemble.member(1)(x), members[1](x))
    batch = two_lengths(copy_task)  # recorded: model 1's rows are model 1's episodes
    together, alone = record(ensemble, Batch.concat([batch, batch]), task=copy_task), record(members[1], batch)
    for k, v in alone[1].arrays().items():
        np.testing.assert_allclose(together[2 + 1].arrays()[k], v, atol=1e-6, err_msg=k)


# ---- 6. gradients ------------------------------------------------------------------------------

def test_gradcheck_of_a_three_step_forward(copy_task):
    torch.manual_seed(5)
    model = DNC(small_config(copy_task, memory_slots=4, memory_width=2, read_heads=2, controller_size=5)).double()
    with torch.no_grad():  # larger interface weights: gates and modes away from 1/2, sharper keys
        model.interface.weight.mul_(3)
    x = torch.randn(2, 3, copy_task.input_size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-5)
    bias = model.interface.bias.detach().clone().requires_grad_()  # every interface output, every step

    def through_interface(b):
        return torch.func.functional_call(model, {"interface.bias": b}, (x.detach(),))

    assert torch.autograd.gradcheck(through_interface, (bias,), eps=1e-6, atol=1e-5)


def test_gradcheck_of_the_addressing(rng):
    usage = t64(np.stack([rng.permutation(np.linspace(0.1, 0.9, N)) for _ in range(P)])).requires_grad_()
    assert torch.autograd.gradcheck(dnc.allocation, (usage,))
    links = t64(random_links(rng, P, N, N)).requires_grad_()
    w, prec = (t64(distribution(rng, P, N, total=0.7)).requires_grad_() for _ in range(2))
    assert torch.autograd.gradcheck(dnc.update_links, (links, w, prec))
    memory = torch.zeros(P, N, M, dtype=torch.float64, requires_grad=True)  # where every run starts
    keys = t64(rng.standard_normal((P, R, M))).requires_grad_()
    strength = t64(1 + rng.random((P, R))).requires_grad_()
    assert torch.autograd.gradcheck(dnc.content_weighting, (memory, keys, strength))


def test_no_nan_from_zero_memory(copy_task):
    """Zero memory, usage and weightings at the start, zero inputs: finite outputs and gradients."""
    torch.manual_seed(6)
    model = DNC(small_config(copy_task))
    out = model(torch.zeros(4, 5, copy_task.input_size))
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # a fully used memory (allocation all 0) still has finite allocation gradients
    usage = torch.ones(P, N, requires_grad=True)
    dnc.allocation(usage).sum().backward()
    assert torch.isfinite(usage.grad).all()


# ---- 7. training -------------------------------------------------------------------------------

def test_short_training_run(copy_task):
    torch.manual_seed(0)
    model = DNC(small_config(copy_task))
    trainer = Trainer(model, copy_task, seeds=[0], batch_size=8, optimizer="adam", lr=3e-3, log_every=1)
    assert trainer.run(20) == "done"
    loss = trainer.history.loss
    assert len(loss) == 20 and np.isfinite(loss).all()
    assert np.mean(loss[-5:]) < np.mean(loss[:5])
