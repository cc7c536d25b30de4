"""
Errors about a file's content that never quote the content.

Parsers quote what they choke on (``could not convert string to float:
'TOPSECRET'``, numpy's ``Cannot parse header: b"..."``, protobuf's token,
pickle's load key). A message may point a worker at any file it can read,
and error texts travel to the result backend, logs, dead letters and
Flower: so errors about a file name the problem (class, position, size),
never the bytes. ``describe`` words a parser's error that way;
``without_content`` is the same error class with its text withheld, for
``raise ... from`` so tracebacks (and the class CoralNet reads) keep the
cause without its text.
"""
from __future__ import annotations

import importlib.util
import sys

WITHHELD = 'details withheld: they may quote the file'

# Attributes of parser errors that are positions, never content
# (json.JSONDecodeError, UnicodeDecodeError, SyntaxError).
_POSITION_ATTRIBUTES = ('lineno', 'colno', 'pos', 'start', 'end', 'offset')


def describe(exc: BaseException) -> str:
    """The error's class and where it happened, e.g. 'JSONDecodeError at
    lineno 1, colno 5, pos 4'; nothing of the text it quotes."""
    positions = []
    for name in _POSITION_ATTRIBUTES:
        value = getattr(exc, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            positions.append(f'{name} {value}')
    where = f" at {', '.join(positions)}" if positions else ''
    return f'{type(exc).__name__}{where}'


def _bare(cls: type[BaseException], text: str) -> BaseException | None:
    """An instance of cls whose str() carries ``text`` (built without
    cls.__init__, which may want other arguments); None if str() breaks."""
    try:
        clone = cls.__new__(cls)
        BaseException.__init__(clone, text)
        return clone if text in str(clone) else None
    except Exception:
        return None


def without_content(exc: BaseException) -> BaseException:
    """An error of exc's class (else of its nearest base whose text can be
    set) saying only ``describe(exc)``: the cause to chain instead of exc."""
    text = f'{describe(exc)} ({WITHHELD})'
    for cls in type(exc).__mro__:
        if isinstance(cls, type) and issubclass(cls, BaseException):
            clone = _bare(cls, text)
            if clone is not None:
                return clone
    return Exception(text)  # pragma: no cover - BaseException always works


def global_name(module: str, name: str) -> str:
    """A pickle global as an error may show it: 'the global module.name' when
    it names something that exists here (a class path, not data); a module
    that exists with the name withheld; else both withheld."""
    top = module.split('.', 1)[0]
    try:
        known = top.isidentifier() and len(module) < 200 \
            and importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        known = False
    if not known:
        return f'a global of an unknown module ({WITHHELD})'
    loaded = sys.modules.get(module)
    if loaded is not None and name.isidentifier() and hasattr(loaded, name):
        return f"the global '{module}.{name}'"
    return f"a global of module '{module}' (its name withheld: it may quote the file)"
