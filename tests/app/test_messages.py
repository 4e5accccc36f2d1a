"""Text from files, folder listings, tasks and users reaches the page as text, never as markup:
the escaping helper through Panel's real Markdown and Alert rendering, and every pane of the
explorer, the comparison and the Train tab built on hostile metadata and checkpoint names."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import numpy as np
import panel as pn
import pytest
import torch
from bokeh.document import Document

import ntmviz
from ntmviz.app import Explorer, Playback
from ntmviz.app.compare import Compare
from ntmviz.app.messages import bold, clear, message_html, show_error, show_success, text
from ntmviz.app.sources import Sources
from ntmviz.app.training_view import TrainingView

# Markup of every kind Panel's panes would act on: HTML, Markdown links and emphasis, emoji,
# maths, autolinks, a leading code block and a heading.
HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    "[click](javascript:window.__pwned=3) ![i](x) **bold** _it_ `code` ~~s~~ :smile: $x^2$",
    "www.example.com a@b.example https://example.com/x <https://example.com>",
    "    indented\n# heading\n\n- item\n1. item",
    "&lt;b&gt; &amp; &#60;i&#62;",
]
ALLOWED_TAGS = {"p", "strong", "div", "br", "h2", "h4", "pre"}  # ours: headings, messages, plain-text notes (pn.pane.Str)


class Tags(HTMLParser):
    """The start tags and attributes of some HTML, and its text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> Tags:
    p = Tags()
    p.feed(markup)
    return p


def rendered(pane) -> str:
    """The HTML a Markdown / Alert pane sends to the browser (Panel escapes it once for transport)."""
    return html.unescape(pane._transform_object(pane.object)["object"])


def assert_only_text(markup: str, expected_text: str | None = None) -> None:
    p = parse(markup)
    bad = [(t, a) for t, a in p.tags
           if t not in ALLOWED_TAGS and not (t == "a" and a.get("href", "").startswith("#"))  # heading anchors
           or any(k.startswith("on") or k == "src" for k in a)]
    assert not bad, (bad, markup)
    if expected_text is not None:
        assert expected_text in "".join(p.text).replace("\n", ""), markup


@pytest.mark.parametrize("value", HOSTILE)
def test_text_is_literal_in_markdown_and_alert(value):
    shown = value.replace("\n", "")  # line breaks become <br>
    md = pn.pane.Markdown(bold(value))
    assert_only_text(rendered(md), shown)
    alert = pn.pane.Alert("")
    show_error(alert, value)
    out = rendered(alert)
    assert_only_text(out, shown)
    assert 'role="alert"' in out and alert.alert_type == "danger" and alert.visible
    show_success(alert, value)
    assert 'role="status"' in rendered(alert) and alert.alert_type == "success"
    clear(alert)
    assert not alert.visible


def test_text_keeps_plain_words_and_non_ascii():
    assert text("copy 128×20, seed 3") == "copy 128×20, seed 3".replace(",", "&#44;")
    assert message_html("a\nb", "error").count("<br>") == 1
    assert text(None) == "None" and text(7) == "7"


def hostile_episode(value: str):
    torch.manual_seed(0)
    model = ntmviz.NTM(ntmviz.NTMConfig(input_size=3, output_size=2, memory_slots=6, memory_width=4,
                                        controller_size=8))
    meta = {k: value for k in ("task", "checkpoint", "source", "length", "seed", "pattern")}
    return ntmviz.record(model, torch.rand(5, 3), torch.zeros(5, 2), meta=meta)


def model_texts(viewable) -> list[str]:
    """Every HTML text of the Bokeh models a Panel object renders to (what a notebook shows)."""
    root = pn.panel(viewable).get_root(Document())
    out = []
    for model in root.references():
        for attr in ("text", "title", "label", "name"):
            if attr in model.properties():
                value = getattr(model, attr)
                if isinstance(value, str):
                    out.append(html.unescape(value) if attr == "text" else value)
    return out


