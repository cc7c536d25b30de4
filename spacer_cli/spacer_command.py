"""
The ``spacer`` command.

Each subcommand lives in its own module of ``spacer_cli`` exposing
``register(subparsers)`` (and sets ``func`` on its parser); this file only
assembles them and turns configuration and broker faults into one line.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

SUBCOMMAND_MODULES = (
    'spacer_cli.worker_command',
    'spacer_cli.submit_command',
    'spacer_cli.result_command',
    'spacer_cli.status_command',
    'spacer_cli.dead_letters_command',
    'spacer_cli.purge_command',
    'spacer_cli.config_command',
    'spacer_cli.run_command',
    'spacer_cli.classify_command',
    'spacer_cli.demo_command',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='spacer',
        description="CoralNet's vision backend: feature extraction, training and "
                    "classification through a Celery task queue.")
    parser.add_argument('-v', '--verbose', action='store_true', help='log at DEBUG level')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue  # a part not installed in this build
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A bad setting (ConfigError) is found when spacer.config is imported,
    # which building the parser does, or when a command reads it: either
    # way one line naming it, not a traceback, even for --help.
    from spacer.exceptions import ConfigError
    try:
        parser = build_parser()
    except ConfigError as e:
        return _config_error(e)
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, 'takes_celery_options', False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.celery_options = extra
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s')
    func = getattr(args, 'func', None)
    if func is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, 'needs_broker', False):
            _check_broker()
        code = func(args)
    except ConfigError as e:
        return _config_error(e)
    except Exception as e:
        # The broker or the result backend went away: one line, whichever
        # command was talking to it (Celery's own retries log tracebacks).
        from workers.client import BROKER_FAULTS
        from workers.errors import BrokerUnavailableError
        if not isinstance(e, BROKER_FAULTS):
            raise
        if not isinstance(e, BrokerUnavailableError):
            from workers.app import app
            e = BrokerUnavailableError(app.conf.broker_write_url, e, consequence=None)
        print(f"spacer {args.command}: {e}", file=sys.stderr)
        return 1
    return int(code or 0)


def _check_broker() -> None:
    """Commands that talk to the broker first make sure it answers, so a
    broker that is down costs one line within BROKER_CONNECT_TIMEOUT."""
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from workers.app import app
    from workers.reachability import ensure_reachable
    if not app.spacer_settings.embedded:
        ensure_reachable(app)


def _config_error(error: Exception) -> int:
    print(f"spacer: error: {error}", file=sys.stderr)
    return 2


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
