"""Error classes of pyspacer's contract, plus the ones a network service needs.

Every class derives from ``SpacerError`` so a worker can tell bad input (no
retry, error result) from a fault of its own. Classes that pyspacer raised as
``ValueError``/``AssertionError`` keep that base too, so callers that caught
those still do.
"""
from __future__ import annotations


class SpacerError(Exception):
    """Base of every error spacer raises on purpose."""


class ConfigError(SpacerError):
    pass


class DataLimitError(SpacerError):
    """Too many pixels or points."""


class HashMismatchError(SpacerError):
    """An extractor file's sha256 differs from the message's data_hashes."""


class RowColumnInvalidError(SpacerError):
    """Rows/columns out of range or not integers."""


class RowColumnMismatchError(SpacerError):
    """A labelled point is missing from its feature file."""


class RowColumnMissingError(SpacerError):
    """Legacy features carry no row/column information."""


class TrainingLabelsError(SpacerError):
    pass


class URLDownloadError(SpacerError):
    """Wraps whatever went wrong fetching a URL; the cause stays inspectable."""

    def __init__(self, message: str, original_error: BaseException):
        super().__init__(message)
        self.message = message
        self.original_error = original_error

    def __str__(self) -> str:
        return (f"{self.message} / Details - "
                f"{type(self.original_error).__name__}: {self.original_error}")

    def __reduce__(self):
        return type(self), (self.message, self.original_error)


class MessageError(SpacerError, ValueError):
    """A message or data class could not be built from its JSON."""


class InvalidFeaturesError(MessageError, AssertionError):
    """Features (a feature file, or the arrays given) fail a basic check.

    Also an AssertionError: pyspacer asserted these checks, and callers
    such as CoralNet catch AssertionError to have the image re-extracted.
    """


class ClassPathError(MessageError):
    """A message names a class that is not on the allow-list."""


class ClassifierLoadError(SpacerError, ValueError):
    """A classifier file is not a classifier, or carries refused content."""


class ImageDecodeError(SpacerError, ValueError):
    """An image is corrupt, truncated or not an image at all."""
