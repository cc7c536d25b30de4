"""``spacer result ID``: a task's state, return message or error."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def show(client: Any, task_id: str, wait: bool = False, timeout: float | None = None) -> int:
    """Print the task's outcome as JSON; exit status 0 done, 1 failed, 3 not finished."""
    try:
        outcome = client.wait_result(task_id, timeout) if wait else client.result(task_id)
    except TimeoutError as e:
        print(f"spacer result: {e}", file=sys.stderr)
        return 3
    report = {'id': outcome.id, 'state': outcome.state}
    if outcome.ok:
        report['result'] = outcome.value
    elif outcome.progress is not None:
        report['progress'] = outcome.progress
    elif outcome.error_type:
        report['error'] = {'type': outcome.error_type, 'message': outcome.error_message}
    print(json.dumps(report, indent=2))
    if outcome.ok:
        return 0
    return 1 if outcome.ready else 3


def run(args: argparse.Namespace) -> int:
    from workers.client import Client
    return show(Client(), args.id, wait=args.wait, timeout=args.timeout)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'result', help="a task's state and result",
        description="Print a task's state and, once finished, its return message or "
                    "error (class and message) as JSON. Exit status: 0 succeeded, "
                    "1 failed, 3 not finished.")
    parser.add_argument('id', help='task id printed by spacer submit')
    parser.add_argument('--wait', action='store_true', help='wait until it finishes')
    parser.add_argument('--timeout', type=float, default=None, help='seconds to wait')
    parser.set_defaults(func=run)
