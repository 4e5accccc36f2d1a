"""The standalone HTML export: one file, data inline, nothing fetched from the network."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ntmviz.app import export_html
from ntmviz.app.canvas import RENDERER_JS
from ntmviz.app.payload import decode_array


def embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="ntmviz-data">(.*?)</script>', page, re.S)
    assert "<" not in match.group(1)
    return json.loads(match.group(1))


def test_export_writes_one_standalone_page(episode, tmp_path):
    episode.meta["note"] = "</script><script>alert(1)</script> https://example.com"
    path = export_html(episode, tmp_path / "sub" / "page.html")
    assert path == tmp_path / "sub" / "page.html"
    page = path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["page.html"]  # no temp file left behind
    assert RENDERER_JS.strip()[:200] in page
    data = embedded(page)
    chunk = data["steps"]["chunks"]["0"]  # every step inline: there is no server to ask
    np.testing.assert_array_equal(decode_array(chunk["memory"]), episode.memory)
    np.testing.assert_array_equal(decode_array(chunk["write.weights"]), episode.write.weights)
    np.testing.assert_array_equal(decode_array(data["arrays"]["write.weights.time"]), episode.write.weights)
    assert data["meta"]["note"].startswith("</script>")
    # nothing to fetch: no src= or href= attributes, no external URL outside the episode's own text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    outside = re.sub(r'<script type="application/json".*?</script>', "", page, flags=re.S)
    assert not re.search(r"https?://", outside)
    assert page.count("<script") == 2


def test_export_needs_an_episode(tmp_path):
    with pytest.raises(TypeError):
        export_html("not an episode", tmp_path / "x.html")


def test_export_without_memory(lstm_episode, tmp_path):
    page = export_html(lstm_episode, tmp_path / "lstm.html").read_text()
    assert embedded(page)["has_memory"] is False
