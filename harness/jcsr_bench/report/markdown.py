"""Escaping of untrusted text (plugin, dataset and instance names) for Markdown reports.

Names come from third-party plugins and user registries: a name like ``a|b<script>``
must show literally, as one table cell, never as markup or HTML. Reports are read both
rendered (GitHub) and raw (``jcsr-bench leaderboard`` prints to a terminal), so only
characters that could *act* in CommonMark/GFM become numeric character references, and
ordinary text stays readable: ``x86_64`` and ``R&D`` are left as they are.

What is neutralised: ``|`` (a table cell), the backtick, ``*``, ``~``, ``$``, ``[``,
``]`` and the backslash (code, emphasis, strikethrough, math, links, backslash escapes)
everywhere; ``<`` where it could open HTML or an autolink (before a letter, ``/``,
``!`` or ``?``); ``_`` unless it sits between two letters or digits (CommonMark never
makes intraword ``_`` emphasis); ``&`` only where it could start a character
reference; ``#`` and ``>`` at the start (a heading or block quote when the text starts
a line). So ``short side 8 px <= 160`` stays readable too. Line breaks and other
control characters become spaces (a newline would end a table row).

Where text goes to a terminal or CI log rather than a Markdown file, :func:`plain`
keeps it on one line and escapes nothing.
"""

from __future__ import annotations

import re

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "*": "&#42;",
    "_": "&#95;",
    "`": "&#96;",
    "[": "&#91;",
    "]": "&#93;",
    "\\": "&#92;",
    "~": "&#126;",
    "#": "&#35;",
    "$": "&#36;",
}
_ALWAYS = re.escape("|*`[]\\~$")
_ACTIVE = re.compile(
    rf"[{_ALWAYS}]"
    r"|<(?=[A-Za-z/!?])"  # '<' that could open an HTML tag, comment or autolink
    r"|(?<![^\W_])_|_(?![^\W_])"  # '_' not between two letters/digits
    r"|&(?=#|[A-Za-z][A-Za-z0-9]*;)"  # '&' that could start a character reference
    r"|^[#>]"  # a heading or block quote if the text starts a line
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def escape(text: object) -> str:
    """``text`` as Markdown that renders literally on one line (safe inside a table cell)."""
    s = _CONTROL.sub(" ", str(text)).strip()
    return _ACTIVE.sub(lambda m: _ENTITIES[m.group(0)[0]], s)


def plain(text: object) -> str:
    """``text`` on one line for a terminal or CI log: control characters become spaces,
    nothing is escaped (character references would show literally there)."""
    return _CONTROL.sub(" ", str(text)).strip()
