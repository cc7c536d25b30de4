"""Every piece of process-wide state in the worker layer, with what bounds
it: the counterpart of ``spacer.process_state`` for ``workers``.

Caches and singletons live beside the code that uses them; this is the one
list of them, so that none grows unseen and tests can start clean
(``clear_all()``). Entries name their module rather than import it.
"""
from __future__ import annotations

import sys

from spacer.process_state import ProcessState


def _call(name: str):
    return lambda module: getattr(module, name)()


STATE: tuple[ProcessState, ...] = (
    ProcessState('workers.job_state_store', '_clients',
                 'REDIS_URLS_KEPT Redis clients by URL, least recently used dropped',
                 _call('clear_caches')),
    ProcessState('workers.job_state_store', '_stores',
                 'REDIS_URLS_KEPT key stores by URL, least recently used dropped',
                 _call('clear_caches')),
    ProcessState('workers.job_state_store', '_EMBEDDED_STORE',
                 "the embedded worker's dedup keys (expire by DEDUP_TTL) and dead"
                 " letters (DEAD_LETTER_MAX)", None),
    ProcessState('workers.client', '_default', 'one Client: the default app', None),
    ProcessState('workers.embedded', '_workers',
                 'one embedded worker per Celery app that ran one (one in production)', None),
    ProcessState('workers.liveness', '_current', "one entry: this worker's heartbeat", None),
    ProcessState('workers.redis_transport', '_holder',
                 "two entries: the name and seconds under which a worker's main process"
                 " holds the messages it takes", None),
    ProcessState('workers.redis_transport', '_restorer',
                 "one flag: this process restores dead consumers' messages", None),
    ProcessState('workers.metrics', '_state', 'one set of metric series per process', None),
    ProcessState('workers.metrics', '_installed', 'one flag: the metric hooks are on', None),
    ProcessState('workers.process_setup', '_worker',
                 "two entries: the worker's pool size and kind", None),
    ProcessState('workers.process_setup', '_process',
                 'a few entries: the device of this process', None),
    # Not cleared: a failure read back must keep finding the same class.
    ProcessState('workers.errors', 'remote_error_class',
                 'lru_cache(maxsize=1024) RemoteError classes by error class name', None),
)


def clear_all() -> None:
    """Empty every cache of the modules imported so far (for tests)."""
    for state in STATE:
        module = sys.modules.get(state.module)
        if module is not None and state.clear is not None:
            state.clear(module)
