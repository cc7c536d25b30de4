"""``spacer config``: every setting and where the configuration came from."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer import config
    from workers.settings import WORKER_SETTING_TABLE, load, read

    settings = load()  # validates the combination (e.g. visibility timeout)
    print(config.get_config_detection_result())
    for setting in config.SETTINGS:
        print(f"{setting.name}: {config.display_value(setting, config.get(setting.name))}")
    for setting in WORKER_SETTING_TABLE:
        if setting.name == 'VISIBILITY_TIMEOUT':
            value = settings.visibility_timeout  # the effective one, when unset
        else:
            value = read(setting.name)
        print(f"{setting.name}: {config.display_value(setting, value)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'config', help='print the settings in effect',
        description="Print every setting (secrets shortened) and where the "
                    "configuration was found (environment, secrets.json, Django).")
    parser.set_defaults(func=run)
