"""Error classes of pyspacer's contract, plus the ones a network service needs.

Every class derives from ``SpacerError`` so a worker can tell bad input (no
retry, error result) from a fault of its own. Where pyspacer raised a built-in
type (``KeyError``, ``AssertionError``, ``ModuleNotFoundError``...), ours is an
instance of it too, so callers that caught those still do.

``error_line`` writes the last line of a failed job's ``error_message`` as
pyspacer's traceback did: CoralNet splits it at the first colon and compares
the class path with pyspacer's (``spacer.exceptions.URLDownloadError``,
``PIL.UnidentifiedImageError``...), so classes pyspacer lacks print as what
pyspacer would have raised.
"""
from __future__ import annotations

import builtins

# The classes of pyspacer 0.14's spacer.exceptions: their path is the same here.
PYSPACER_EXCEPTIONS = frozenset({
    'ConfigError', 'DataLimitError', 'HashMismatchError', 'RowColumnInvalidError',
    'RowColumnMismatchError', 'RowColumnMissingError', 'TrainingLabelsError',
    'URLDownloadError'})


class SpacerError(Exception):
    """Base of every error spacer raises on purpose."""

    # What pyspacer raised instead of a class it lacks, when the error wraps
    # no other (see pyspacer_class_path).
    pyspacer_class: str | None = None


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

    pyspacer_class = 'ValueError'


class InvalidFeaturesError(MessageError, AssertionError):
    """Features (a feature file, or the arrays given) fail a basic check.

    Also an AssertionError: pyspacer asserted these checks, and callers
    such as CoralNet catch AssertionError to have the image re-extracted.
    """

    pyspacer_class = 'AssertionError'


class MissingKeyError(MessageError, KeyError):
    """A serialized message lacks a key; a KeyError too, as in pyspacer."""

    __str__ = BaseException.__str__  # KeyError's would quote the message
    pyspacer_class = 'KeyError'


class MessageArgumentError(MessageError, TypeError):
    """A data class's JSON has missing or unknown fields: pyspacer passed
    them as arguments, so callers saw a TypeError."""

    pyspacer_class = 'TypeError'


class InvalidMessageError(MessageError, AssertionError):
    """A message fails a check pyspacer asserted (empty rowcols, a rowcol
    that is not a pair, an unwritable output, an unknown storage type)."""

    pyspacer_class = 'AssertionError'


class ClassPathError(MessageError):
    """A message names a class that is not on the allow-list."""


class ClassModuleNotFoundError(ClassPathError, ModuleNotFoundError):
    """The module a class path names does not exist (pyspacer's import
    raised ModuleNotFoundError)."""

    __str__ = BaseException.__str__
    pyspacer_class = 'ModuleNotFoundError'


class ClassNotFoundError(ClassPathError, AttributeError):
    """The module exists but lacks the class (pyspacer: AttributeError)."""

    __str__ = BaseException.__str__
    pyspacer_class = 'AttributeError'


class WrongClassError(ClassPathError, TypeError):
    """The class path names something that is not a trainer or an extractor
    (pyspacer: TypeError)."""

    pyspacer_class = 'TypeError'


class ClassPathRefusedError(ClassPathError, ImportError):
    """The class exists, or may, but is not on the allow-list: refused
    without importing it, so an ImportError as well."""

    __str__ = BaseException.__str__
    pyspacer_class = 'ImportError'


def with_context(error: MessageError, prefix: str) -> MessageError:
    """The same kind of error, its message prefixed with where it happened."""
    return type(error)(f"{prefix}: {error}")


class ClassifierLoadError(SpacerError, ValueError):
    """A classifier file is not a classifier, or carries refused content."""


class ImageDecodeError(SpacerError, ValueError):
    """An image is corrupt, truncated or not an image at all."""

    pyspacer_class = 'PIL.UnidentifiedImageError'  # what Image.open raised


def class_path(cls: type) -> str:
    """A class as a traceback names it: ``module.Class``, a built-in's bare name."""
    if cls.__module__ in ('builtins', '__main__'):
        return cls.__qualname__
    return f'{cls.__module__}.{cls.__qualname__}'


def _is_pyspacers(cls: type) -> bool:
    """Whether pyspacer raised this very class: a built-in or third-party
    one, or one of its own spacer.exceptions."""
    if cls.__module__ == __name__:
        return cls.__name__ in PYSPACER_EXCEPTIONS
    return cls.__module__.split('.')[0] not in ('spacer', 'workers')


def pyspacer_class_path(exc: BaseException) -> str:
    """The class path pyspacer would print for the error ``exc`` reports.

    A class pyspacer lacks (ImageDecodeError, MissingKeyError...) prints as
    the error it wraps, since pyspacer let that one through unwrapped, else
    as its ``pyspacer_class``, else as its nearest built-in base."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_pyspacers(type(current)):
            return class_path(type(current))
        current = current.__cause__
    for cls in type(exc).__mro__:
        if cls.__dict__.get('pyspacer_class'):
            return cls.__dict__['pyspacer_class']
    return next(c.__name__ for c in type(exc).__mro__
                if getattr(builtins, c.__name__, None) is c)


def error_line(exc: BaseException) -> str:
    """``exc`` as the last line of pyspacer's traceback: 'path: text', or
    just the path when the text is empty."""
    text = str(exc)
    path = pyspacer_class_path(exc)
    return f'{path}: {text}' if text else path


def ending_with_error_line(error_message: str, exc: BaseException) -> str:
    """error_message whose last line is ``error_line(exc)`` (the line CoralNet
    reads), added unless the traceback already ends with it."""
    text = error_message.rstrip('\n')
    line = error_line(exc)
    lines = text.splitlines()
    if not lines or lines[-1] != line:
        text = f'{text}\n{line}' if text else line
    return text + '\n'
