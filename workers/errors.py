"""
Errors as a producer sees them.

A task that fails on a worker is stored as an instance of a RemoteError
subclass named after the original error's class (``remote_error``), whose
one argument is the message: the JSON result backend keeps the class name
(``exc_type``) and the message, so the caller, Flower and anything that
groups failures by class read ``ImageDecodeError``, not a wrapper, without
importing the worker's code. Such classes are found by name in
``workers.remote_errors``.
"""
from __future__ import annotations

import functools


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
        return remote_error(type(exc).__name__, str(exc), class_path(exc))


class _NamedRemoteError(RemoteError):
    """Base of the classes ``remote_error_class`` makes: the message is the
    only argument (what the result backend stores besides the class name)."""

    def __init__(self, message: str = '', error_class: str | None = None):
        super().__init__(type(self).__name__, message, error_class)
        self.args = (message,)

    def __reduce__(self):
        return remote_error, (self.error_type, self.message, self.error_class)


@functools.lru_cache(maxsize=1024)
def remote_error_class(error_type: str) -> type[RemoteError]:
    """The RemoteError subclass called ``error_type`` (one per name)."""
    if not error_type.isidentifier() or error_type.startswith('_'):
        raise ValueError(f"{error_type!r} is not an exception class name.")
    return type(error_type, (_NamedRemoteError,), {'__module__': 'workers.remote_errors'})


def remote_error(error_type: str, message: str, error_class: str | None = None) -> RemoteError:
    """A failure to store or raise: named ``error_type`` wherever it is read."""
    try:
        cls = remote_error_class(error_type)
    except ValueError:
        return RemoteError(error_type, message, error_class)
    return cls(message, error_class)


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
    caller may submit again later. Names what it could not reach ('broker',
    'result backend') and its URL without the password."""

    def __init__(self, url: str, cause: BaseException,
                 consequence: str | None = 'nothing was queued', what: str = 'broker'):
        from kombu.utils.url import maybe_sanitize_url
        self.url = maybe_sanitize_url(url)
        after = f": {consequence}" if consequence else ''
        super().__init__(f"Cannot reach the {what} at {self.url}{after}"
                         f" ({type(cause).__name__}: {cause}).")
