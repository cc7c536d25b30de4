"""``spacer submit MESSAGE.json``: queue a message, print its task id."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_message(path: str) -> dict:
    """
    The message (a JSON object) in file ``path`` ('-': stdin); SystemExit
    with one line naming the file and what is wrong with it otherwise.
    """
    where = 'stdin' if path == '-' else path
    data = _read(path, where)
    try:
        # utf-8-sig: a byte order mark some editors write is not an error.
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise SystemExit(f"spacer submit: {where} is not UTF-8 text "
                         f"(byte {e.start}: {e.reason}).")
    try:
        message = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"spacer submit: {where} is not JSON: {e}")
    except RecursionError:
        raise SystemExit(f"spacer submit: {where} is JSON nested too deeply to be a message.")
    if not isinstance(message, dict):
        raise SystemExit(f"spacer submit: {where} must hold a JSON object (a message), "
                         f"not a JSON {_json_type(message)}.")
    return message


def _read(path: str, where: str) -> bytes:
    if path == '-':
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SystemExit(f"spacer submit: cannot read {where}: {e.strerror or e}.")


def _json_type(value: object) -> str:
    names = {list: 'array', str: 'string', bool: 'boolean', int: 'number',
             float: 'number', type(None): 'null'}
    return names.get(type(value), type(value).__name__)


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer.exceptions import MessageError
    from workers.client import Client
    from workers.failure_kinds import Failure, classify

    message = load_message(args.message)
    client = Client()
    try:
        task_id = client.submit(args.task, message, dedup_job=not args.no_dedup)
    except (MessageError, ValueError, TypeError) as e:
        # A message (or --task) the producer refuses: its text names the cause.
        where = 'stdin' if args.message == '-' else args.message
        print(f"spacer submit: {where}: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if classify(e) != Failure.TRANSIENT:
            raise
        print(f"spacer submit: cannot reach the broker: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1
    wait = args.wait or client.settings.embedded
    if not wait:
        print(task_id)
        return 0
    if not args.wait:
        # The embedded worker lives in this process: a task left queued when
        # it exits would never run.
        print("spacer submit: no broker configured (SPACER_BROKER_URL): running the "
              "task here, as --wait does.", file=sys.stderr)
    from spacer_cli.result_command import show
    code = show(client, task_id, wait=True, timeout=args.timeout)
    if code == 3 and client.settings.embedded:
        print("spacer submit: without a broker the task stops when this process "
              "exits; submit it again with a longer --timeout, or none.", file=sys.stderr)
    return code


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'submit', help='queue a message (JSON file) and print the task id',
        description="Queue a message for a task and print its id. The task is "
                    "taken from --task or from the message's shape (a JobMsg "
                    "goes to process_job). Without a broker (SPACER_BROKER_URL "
                    "unset) there is no queue to leave the task in: it runs in "
                    "this process and its result is printed, as with --wait.")
    parser.add_argument('message', help="message JSON file ('-' for stdin)")
    parser.add_argument('--task', help='extract_features, classify_image, train_classifier, '
                                       'classify_features or process_job')
    parser.add_argument('--wait', action='store_true',
                        help='wait and print the result (always so without a broker)')
    parser.add_argument('--timeout', type=float, default=None, help='seconds to wait')
    parser.add_argument('--no-dedup', action='store_true',
                        help='queue even if the same job token is pending or running')
    parser.set_defaults(func=run, needs_broker=True)
