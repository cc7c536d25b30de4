"""
Where the result backend finds the classes of stored failures.

A failure is stored with the module ``workers.remote_errors`` and the
original error's class name (``workers.errors.remote_error``). Celery reads
it back by looking the name up here (it never imports a module to do so),
and every name that is a Python identifier answers with the RemoteError
subclass of that name, so the caller gets ``ImageDecodeError('...')`` that
is also a ``RemoteError``.
"""
from __future__ import annotations

from workers.errors import remote_error_class


def __getattr__(name: str) -> type:
    if name.startswith('_'):
        raise AttributeError(name)
    try:
        return remote_error_class(name)
    except ValueError:
        raise AttributeError(name) from None
