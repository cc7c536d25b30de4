"""
Errors as a producer sees them.

A task that fails on a worker is stored as ``RemoteError(error_type,
message)``: both parts are plain strings, so the failure crosses the JSON
result backend intact and the caller reads the original class name and
message without importing the worker's code.
"""
from __future__ import annotations


class RemoteError(Exception):
    """A task failed on a worker; names the original error class and message."""

    def __init__(self, error_type: str, message: str, error_class: str | None = None):
        super().__init__(error_type, message)
        self.error_type = error_type
        self.message = message
        # The original's dotted class path, kept for operators (dead letters).
        self.error_class = error_class or error_type

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"

    @classmethod
    def from_exception(cls, exc: BaseException) -> 'RemoteError':
        if isinstance(exc, RemoteError):
            return exc
        return cls(type(exc).__name__, str(exc), class_path(exc))


def class_path(exc: BaseException) -> str:
    """``module.Class`` of an exception (a built-in's bare name): what its
    class is, never an attribute of it (redis 8's errors carry an
    ``error_type`` that names a category, not the class)."""
    kind = type(exc)
    if kind.__module__ == 'builtins':
        return kind.__qualname__
    return f'{kind.__module__}.{kind.__qualname__}'


class DuplicateJobError(Exception):
    """The same job token is already pending or running as another task."""

    def __init__(self, job_key: str, running_task_id: str):
        super().__init__(
            f"Job {job_key} is already pending or running as task {running_task_id}.")
        self.job_key = job_key
        self.running_task_id = running_task_id


class BrokerUnavailableError(ConnectionError):
    """The producer could not reach the broker (or the Redis its dedup and
    results use) within BROKER_CONNECT_TIMEOUT: nothing was queued, so the
    caller may submit again later. Names the URL without its password."""

    def __init__(self, url: str, cause: BaseException):
        from kombu.utils.url import maybe_sanitize_url
        self.url = maybe_sanitize_url(url)
        super().__init__(f"Cannot reach the broker at {self.url}: nothing was queued"
                         f" ({type(cause).__name__}: {cause}).")
