"""Progress bars for long steps (tqdm: counts, rate and time left).

Bars go to stderr so stdout stays clean for what a script may parse; they
can be switched off (`--quiet`, or automatically when stderr is not a
terminal and the caller asks for that).
"""
from __future__ import annotations

import sys

from tqdm import tqdm


def bar(total: int | None, description: str, unit: str, enabled: bool,
        initial: int = 0) -> tqdm:
    """A bar counting `unit`s up to `total`, starting from `initial` (work
    a previous run already finished: excluded from the rate and ETA)."""
    return tqdm(total=total, initial=initial, desc=description, unit=unit,
                disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                leave=True, smoothing=0.1)
