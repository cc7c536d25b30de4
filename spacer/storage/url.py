"""Read-only downloads over http(s), with a per-read timeout, a total
deadline and a size cap."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from http.client import HTTPException
from io import BytesIO
from urllib.parse import urlparse

from spacer import config
from spacer.exceptions import URLDownloadError
from spacer.storage.base import RemoteStorage

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


class URLStorage(RemoteStorage):
    """Keys are URLs. Store and delete are refused: URLs are read-only here."""

    storage_type = 'url'

    def __init__(self, timeout: float | None = None, max_bytes: int | None = None,
                 deadline: float | None = None):
        self.timeout = timeout if timeout is not None else config.get('URL_TIMEOUT')
        self.max_bytes = max_bytes if max_bytes is not None else config.get('URL_MAX_BYTES')
        self.deadline = deadline if deadline is not None else config.get('URL_DEADLINE')

    def store(self, url: str, stream: BytesIO) -> None:
        raise TypeError('Store operation not supported for URL storage.')

    def delete(self, url: str) -> None:
        raise TypeError('Delete operation not supported for URL storage.')

    def _load_remote(self, url: str) -> BytesIO:
        _check_scheme(url)
        try:
            response = urllib.request.urlopen(url, timeout=self.timeout)
        except (OSError, ValueError, HTTPException) as e:
            # URLError, HTTPError (404...), socket timeouts are all OSErrors.
            raise URLDownloadError(f"Failed to download from the URL '{url}'.", e) from e
        with response:
            return BytesIO(self._read_body(url, response))

    def _read_body(self, url: str, response) -> bytes:
        declared = response.headers.get('Content-Length')
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise URLDownloadError(
                f"The URL '{url}' holds {declared} bytes, more than the"
                f" limit of {self.max_bytes}.", ValueError('response too large'))
        body = bytearray()  # grown in place: no second copy at the end
        deadline = time.monotonic() + self.deadline
        try:
            while True:
                # read1: at most one read of the socket, so a server that
                # trickles a byte at a time cannot hold us past the deadline.
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes:
                    raise URLDownloadError(
                        f"The URL '{url}' sent more than the limit of"
                        f" {self.max_bytes} bytes.", ValueError('response too large'))
                if time.monotonic() > deadline:
                    raise URLDownloadError(
                        f"The URL '{url}' took longer than URL_DEADLINE"
                        f" ({self.deadline} s) to send its body.",
                        TimeoutError(f'{len(body)} bytes in {self.deadline} s'))
        except (OSError, HTTPException) as e:
            # IncompleteRead (truncated body) and read timeouts land here.
            raise URLDownloadError(
                f"Couldn't read the full response from the URL '{url}'.", e) from e
        if declared is not None and declared.isdigit() and len(body) < int(declared):
            raise URLDownloadError(
                f"Couldn't read the full response from the URL '{url}'.",
                ValueError(f'got {len(body)} of {declared} bytes'))
        return bytes(body)

    def exists(self, url: str) -> bool:
        """Best effort: a HEAD request that answers 2xx/3xx."""
        try:
            _check_scheme(url)
            request = urllib.request.Request(url, method='HEAD')
            with urllib.request.urlopen(request, timeout=self.timeout):
                return True
        except (URLDownloadError, OSError, ValueError, HTTPException):
            return False
