"""The README's first command (`make demo`): the main job end to end.

Generates a small synthetic reef survey under ./spacer-demo, extracts
features with the built-in default extractor through the embedded queue
worker, trains and evaluates a classifier, classifies the unannotated
photos and writes the report. The same as `spacer demo`; any of its options
may be passed, e.g. `python -m examples.quickstart --epochs 5 -q`.
"""
from __future__ import annotations

import argparse
import sys

from spacer_cli.demo_command import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m examples.quickstart')
    commands = parser.add_subparsers(dest='command')
    register(commands)
    args = parser.parse_args(['demo', *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
