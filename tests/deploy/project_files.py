"""What the deployment files may refer to: the project's settings, commands and files."""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / 'compose'
COMPOSE_FILE = COMPOSE_DIR / 'docker-compose.yml'
ENV_EXAMPLE = COMPOSE_DIR / '.env.example'
K8S_DIR = ROOT / 'deploy' / 'k8s'
DOCKERFILES = (ROOT / 'Dockerfile.cpu', ROOT / 'Dockerfile.gpu')
BIN_DIR = Path(sys.executable).parent

# Settings read outside spacer.config's table: the metrics port (workers.metrics).
EXTRA_SETTINGS = {'METRICS_PORT'}


def known_settings() -> set[str]:
    """Every NAME that ``SPACER_NAME`` may set."""
    from spacer import config
    from workers import settings as worker_settings
    names = set(config.SETTINGS_BY_NAME)
    names |= {name for name, _type, _default in worker_settings.WORKER_SETTINGS}
    return names | EXTRA_SETTINGS


def load_yaml_documents(path: Path) -> list[dict]:
    with open(path) as fp:
        return [doc for doc in yaml.safe_load_all(fp) if doc]


def load_compose() -> dict:
    with open(COMPOSE_FILE) as fp:
        return yaml.safe_load(fp)


def compose_variables(text: str) -> set[str]:
    """Names interpolated as ${NAME}, ${NAME:-x}, ${NAME:?x} ($$ is an escape)."""
    text = text.replace('$$', '')
    return set(re.findall(r'\$\{([A-Za-z_][A-Za-z0-9_]*)', text))


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith('#'):
            name, _, value = line.partition('=')
            values[name.strip()] = value.strip()
    return values


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def parse_spacer_command(argv: list[str]):
    """Parses a `spacer ...` command line with the project's own CLI parser."""
    from spacer_cli import spacer_command as cli
    assert argv[0] == 'spacer', f"not a spacer command: {argv}"
    parser = cli.build_parser()
    return parser.parse_args(argv[1:])


def queues_of(argv: list[str]) -> list[str]:
    args = parse_spacer_command(argv)
    queues = args.queues
    if isinstance(queues, str):
        queues = queues.split(',')
    return [q.strip() for q in queues]
