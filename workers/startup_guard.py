"""
The protections a worker needs before it consumes anything, however it was
started: ``spacer worker`` or Celery's own ``celery -A workers.app worker``.

Messages choose the paths and URLs a worker uses (``docs/security.md``), so
on ``worker_init`` (in the main process, before the pool forks) a worker
connected to a broker

- refuses to start without FILESYSTEM_ROOTS, in one line, unless the
  operator set UNCONFINED (``spacer worker --unconfined`` sets it);
- turns URL_BLOCK_PRIVATE on unless the operator set it either way.

The embedded worker is the caller's own process running its own calls (a
library use), so it keeps pyspacer's behaviour.
"""
from __future__ import annotations

import os
from typing import Any

from spacer.exceptions import ConfigError
from spacer.storage.confinement import SETTING, check_roots_exist, configured_roots
from spacer.storage.url_guard import protect_worker
from workers import settings as worker_settings

UNCONFINED = 'UNCONFINED'


def require_confinement(unconfined: bool) -> None:
    """SystemExit (one line) when no roots are set and the operator did not
    allow that; ConfigError (one line) for a root that is relative or not a
    folder."""
    roots = configured_roots()
    if roots:
        check_roots_exist(roots)
    elif not unconfined:
        raise SystemExit(
            f"spacer worker: refusing to start unconfined: set SPACER_{SETTING} to the"
            f" folders filesystem locations may use (separated by {os.pathsep!r}), or set"
            f" SPACER_{UNCONFINED}=true (spacer worker --unconfined) to let messages read"
            f" and write any path this user can.")


def allow_unconfined() -> None:
    """The operator's ``--unconfined``, for this process's worker_init."""
    os.environ[f'SPACER_{UNCONFINED}'] = 'true'


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    settings = getattr(getattr(sender, 'app', None), 'spacer_settings', None)
    if settings is None or settings.embedded:
        return
    try:
        require_confinement(bool(worker_settings.read(UNCONFINED)))
        protect_worker()
    except ConfigError as e:  # Celery would log an Exception and start anyway
        raise SystemExit(f"spacer worker: {e}") from None


def install() -> None:
    from celery.signals import worker_init

    # A SystemExit from a receiver is not caught by Celery's signal dispatch:
    # the worker stops before it consumes.
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid='spacer.startup_guard')
