"""TextLine (ntmviz/app/textline.py) in Chromium: a bold lead and the rest as text, markup shown
as the characters it is made of, and a change in Python redrawn in place."""

from __future__ import annotations

import time

import panel as pn

from ntmviz.app.textline import TextLine

HOSTILE = '**Running** · <img src=x onerror="window.ran=1"> step 3 of 4 · **not bold**'

# [lead in <strong> or null, the paragraph's text, how many elements the paragraph holds]
READ_JS = """() => {
  const find = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('ntmviz-textline')) return el;
      if (el.shadowRoot) { const hit = find(el.shadowRoot); if (hit) return hit; }
    }
    return null;
  };
  const p = find(document);
  if (!p) return null;
  const strong = p.querySelector('strong');
  return [strong ? strong.textContent : null, p.textContent, p.querySelectorAll('*').length];
}"""


def wait_for_line(page, expected, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(READ_JS)
        if got == expected:
            return
        assert time.monotonic() < deadline, f"the line shows {got!r}, not {expected!r}"
        page.wait_for_timeout(100)


def test_a_text_line_shows_its_lead_bold_and_the_rest_as_text(browser):
    from _serve import served

    lines: list[tuple[TextLine, object]] = []  # each session's line and document

    def make():
        line = TextLine(HOSTILE)
        lines.append((line, pn.state.curdoc))
        return pn.Column(line)

    with served(make) as url:
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        rest = HOSTILE[len("**Running**"):]
        wait_for_line(page, ["Running", "Running" + rest, 1])  # one element: the <strong>
        assert page.evaluate("() => window.ran") is None
        # a change made in Python (from the server's thread, as a periodic pull does) is redrawn
        line, doc = lines[-1]  # the page's session (the newest)
        doc.add_next_tick_callback(lambda: setattr(line, "object", "no lead <b>at all</b>"))
        wait_for_line(page, [None, "no lead <b>at all</b>", 0])
        assert not errors
        page.close()
