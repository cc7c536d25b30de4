"""``spacer status``: queue depths, live workers, dead letters."""
from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers import control
    from workers.app import app
    from workers.job_state_store import store_for
    from workers import dead_letters
    from workers.queues import queue_depths

    settings = app.spacer_settings
    if settings.embedded:
        print("No broker configured (SPACER_BROKER_URL unset): tasks run in an "
              "embedded worker inside each spacer process.")
        return 0
    try:
        depths = queue_depths(app)
        workers = app.control.ping(timeout=args.timeout) or []
        info = control.ask(app, timeout=args.timeout)
        dead = dead_letters.count(store_for(app))
    except Exception as e:  # noqa: BLE001 - whatever the transport raises
        from workers.errors import BrokerUnavailableError
        print(f"spacer status: {BrokerUnavailableError(app.conf.broker_write_url, e, None)}",
              file=sys.stderr)
        return 1
    names = sorted(name for reply in workers for name in reply)
    consumed_by = {queue: sorted(n for n in names if queue in info.get(n, {}).get('queues', []))
                   for queue in depths}
    if args.json:
        print(json.dumps({'queues': depths, 'consumers': consumed_by,
                          'workers': {n: info.get(n, {}) for n in names},
                          'dead_letters': dead}, indent=2))
        return 0
    print("Queues (messages waiting, live workers consuming):")
    for queue, depth in depths.items():
        consumers = len(consumed_by[queue])
        alarm = '   <- no live worker consumes this queue' if not consumers else ''
        print(f"  {queue:<12} {depth:>7} {consumers:>3}{alarm}")
    print(f"Workers ({len(names)} answering):")
    for name in names:
        process = info.get(name, {}).get('process', {})
        extra = (f"  device {process['device']}, {process['threads']} thread(s)"
                 if process else '')
        print(f"  {name}{extra}")
    print(f"Dead letters: {dead}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'status', help='queue depths, live workers, dead letters',
        description="Show how many messages wait in each queue, which workers "
                    "answer a ping (and the device each extracts on), and how many "
                    "dead letters are kept.")
    parser.add_argument('--timeout', type=float, default=1.0,
                        help='seconds to wait for workers to answer (default: %(default)s)')
    parser.add_argument('--json', action='store_true', help='print JSON')
    parser.set_defaults(func=run, needs_broker=True)
