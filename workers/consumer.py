"""
The worker's message consumer: a message the worker refuses to decode
(pickle, YAML, anything but JSON, or bytes that are no message) still ends
its task. Celery's own consumer acknowledges or rejects such a message and
only logs it, so its producer would see PENDING forever; here, when the
message's headers name a task id, that id gets a FAILURE result saying
why, and the refusal is counted in the metrics. The body is never
deserialized, and never quoted in the result. With signed messages on
(``workers.signing``), a message without a trusted signature is dropped
with one log line and its task left alone.
"""
from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

from workers import metrics, signing
from workers.errors import remote_error

logger = logging.getLogger(__name__)

REASON_CHARS = 300  # of the decoder's own words, in the stored error


class RefusingConsumer(Consumer):
    """Celery's consumer, failing the task of a message it refuses; with
    signed messages on, dropping an unsigned or forged one instead."""

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        if signing.signs(self.app):
            return drop_unverified_message(message, exc, self.connection_errors)
        super().on_invalid_task(body, message, exc)
        fail_refused_message(self.app, message, exc)

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        if signing.signs(self.app):
            return drop_unverified_message(message, exc, self.connection_errors)
        super().on_decode_error(message, exc)
        fail_refused_message(self.app, message, exc)


def drop_unverified_message(message: Any, exc: BaseException, connection_errors: Any) -> None:
    """A worker that takes signed messages only drops any other, with one log
    line. Its task id is not failed: the headers naming it are not signed,
    so failing it would let anyone who reaches Redis fail others' tasks."""
    headers = getattr(message, 'headers', None) or {}
    name, task_id = headers.get('task'), headers.get('id')
    # Unsigned headers: quoted (no forged log lines), never a metrics label.
    metrics.count_refused('unverified', 'SecurityError')
    logger.warning("Refused a message naming task %.100r (id %.64r): %s; dropped unread.",
                   name, task_id, signing.refusal_reason(message, exc))
    message.reject_log_error(logger, connection_errors)


def fail_refused_message(app: Any, message: Any, exc: BaseException) -> None:
    """Store FAILURE for the task a refused message names, if it names one."""
    headers = getattr(message, 'headers', None) or {}
    task_id, name = headers.get('id'), headers.get('task')
    task_name = name if isinstance(name, str) else 'unknown'
    metrics.count_refused(task_name, type(exc).__name__)
    if not isinstance(task_id, str) or not task_id:
        return
    reason = str(exc)[:REASON_CHARS]
    error = remote_error(type(exc).__name__,
                         f"The worker refused the message of task {task_id}"
                        f" ({message.content_type or 'no content type'}): {reason}")
    try:
        app.backend.mark_as_failure(task_id, error)
    except Exception:  # noqa: BLE001 - the message is gone either way; say so
        logger.exception("Could not store the failure of refused task %s", task_id)
