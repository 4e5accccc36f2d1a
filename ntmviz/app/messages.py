"""Text for the page: every string that comes from a file, a folder listing, a task or a user
reaches Panel's panes through these helpers, as text, never as markup.

Panel's Markdown and Alert panes turn their object into HTML (Markdown, raw HTML, links,
emoji, maths), and a Markdown pane is where most of the app's text goes. `text(value)` makes any
value safe to put into either kind of pane: every ASCII punctuation character becomes a numeric
character reference (&#60; for <), which HTML shows as the character and Markdown reads as
literal text, never as syntax; line breaks become <br>. So a checkpoint named
`<img src=x onerror=...>.safetensors` shows as exactly that name.

    pane.object = bold(describe(episode))        # a title from an episode's metadata
    show_error(alert, f"could not load {name}: {exc}")
    show_success(alert, f"Saved {path}")
    clear(alert)

Errors carry role="alert" (screen readers announce them; browser tests find them by role),
successes role="status".
"""

from __future__ import annotations

import string
from typing import Any

_ESCAPED = {ord(ch): f"&#{ord(ch)};" for ch in string.punctuation}
_ESCAPED.update({ord("\r"): "", ord("\t"): " ", ord("\n"): "<br>"})


def text(value: Any) -> str:
    """`str(value)` as text for a Markdown or HTML pane: shown literally, never read as markup."""
    s = str(value)
    stripped = s.lstrip(" ")
    # leading spaces would make Markdown an indented code block
    return "&#32;" * (len(s) - len(stripped)) + stripped.translate(_ESCAPED)


def bold(value: Any) -> str:
    """`value` as bold text (see `text`)."""
    return f"<strong>{text(value)}</strong>"


def message_html(message: Any, kind: str = "error") -> str:
    """The markup of a user-facing message: role="alert" for errors, "status" otherwise."""
    role = "alert" if kind == "error" else "status"
    return f'<div role="{role}" class="ntmviz-message ntmviz-{kind}">{text(message)}</div>'


def show_error(alert, message: Any) -> None:
    """Show `message` (any text: exception messages, file names ...) in a pn.pane.Alert as an error."""
    alert.param.update(object=message_html(message, "error"), alert_type="danger", visible=True)


def show_success(alert, message: Any) -> None:
    """Show `message` in a pn.pane.Alert as a success."""
    alert.param.update(object=message_html(message, "success"), alert_type="success", visible=True)


def clear(alert) -> None:
    """Hide the alert."""
    alert.visible = False


def article(title: str) -> str:
    """"a Neural Turing Machine", "an End-to-end memory network", "an LSTM baseline", "a DNC"."""
    if not title:
        return "a memory model"
    first = title.split()[0] if title.split() else title
    if len(first) > 1 and first.isupper():  # an initialism is read letter by letter: "an LSTM", "an NTM"
        vowel = first[0] in "AEFHILMNORSX"
    else:
        vowel = title[:1].lower() in "aeiou"
    return f"{'an' if vowel else 'a'} {title}"
