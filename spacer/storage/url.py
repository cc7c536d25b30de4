"""Read-only downloads over http(s), with a per-read timeout, a total
deadline and a size cap. Bodies stream to an anonymous temporary file, so a
server that sends without end costs disk up to the cap, not memory. Every
connection, redirects included, goes to addresses ``url_guard`` checked
(URL_BLOCK_PRIVATE, URL_ALLOWED_NETWORKS)."""
from __future__ import annotations

import tempfile
import time
import urllib.request
from http.client import HTTPException
from io import BytesIO
from urllib.parse import urlparse

from spacer import config
from spacer.exceptions import URLDownloadError
from spacer.storage.remote import RemoteStorage
from spacer.storage.url_guard import opener

ALLOWED_SCHEMES = ('http', 'https')
_CHUNK = 1 << 20


def _check_scheme(url: str) -> None:
    try:
        scheme = urlparse(url).scheme if isinstance(url, str) else None
    except ValueError as e:  # e.g. 'Invalid IPv6 URL'
        raise URLDownloadError(f"The URL '{url}' is not a valid URL.", e) from e
    if scheme not in ALLOWED_SCHEMES:
        raise URLDownloadError(
            f"Failed to download from the URL '{url}'.",
            ValueError(f"only http and https URLs are allowed, not {scheme!r}"))


class _TimeoutSetting:
    """``URLStorage.TIMEOUT``: the URL_TIMEOUT setting, read when used, until
    a caller sets the class attribute itself (as pyspacer's callers may)."""

    def __get__(self, instance: object, owner: type) -> float:
        return float(config.get('URL_TIMEOUT'))


class URLStorage(RemoteStorage):
    """Keys are URLs. Store and delete are refused: URLs are read-only here."""

    storage_type = 'url'
    TIMEOUT = _TimeoutSetting()  # seconds a read may wait

    def __init__(self, timeout: float | None = None, max_bytes: int | None = None,
                 deadline: float | None = None):
        self.timeout = timeout if timeout is not None else type(self).TIMEOUT
        self.max_bytes = max_bytes if max_bytes is not None else config.get('URL_MAX_BYTES')
        self.deadline = deadline if deadline is not None else config.get('URL_DEADLINE')

    def store(self, url: str, stream: BytesIO) -> None:
        raise TypeError('Store operation not supported for URL storage.')

    def delete(self, url: str) -> None:
        raise TypeError('Delete operation not supported for URL storage.')

    def _load_remote(self, url: str) -> BytesIO:
        _check_scheme(url)
        try:
            response = opener().open(url, timeout=self.timeout)
        except (OSError, ValueError, HTTPException) as e:
            # URLError, HTTPError (404...), socket timeouts are all OSErrors.
            raise URLDownloadError(f"Failed to download from the URL '{url}'.", e) from e
        with response, tempfile.TemporaryFile(prefix='spacer-url-') as spool:
            self._read_body(url, response, spool)
            spool.seek(0)
            # One copy in memory, only once the whole body has arrived and
            # passed every check; BytesIO shares the bytes it is given.
            return BytesIO(spool.read())

    def _read_body(self, url: str, response, spool) -> None:
        declared = response.headers.get('Content-Length')
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise URLDownloadError(
                f"The URL '{url}' holds {declared} bytes, more than the"
                f" limit of {self.max_bytes}.", ValueError('response too large'))
        received = 0
        deadline = time.monotonic() + self.deadline
        while chunk := self._read_chunk(url, response):
            # Outside the read's error handling: a full temporary disk is
            # the worker's fault (transient), not the URL's.
            spool.write(chunk)
            received += len(chunk)
            if received > self.max_bytes:
                raise URLDownloadError(
                    f"The URL '{url}' sent more than the limit of"
                    f" {self.max_bytes} bytes.", ValueError('response too large'))
            if time.monotonic() > deadline:
                raise URLDownloadError(
                    f"The URL '{url}' took longer than URL_DEADLINE"
                    f" ({self.deadline} s) to send its body.",
                    TimeoutError(f'{received} bytes in {self.deadline} s'))
        if declared is not None and declared.isdigit() and received < int(declared):
            raise URLDownloadError(
                f"Couldn't read the full response from the URL '{url}'.",
                ValueError(f'got {received} of {declared} bytes'))

    @staticmethod
    def _read_chunk(url: str, response) -> bytes:
        """At most one read of the socket (read1), so a server that trickles
        a byte at a time cannot hold us past the deadline."""
        try:
            return response.read1(_CHUNK)
        except (OSError, HTTPException) as e:
            # IncompleteRead (truncated body) and read timeouts land here.
            raise URLDownloadError(
                f"Couldn't read the full response from the URL '{url}'.", e) from e

    def exists(self, url: str) -> bool:
        """Best effort: a HEAD request that answers 2xx/3xx."""
        try:
            _check_scheme(url)
            request = urllib.request.Request(url, method='HEAD')
            with opener().open(request, timeout=self.timeout):
                return True
        except (URLDownloadError, OSError, ValueError, HTTPException):
            return False
