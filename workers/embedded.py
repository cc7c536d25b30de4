"""
The in-process worker used when no broker is configured.

A Celery worker (solo pool) runs in a daemon thread of the caller's process
on the in-memory transport, with the in-memory result cache: the in-memory
transport only works within one process, and a thread keeps one set of
warm caches for the whole session. Producers use the same client API.
"""
from __future__ import annotations

import atexit
import logging
import socket
import threading
from typing import Any

logger = logging.getLogger(__name__)

START_TIMEOUT = 60.0


class EmbeddedWorker:
    def __init__(self, app: Any):
        self.app = app
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._controller: Any = None
        self._failed: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.running:
            return
        # Here, not at the top: only a process that runs tasks loads the task code.
        import workers.celery_tasks  # noqa: F401  (registers the tasks)

        self.app.loader.import_default_modules()
        self._controller = self.app.WorkController(
            hostname=f'embedded@{socket.gethostname()}',
            pool='solo', concurrency=1, loglevel='WARNING',
            without_heartbeat=True, without_mingle=True, without_gossip=True,
            ready_callback=lambda *_: self._ready.set())
        self._thread = threading.Thread(target=self._run, name='spacer-embedded-worker',
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"The embedded worker did not start within {timeout} s: "
                               f"{self._failed!r}")
        atexit.register(self.stop)

    def _run(self) -> None:
        # Celery's current app is per thread; the pool traces tasks with it.
        self.app.set_current()
        try:
            self._controller.start()
        except BaseException as e:  # pragma: no cover - reported by start()
            self._failed = e
            logger.exception("The embedded worker stopped")
            self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        if self._controller is not None and self.running:
            self._controller.stop(in_sighandler=False)
            self._thread.join(timeout)
        self._thread = None
        self._ready.clear()


_workers: dict[int, EmbeddedWorker] = {}
_lock = threading.Lock()


def ensure_worker(app: Any) -> EmbeddedWorker:
    """The running embedded worker of ``app``, started on first use."""
    with _lock:
        worker = _workers.get(id(app))
        if worker is None:
            worker = _workers[id(app)] = EmbeddedWorker(app)
        worker.start()
        return worker
