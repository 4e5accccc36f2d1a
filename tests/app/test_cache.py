"""Every module-level cache of the app is an LRU (ntmviz/app/cache.py) and stays within its bound
however many keys come: a served app sees every file its users open."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from ntmviz.app import cache, drawing, local_resources, sources, sweep_view
from ntmviz.app.cache import LRU

APP = Path(cache.__file__).resolve().parent


def test_least_recently_used_goes_first():
    lru = LRU(3)
    for k in "abc":
        lru.put(k, k.upper())
    assert lru.get("a") == "A"  # now the most recent
    lru.put("d", "D")
    assert "b" not in lru and list("acd") == [k for k in "abcd" if k in lru] and len(lru) == 3
    assert lru.get("b", "none") == "none"


def test_get_or_make_makes_once_and_keeps_none_too():
    lru, made = LRU(2), []
    for _ in range(3):
        assert lru.get_or_make("k", lambda: made.append(1)) is None
    assert made == [1]


def test_the_weight_bound_holds():
    lru = LRU(10, weigh=len, max_weight=10)
    lru.put("a", "x" * 4)
    lru.put("b", "x" * 4)
    lru.put("c", "x" * 4)  # 12 > 10: "a" goes
    assert "a" not in lru and lru.weight == 8
    assert lru.get_or_make("big", lambda: "x" * 11) == "x" * 11  # heavier than the bound: returned, not kept
    assert "big" not in lru and lru.weight <= 10
    lru.put("b", "x")  # replacing an entry replaces its weight
    assert lru.weight == 5
    with pytest.raises(ValueError):
        LRU(0)
    with pytest.raises(ValueError):
        LRU(2, weigh=len)


def test_threads_making_one_key_share_one_value():
    lru = LRU(4)
    gate = threading.Barrier(8)
    out = []

    def worker():
        gate.wait()
        out.append(lru.get_or_make("key", object))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(out) == 8 and all(v is out[0] for v in out) and len(lru) == 1


def test_many_threads_many_keys_stay_within_bounds():
    lru = LRU(50, weigh=lambda v: v, max_weight=400)

    def worker(offset):
        for i in range(2000):
            lru.get_or_make((offset, i), lambda i=i: i % 17)
            assert len(lru) <= 50

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(lru) <= 50 and lru.weight <= 400
    assert lru.weight == sum(lru.get(k, 0) for k in list(lru._data))


# ---- the app's caches, each with many keys -------------------------------------------------------
def test_checkpoint_headers(tmp_path):
    sources._HEADERS.clear()
    for i in range(sources._HEADERS.maxsize + 100):  # empty files: no header, still one entry each
        path = tmp_path / f"c{i}.safetensors"
        path.touch()
        assert sources.checkpoint_header(path) is None
    assert len(sources._HEADERS) == sources._HEADERS.maxsize == 1024


def test_loaded_checkpoints(tmp_path, monkeypatch):
    sources._SOURCES.clear()
    loaded = []

    def load(path, device):
        loaded.append(path)
        return SimpleNamespace(task=None, model=None, step=0, sequences=0)

    monkeypatch.setattr(sources, "load_checkpoint", load)
    paths = [tmp_path / f"c{i}.safetensors" for i in range(40)]
    for path in paths:
        path.write_bytes(b"x")
        assert sources.load_source(path).path == path
    assert len(sources._SOURCES) == sources._SOURCES.maxsize == 16
    sources.load_source(paths[-1])  # a recent one: not loaded again
    assert len(loaded) == 40


def test_opening_episodes(tmp_path, monkeypatch):
    sources._EPISODES.clear()
    MB = 1_000_000
    sizes = iter([1 * MB] * 20 + [97 * MB] * 6)
    monkeypatch.setattr(sources, "record_episode",
                        lambda source, length, seed: SimpleNamespace(nbytes=next(sizes), seed=seed))
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"x")
    source = sources.ModelSource(name="c", model=None, task=None, path=path)
    for seed in range(20):
        sources.cached_episode(source, seed=seed)
        assert len(sources._EPISODES) <= 8
    for seed in range(20, 26):  # episodes of 5000 steps: the weight bound, not the count, holds
        sources.cached_episode(source, length=5000, seed=seed)
        assert sources._EPISODES.weight <= 256 * MB
    assert len(sources._EPISODES) == 2


def test_untrained_models(monkeypatch):
    sources._UNTRAINED.clear()
    monkeypatch.setattr(sources, "_make_untrained", lambda seed: SimpleNamespace(seed=seed))
    first = sources.untrained_source(0)
    for seed in range(1, 10):
        sources.untrained_source(seed)
    assert len(sources._UNTRAINED) == 4 and sources.untrained_source(9).seed == 9
    assert sources.untrained_source(0) is not first  # long unused: made again
    sources._UNTRAINED.clear()


def test_sweep_curves(tmp_path, monkeypatch):
    sweep_view._CURVES.clear()
    monkeypatch.setattr(sweep_view, "_read_curves", lambda path: sweep_view.Curves())
    for i in range(sweep_view._CURVES.maxsize + 50):
        path = tmp_path / f"run{i}.safetensors"
        path.touch()
        sweep_view.read_curves(path)
    assert len(sweep_view._CURVES) == sweep_view._CURVES.maxsize == 1024
    sweep_view._CURVES.clear()


def test_figure_fonts():
    for size in range(1, 200):
        drawing._font(size, size % 2 == 0)
    assert len(drawing._FONTS) == drawing._FONTS.maxsize == 64


def test_inlined_stylesheets():
    assert local_resources.data_url("css/markdown.css").startswith("data:text/css;base64,")
    for i in range(200):
        assert local_resources.data_url(f"css/no-such-{i}.css") is None
    assert len(local_resources._DATA_URLS) == local_resources._DATA_URLS.maxsize == 64


def test_no_unbounded_cache_in_the_app():
    """functools' unbounded caches, or a dict filled per key at module level, are not used."""
    for path in sorted(APP.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"lru_cache\(\s*maxsize\s*=\s*None|@(functools\.)?cache\b", source), path.name
        caches = re.findall(r"^(_[A-Z_]+)\s*(?::[^=\n]*)?=\s*(?:\{\}|dict\(|OrderedDict\(|set\(\))", source, re.M)
        assert not caches, f"{path.name}: {caches} (use cache.LRU, with its bound and why)"
