"""``spacer purge``: empty queues without stranding their jobs (``workers.purge``)."""
from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers.app import app
    from workers.purge import purge_queue

    settings = app.spacer_settings
    if settings.embedded:
        print("spacer purge: no broker configured; queues live only inside each spacer"
              " process. Set SPACER_BROKER_URL (e.g. redis://localhost:6379/0).",
              file=sys.stderr)
        return 1
    queues = []
    for name in args.queues:
        queue = settings.queues.get(name, name)
        if queue not in settings.queues.values():
            known = ', '.join(sorted(set(settings.queues) | set(settings.queues.values())))
            print(f"spacer purge: no queue {name!r}; known: {known}.", file=sys.stderr)
            return 2
        queues.append(queue)
    for queue in queues:
        purged = purge_queue(app, queue)
        print(f"{queue}: {purged.messages} message(s) removed, {purged.tasks_revoked} task(s)"
              f" marked REVOKED, {purged.job_keys_released} job key(s) released")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'purge', help='empty queues; their jobs can be submitted again',
        description="Remove every message waiting in the given queues (a kind: "
                    "extract, train, classify, or a queue's name). Each removed task "
                    "is stored as REVOKED and its job key released, so submitting the "
                    "same job again queues it anew (celery purge leaves the keys).")
    parser.add_argument('queues', nargs='+', metavar='QUEUE')
    parser.set_defaults(func=run, needs_broker=True)
