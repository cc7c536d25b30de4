"""
``spacer worker --queues ...``: start a worker with the pool its kind needs.

Every worker runs a prefork pool, because only prefork enforces the hard
time limit: a task past it has its process killed and replaced, and the
worker serves on (a solo pool would hang with a stuck download or GPU call).

- extract (GPU hosts): each pool process loads the network once and keeps
  it warm; CUDA is initialized only in those processes. One worker per GPU
  (``--device cuda:N``) with ``GPU_EXTRACT_PROCESSES`` processes, so that
  several images are in flight (one decodes or stores while another's
  patches run on the GPU); on the CPU one process uses every core.
- train / classify (CPU hosts): one process per core.

Any other option of ``celery worker`` (``-E``, ``--autoscale=8,2``,
``--max-memory-per-child``, ``--prefetch-multiplier``...) is passed through
to Celery, except a pool other than prefork, refused for the reason above.
"""
from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from workers.settings import QUEUE_KINDS

# Pool processes of an extract worker on one GPU: enough that decoding,
# storage and the network overlap (see docs/operations.md).
GPU_EXTRACT_PROCESSES = 4


def pool_for(kinds: set[str], cpus: int, concurrency: int = 0,
             gpu: bool = False) -> tuple[str, int]:
    """(pool, concurrency) for a worker consuming ``kinds`` of queue."""
    if 'extract' in kinds:
        return 'prefork', concurrency or (GPU_EXTRACT_PROCESSES if gpu else 1)
    return 'prefork', concurrency or cpus


def celery_options(options: list[str]) -> list[str]:
    """Celery worker options given to ``spacer worker``, checked: a pool other
    than prefork is refused with one line saying why. They are read by the
    worker command's own parser, so every spelling Celery accepts (``-Psolo``,
    ``-EP solo``, ``--pool=solo``) is seen; options Celery rejects are left to
    its own message."""
    import click
    from celery.bin.worker import worker

    context = click.Context(worker, info_name='worker', resilient_parsing=True)
    try:
        parsed, _, _ = worker.make_parser(context).parse_args(list(options))
    except click.UsageError:
        return options
    pool = parsed.get('pool')
    if pool is not None and pool != 'prefork':
        raise SystemExit(
            f"spacer worker: --pool {pool or '(none)'} is refused: only the prefork"
            f" pool enforces hard time limits, so spacer workers always use it"
            f" (see docs/operations.md).")
    return options


def _kinds(queues: list[str], settings: Any) -> set[str]:
    kinds = set()
    for queue in queues:
        kind = settings.kind_of_queue(queue)
        if kind is None and queue in QUEUE_KINDS:
            kind = queue
        if kind is None:
            raise SystemExit(f"spacer worker: unknown queue {queue!r}; the queues are "
                             f"{', '.join(settings.queues.values())}.")
        kinds.add(kind)
    return kinds


def run(args: argparse.Namespace) -> int:
    if args.device:
        os.environ['SPACER_DEVICE'] = args.device
        from spacer import config
        config.DEVICE = args.device
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers.app import app
    from workers.process_setup import usable_cpus

    settings = app.spacer_settings
    if settings.embedded:
        raise SystemExit("spacer worker: no broker configured; set SPACER_BROKER_URL "
                         "(e.g. redis://localhost:6379/0).")
    # Checked again on worker_init (workers.startup_guard), which also guards
    # `celery -A workers.app worker`; here it fails before Celery's banner.
    from workers import startup_guard
    if getattr(args, 'unconfined', False):
        startup_guard.allow_unconfined()
    startup_guard.require_confinement(getattr(args, 'unconfined', False))
    requested = [q.strip() for q in args.queues.split(',') if q.strip()]
    kinds = _kinds(requested, settings)
    queue_names = [settings.queues[k] for k in QUEUE_KINDS if k in kinds]
    from spacer import config
    gpu = str(config.get('DEVICE') or '').strip().lower().startswith('cuda')
    pool, concurrency = pool_for(kinds, usable_cpus(), args.concurrency or settings.concurrency,
                                 gpu=gpu)
    name = args.hostname or f"{'-'.join(sorted(kinds))}-{os.getpid()}@{socket.gethostname()}"
    argv = ['worker', '--queues', ','.join(queue_names), '--pool', pool,
            '--concurrency', str(concurrency), '--hostname', name,
            '--loglevel', args.loglevel, '--without-gossip', '--without-mingle']
    if args.logfile:
        argv += ['--logfile', args.logfile]
    app.worker_main(argv + celery_options(getattr(args, 'celery_options', [])))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'worker', help='start a worker for some queues',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--queues', '-Q', default='extract,train,classify',
                        help='comma-separated queue kinds or names (default: %(default)s)')
    parser.add_argument('--concurrency', '-c', type=int, default=0,
                        help='pool processes (default: one per core for train/classify; for extract, '
                             f'{GPU_EXTRACT_PROCESSES} on a CUDA device, else 1)')
    parser.add_argument('--device', help="torch device for extraction: cpu, cuda, cuda:N "
                                         "(default: setting DEVICE)")
    parser.add_argument('--hostname', '-n', help='worker node name')
    parser.add_argument('--loglevel', '-l', default='INFO', help='default: %(default)s')
    parser.add_argument('--logfile', '-f', help='log to this file instead of stderr')
    parser.add_argument('--unconfined', action='store_true',
                        help='start without FILESYSTEM_ROOTS: messages may then read and '
                             'write any path this user can (default: refused)')
    parser.set_defaults(func=run, takes_celery_options=True)
