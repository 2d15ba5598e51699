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
"""

from __future__ import annotations

import html
import re

__all__ = ["html_text", "md", "md_cell", "md_code"]

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
