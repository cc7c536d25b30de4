"""``spacer submit MESSAGE.json``: queue a message, print its task id."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_message(path: str) -> dict:
    text = sys.stdin.read() if path == '-' else Path(path).read_text()
    try:
        message = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"spacer submit: {path} is not JSON: {e}")
    if not isinstance(message, dict):
        raise SystemExit(f"spacer submit: {path} must hold a JSON object (a message).")
    return message


def run(args: argparse.Namespace) -> int:
    from spacer.exceptions import MessageError
    from workers.client import Client

    message = load_message(args.message)
    client = Client()
    try:
        task_id = client.submit(args.task, message, dedup_job=not args.no_dedup)
    except (MessageError, ValueError) as e:
        print(f"spacer submit: {e}", file=sys.stderr)
        return 2
    if not args.wait:
        print(task_id)
        return 0
    from workers.commands.result import show
    return show(client, task_id, wait=True, timeout=args.timeout)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'submit', help='queue a message (JSON file) and print the task id',
        description="Queue a message for a task and print its id. The task is "
                    "taken from --task or from the message's shape (a JobMsg "
                    "goes to process_job).")
    parser.add_argument('message', help="message JSON file ('-' for stdin)")
    parser.add_argument('--task', help='extract_features, classify_image, train_classifier, '
                                       'classify_features or process_job')
    parser.add_argument('--wait', action='store_true', help='wait and print the result')
    parser.add_argument('--timeout', type=float, default=None, help='seconds to wait')
    parser.add_argument('--no-dedup', action='store_true',
                        help='queue even if the same job token is pending or running')
    parser.set_defaults(func=run)
