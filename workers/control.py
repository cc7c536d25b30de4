"""
``spacer_info``: a remote-control (inspect) command every worker answers
with what its task process chose (device, threads, pid) and the queues it
consumes, so ``spacer status`` can show where extraction really runs and
``spacer status`` and ``spacer run`` can say when no live worker consumes a
queue. For a prefork pool the answer comes from the parent, which only
knows the pool size.
"""
from __future__ import annotations

import os
from typing import Any

from workers import process_setup as warm

COMMAND = 'spacer_info'


def info(queues: list[str] | None = None) -> dict:
    return {'pid': os.getpid(), 'worker': warm.worker_info(), 'process': warm.process_info(),
            'queues': queues or []}


def _consumed_queues(state: Any) -> list[str]:
    consumer = getattr(getattr(state, 'consumer', None), 'task_consumer', None)
    return sorted(queue.name for queue in getattr(consumer, 'queues', []) or [])


def install() -> None:
    from celery.worker.control import inspect_command

    @inspect_command(name=COMMAND)
    def spacer_info(state: Any, **_: Any) -> dict:
        return info(_consumed_queues(state))


def ask(app: Any, timeout: float = 1.0) -> dict[str, dict]:
    """{worker hostname: its spacer_info} of every live worker."""
    replies = app.control.broadcast(COMMAND, reply=True, timeout=timeout) or []
    merged: dict[str, dict] = {}
    for reply in replies:
        merged.update(reply)
    return merged


def consumers(app: Any, timeout: float = 1.0) -> dict[str, list[str]]:
    """{queue name: hostnames of the live workers consuming it}, for every
    queue of the app (an empty list: nothing will run what waits there)."""
    found: dict[str, list[str]] = {name: [] for name in app.spacer_settings.queues.values()}
    for hostname, answer in ask(app, timeout).items():
        for queue in answer.get('queues', []):
            found.setdefault(queue, []).append(hostname)
    return {queue: sorted(names) for queue, names in found.items()}
