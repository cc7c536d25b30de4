"""Progress bars for long steps (tqdm: counts, rate and time left).

Bars go to stderr so stdout stays clean for what a script may parse; they
can be switched off (`--quiet`, or automatically when stderr is not a
terminal and the caller asks for that).
"""
from __future__ import annotations

import sys
from typing import Callable

from spacer.extras import extra_imports

with extra_imports():
    from tqdm import tqdm


def bar(total: int | None, description: str, unit: str, enabled: bool,
        initial: int = 0) -> tqdm:
    """A bar counting `unit`s up to `total`, starting from `initial` (work
    a previous run already finished: excluded from the rate and ETA)."""
    return tqdm(total=total, initial=initial, desc=description, unit=unit,
                disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                leave=True, smoothing=0.1)


def epoch_follower(progress: tqdm) -> Callable[[dict | None], None]:
    """An `on_wait` callback for a training: moves `progress` (a bar counting
    epochs) to the epochs the worker reports done (`{'epoch', 'epochs',
    'ref_acc'}`), with the last reference accuracy beside it; with no report
    yet (queued, loading features) it only keeps the elapsed time ticking."""
    def follow(report: dict | None) -> None:
        done = report.get('epoch') if isinstance(report, dict) else None
        if not isinstance(done, int) or done <= progress.n:
            progress.refresh()
            return
        total = report.get('epochs')
        if isinstance(total, int) and total != progress.total:
            progress.total = total
        progress.update(done - progress.n)
        if isinstance(report.get('ref_acc'), (int, float)):
            progress.set_postfix(ref_acc=f"{report['ref_acc']:.3f}", refresh=True)
    return follow
