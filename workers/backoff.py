"""Exponential backoff with a cap, for transient faults."""
from __future__ import annotations

import random


def backoff_delay(retries: int, base: float, cap: float, jitter: bool = True) -> float:
    """
    Seconds to wait before retry number ``retries + 1``: ``base * 2**retries``
    capped at ``cap``; with jitter, a uniform draw from the upper half of that
    so that workers hit by the same outage do not retry in lockstep.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}.")
    delay = min(cap, base * (2 ** retries))
    if jitter:
        delay = random.uniform(delay / 2, delay)
    return delay


def should_retry(retries: int, max_retries: int) -> bool:
    """Whether a task that has been retried ``retries`` times may try again."""
    return retries < max_retries
