"""``spacer config``: every setting and where the configuration came from."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from spacer import config
    from workers.settings import WORKER_SETTINGS, load, read

    config.check()
    settings = load()  # validates the combination (e.g. visibility timeout)
    for name, value_type, default in WORKER_SETTINGS:
        if name in getattr(config, 'SETTINGS_BY_NAME', {}):
            continue
        value = settings.visibility_timeout if name == 'VISIBILITY_TIMEOUT' \
            else read(name, value_type, default)
        print(f"{name}: {value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'config', help='print the settings in effect',
        description="Print every setting (secrets shortened) and where the "
                    "configuration was found (environment, secrets.json, Django).")
    parser.set_defaults(func=run)
