"""deploy/fleet-test/ (`make fleet-test`): static checks. The run itself
needs root and a Docker engine it starts; .ci/run runs it where it can."""
from __future__ import annotations

import re
import subprocess

import jsonschema
import yaml

from tests.deploy.project_files import ROOT, load_compose
from tests.deploy.test_compose import compose_schema

FLEET = ROOT / 'deploy' / 'fleet-test'
RUN = FLEET / 'run.sh'


def test_scripts_are_valid_shell():
    for script in (RUN, ROOT / 'deploy' / 'wheelhouse.sh'):
        subprocess.run(['bash', '-n', str(script)], check=True)


def test_make_fleet_test_runs_the_script():
    text = (ROOT / 'Makefile').read_text()
    assert re.search(r'^fleet-test:.*\n\tdeploy/fleet-test/run\.sh$', text, re.M)
    assert re.search(r'^\.PHONY:.*\bfleet-test\b', text, re.M)


def test_the_override_is_valid_compose_and_only_overrides_services_of_the_stack():
    override = yaml.safe_load((FLEET / 'compose.yml').read_text())
    jsonschema.validate(override, compose_schema())
    production = load_compose()['services']
    extra = set(override['services']) - set(production)
    assert extra == {'producer'}, extra
    assert override['services']['producer']['profiles'] == ['images']
    # Production keeps MinIO and the GPU reservation; Flower is spacer's own
    # image in both, built from the local base here.
    assert 'minio' in production['minio']['image']
    assert production['flower']['build']['target'] == 'flower'
    assert 'image' not in override['services']['flower']
    assert 'devices' in production['worker-gpu']['deploy']['resources']['reservations']
    assert 'build' not in production['redis']
    for name in ('worker-cpu', 'worker-gpu'):
        assert override['services'][name]['build']['args']['TORCH_SOURCE'] == 'wheelhouse'


def test_the_engine_is_private_and_stopped_by_pid():
    text = RUN.read_text()
    for flag in ('--data-root', '--exec-root', '--pidfile', '--iptables=false',
                 '--ip6tables=false', '--bridge=none'):
        assert flag in text, flag
    assert 'export DOCKER_HOST=unix://$WORK/docker.sock' in text
    assert 'DOCKER_CONFIG=$WORK/docker-config' in text
    assert 'kill -TERM "$DOCKERD_PID"' in text
    assert 'pkill' not in text and 'killall' not in text
    # The engine starts after the client is pointed at it, never at another.
    assert text.index('export DOCKER_HOST=') < text.index('dockerd --data-root')
    for path in ('/etc/docker', '/run/docker', '/run/runc', '/run/containerd'):
        assert path in text


def test_the_main_job_commands_parse_with_the_spacer_run_of_this_tree():
    """The two `spacer run` lines of the main job's step (embedded, then on
    the fleet with --storage) are accepted by this tree's parser."""
    from spacer_cli.spacer_command import build_parser
    text = RUN.read_text().replace('\\\n', ' ')
    runs = re.findall(r'spacer run ("\$S/images".*?)(?: >|$)', text, re.M)
    assert len(runs) == 2 and '--storage' in runs[1], runs
    for line in runs:
        argv = line.replace('"', '').replace('$S3_BUCKET', 'spacer').replace('$', '').split()
        args = build_parser().parse_args(['run', *argv])
        assert args.points and args.output
    assert args.storage.startswith('s3://spacer/')


def test_ci_runs_the_fleet_where_it_can():
    text = (ROOT / '.ci' / 'run').read_text()
    assert 'if deploy/fleet-test/run.sh --can-run; then' in text
    assert text.index('make test') < text.index('make fleet-test')


def test_scripts_use_console_scripts_not_module_paths():
    for path in FLEET.iterdir():
        if path.is_file():
            text = path.read_text()
            assert 'workers.cli' not in text and 'workers.mainjob' not in text, path
            assert not re.search(r'python3? -m (workers|spacer)', text), path
