"""Prometheus metrics of one worker, served over HTTP by the worker process.

Why it is built this way:
- Celery's prefork pool runs tasks in child processes, but only the parent
  can serve one port. The children therefore record into prometheus_client's
  multiprocess files (one directory per worker) and the parent's endpoint adds
  them up at scrape time. The solo and thread pools use the same path.
- Queue depths and GPU figures are read at scrape time, not pushed, so they
  are fresh and cost nothing between scrapes. Queue depths come from
  ``workers.queues.queue_depths``, the same figures ``spacer status`` prints
  (Redis priority sub-lists included).
- Queue depths and the dead-letter count are figures of the whole fleet:
  one worker at a time exports them (the holder of a short-lived Redis key,
  ``FleetCollector``), so ``sum()`` over all workers counts each once.
- Everything is hooked on Celery's signals; ``install()`` connects them once.
  The worker command calls it; the port comes from the ``METRICS_PORT``
  setting (``SPACER_METRICS_PORT``), 0 leaving the endpoint off.

Code that loads an extractor reports how long it took by sending
``extractor_loaded`` (``extractor=<class name>, seconds=<float>``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from celery import signals
from celery.utils.dispatch import Signal

from workers import dead_letters
from workers.errors import RemoteError
from workers.job_state_store import store_for
from workers.queues import queue_depths
from workers.settings import read

logger = logging.getLogger(__name__)

MULTIPROC_ENV = 'PROMETHEUS_MULTIPROC_DIR'

RUNTIME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                   600, 1200, 1800, 3600, 7200, 14400)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: Sent by whoever loads an extractor's network (once per process per extractor).
extractor_loaded = Signal(name='extractor_loaded', providing_args={'extractor', 'seconds'})


def metrics_port() -> int:
    """The configured port of the metrics endpoint (METRICS_PORT, held to its
    bounds); 0 means no endpoint."""
    return read('METRICS_PORT')


class WorkerMetrics:
    """The metric objects one worker writes to (in whichever process runs tasks)."""

    def __init__(self, registry: Any = None):
        from prometheus_client import Counter, Gauge, Histogram

        kwargs = {'registry': registry}
        self.tasks = Counter(
            'spacer_tasks', 'Tasks finished, by task name and outcome '
            '(succeeded, failed, retried).', ['task', 'outcome'], **kwargs)
        self.failures = Counter(
            'spacer_task_failures', 'Failed tasks and error results, by task '
            'name and error class.', ['task', 'error_class'], **kwargs)
        self.runtime = Histogram(
            'spacer_task_runtime_seconds', 'Wall time of a task in the worker.',
            ['task'], buckets=RUNTIME_BUCKETS, **kwargs)
        self.active = Gauge(
            'spacer_tasks_active', 'Tasks running right now.', ['task'],
            multiprocess_mode='livesum', **kwargs)
        self.extractor_load = Histogram(
            'spacer_extractor_load_seconds', 'Time to load an extractor '
            '(weights and network) into a worker process.', ['extractor'],
            buckets=LOAD_BUCKETS, **kwargs)


# The key whose holder exports the fleet's figures, and how long it holds
# it without a scrape (then another worker's scrape takes over).
EXPORTER_KEY = 'spacer:metrics:fleet-exporter'
EXPORTER_TTL = 120


class FleetCollector:
    """The fleet's backlog (queue depths) and dead letters, read when
    Prometheus scrapes, from the one worker that holds EXPORTER_KEY."""

    def __init__(self, app: Any, hostname: str | None = None):
        import socket
        self.app = app
        self.hostname = hostname or f'{socket.gethostname()}:{os.getpid()}'

    def exports(self, store: Any) -> bool:
        """Whether this worker is the fleet's exporter now (taking the key
        when nobody holds it, keeping it alive while it does)."""
        return store.claim(EXPORTER_KEY, self.hostname, EXPORTER_TTL) is None

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily


        depth = GaugeMetricFamily(
            'spacer_queue_depth', 'Tasks waiting in a queue (all priority '
            'levels), not counting those already taken by a worker; exported by '
            'one worker of the fleet.', labels=['queue'])
        dead = GaugeMetricFamily(
            'spacer_dead_letters', 'Failed tasks kept as dead letters (spacer '
            'dead-letters); exported by one worker of the fleet.')
        try:
            store = store_for(self.app)
            if not self.exports(store):
                return
            depths = queue_depths(self.app)
            dead.add_metric([], dead_letters.count(store))
        except Exception as exc:  # a scrape must not fail because the broker blinked
            logger.warning("Could not read the fleet's figures: %s", exc)
            return
        for queue, waiting in sorted(depths.items()):
            depth.add_metric([queue], waiting)
        yield depth
        yield dead


class ConsumedQueuesCollector:
    """``spacer_worker_consumes{queue} 1`` for each queue this worker
    consumes: summed by queue over the fleet, the live consumers of each."""

    def __init__(self, queues: list[str]):
        self.queues = list(queues)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily('spacer_worker_consumes',
                                   'Queues this worker consumes (1 each).', labels=['queue'])
        for queue in self.queues:
            family.add_metric([queue], 1)
        yield family


class GpuCollector:
    """GPU utilization and memory through NVML, on hosts that have a driver."""

    def __init__(self) -> None:
        self._nvml = None
        try:
            import pynvml
            pynvml.nvmlInit()
        except Exception:  # no package, no driver, no GPU: nothing to report
            return
        self._nvml = pynvml

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def collect(self) -> Iterator[Any]:
        if self._nvml is None:
            return
        from prometheus_client.core import GaugeMetricFamily

        nvml = self._nvml
        util = GaugeMetricFamily('spacer_gpu_utilization_percent',
                                 'Percent of time the GPU was busy (NVML).', labels=['gpu'])
        used = GaugeMetricFamily('spacer_gpu_memory_used_bytes',
                                 'GPU memory in use (NVML).', labels=['gpu'])
        total = GaugeMetricFamily('spacer_gpu_memory_total_bytes',
                                  'GPU memory in all (NVML).', labels=['gpu'])
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                util.add_metric([str(index)], rates.gpu)
                used.add_metric([str(index)], memory.used)
                total.add_metric([str(index)], memory.total)
        except Exception as exc:
            logger.warning("Could not read GPU figures: %s", exc)
            return
        yield from (util, used, total)


class _State:
    """What install() and the signal handlers share within one process tree."""

    def __init__(self) -> None:
        self.metrics: WorkerMetrics | None = None
        self.directory: str | None = None
        self.owns_directory = False
        self.server: Any = None
        self.app: Any = None
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()


_state = _State()
_installed = False


def error_class_of(result: Any) -> str | None:
    """The error class an error *result* names, or None for a good result.

    Bad input comes back as a result, not an exception, so counting only
    raised exceptions would hide it. An error result is a mapping with
    ``ok`` false (or an ``error`` entry) naming the class in ``error_class``,
    ``error_type`` or ``error['class']``.
    """
    if not isinstance(result, Mapping):
        return None
    error = result.get('error')
    if result.get('ok', True) and not error:
        return None
    for key in ('error_class', 'error_type'):
        if isinstance(result.get(key), str):
            return result[key]
    if isinstance(error, Mapping):
        for key in ('class', 'type', 'error_class'):
            if isinstance(error.get(key), str):
                return error[key]
    return 'Error'


def _task_name(sender: Any, task: Any = None) -> str:
    task = task or sender
    return getattr(task, 'name', None) or str(task)


# ----- signal handlers ------------------------------------------------------

def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before the pool forks its children."""
    port = metrics_port()
    if not port:
        return
    from prometheus_client import values

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix='spacer-metrics-')
        _state.owns_directory = True
        os.environ[MULTIPROC_ENV] = directory
    _state.directory = directory
    # Metrics made from here on (ours, in this process and its children)
    # write to per-process files that the endpoint adds up.
    values.ValueClass = values.MultiProcessValue()
    _state.metrics = WorkerMetrics(registry=None)
    _state.app = getattr(sender, 'app', None)


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Starts the endpoint once the pool's children exist."""
    if _state.metrics is None or _state.server is not None:
        return
    app = _state.app or getattr(sender, 'app', None)
    consumer = getattr(sender, 'task_consumer', None)
    queues = sorted(q.name for q in getattr(consumer, 'queues', None) or [])
    _state.server = serve(metrics_port(), app=app, directory=_state.directory,
                          addr=read('METRICS_ADDR'), queues=queues)


