"""``spacer dead-letters``: list, resend or clear failed tasks' messages."""
from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers.app import app
    from workers.client import Client
    from workers.job_state_store import MemoryKeyStore, store_for
    from workers import dead_letters

    store = store_for(app)
    if isinstance(store, MemoryKeyStore):
        # Dead letters kept in another process's memory cannot be reached.
        print("spacer dead-letters: no broker configured; dead letters are kept in"
              " Redis: set SPACER_BROKER_URL (e.g. redis://localhost:6379/0).",
              file=sys.stderr)
        return 1
    if args.action == 'list':
        entries = dead_letters.entries(store, 0, args.limit - 1)
        for entry in entries:
            if not args.full:
                entry.pop('message', None)
                entry.pop('traceback', None)
            print(json.dumps(entry))
        return 0
    if args.action == 'clear':
        dead_letters.clear(store)
        return 0
    # resend
    entry = dead_letters.take(store, args.task_id)
    if entry is None:
        print(f"spacer dead-letters: no dead letter for task {args.task_id}.")
        return 1
    print(Client(app).submit(entry['task_name'], entry['message']))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'dead-letters', help="failed tasks' messages kept for inspection",
        description="Messages of tasks that failed for a reason other than bad "
                    "input (retries spent, a bug, a time limit), newest first.")
    actions = parser.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    listing = actions.add_parser('list', help='print entries as JSON lines')
    listing.add_argument('--limit', type=int, default=20, help='default: %(default)s')
    listing.add_argument('--full', action='store_true', help='include message and traceback')
    resend = actions.add_parser('resend', help='queue a dead letter again (removes it)')
    resend.add_argument('task_id')
    actions.add_parser('clear', help='drop every dead letter')
    parser.set_defaults(func=run, needs_broker=True)
