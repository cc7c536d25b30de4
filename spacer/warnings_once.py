"""DeprecationWarnings issued once per old form and process.

A leaf module (standard library only), so the data classes, messages and
``spacer.legacy`` can all warn without importing one another.
"""
from __future__ import annotations

import os
import sys
import threading
import warnings

# The old forms that already warned in this process (spacer.process_state
# lists it; bounded by the number of old forms, a few dozen).
_warned: set[str] = set()
_lock = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_spacer_stacklevel() -> int:
    """warnings.warn's stacklevel, from warn_once, of the first frame outside
    this package: the warning names the user's line, wherever in spacer the
    old form was noticed."""
    frame, level = sys._getframe(1), 1  # warn_once's own frame is level 1
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename.startswith('<frozen ')):
        frame, level = frame.f_back, level + 1
    return level


def warn_once(form: str, instead: str, origin: str = 'pyspacer 0.6 API') -> None:
    """Warn about an old form the first time this process uses it."""
    with _lock:
        if form in _warned:
            return
        _warned.add(form)
    warnings.warn(f"{form} is deprecated ({origin}); use {instead} instead.",
                  DeprecationWarning, stacklevel=_outside_spacer_stacklevel())


def reset_warnings() -> None:
    """Forget which old forms already warned (for tests)."""
    with _lock:
        _warned.clear()
