"""Typed inputs are the task's own (Task.typed): each copy-like task lays typed rows out as it
samples, so a reversal's typed targets are reversed, not copied."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ntmviz.errors import ConfigError
from ntmviz.tasks import get_task
from ntmviz.tasks.base import parse_bit_rows

ROWS = "1000\n0110\n0011\n1111"


def test_parse_bit_rows():
    rows = parse_bit_rows("0101\n\n 1 1 0 0 \n", 4)
    np.testing.assert_array_equal(rows, [[0, 1, 0, 1], [1, 1, 0, 0]])
    with pytest.raises(ConfigError, match="row 2 has 3 bit"):
        parse_bit_rows("0101\n010", 4)
    with pytest.raises(ConfigError, match="only 0 and 1.*'2'"):
        parse_bit_rows("0121", 4)
    with pytest.raises(ConfigError, match="at least one row"):
        parse_bit_rows("  \n", 4)


@pytest.mark.parametrize("name, order", [("copy", [0, 1, 2, 3]), ("reversal", [3, 2, 1, 0]),
                                         ("bigram_flip", [1, 0, 3, 2])])
def test_typed_rows_are_played_in_the_task_s_order(name, order):
    task = get_task(name, bits=4)
    rows = parse_bit_rows(ROWS, 4)
    fixed, batch = task.typed(ROWS)
    L = 4
    assert fixed.largest_size == L
    assert batch.inputs.shape == (1, 2 * L + 1, 5)
    np.testing.assert_array_equal(batch.inputs[0, :L, :4].numpy(), rows)
    np.testing.assert_array_equal(batch.inputs[0, :, 4].numpy(), np.arange(2 * L + 1) == L)
    np.testing.assert_array_equal(batch.mask[0].numpy(), np.arange(2 * L + 1) > L)
    np.testing.assert_array_equal(batch.targets[0, L + 1:].numpy(), rows[order])
    assert int(batch.lengths[0]) == 2 * L + 1


def test_typed_rows_match_a_sampled_batch_of_the_same_vectors():
    # the typed layout is the sampler's: sample, type the sampled vectors back, compare
    task = get_task("reversal", bits=4).at(5)
    sampled = task.sample(1, seed=11)
    text = "\n".join("".join(str(int(v)) for v in row) for row in sampled.inputs[0, :5, :4].numpy())
    _, typed = task.typed(text)
    for a, b in zip(sampled, typed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bigram_flipping_takes_pairs_only():
    with pytest.raises(ConfigError, match="not 3 rows"):
        get_task("bigram_flip", bits=4).typed("1000\n0110\n0011")


def test_repeat_copy_plays_the_typed_rows_r_times_with_r_from_the_seed():
    task = get_task("repeat_copy", bits=4)
    rows = parse_bit_rows(ROWS, 4)
    repeats = set()
    for seed in range(6):
        fixed, batch = task.typed(ROWS, seed=seed)
        L = 4
        R = round(float(batch.inputs[0, L, 5]) * task.repeat_scale)
        repeats.add(R)
        assert task.min_repeats <= R <= task.max_repeats
        assert int(batch.lengths[0]) == (R + 1) * L + 2
        scored = np.nonzero(batch.mask[0].numpy())[0]
        assert len(scored) == R * L + 1
        for t in scored[:-1]:
            np.testing.assert_array_equal(batch.targets[0, t, :4].numpy(), rows[(t - L - 1) % L])
        assert batch.targets[0, scored[-1], 4] == 1
        again = task.typed(ROWS, seed=seed)[1]
        np.testing.assert_array_equal(again.inputs.numpy(), batch.inputs.numpy())
    assert len(repeats) > 1  # the seed chooses the repeat count


@pytest.mark.parametrize("name", ["anbn", "anbncn", "anbncndn", "anb2n", "anbmcnm"])
def test_a_language_s_typed_strings_are_laid_out_as_its_sampler_lays_them(name):
    task = get_task(name)
    for seed in range(5):
        sampled = task.sample(1, seed=seed)
        text = task.text(sampled)
        fixed, typed = task.typed(text)
        for a, b in zip(sampled, typed):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert task.min_n <= fixed.max_n == fixed.min_n <= task.max_n


def test_a_language_refuses_strings_outside_it_naming_them():
    task = get_task("anb2n")
    fixed, batch = task.typed("abb aabbbb")
    assert fixed.max_n == 2 and int(batch.lengths[0]) == 9
    # predictable from the first b on: a, b, b | a, a, b, b, b, b
    np.testing.assert_array_equal(batch.mask[0].numpy(), [0, 1, 1, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(batch.targets[0].numpy().argmax(-1), [1, 1, 0, 0, 1, 1, 1, 1, 0])
    for text, message in (("abb aabb", "'aabb' is not a string of a^n b^2n"),
                          ("abbc", "'abbc': a^n b^2n is written with a, b only, not 'c'"),
                          ("bba", "'bba' is not a string of a^n b^2n"),
                          ("   ", "type at least one string of a^n b^2n")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            task.typed(text)
    with pytest.raises(ConfigError, match=re.escape("'abc' is not a string of a^n b^m c^(n+m)")):
        get_task("anbmcnm").typed("abc")


def test_allocation_takes_sequences_a_blank_line_apart():
    task = get_task("allocation", bits=4)
    sampled = task.sample(1, seed=4)
    # type the sampled item back: its sequences from the delimiters
    inputs = sampled.inputs[0].numpy()
    delims = np.flatnonzero(inputs[:, 4] > 0.5)
    parts, start = [], 0
    for d in delims:
        parts.append("\n".join("".join(str(int(v)) for v in row) for row in inputs[start:d, :4]))
        start = 2 * d - start + 1
    fixed, typed = task.typed("\n\n".join(parts), seed=9)
    assert fixed.sequences == task.sequences and fixed.max_length <= task.max_length
    for a, b in zip(sampled, typed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ConfigError, match="sequence 2: row 1 has 3 bit"):
        task.typed("1000\n0100\n\n100")


@pytest.mark.parametrize("name", ["associative_recall", "priority_sort"])
def test_tasks_without_typed_input_say_so(name):
    task = get_task(name)
    assert not task.typed_input
    with pytest.raises(ConfigError, match=f"the {name} task takes no typed input"):
        task.typed("0101")


def test_cli_records_a_typed_input_and_refuses_a_bad_one_in_one_line(tmp_path, capsys):
    from ntmviz import Episode
    from ntmviz.cli import main

    out = tmp_path / "typed.safetensors"
    assert main(["record", "--checkpoint", "reversal-stack", "--input", ROWS, "--out", str(out)]) == 0
    episode = Episode.load(out)
    rows = parse_bit_rows(ROWS, 4)
    np.testing.assert_array_equal(episode.inputs[:4, :4], rows)
    np.testing.assert_array_equal(episode.targets[5:, :4], rows[::-1])
    assert episode.meta["pattern"] == ROWS and episode.meta["length"] == 4
    capsys.readouterr()
    for args, message in ((["--input", "1000\n01x0"], "row 2: only 0 and 1 are allowed, found 'x'"),
                          (["--input", ROWS, "--length", "4"], "--input and --length both set the input")):
        assert main(["record", "--checkpoint", "reversal-stack", *args, "--out", str(tmp_path / "bad.safetensors")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad.safetensors").exists()


def test_the_explorer_records_a_typed_string_on_the_shipped_stack_rnn():
    from ntmviz.app.sources import load_source, record_episode
    from ntmviz.shipped import checkpoint_path

    episode = record_episode(load_source(checkpoint_path("anbn-stack_rnn")), pattern="aaaabbbb ab")
    np.testing.assert_array_equal(episode.inputs.argmax(-1), [0, 0, 0, 0, 1, 1, 1, 1, 0, 1])
    assert episode.meta["pattern"] == "aaaabbbb ab" and episode.meta["length"] == 4
    # the stacks' contents were recorded step by step, one column per stack
    assert episode.memory.shape[0] == 11


def test_a_task_with_no_size_hides_length_and_takes_a_typed_date(tmp_path):
    import shutil

    from ntmviz.app import Playback
    from ntmviz.app.sources import Sources
    from ntmviz.shipped import checkpoint_path

    shutil.copy(checkpoint_path("dates-attention"), tmp_path)
    sources = Sources(Playback(None), folder=tmp_path)
    assert sources.checkpoint.value.endswith("dates-attention.safetensors")
    assert not sources.length.visible and sources.pattern.visible  # no size to choose; a date to type
    assert "Length sets" not in sources.hint.object
    sources.seed.value = "4"
    sampled = sources.run_model()
    assert sampled is not None, sources.message
    assert sampled.meta["task"] == "dates" and sampled.meta.get("length") is None
    sources.pattern.value = "31 february 2001"  # no such day: a message, the episode kept
    assert sources.run_model() is None and "february 2001 has 28 days" in sources.message
    assert sources.state.episode is sampled
    sources.pattern.value = "March 3rd, 1999"
    typed = sources.run_model()
    assert typed is not None and typed.meta["pattern"] == "March 3rd, 1999"
    # the model's answer, read off the episode's outputs, is the date rewritten
    tokens = typed.meta["output_labels"]
    answer = "".join(tokens[i] for i in typed.outputs.argmax(-1)[typed.mask > 0])
    assert answer.startswith("1999-03-03"), answer
