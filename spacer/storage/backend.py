"""The interface every storage backend implements: bytes in and out by key.

Named for what it holds (``spacer.extractors.base`` is pyspacer's name for
the extractor base class; two ``base`` modules would read alike).
"""
from __future__ import annotations

import abc
from io import BytesIO


class Storage(abc.ABC):
    """One backend: a flat namespace of keys holding bytes."""

    @abc.abstractmethod
    def store(self, key: str, stream: BytesIO) -> None:
        """Write the stream's whole content under key, atomically."""

    @abc.abstractmethod
    def load(self, key: str) -> BytesIO:
        """The bytes under key; FileNotFoundError/KeyError when absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove key."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether key holds data."""