def _on_worker_shutdown(**_: Any) -> None:
    if _state.server is not None:
        server, _thread = _state.server
        server.shutdown()
        _state.server = None
    if _state.owns_directory and _state.directory:
        shutil.rmtree(_state.directory, ignore_errors=True)


def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if _state.directory:
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid or os.getpid(), _state.directory)


def _on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if _state.metrics is None:
        return
    with _state.lock:
        _state.started[task_id] = time.monotonic()
    _state.metrics.active.labels(_task_name(sender, task)).inc()


def _on_postrun(sender: Any = None, task_id: str | None = None, task: Any = None,
                retval: Any = None, state: str | None = None, **_: Any) -> None:
    metrics = _state.metrics
    if metrics is None:
        return
    name = _task_name(sender, task)
    with _state.lock:
        started = _state.started.pop(task_id, None)
    metrics.active.labels(name).dec()
    if started is not None:
        metrics.runtime.labels(name).observe(time.monotonic() - started)
    if state == 'RETRY':
        metrics.tasks.labels(name, 'retried').inc()
    elif state == 'SUCCESS':
        error_class = error_class_of(retval)
        if error_class is None:
            metrics.tasks.labels(name, 'succeeded').inc()
        else:
            metrics.tasks.labels(name, 'failed').inc()
            metrics.failures.labels(name, error_class).inc()
    else:
        metrics.tasks.labels(name, 'failed').inc()


