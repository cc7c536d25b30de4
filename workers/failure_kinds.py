"""
Sorting an exception into what to do about it.

- INPUT: the message, the image, a location, a hash... is wrong. Retrying
  cannot help; the caller gets the error at once.
- TRANSIENT: the broker, Redis, S3 or a URL did not answer in time or
  dropped the connection, or the output disk is read-only, full or failing.
  Worth retrying after a pause.
- INTERNAL: anything else (a bug, out of memory, a time limit). Not retried;
  the message goes to the dead-letter list for someone to look at.
"""
from __future__ import annotations

import enum
import errno
import socket
from collections.abc import Iterator
from urllib.error import HTTPError, URLError

from spacer.exceptions import SpacerError, URLDownloadError


class Failure(enum.Enum):
    INPUT = 'input'
    TRANSIENT = 'transient'
    INTERNAL = 'internal'


# Bad input the library reports with a built-in class (pyspacer's contract
# keeps ValueError/AssertionError for message checks; a missing file is a
# wrong location).
INPUT_BUILTINS = (ValueError, TypeError, LookupError, AssertionError,
                  FileNotFoundError, IsADirectoryError, NotADirectoryError,
                  PermissionError, UnicodeError)

# OSError numbers that mean the path itself is wrong (too long, a file where
# a folder should be, a symlink loop), not that the machine is in trouble.
INPUT_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})

# OSError numbers of storage an operator repairs (remounts a read-only disk,
# frees space, replaces a failing volume): retried with backoff, so the
# work resumes once the disk is back, then dead-lettered if it stays down.
TRANSIENT_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO})

# botocore's refusal of a bucket or key before any request (a bucket name
# with '/', an empty key), matched by name so producers need not import it.
INPUT_BOTOCORE_NAMES = frozenset({'ParamValidationError'})

# S3 error codes that mean "try again later".
TRANSIENT_S3_CODES = frozenset({
    'SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout',
    'RequestTimeTooSkewed', 'Throttling', 'ThrottlingException', '503', '500',
})


def _transient_types() -> tuple[type[BaseException], ...]:
    """Connection and timeout errors of the clients we talk through."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.timeout]
    try:
        import kombu.exceptions
        types.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover - kombu is a dependency
        pass
    try:
        import redis.exceptions
        types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                  redis.exceptions.BusyLoadingError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import botocore.exceptions as bex
        types += [bex.EndpointConnectionError, bex.ConnectionError,
                  bex.ConnectTimeoutError, bex.ReadTimeoutError,
                  bex.ConnectionClosedError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


TRANSIENT_TYPES = _transient_types()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (cause, context, URLDownloadError's original)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.append(getattr(current, 'original_error', None))
        todo.append(current.__cause__)
        reason = getattr(current, 'reason', None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def _is_transient_url_error(exc: URLDownloadError) -> bool:
    for cause in _causes(exc.original_error):
        if isinstance(cause, HTTPError):
            # 5xx and 429 are the server's trouble; 4xx is a wrong URL.
            return cause.code >= 500 or cause.code == 429
        if isinstance(cause, (TimeoutError, socket.timeout, ConnectionError)):
            return True
        if isinstance(cause, URLError) and isinstance(cause.reason, (TimeoutError, socket.timeout,
                                                                     ConnectionError)):
            return True
    return False


def _is_transient_s3_error(exc: BaseException) -> bool:
    response = getattr(exc, 'response', None)
    if not isinstance(response, dict):
        return False
    code = str(response.get('Error', {}).get('Code', ''))
    status = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
    return code in TRANSIENT_S3_CODES or (isinstance(status, int) and status >= 500)


def classify(exc: BaseException) -> Failure:
    """What kind of failure ``exc`` is."""
    if isinstance(exc, URLDownloadError):
        return Failure.TRANSIENT if _is_transient_url_error(exc) else Failure.INPUT
    if isinstance(exc, SpacerError):
        return Failure.INPUT
    if isinstance(exc, TRANSIENT_TYPES):
        return Failure.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return Failure.TRANSIENT
    if type(exc).__name__ == 'ClientError' and _is_transient_s3_error(exc):
        return Failure.TRANSIENT
    if isinstance(exc, INPUT_BUILTINS) or type(exc).__name__ in INPUT_BOTOCORE_NAMES:
        return Failure.INPUT
    if isinstance(exc, OSError) and exc.errno in INPUT_ERRNOS:
        return Failure.INPUT
    if type(exc).__name__ == 'ClientError':
        return Failure.INPUT  # access denied, no such bucket: the location is wrong
    return Failure.INTERNAL
