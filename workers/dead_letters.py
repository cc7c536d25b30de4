"""
Dead letters: the messages of tasks that ended in failure for a reason
other than bad input (retries spent on a transient fault, a bug, a time
limit, a lost worker), kept in a Redis list so an operator can read them,
fix the cause and send them again (``spacer dead-letters``).

Bad input is not kept: its caller already has an error result naming the
cause, and nothing on our side needs fixing.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from workers.errors import RemoteError, class_path
from workers.job_state_store import store_for

logger = logging.getLogger(__name__)

KEY = 'spacer:dead_letters'


def make_entry(task_id: str, task_name: str, message: Any, error_type: str,
               error_message: str, retries: int = 0, hostname: str | None = None,
               traceback: str | None = None) -> dict:
    return {
        'task_id': task_id, 'task_name': task_name, 'message': message,
        'error_type': error_type, 'error_message': error_message,
        'retries': retries, 'hostname': hostname, 'traceback': traceback,
        'failed_at': time.time(),
    }


def push(store: Any, entry: dict, maxlen: int) -> None:
    """Keep ``entry``; the list holds the newest ``maxlen`` entries."""
    store.push(KEY, json.dumps(entry, default=str), maxlen)


def entries(store: Any, start: int = 0, stop: int = -1) -> list[dict]:
    """Dead letters, newest first."""
    return [json.loads(item) for item in store.items(KEY, start, stop)]


def count(store: Any) -> int:
    return store.length(KEY)


def take(store: Any, task_id: str) -> dict | None:
    """Remove and return the entry of ``task_id`` (to send it again)."""
    for raw in store.items(KEY):
        entry = json.loads(raw)
        if entry['task_id'] == task_id and store.remove(KEY, raw):
            return entry
    return None


def clear(store: Any) -> None:
    store.delete(KEY)


def record_failure(task: Any, task_id: str, exc: BaseException, args: Any,
                   traceback: str | None = None) -> bool:
    """Push a failed task's message (``workers.failure_policy`` decides which
    are kept); whether it was kept."""
    error_type = exc.error_class if isinstance(exc, RemoteError) else class_path(exc)
    message = args[0] if args else None
    request = getattr(task, 'request', None)
    settings = task.app.spacer_settings
    entry = make_entry(
        task_id=task_id, task_name=task.name, message=message,
        error_type=error_type,
        error_message=getattr(exc, 'message', None) or str(exc),
        retries=getattr(request, 'retries', 0) or 0,
        hostname=getattr(request, 'hostname', None), traceback=traceback)
    try:
        push(store_for(task.app), entry, settings.dead_letter_max)
    except Exception:  # the failure result still reaches the caller
        logger.exception("Could not keep the dead letter of task %s", task_id)
        return False
    logger.warning("Task %s[%s] failed (%s: %s); message kept as a dead letter.",
                   task.name, task_id, error_type, entry['error_message'])
    return True