def _on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    if _state.metrics is not None and exception is not None:
        # A RemoteError carries the original class name of a wrapped error
        # (never read an error_type attribute of others: redis 8's name a category).
        error_class = (exception.error_type if isinstance(exception, RemoteError)
                       else type(exception).__name__)
        _state.metrics.failures.labels(_task_name(sender), error_class).inc()


def _on_unknown(name: str | None = None, **_: Any) -> None:
    if _state.metrics is not None:
        _state.metrics.failures.labels(name or 'unknown', 'NotRegistered').inc()


def count_refused(task_name: str, error_class: str) -> None:
    """A message the worker refused to decode, as a failure of its task."""
    if _state.metrics is not None:
        _state.metrics.failures.labels(task_name, error_class).inc()
        _state.metrics.tasks.labels(task_name, 'failed').inc()


def _on_extractor_loaded(sender: Any = None, extractor: str | None = None,
                         seconds: float | None = None, **_: Any) -> None:
    if _state.metrics is not None and seconds is not None:
        _state.metrics.extractor_load.labels(extractor or str(sender)).observe(seconds)


def install() -> None:
    """Connects the handlers to Celery's signals (once; safe to call again)."""
    global _installed
    if _installed:
        return
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_ready.connect(_on_worker_ready, weak=False)
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False)
    signals.worker_process_shutdown.connect(_on_process_shutdown, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)
    signals.task_postrun.connect(_on_postrun, weak=False)
    signals.task_failure.connect(_on_failure, weak=False)
    signals.task_unknown.connect(_on_unknown, weak=False)
    extractor_loaded.connect(_on_extractor_loaded, weak=False)
    _installed = True


def build_registry(app: Any = None, directory: str | None = None,
                   queues: list[str] | None = None) -> Any:
    """A registry with the worker's task metrics, the queues it consumes,
    the fleet's figures (from one worker) and GPU figures."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if directory:
        MultiProcessCollector(registry, path=directory)
    if app is not None:
        registry.register(FleetCollector(app))
    if queues:
        registry.register(ConsumedQueuesCollector(queues))
    gpu = GpuCollector()
    if gpu.available:
        registry.register(gpu)
    return registry


def serve(port: int, app: Any = None, directory: str | None = None,
          addr: str = '127.0.0.1', queues: list[str] | None = None
          ) -> tuple[Any, threading.Thread]:
    """Serves /metrics on ``port`` in a daemon thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    registry = build_registry(app, directory, queues)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    logger.info("Metrics endpoint on http://%s:%d/metrics", addr, port)
    return server, thread
