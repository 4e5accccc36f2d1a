"""The renderer's modules join into the one module the component and the export inline."""

from __future__ import annotations

import re

import pytest

from ntmviz.app.canvas import MODULES, RENDERER_JS, STATIC, bundle


def test_every_module_is_bundled_once_in_dependency_order():
    assert sorted(MODULES) == sorted(p.name for p in STATIC.glob("*.js"))
    seen: set[str] = set()
    for name in MODULES:
        source = (STATIC / name).read_text(encoding="utf-8")
        for dep in re.findall(r'from\s*"\./([\w-]+\.js)"', source):
            assert dep in seen, f"{name} imports {dep}, which comes later in MODULES"
        seen.add(name)
        assert f"// ---- {name} " in RENDERER_JS
    assert not re.search(r"^\s*import\b", RENDERER_JS, re.M)
    assert "export function mount(" in RENDERER_JS and "export function mountPage(" in RENDERER_JS
    # a name declared twice would break the joined module
    declared = re.findall(r"^(?:export\s+)?(?:function|class|const|let)\s+(\w+)", RENDERER_JS, re.M)
    assert len(declared) == len(set(declared)), sorted(n for n in declared if declared.count(n) > 1)


def test_bundle_refuses_imports_it_cannot_join(tmp_path):
    (tmp_path / "a.js").write_text('import {x} from "https://example.com/x.js";\nexport const y = 1;\n')
    with pytest.raises(RuntimeError, match="only imports of the other renderer modules"):
        bundle(("a.js",), tmp_path)


def test_the_served_module_is_named_by_its_text(tmp_path):
    """A new renderer gets a new address, so a browser never runs a stale copy it cached; the file
    goes where it is told (ntmviz.app.extension() gives it a private folder: tests/app/test_extension.py)."""
    from ntmviz.app.canvas import module_file

    one = module_file("one", tmp_path)
    assert one.parent == tmp_path and one.read_text() == "one" and re.fullmatch(r"renderer-[0-9a-f]{16}\.js", one.name)
    assert module_file("one", tmp_path) == one
    two = module_file("two", tmp_path)
    assert two != one and two.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([one.name, two.name])  # nothing else written
