"""Identity strings: they change whenever a component's output could change.

Caches and results are keyed by them, so one model's outputs can never be served as
another's.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for hashing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any, length: int = 16) -> str:
    """Hex SHA-256 prefix of a value's canonical JSON (or of bytes/str as given)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = canonical_json(value).encode()
    return hashlib.sha256(data).hexdigest()[:length]


def make_identity(kind: str, **fields: Any) -> str:
    """``"<kind>:<hash of fields>"``: readable prefix, exact over every field."""
    return f"{kind}:{digest(fields)}"


def safe_filename(text: str, max_length: int = 60) -> str:
    """A file-name-safe form of a name that may come from a user registry or plugin.

    Letters, digits and ``. _ + -`` pass; anything else (path separators, ``..``) is
    replaced, and a name that had to change gets a short hash, so two names never share
    a file.
    """
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._-")[:max_length]
    if slug != text or not slug:
        slug = f"{slug}-{digest(text, 8)}".lstrip("-")
    return slug
