"""``spacer status``: queue depths, live workers, dead letters."""
from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    from workers import control
    from workers.app import app
    from workers.keystore import store_for
    from workers.policies import dead_letters
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
    except Exception as e:
        print(f"spacer status: cannot reach the broker at {app.conf.broker_url}: "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    names = sorted(name for reply in workers for name in reply)
    if args.json:
        print(json.dumps({'queues': depths, 'workers': {n: info.get(n, {}) for n in names},
                          'dead_letters': dead}, indent=2))
        return 0
    print("Queues (messages waiting):")
    for queue, depth in depths.items():
        print(f"  {queue:<12} {depth}")
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
    parser.set_defaults(func=run)
