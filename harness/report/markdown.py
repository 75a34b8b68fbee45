"""Escaping of untrusted text (plugin, dataset and instance names) for Markdown reports.

Names come from third-party plugins and user registries: a name like ``a|b<script>``
must show literally, as one table cell, never as markup or HTML. Every character that
Markdown (GitHub-flavoured, tables included) or HTML treats specially becomes a numeric
HTML character reference, so the escaped text contains no active character at all —
not even a backslash that a renderer could pair with something else. Line breaks and
other control characters become spaces (a newline would end a table row).
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
    "!": "&#33;",
    "$": "&#36;",
    '"': "&quot;",
}
_ACTIVE = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")


def escape(text: object) -> str:
    """``text`` as Markdown that renders literally on one line (safe inside a table cell)."""
    s = _CONTROL.sub(" ", str(text)).strip()
    return _ACTIVE.sub(lambda m: _ENTITIES[m.group(0)], s)
