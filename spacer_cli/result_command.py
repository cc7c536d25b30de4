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
    from celery import states

    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers.client import Client
    client = Client()
    if not results_readable(client.app) and client.result(args.id).state == states.PENDING:
        print("spacer result: no broker configured; set SPACER_BROKER_URL "
              "(e.g. redis://localhost:6379/0). Without one a task runs inside the "
              "spacer process that submitted it (spacer submit --wait prints its "
              "result) and its result is gone once that process exits.",
              file=sys.stderr)
        return 1
    return show(client, args.id, wait=args.wait, timeout=args.timeout)


def results_readable(app: Any) -> bool:
    """Whether another process's results can be read here: not when there is
    no broker and results stay in the memory of the process that ran them.
    Then an id this process did not run reads as PENDING for ever (and --wait
    would never end); one it ran (spacer used as a library) can be shown."""
    backend = str(app.backend_cls or app.conf.result_backend or '')
    return not (app.spacer_settings.embedded and backend.startswith('cache+memory'))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'result', help="a task's state and result",
        description="Print a task's state and, once finished, its return message or "
                    "error (class and message) as JSON. Exit status: 0 succeeded, "
                    "1 failed (or no broker configured: results are then not kept "
                    "beyond the process that ran the task), 3 not finished.")
    parser.add_argument('id', help='task id printed by spacer submit')
    parser.add_argument('--wait', action='store_true', help='wait until it finishes')
    parser.add_argument('--timeout', type=float, default=None, help='seconds to wait')
    parser.set_defaults(func=run, needs_broker=True)
