"""``spacer config``: every setting and where the configuration came from."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from spacer import config
    from workers.settings import WORKER_SETTINGS, load, read

    settings = load()  # validates the combination (e.g. visibility timeout)
    worker_types = {name: (value_type, default) for name, value_type, default in WORKER_SETTINGS}
    print(config.get_config_detection_result())
    for setting in config.SETTINGS:
        if setting.name == 'VISIBILITY_TIMEOUT':
            value = settings.visibility_timeout  # the effective one, when unset
        elif setting.name in worker_types:
            value = read(setting.name, *worker_types[setting.name])
        else:
            value = config.get(setting.name)
        print(f"{setting.name}: {config.display_value(setting, value)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'config', help='print the settings in effect',
        description="Print every setting (secrets shortened) and where the "
                    "configuration was found (environment, secrets.json, Django).")
    parser.set_defaults(func=run)