@pytest.mark.parametrize("value", HOSTILE[:3])
def test_explorer_shows_hostile_metadata_as_text(value, checkpoint_dir):
    explorer = Explorer(hostile_episode(value), folder=checkpoint_dir)
    explorer.sources._fail(f"{value}: not a readable episode")
    for markup in model_texts(explorer):
        assert_only_text(markup)
    title = parse(html.unescape(explorer._title._transform_object(explorer._title.object)["object"]))
    assert f"from {value}".replace("\n", "") in "".join(title.text)


def test_hostile_checkpoint_names_are_text_everywhere(tmp_path, checkpoint_dir):
    folder = tmp_path / "shared by someone"
    folder.mkdir()
    name = '<img src=x onerror="window.__pwned=1">.safetensors'
    (folder / name).write_bytes((checkpoint_dir / "copy-ntm.safetensors").read_bytes())
    broken = "!<svg onload=window.__pwned=2>.safetensors"  # listed first, fails to load
    (folder / broken).write_bytes(b"not a checkpoint")
    explorer = Explorer.default(folder)
    assert explorer.state.episode.meta["checkpoint"] == name
    assert broken in explorer.sources.message and explorer.sources.alert.visible
    for markup in model_texts(explorer):
        assert_only_text(markup)
    options = explorer.sources.checkpoint.options
    assert name in options  # a Select's labels are DOM text in the browser (checked there too)
    cmp = Compare(folder=str(folder))
    cmp.left_pick.value = str(folder / broken)
    assert cmp.compare() is False and broken in cmp.message
    assert_only_text(rendered(cmp.alert), broken)
    cmp.show(hostile_episode(name), hostile_episode(name))
    for markup in model_texts(cmp):
        assert_only_text(markup)


def test_exception_text_in_training_and_compare_alerts_is_text(tmp_path):
    view = TrainingView(show_views=False, folder=str(tmp_path), save_folder=str(tmp_path))
    value = HOSTILE[0]
    view._fail(f"could not start: ValueError: {value}")
    assert_only_text(rendered(view.alert), value)
    cmp = Compare(folder=str(tmp_path))
    cmp._fail(value)
    assert_only_text(rendered(cmp.alert), value)
    sources = Sources(Playback(), folder=str(tmp_path))
    assert sources.open_bytes(b"\x00" * 40, value) is None
    out = rendered(sources.alert)
    assert_only_text(out, value)
    assert value in sources.message


def test_episode_labels_and_metadata_reach_the_renderer_as_data(episode):
    from ntmviz.app.payload import episode_payload

    episode.meta["input_labels"] = [HOSTILE[0]] * episode.inputs.shape[1]
    payload = episode_payload(episode)
    # the renderer draws labels on a canvas and sets text with textContent (tests/browser)
    assert payload["input_labels"][0] == HOSTILE[0] and payload["meta"]["task"] == "synthetic"
    assert np.isfinite(payload["T"])


@pytest.mark.parametrize("value", HOSTILE[:3])
def test_the_busy_note_names_a_file_as_text(value, checkpoint_dir):
    sources = Explorer(hostile_episode(value), folder=checkpoint_dir).sources
    sources._set_busy(f"Opening {value}…")  # what a served session shows while the file opens
    shown = html.unescape(sources.busy_note._transform_object(sources.busy_note.object)["object"])
    assert_only_text(shown, f"Opening {value}…".replace("\n", ""))


@pytest.mark.parametrize("value", HOSTILE[:3])
def test_a_hostile_model_title_is_text_in_the_heading(value, tmp_path):
    """An episode file names its model (the family's title, from the file's header): the page's
    heading, title and notes show it as text."""
    from ntmviz import Episode

    own = Episode.from_arrays(memory=np.zeros((3, 2), np.float32), read_weights=np.full((2, 1, 3), 1 / 3, np.float32),
                              title=value)
    opened = Episode.load(own.save(tmp_path / "own.safetensors"))
    assert opened.title == value
    explorer = Explorer(opened, folder=str(tmp_path))
    page = explorer.__panel__()
    heading = page.objects[0]
    assert_only_text(rendered(heading), f"ntmviz: inside a {value}".replace("\n", ""))
    for markup in model_texts(explorer):
        assert_only_text(markup)
