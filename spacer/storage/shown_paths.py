"""Paths as error messages show them: quoted, a huge one cut to its two ends."""
from __future__ import annotations

import os

# Paths longer than this are shortened in error messages.
_SHOWN_CHARS = 160


def shown_path(path: str | os.PathLike) -> str:
    """path quoted for a message; a huge one keeps its two ends and its length."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    half = _SHOWN_CHARS // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text)} characters)"
