"""
``spacer_info``: a remote-control (inspect) command every worker answers
with what its task process chose (device, threads, pid), so ``spacer
status`` can show where extraction really runs. For a prefork pool the
answer comes from the parent, which only knows the pool size.
"""
from __future__ import annotations

import os
from typing import Any

from workers import warm

COMMAND = 'spacer_info'


def info() -> dict:
    return {'pid': os.getpid(), 'worker': warm.worker_info(), 'process': warm.process_info()}


def install() -> None:
    from celery.worker.control import inspect_command

    @inspect_command(name=COMMAND)
    def spacer_info(state: Any, **_: Any) -> dict:
        return info()


def ask(app: Any, timeout: float = 1.0) -> dict[str, dict]:
    """{worker hostname: its spacer_info} of every live worker."""
    replies = app.control.broadcast(COMMAND, reply=True, timeout=timeout) or []
    merged: dict[str, dict] = {}
    for reply in replies:
        merged.update(reply)
    return merged
