"""compose/: schema-valid, every variable documented, every command real, scalable."""
from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
from datetime import timedelta

import jsonschema
import pytest

from tests.deploy.project_files import (COMPOSE_DIR, COMPOSE_FILE, ENV_EXAMPLE, ROOT,
                                        as_argv, compose_variables, env_example,
                                        known_settings, load_compose, parse_spacer_command,
                                        queues_of)

WORKERS = ('worker-gpu', 'worker-cpu')


def compose_schema() -> dict:
    """The compose-spec JSON schema, as check-jsonschema ships it."""
    schema = importlib.resources.files('check_jsonschema.builtin_schemas.vendor') \
        .joinpath('compose-spec.json')
    return json.loads(schema.read_text())


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} substitution."""
    def substitute(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, '')
        if op == ':?' and not value:
            raise KeyError(f"{name} is required: {arg}")
        if op == ':-' and not value:
            return arg
        return value
    text = re.sub(r'\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}', substitute, text)
    return text.replace('$$', '$')


def filled_env() -> dict[str, str]:
    """.env.example with its empty passwords filled in, as an operator does."""
    return {name: value or 'a1b2c3d4e5f6' for name, value in env_example().items()}


def seconds(duration: str) -> float:
    """A compose duration ('1h30m', '90s') in seconds."""
    assert re.fullmatch(r'([0-9.]+(h|ms|m|s|us))+', duration), duration
    units = {'h': 3600, 'm': 60, 's': 1, 'ms': 0.001, 'us': 1e-6}
    return sum(float(v) * units[k] for v, k in re.findall(r"([0-9.]+)(h|ms|m|s|us)", duration))


def test_compose_file_matches_the_compose_spec_schema():
    import yaml
    jsonschema.validate(load_compose(), compose_schema())
    resolved = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), filled_env()))
    jsonschema.validate(resolved, compose_schema())


def test_schema_validation_catches_a_broken_file():
    data = load_compose()
    data['services']['worker-cpu']['stop_grace_periods'] = '1m'  # misspelt key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, compose_schema())


def test_every_variable_is_documented_in_env_example_and_every_documented_one_used():
    used = compose_variables(COMPOSE_FILE.read_text())
    documented = set(env_example())
    assert used - documented == set(), "used in docker-compose.yml, missing from .env.example"
    assert documented - used == set(), "documented in .env.example, unused by docker-compose.yml"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith('#'):
            assert any(lines[j].startswith('#') for j in range(max(0, i - 3), i)), (
                f"{line.split('=')[0]} has no comment explaining it")


def test_required_passwords_stop_compose_when_unset():
    env = env_example()
    with pytest.raises(KeyError, match=r'REDIS_\w+_PASSWORD'):
        interpolate(COMPOSE_FILE.read_text(), env)


def test_spacer_variables_are_spacer_settings():
    settings = known_settings()
    names = set(env_example())
    for service in load_compose()['services'].values():
        names |= set(service.get('environment', {}))
    for name in sorted(names):
        if name.startswith('SPACER_'):
            assert name[len('SPACER_'):] in settings, f"{name} is not a spacer setting"


@pytest.mark.parametrize('service,queues', [
    ('worker-gpu', ['extract']), ('worker-cpu', ['train', 'classify'])])
def test_worker_commands_parse_with_the_spacer_cli(service, queues):
    argv = as_argv(load_compose()['services'][service]['command'])
    parse_spacer_command(argv)
    assert queues_of(argv) == queues


def test_stop_grace_outlasts_the_hard_time_limit_of_every_queue_served():
    from workers.settings import load
    settings = load()
    for name in WORKERS:
        service = load_compose()['services'][name]
        kinds = [settings.kind_of_queue(q) for q in queues_of(as_argv(service['command']))]
        longest = max(settings.hard_limit(kind) for kind in kinds)
        assert seconds(service['stop_grace_period']) > longest, name


def test_cpu_workers_scale_and_gpu_worker_reserves_a_gpu():
    services = load_compose()['services']
    for name in WORKERS:
        assert 'container_name' not in services[name], f"{name} could not be scaled"
        assert 'ports' not in services[name], f"{name}: a fixed host port blocks --scale"
    devices = services['worker-gpu']['deploy']['resources']['reservations']['devices']
    assert any(d['driver'] == 'nvidia' and 'gpu' in d['capabilities'] for d in devices)
    for name in WORKERS:
        depends = services[name]['depends_on']
        assert depends['redis']['condition'] == 'service_healthy'
        assert depends['bucket-init']['condition'] == 'service_completed_successfully'


def test_workers_reach_broker_backend_and_store_of_the_stack():
    env = filled_env()
    resolved = interpolate(COMPOSE_FILE.read_text(), env)
    import yaml
    services = yaml.safe_load(resolved)['services']
    for name in WORKERS:
        environment = services[name]['environment']
        password = env['REDIS_WORKER_PASSWORD']
        assert environment['SPACER_BROKER_URL'] == f'redis://worker:{password}@redis:6379/0'
        assert environment['SPACER_RESULT_BACKEND'] == f'redis://worker:{password}@redis:6379/1'
        assert environment['SPACER_S3_ENDPOINT_URL'] == 'http://minio:9000'
    assert services['flower']['environment']['SPACER_BROKER_URL'] == \
        f"redis://flower:{env['REDIS_FLOWER_PASSWORD']}@redis:6379/0"
    bucket_init = services['bucket-init']['environment']
    for key in ('SPACER_AWS_ACCESS_KEY_ID', 'SPACER_AWS_SECRET_ACCESS_KEY'):
        assert bucket_init[key] == services['worker-cpu']['environment'][key]


REDIS_ROLES = ('ADMIN', 'WORKER', 'PRODUCER', 'FLOWER', 'KEDA')


def test_redis_has_a_user_per_role_no_eviction_and_persistence():
    redis = load_compose()['services']['redis']
    command = ' '.join(as_argv(redis['command']))
    assert command.startswith('sh /usr/local/bin/redis-start.sh')
    assert '--maxmemory-policy noeviction' in command
    assert '--appendonly yes' in command
    assert any(v.endswith(':/data') for v in redis['volumes'])
    assert './redis-users.acl:/etc/redis/users.acl:ro' in redis['volumes']
    assert './redis-start.sh:/usr/local/bin/redis-start.sh:ro' in redis['volumes']
    assert redis['environment']['ACL_TEMPLATE'] == '/etc/redis/users.acl'
    for role in REDIS_ROLES:
        assert f'REDIS_{role}_PASSWORD' in redis['environment']


def test_redis_accepts_its_command_line(tmp_path):
    """The same flags, given to a real redis-server, start it with those settings."""
    import shutil
    server = shutil.which('redis-server')
    assert server, 'redis-server is needed (apt-get install redis-server)'
    argv = as_argv(load_compose()['services']['redis']['command'])
    assert argv[:2] == ['sh', '/usr/local/bin/redis-start.sh']
    from tests.conftest import free_port, wait_for_port
    port = free_port()
    env = {'PATH': f"{server.rsplit('/', 1)[0]}:/usr/bin:/bin",
           'ACL_TEMPLATE': str(COMPOSE_DIR / 'redis-users.acl'),
           'ACL_FILE': str(tmp_path / 'users.acl'),
           **{f'REDIS_{role}_PASSWORD': f'pw{role.lower()}123' for role in REDIS_ROLES}}
    proc = subprocess.Popen(['sh', str(COMPOSE_DIR / 'redis-start.sh'), *argv[2:],
                             '--port', str(port), '--bind', '127.0.0.1',
                             '--dir', str(tmp_path)], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        import redis
        client = redis.Redis(port=port, username='admin', password='pwadmin123')
        assert client.config_get('maxmemory-policy') == {'maxmemory-policy': 'noeviction'}
        assert client.config_get('appendonly') == {'appendonly': 'yes'}
        assert sorted(client.acl_users()) == ['admin', 'default', 'flower', 'keda',
                                              'producer', 'worker']
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, username='worker', password='wrong').ping()
    finally:
        proc.terminate()
        proc.wait(10)


def test_flower_config_uses_only_flower_options_and_basic_auth():
    from tornado.options import options

    import flower.options  # noqa: F401  (defines Flower's options)
    env = {'FLOWER_USER': 'admin', 'FLOWER_PASSWORD': 'secret'}
    namespace: dict = {}
    import os
    from unittest.mock import patch
    with patch.dict(os.environ, env):
        exec(compile((COMPOSE_DIR / 'flowerconfig.py').read_text(), 'flowerconfig.py', 'exec'),
             namespace)
    names = {k for k in namespace if not k.startswith('_') and k != 'os'}
    known = {name.replace('-', '_') for name in options._options}
    assert names <= known, f"not Flower options: {names - known}"
    assert namespace['basic_auth'] == ['admin:secret']
    assert namespace['enable_events'] is True
    flower = load_compose()['services']['flower']
    assert '--conf=/etc/flower/flowerconfig.py' in flower['command']
    assert './flowerconfig.py:/etc/flower/flowerconfig.py:ro' in flower['volumes']
    assert 'ports' in flower


def test_mounted_and_built_files_exist():
    services = load_compose()['services']
    for name, service in services.items():
        for volume in service.get('volumes', []):
            source = volume.split(':')[0]
            if source.startswith('.'):
                assert (COMPOSE_DIR / source).is_file(), f"{name}: {source} missing"
        build = service.get('build')
        if build:
            assert (COMPOSE_DIR / build['context'] / build['dockerfile']).is_file()
    assert (COMPOSE_DIR / '..').resolve() == ROOT


def test_bucket_init_script_is_valid_shell_and_reads_documented_variables():
    script = COMPOSE_DIR / 'bucket-init.sh'
    subprocess.run(['sh', '-n', str(script)], check=True)
    text = script.read_text()
    needed = set(re.findall(r'\$\{?([A-Z][A-Z0-9_]+)', text))
    given = set(load_compose()['services']['bucket-init']['environment'])
    assert needed <= given, f"bucket-init.sh reads variables compose does not pass: {needed - given}"
    assert 'mc mb --ignore-existing' in text


def test_durations_are_parsed_the_way_compose_writes_them():
    assert seconds('15m') == 900 and seconds('3h10m') == 11400 and seconds('90s') == 90
    assert timedelta(seconds=seconds('1h')).total_seconds() == 3600


def test_the_signing_overlay_gives_workers_and_flower_keys_of_their_own():
    """compose/signing.yml (docs/operations.md, Signed messages): valid
    compose, only services of the stack, and each signer its own key, all
    trusting one store (tests/workers/test_signed_messages.py runs Flower
    and a worker signed this way)."""
    import yaml
    overlay = yaml.safe_load((COMPOSE_DIR / 'signing.yml').read_text())
    jsonschema.validate(overlay, compose_schema())
    services = overlay['services']
    assert set(services) == {'worker-gpu', 'worker-cpu', 'flower'}
    assert set(services) <= set(load_compose()['services'])
    settings = known_settings()
    keys = {}
    for name, service in services.items():
        environment = service['environment']
        assert {f'SPACER_SIGNING_{k}' for k in ('KEY', 'CERT', 'CERT_STORE')} <= set(environment)
        assert all(v[len('SPACER_'):] in settings for v in environment)
        assert service['volumes'] == ['${SIGNING_DIR:?set SIGNING_DIR in compose/.env}'
                                      ':/etc/spacer/signing:ro']
        keys[name] = environment['SPACER_SIGNING_KEY']
    assert keys['flower'] != keys['worker-cpu'] == keys['worker-gpu']
    assert len({s['environment']['SPACER_SIGNING_CERT_STORE'] for s in services.values()}) == 1
