"""
Lua scripts inside redis-py pipelines, in the pipeline's one round trip.

A script registered with redis-py and run in a pipeline makes the pipeline
ask Redis first whether the script is loaded (SCRIPT EXISTS): a round trip
of its own on every execute. Here the pipeline sends the script's source
with EVAL instead; Redis compiles a given source once and keeps it.
"""
from __future__ import annotations

from typing import Any, Sequence


def queue_script(pipe: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Add ``script`` (a redis-py ``Script``) to ``pipe`` as one EVAL."""
    pipe.eval(script.script, len(keys), *keys, *args)
