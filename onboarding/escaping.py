"""Text from outside made safe for Markdown and HTML: one place, used by every renderer.

Client names, channel ids and statuses, Meta's setup errors, anything a webhook or the Partner
API sent, is data, never markup. Before such a value enters Markdown (alert notices, which
Apprise turns into HTML for HTML sinks; timeline and report artifacts, which the Prefect UI
renders) it goes through :func:`md` (or :func:`md_cell` inside a table); before it enters HTML,
through :func:`html_text`.

:func:`md` makes a value one line and inert: ``<``, ``>`` and entity-like ``&`` become HTML
entities (so ``<img onerror=...>`` stays text in every Markdown-to-HTML converter, which pass raw
HTML through), and the characters that start emphasis, code, links or images are
backslash-escaped (an underscore only at a word's edge). Plain-text sinks show those
backslashes; a readable notice is worth less than one that cannot run a script.

Terminals and log files get the same care: :func:`visible` makes control characters show as
escapes (``\\x1b``, ``\\n``), so an ANSI sequence cannot repaint a terminal and a newline
cannot forge a log line; :func:`plain` wraps that in a :class:`rich.text.Text`, which rich never
reads as markup (``Acme [/] Ltd`` stays ``Acme [/] Ltd``); :func:`markup_text` is for the few
places that build a markup string around such a value. :class:`OneLineFormatter` is the log
formatter for our handlers: every record, traceback included, is one line.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata

from rich.markup import escape as _rich_escape
from rich.text import Text

__all__ = [
    "OneLineFilter",
    "OneLineFormatter",
    "html_text",
    "markup_text",
    "md",
    "md_cell",
    "md_code",
    "plain",
    "visible",
]

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional overrides and isolates reorder what a terminal shows; escaped like controls.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_ENTITY_LIKE = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_MD_SPECIAL = re.compile(r"([\\`*\[\]~])")
# An underscore inside a word (setting_up) starts no emphasis in CommonMark, GFM, Python-Markdown
# or Apprise's converter, so only one at a word's edge is escaped: ids and statuses stay readable.
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def md(value: object) -> str:
    """``value`` as inline Markdown text: one line, no markup, no raw HTML."""
    text = " ".join(str(value).split())
    text = _ENTITY_LIKE.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return _EDGE_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", text))


def md_cell(value: object) -> str:
    """``value`` for a Markdown table cell: :func:`md` with ``|`` escaped too."""
    return md(value).replace("|", "\\|")


def md_code(value: object) -> str:
    """``value`` as a code span, or as :func:`md` text when it could break out of one."""
    text = " ".join(str(value).split())
    if not text or "`" in text:
        return md(text)
    return f"`{text}`"


def html_text(value: object) -> str:
    """``value`` as HTML text or attribute content (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape(str(value), quote=True)


def _shown_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI


def visible(value: object) -> str:
    """``value`` as one line with every control character shown as an escape.

    ESC is shown as ``\\x1b``, a newline as ``\\n``, a tab as ``\\t``; other C0/C1 controls,
    DEL, line and paragraph separators and bidirectional overrides as ``\\xNN``/``\\uNNNN``.
    Everything else is kept as it is.
    """
    text = str(value)
    if not any(_invisible(char) for char in text):
        return text
    return "".join(_shown_char(char) if _invisible(char) else char for char in text)


def plain(value: object, style: str = "") -> Text:
    """``value`` as rich :class:`~rich.text.Text`: shown literally (no markup), one line."""
    return Text(visible(value), style=style)


def markup_text(value: object) -> str:
    """``value`` for insertion into a rich markup string: :func:`visible`, then rich-escaped."""
    return _rich_escape(visible(value))


class OneLineFormatter(logging.Formatter):
    """A log formatter whose every record is exactly one line, control characters escaped.

    Outside text in a message (a channel id with a newline, a status holding ``ESC[2J``) cannot
    forge a second record or drive the terminal that tails the file; a traceback is kept, on the
    same line, its line breaks shown as ``\\n``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record formatted as usual, then made one line by :func:`visible`."""
        return visible(super().format(record))


class OneLineFilter(logging.Filter):
    """For a handler whose formatter is not ours (Prefect's console): one-line message, traceback.

    The message is rendered once and escaped by :func:`visible`, and so is any traceback text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, escaped; escape the traceback text too."""
        record.msg = visible(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = visible(record.exc_text)
        return True
