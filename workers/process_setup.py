"""
Getting a worker's task-running process ready: device, threads, warm caches.

- CUDA is touched only in the process that runs tasks: the
  ``worker_process_init`` signal fires in each prefork child and, for the
  solo pool, in the worker itself (which then never forks). The parent of a
  prefork pool imports neither torch nor CUDA.
- A worker that consumes the extract queue is a GPU-kind worker; when it
  finds no CUDA it runs on the CPU and says so in a warning, rather than
  failing every task.
- Thread counts: the cores are shared among the pool's processes (torch
  intra-op threads, BLAS threads of numpy/scikit-learn), one inter-op
  thread each; oversubscribed threads would make every process slower.
- Warm caches (networks by weights hash in ``spacer.extractors.warm``,
  classifiers in ``spacer.storage``'s content-keyed cache) live as long as
  the process; ``worker_max_tasks_per_child`` is left unset so processes
  are not recycled, and extract workers load torch at start, not in their
  first task.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from spacer import config
from spacer.extractors import warm as library_warm
from workers import metrics, redis_transport

logger = logging.getLogger(__name__)

# Filled by worker_init in the worker's main process; forked children
# inherit it.
_worker: dict[str, Any] = {'pool_size': 1, 'gpu_kind': False}
_process: dict[str, Any] = {}


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_process(pool_size: int, cpus: int | None = None) -> int:
    """The cores each of ``pool_size`` processes may use."""
    cpus = cpus or usable_cpus()
    return max(1, cpus // max(1, pool_size))


def wants_cuda(device: str) -> bool:
    return str(device).strip().lower().startswith('cuda')


def choose_device(requested: str, gpu_kind: bool, cuda_available: bool) -> tuple[str, str | None]:
    """(device to configure, warning or None) for a task process."""
    requested = (requested or 'auto').strip().lower()
    if wants_cuda(requested) and not cuda_available:
        return 'cpu', (f"DEVICE is {requested!r} but CUDA is not available here; "
                       f"this worker extracts on the CPU.")
    if requested == 'auto' and gpu_kind and not cuda_available:
        return 'cpu', ("This extract (GPU-kind) worker found no CUDA device; "
                       "it extracts on the CPU.")
    return requested, None


def set_device(device: str) -> None:
    """Make the library (and processes started from here) use ``device``."""
    os.environ['SPACER_DEVICE'] = device
    config.DEVICE = device


def limit_threads(threads: int) -> None:
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - scikit-learn brings it
        pass


def prepare_torch(threads: int, device: str, gpu_kind: bool) -> str:
    """Import torch here, pin its threads, settle the device; returns the device."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran
        pass
    chosen, warning = choose_device(device, gpu_kind, torch.cuda.is_available())
    if warning:
        logger.warning(warning)
    set_device(chosen)
    if chosen.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
        torch.cuda.init()
    return chosen


def prepare_process(pool_size: int, gpu_kind: bool) -> dict:
    """Ready the current (task-running) process; returns what was chosen."""
    threads = threads_per_process(pool_size)
    limit_threads(threads)
    device = config.get('DEVICE') or 'auto'
    if gpu_kind or wants_cuda(device) or 'torch' in sys.modules:
        device = prepare_torch(threads, device, gpu_kind)
    _process.update(pid=os.getpid(), threads=threads, device=device, gpu_kind=gpu_kind)
    logger.info("Task process %d ready: device %s, %d thread(s).", os.getpid(), device, threads)
    return dict(_process)


def process_info() -> dict:
    """What ``prepare_process`` chose in this process or, in a prefork
    pool's main process, in its most recently started pool process (each
    records its choice in the worker's state folder); empty before."""
    if _process:
        return dict(_process)
    folder = _worker.get('state_dir')
    if not folder:
        return {}
    records = sorted(Path(folder).glob('*.json'), key=lambda p: p.stat().st_mtime)
    for record in reversed(records):
        try:
            return json.loads(record.read_text())
        except (OSError, ValueError):  # removed or being replaced
            continue
    return {}


def _record_process_choice() -> None:
    """Leave this pool process's choice where its main process reads it."""
    folder = _worker.get('state_dir')
    if not folder:
        return
    path = Path(folder) / f'{os.getpid()}.json'
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(_process))
    os.replace(tmp, path)


def worker_info() -> dict:
    """Pool size and kind, as the worker's main process saw them."""
    return dict(_worker)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    redis_transport.restore_in_this_process()
    queues = set()
    try:
        queues = set(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    except AttributeError:
        pass
    settings = getattr(sender.app, 'spacer_settings', None)
    extract_queue = settings.queues['extract'] if settings else 'extract'
    # The embedded worker runs every queue on whatever the laptop has.
    embedded = str(getattr(sender, 'hostname', '')).startswith('embedded@')
    _worker['gpu_kind'] = extract_queue in queues and not embedded
    pool = getattr(sender, 'pool_cls', '')
    pool_name = pool if isinstance(pool, str) else getattr(pool, '__module__', '')
    solo = pool_name.rsplit('.', 1)[-1] in ('solo', 'threads')
    _worker['pool_size'] = 1 if solo else int(getattr(sender, 'concurrency', 1) or 1)
    if not solo:
        folder = tempfile.mkdtemp(prefix='spacer-worker-')
        _worker['state_dir'] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _on_process_init(**_: Any) -> None:
    try:
        prepare_process(_worker['pool_size'], _worker['gpu_kind'])
        _record_process_choice()
    except Exception:  # a bad device setting must not kill the pool silently
        logger.exception("Could not prepare the task process")
        raise


def _report_extractor_load(label: str, seconds: float) -> None:
    metrics.extractor_loaded.send(sender=None, extractor=label, seconds=seconds)


def install() -> None:
    from celery.signals import worker_init, worker_process_init

    library_warm.add_load_listener(_report_extractor_load)
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid='spacer.warm.worker_init')
    worker_process_init.connect(_on_process_init, weak=False,
                                dispatch_uid='spacer.warm.process_init')
